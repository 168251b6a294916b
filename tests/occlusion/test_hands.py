"""Hands in front of a face (mediapipe's hand landmarker added to the occlusion segmenter): the silhouette
drawn from 21 landmarks, the video cadence, and on a real CelebA photo with a hand over the face (the
hand-drawn mask of ``celeba_occlusion_v1``): found with hands on, missed by the segmenter alone, kept in
front of the target's face by a swap, painted over on a source."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from occlusion_fixtures import real_occluder

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions
from masquerade.occlusion.handling import Occlusion
from masquerade.occlusion.hands import FINGERS, HandOccluders, hand_silhouette

HAND_PHOTO = "7353/039476.jpg"  # a hand over the cheek and chin (celeba_occlusion_v1)


def _open_hand(x0: float = 100.0, y0: float = 200.0, k: float = 20.0) -> np.ndarray:
    """21 landmarks of an upright open hand: wrist at (x0, y0), knuckles k apart, fingers spread."""
    pts = np.zeros((21, 2))
    pts[0] = (x0, y0)
    for i, f in enumerate(FINGERS[1:]):
        base = np.array([x0 - 1.5 * k + i * k, y0 - 3 * k])
        spread = (i - 1.5) * 0.35
        for j, lm in enumerate(f):
            pts[lm] = base + (j * 1.2 * k) * np.array([np.sin(spread), -np.cos(spread)])
    for j, lm in enumerate(FINGERS[0][1:]):  # the thumb, out to the side
        pts[lm] = (x0 - 2 * k - j * 0.9 * k, y0 - 1.2 * k - j * 0.6 * k)
    return pts


def test_silhouette_covers_the_hand_and_not_between_the_fingers() -> None:
    pts = _open_hand()
    m = hand_silhouette(pts, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 300)
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 1}
    palm = pts[[0, 5, 9, 13, 17]].mean(0)
    for p in [palm, *pts[[4, 8, 12, 16, 20]]]:  # the palm's centre and every fingertip
        assert m[int(round(p[1])), int(round(p[0]))] == 1, p
    gap = (pts[8] + pts[12]) / 2  # between the index and middle fingertips (spread apart)
    assert m[int(round(gap[1])), int(round(gap[0]))] == 0
    assert m[10, 10] == 0 and m[290, 290] == 0
    # a finger is as wide as the knuckles are apart (20 px): its cross-section at the middle joint
    x, y = (int(round(v)) for v in pts[10])
    row = m[y]
    left = x - int(np.flatnonzero(row[: x + 1][::-1] == 0)[0])
    right = x + int(np.flatnonzero(row[x:] == 0)[0])
    assert 14 <= right - left <= 26, (left, right)
    # drawn through a matrix: the same hand at half size, moved
    half = hand_silhouette(pts, np.array([[0.5, 0, 10], [0, 0.5, 20]]), 300)
    assert abs(int(half.sum()) - int(m.sum()) / 4) < 0.15 * m.sum() / 4


class _Counting:
    """A stand-in for the hand landmarker: counts its calls, finds a hand when told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.hand: np.ndarray | None = None

    def get(self, rgb: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        return [] if self.hand is None else [self.hand]

    def close(self) -> None:
        pass


def test_video_looks_every_frame_only_while_a_hand_is_near(faces) -> None:
    face = faces[0]
    det = _Counting()
    hands = HandOccluders(every=5, detector=det)  # type: ignore[arg-type]
    rgb = np.zeros((512, 512, 3), np.uint8)
    m = np.array([[0.25, 0, 0], [0, 0.25, 0]])
    state: dict = {}
    got = [hands.crop_mask(rgb, face, m, 128, state) for _ in range(10)]
    assert det.calls == 2 and all(g is None for g in got)  # frames 0 and 5
    det.hand = _open_hand(60, 120, 8)  # crop pixels of the 192-px look
    got = [hands.crop_mask(rgb, face, m, 128, state) for _ in range(10)]
    # frame 10 is a look; from the first look that finds the hand on, every frame is one, and the hand is
    # used from the second frame in a row it is found on
    assert det.calls == 2 + 10 and got[0] is None and all(g is not None and g.max() == 1 for g in got[1:])
    det.hand = None
    [hands.crop_mask(rgb, face, m, 128, state) for _ in range(10)]
    assert det.calls == 12 + 2
    # a hand found on one frame only (the landmarker's false finds on a face) is never used
    det.hand = _open_hand(60, 120, 8)
    got = [hands.crop_mask(rgb, face, m, 128, state)]  # frame 30 looks and finds it
    det.hand = None
    got += [hands.crop_mask(rgb, face, m, 128, state) for _ in range(9)]  # 31 looks again, then 36
    assert det.calls == 14 + 3 and all(g is None for g in got)
    det.hand = _open_hand(60, 120, 8)
    assert hands.crop_mask(rgb, face, m, 128) is not None  # no state: every call looks and uses what it finds
    det.hand = None
    assert hands.crop_mask(rgb, face, m, 128) is None and det.calls == 19


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return (fa.get(astronaut)[0],)


@pytest.fixture(scope="module")
def hand_photo(celeba: Path):
    return real_occluder(celeba, HAND_PHOTO)


@pytest.mark.slow
def test_a_real_hand_is_found_where_the_segmenter_misses_it(hand_photo) -> None:
    """The hand over this cheek (skin-toned, at the face's edge) is missed by the segmenter and found by
    the hand landmarker: most of it, and little of the bare face beside it (the rest of the photo's
    marks are its hat's brim and fringe, which the drawing leaves out)."""
    rgb, face, truth = hand_photo
    with_hands, alone = Occlusion(hair=False), Occlusion(hands=False, hair=False)
    try:
        found = [occ.target_mask(rgb, face).full(rgb.shape) > 0.5 for occ in (alone, with_hands)]
        recall = [float((f & truth).sum() / truth.sum()) for f in found]
        assert truth.sum() > 200 and recall[0] < 0.1 and recall[1] > 0.4, recall
        added = found[1] & ~found[0]  # what the hands add
        assert (added & truth).sum() > 0.6 * added.sum(), ((added & truth).sum(), added.sum())
        assert with_hands.visible_share(rgb, face) < alone.visible_share(rgb, face) - 0.02
    finally:
        with_hands.close()


@pytest.mark.slow
def test_a_real_hand_stays_in_front_of_the_swapped_face(hand_photo, hopper: np.ndarray) -> None:
    rgb, _, truth = hand_photo
    inner = cv2.erode(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # off the drawn edge
    kept = {}
    for on in (False, True):
        with FaceSwapper(SwapOptions(occlusion=on, occlusion_hair=False)) as fs:
            out = fs.swap(hopper, rgb)[0]
        diff = np.abs(out[inner].astype(int) - rgb[inner].astype(int)).max(-1)
        kept[on] = float((diff <= 8).mean())
    assert kept[False] < 0.45 and kept[True] > 0.55 and kept[True] > kept[False] + 0.2, kept


@pytest.mark.slow
def test_a_real_hand_on_the_source_is_painted_over(hand_photo) -> None:
    rgb, face, truth = hand_photo
    changed = {}
    for hands in (False, True):
        occ = Occlusion(hands=hands, hair=False)
        try:
            clean = occ.clean_source(rgb, face)
        finally:
            occ.close()
        changed[hands] = float((np.abs(clean.astype(int) - rgb.astype(int)).max(-1) > 8)[truth].mean())
    assert changed[False] < 0.1 and changed[True] > 0.5, changed

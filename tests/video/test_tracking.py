"""Face tracks across frames: greedy box association, misses and expiry, identity re-attachment (with
the real embeddings of the bundled samples), box carrying between detections, and scene cuts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer
from masquerade.video.smoothing import OneEuroParams
from masquerade.video.tracking import SceneCutDetector, Tracker, carry_box


def box(x: float, y: float, w: float = 100.0, h: float = 120.0) -> np.ndarray:
    return np.array([x, y, x + w, y + h], np.float64)


def ids(pairs) -> list[int]:
    return [tr.id for tr, _ in pairs]


@pytest.fixture(scope="module")
def embeddings(analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, np.ndarray]:
    """dlib embeddings: Hopper, Hopper again from a smaller, mirrored copy, and the astronaut."""
    small = cv2.resize(hopper[:, ::-1], None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    out = {}
    for name, rgb in (("hopper", hopper), ("hopper_again", small), ("astronaut", astronaut)):
        (face,) = analyzer.get(rgb)
        out[name] = face.embedding
    return out


def test_tracks_follow_their_boxes_whatever_the_detection_order() -> None:
    tr = Tracker()
    first = tr.update([box(0, 0), box(300, 0)], t=0.0)
    assert ids(first) == [0, 1] and len(tr.tracks) == 2
    assert all(t.first_seen == 0.0 for t in tr.tracks)
    # next frame: both moved a little, detected in the other order
    second = tr.update([box(305, 4), box(6, -3)], t=0.04)
    by_id = {t.id: b for t, b in second}
    assert set(by_id) == {0, 1} and len(tr.tracks) == 2
    assert by_id[0][0] == 6 and by_id[1][0] == 305
    assert all(t.missed == 0 for t in tr.tracks)


def test_iou_threshold_separates_a_moved_face_from_a_new_one() -> None:
    tr = Tracker(iou_threshold=0.3)
    tr.update([box(0, 0)], 0.0)
    tr.tracks[0].box = box(0, 0)  # the caller keeps the track's box current
    # IoU of a 100-px box shifted 45 px: 55/145 ≈ 0.38 → same track; shifted 60 px: 40/160 = 0.25 → new
    (same,) = tr.update([box(45, 0)], 0.04)
    assert same[0].id == 0
    (new,) = tr.update([box(60, 0)], 0.08)
    assert new[0].id == 1
    assert [t.missed for t in tr.tracks] == [1, 0]  # the old one missed this frame


def test_a_track_expires_after_max_missed_and_is_kept_for_reidentification() -> None:
    tr = Tracker(max_missed=3)
    tr.update([box(0, 0)], 0.0)
    for k in range(3):
        assert tr.update([], 0.1 * (k + 1)) == []
        assert len(tr.tracks) == 1 and tr.tracks[0].missed == k + 1
    tr.update([], 0.4)
    assert tr.tracks == [] and [t.id for t in tr.lost] == [0]
    # only the last 8 lost tracks are kept
    for k in range(10):
        tr.update([box(1000 * (k + 1), 0)], 1.0 + k)
        for j in range(4):
            tr.update([], 1.0 + k + 0.1 * (j + 1))
    assert [t.id for t in tr.lost] == list(range(3, 11))
    tr.reset()
    assert tr.tracks == [] and tr.lost == []


def test_new_tracks_get_the_trackers_smoothing() -> None:
    params = OneEuroParams(min_cutoff=0.2, beta=5.0)
    tr = Tracker(smoothing=params)
    (pair,) = tr.update([box(0, 0)], 0.0)
    assert pair[0].mesh_filter.p is params


def _lose(tr: Tracker, embedding: np.ndarray) -> None:
    """A person seen, then gone long enough for their track to be dropped."""
    (pair,) = tr.update([box(0, 0)], 0.0)
    pair[0].embedding = embedding
    for k in range(tr.max_missed + 1):
        tr.update([], 0.1 * (k + 1))
    assert tr.tracks == [] and len(tr.lost) == 1


def _reappear(tr: Tracker, embedding: np.ndarray):
    (pair,) = tr.update([box(500, 200)], 5.0)
    pair[0].embedding = embedding
    return pair[0]


def test_the_same_person_coming_back_continues_the_lost_track(embeddings) -> None:
    tr = Tracker(max_missed=2)
    _lose(tr, embeddings["hopper"])
    lost = tr.lost[0]
    lost.mesh_filter(np.zeros(3), 0.0)
    new = _reappear(tr, embeddings["hopper_again"])
    back = tr.reattach(new)
    assert back is lost and back.id == 0
    assert tr.tracks == [lost] and tr.lost == []
    assert np.array_equal(back.box, box(500, 200)) and back.missed == 0
    assert back.mesh_filter(np.ones(3), 5.0).tolist() == [1.0, 1.0, 1.0]  # smoothing restarted


def test_someone_else_gets_a_new_track(embeddings) -> None:
    tr = Tracker(max_missed=2)
    _lose(tr, embeddings["hopper"])
    new = _reappear(tr, embeddings["astronaut"])
    assert tr.reattach(new) is new and new.id == 1
    assert [t.id for t in tr.lost] == [0]


def test_reattach_leaves_established_or_anonymous_tracks(embeddings) -> None:
    tr = Tracker(max_missed=2)
    _lose(tr, embeddings["hopper"])
    new = _reappear(tr, embeddings["hopper_again"])
    new.hits = 2  # already seen on its own for a while: keep it
    assert tr.reattach(new) is new
    new.hits, new.embedding = 0, None  # no identity yet
    assert tr.reattach(new) is new
    assert len(tr.lost) == 1


def test_carry_box_follows_the_mesh_motion() -> None:
    det = np.array([100.0, 80.0, 200.0, 200.0])
    mesh = np.array([110.0, 100.0, 190.0, 210.0])
    move = np.array([30.0, -10.0, 30.0, -10.0])  # the mesh moved by (+30, -10): so does the box
    assert np.allclose(carry_box((det, mesh), mesh + move), det + move)
    # the mesh doubled in size about its centre (150, 155): the box doubles about the same point
    c = np.array([150.0, 155.0, 150.0, 155.0])
    assert np.allclose(carry_box((det, mesh), c + 2 * (mesh - c)), c + 2 * (det - c))
    assert np.allclose(carry_box((det, mesh), mesh), det)


def test_scene_cuts_on_the_sample_photos(astronaut: np.ndarray, hopper: np.ndarray) -> None:
    cut = SceneCutDetector()
    assert cut(astronaut) is False  # nothing to compare with yet
    assert cut(np.roll(astronaut, 3, axis=1)) is False  # a small camera move
    assert cut(np.clip(astronaut.astype(np.int16) + 12, 0, 255).astype(np.uint8)) is False  # exposure
    assert cut(hopper) is True
    assert cut(hopper) is False
    dark = SceneCutDetector()
    dark(astronaut)
    assert dark((astronaut * 0.4).astype(np.uint8)) is True  # same colours, much darker: a cut

"""Dark sunglasses over the eyes, found by their darkness against the face's skin
(masquerade.occlusion.glasses): painted lenses and frames over a sample face are found, bare eyes and
clear glasses are not; on real CelebA photos with sunglasses (the hand-drawn masks of
``celeba_occlusion_v1``) the lenses' rims the segmenter misses are found and the sunglasses stay in front
of the swapped face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from occlusion_fixtures import found_and_kept, in_crop, kept_without_occlusion, real_occluder

from masquerade import FaceAnalyzer, SwapOptions
from masquerade.analysis.regions import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, idx
from masquerade.occlusion.glasses import sunglasses_mask
from masquerade.occlusion.handling import Occlusion
from masquerade.occlusion.segmenter import face_crop

# dark sunglasses in celeba_occlusion_v1: tinted round lenses (the segmenter finds a quarter of them),
# and aviators with light metal frames
SUNGLASSES_PHOTOS = ("7293/059893.jpg", "7444/075701.jpg")


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, hopper: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return fa.get(astronaut)[0], fa.get(hopper)[0]


def _sunglasses(rgb: np.ndarray, face) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` with dark lenses painted over both eyes (each eye's contour grown 1.7× across and 2.6×
    up and down about its centre), a bridge between them and a grey highlight on each lens; and their
    mask."""
    mask = np.zeros(rgb.shape[:2], np.uint8)
    centres = []
    for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
        pts = face.mesh[idx(loop), :2]
        c = pts.mean(0)
        centres.append(c)
        lens = c + (pts - c) * np.array([1.7, 2.6])
        cv2.fillConvexPoly(mask, np.round(lens).astype(np.int32), 1)
    thick = max(2, int(0.05 * np.linalg.norm(centres[1] - centres[0])))
    a, b = (np.round(c).astype(int) for c in centres)
    cv2.line(mask, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, thick)
    out = rgb.copy()
    noise = np.random.default_rng(0).normal(0, 4, rgb.shape)
    inside = mask > 0
    out[inside] = np.clip(np.array([24, 20, 22]) + noise[inside], 0, 255).astype(np.uint8)
    for c in centres:  # a reflection on each lens
        x, y = np.round(c - 3).astype(int)
        cv2.circle(out, (int(x), int(y)), max(2, thick), (150, 150, 155), -1)
    return out, inside


def test_painted_sunglasses_are_found_and_bare_eyes_are_not(faces, astronaut, hopper) -> None:
    r = 128
    nothing = np.zeros((r, r), np.float32)
    for rgb, face in ((astronaut, faces[0]), (hopper, faces[1])):  # Grace Hopper wears clear glasses
        crop, m = face_crop(rgb, face, r)
        assert sunglasses_mask(crop, face, m, nothing) is None
    for rgb, face in ((astronaut, faces[0]), (hopper, faces[1])):
        painted, lenses = _sunglasses(rgb, face)
        crop, m = face_crop(painted, face, r)
        found = sunglasses_mask(crop, face, m, nothing)
        assert found is not None and found.dtype == np.float32
        truth = in_crop(lenses, m, r)
        # the frames' margin, and dark eyebrows or hair next to the lenses, are taken too: 7 px of 128
        near = cv2.dilate(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        hit = found > 0.5
        assert (hit & truth).sum() > 0.9 * truth.sum()  # the lenses, highlights included
        assert (hit & ~near).sum() < 0.1 * hit.sum()  # and little beyond them


def test_the_sunglasses_finder_can_be_turned_off(faces, astronaut) -> None:
    """Off, what the segmenter finds alone, exactly; on, the whole of the lenses and their rims too."""
    painted, lenses = _sunglasses(astronaut, faces[0])
    found = {}
    for glasses in (False, True):
        occ = Occlusion(hands=False, hair=False, glasses=glasses)
        prob, _ = occ.crop_mask(painted, faces[0])
        if not glasses:
            assert np.array_equal(prob, occ.segmenter.crop_mask(painted, faces[0])[0])
        found[glasses] = occ.target_mask(painted, faces[0]).full(painted.shape) > 0.5
    assert (found[True] & lenses).sum() > 0.99 * lenses.sum()
    sizes = {k: int(v.sum()) for k, v in found.items()}
    assert sizes[True] > sizes[False] + 0.1 * lenses.sum(), sizes
    assert Occlusion.for_options(SwapOptions(occlusion_glasses=False)).glasses is False


@pytest.mark.slow
@pytest.mark.parametrize("photo", SUNGLASSES_PHOTOS)
def test_real_sunglasses_are_found_and_stay_in_front_of_the_swap(
    photo: str, celeba: Path, hopper: np.ndarray
) -> None:
    """With the finder the drawn sunglasses are found (IoU) at least as well as by the segmenter alone,
    and a swap keeps nearly all of their pixels, where one without occlusion handling paints them over."""
    rgb, face, truth = real_occluder(celeba, photo)
    off, on = (
        found_and_kept(rgb, face, truth, hopper, hands=False, hair=False, glasses=g) for g in (False, True)
    )
    assert truth.sum() > 2000 and on[0] > 0.65 and on[0] >= off[0] - 0.02, (off, on)  # IoU with the drawing
    kept_off = kept_without_occlusion(rgb, truth, hopper)
    assert on[1] > kept_off + 0.3 and on[1] > 0.85 and on[1] >= off[1] - 0.02, (kept_off, off, on)


def test_the_command_line_turns_the_finder_off(analyzer) -> None:
    from masquerade.cli.common import swap_request
    from masquerade.cli.main import build_parser
    from masquerade.job import prepare_job

    argv = ["swap", "-s", "sample:astronaut", "-t", "sample:grace_hopper", "-o", "out.jpg"]
    for extra, on in (([], True), (["--occlusion-glasses", "off"], False)):
        request = swap_request(build_parser().parse_args(argv + extra))
        job, _ = prepare_job(request, analyzer, load=False)
        assert request.occlusion_glasses is on and job.options.occlusion_glasses is on

"""The frames of clear glasses (masquerade.occlusion.frames): found on Grace Hopper's glasses and on
LFW photos of people wearing glasses, not on bare faces; a target's frames stay in front of the swapped
face (they were painted over into a faint ghost); a source's glasses are left as they are."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lfw_image

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions
from masquerade.analysis.regions import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, idx
from masquerade.occlusion.frames import frames_mask
from masquerade.occlusion.handling import Occlusion
from masquerade.occlusion.segmenter import crop_matrix

R = 128
# LFW photos of people wearing clear glasses with dark or metal frames, and of bare faces
WITH_GLASSES = (("Hans_Blix", 1), ("Woody_Allen", 2), ("Hans_Corell", 1), ("John_Bolton", 11))
WITHOUT = (("George_W_Bush", 1), ("Colin_Powell", 1), ("Serena_Williams", 1), ("Tony_Blair", 1))


def face_of(analyzer: FaceAnalyzer, rgb: np.ndarray):
    return analyzer.get(rgb, identity=False)[0]


def eye_centres(face, m: np.ndarray) -> np.ndarray:
    return np.array(
        [
            face.mesh[idx(loop), :2].mean(0) @ m[:, :2].T + m[:, 2]
            for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT)
        ]
    )


def test_hoppers_frames_are_found_around_her_eyes_and_the_astronauts_bare_face_has_none(
    analyzer, hopper, astronaut
) -> None:
    face = face_of(analyzer, hopper)
    found = frames_mask(hopper, face, R)
    assert found is not None and found.shape == (R, R)
    m = crop_matrix(face.landmarks_5, R)
    (lx, ly), (rx, ry) = eye_centres(face, m)
    ys, xs = np.nonzero(found)
    assert len(xs) > 150  # rims, bridge and arms, a few pixels wide
    bridge = found[int(min(ly, ry)) - 12 : int(max(ly, ry)) + 3, int(lx) + 6 : int(rx) - 6]
    assert bridge.any(axis=0).mean() > 0.6  # a line across the nose between the eyes
    assert ys.min() > min(ly, ry) - 25 and ys.max() < max(ly, ry) + 25  # around the eyes, not elsewhere
    assert frames_mask(astronaut, face_of(analyzer, astronaut), R) is None


@pytest.mark.slow
def test_glasses_on_lfw_photos_are_found_and_bare_faces_are_not(analyzer, lfw) -> None:
    for name, n in WITH_GLASSES:
        rgb = lfw_image(lfw, name, n)
        assert frames_mask(rgb, face_of(analyzer, rgb), R) is not None, name
    for name, n in WITHOUT:
        rgb = lfw_image(lfw, name, n)
        assert frames_mask(rgb, face_of(analyzer, rgb), R) is None, name


def test_a_targets_frames_stay_in_front_of_the_swapped_face(analyzer, astronaut, hopper) -> None:
    """Hopper as the target: where her frames are, the output keeps her pixels with occlusion handling
    (its glasses finders on); with them off the swapped face paints over the frames."""
    face = face_of(analyzer, hopper)
    found = frames_mask(hopper, face, R)
    assert found is not None
    occ = Occlusion.for_options(SwapOptions())
    frames = occ.segmenter.image_mask(hopper, face, found) > 0.99  # the frames' cores, in the photo
    assert frames.sum() > 200
    outs = []
    for glasses in (True, False):
        with FaceSwapper(SwapOptions(occlusion_glasses=glasses)) as fs:
            outs.append(fs.swap(astronaut, hopper)[0])
    kept, painted = (np.abs(o.astype(int) - hopper)[frames].mean() for o in outs)
    assert painted > 12.0  # what it was: the swapped face over them
    assert kept < 0.2 * painted, (kept, painted)


def test_a_sources_glasses_are_left_as_they_are(analyzer, hopper) -> None:
    """Painted over, the eyes between the frames smeared with them: the source photo keeps its glasses."""
    occ = Occlusion.for_options(SwapOptions(occlusion_hands=False))
    face = face_of(analyzer, hopper)
    assert occ.crop_mask(hopper, face)[0].max() > 0.99  # the frames count as something in front …
    cleaned = occ.clean_source(hopper, face)
    assert occ.source_holes(hopper, face) is None  # … but leave no hole in the source …
    assert np.array_equal(cleaned, hopper)  # … and nothing is painted over


def test_the_glasses_option_off_leaves_the_frames_out(analyzer, hopper) -> None:
    occ = Occlusion.for_options(SwapOptions(occlusion_glasses=False, occlusion_hands=False))
    face = face_of(analyzer, hopper)
    with_frames = Occlusion.for_options(SwapOptions(occlusion_hands=False)).crop_mask(hopper, face)[0]
    without = occ.crop_mask(hopper, face)[0]
    assert (with_frames > 0.5).sum() > (without > 0.5).sum() + 100


def test_in_video_a_persons_glasses_once_found_are_kept_in_frames_that_fail_the_test(
    analyzer, hopper
) -> None:
    """Thin frames pass the test across the nose and under the eyes in some video frames only; once a
    person's glasses are found (their tracked state remembers it), later looks keep the lines without
    the test, so the glasses do not come and go. Here the test fails on Hopper with the bridge of her
    glasses painted over with her skin."""
    face = face_of(analyzer, hopper)
    m = crop_matrix(face.landmarks_5, 192)
    (lx, ly), (rx, ry) = eye_centres(face, m)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    corners = np.array([[lx + 12, min(ly, ry) - 30], [rx - 12, max(ly, ry) + 6]]) @ inv[:, :2].T + inv[:, 2]
    (x0, y0), (x1, y1) = np.round(corners).astype(int)
    bare = hopper.copy()
    bare[y0:y1, x0:x1] = np.median(hopper[y1 + 40 : y1 + 60, x0:x1].reshape(-1, 3), axis=0).astype(np.uint8)
    assert frames_mask(bare, face, R) is None  # the bridge gone, the test fails …
    assert frames_mask(bare, face, R, known=True) is not None  # … unless the glasses are known
    occ = Occlusion.for_options(SwapOptions(occlusion_hands=False))
    state: dict = {}
    occ.crop_mask(hopper, face, state)  # a frame where they are found
    assert state.get("glasses_seen") is True
    later = occ.crop_mask(bare, face, state)[0]
    alone = occ.crop_mask(bare, face)[0]  # a photo: no memory
    assert (later > 0.5).sum() > (alone > 0.5).sum() + 100

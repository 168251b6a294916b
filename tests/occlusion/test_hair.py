"""Hair over the forehead (bangs, a hat's brim), found by its colour against the face's skin
(masquerade.occlusion.hair): a fringe painted over a sample face is found and a bare forehead is not;
on a real CelebA photo with bangs (the hand-drawn mask of ``celeba_occlusion_v1``) the finder finds the
fringe and it stays in front of the swapped face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from occlusion_fixtures import (
    found_and_kept,
    in_crop,
    kept_without_occlusion,
    painted_fringe,
    real_occluder,
    side_lock,
)

from masquerade import FaceAnalyzer
from masquerade.analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    idx,
)
from masquerade.evaluation.metrics import face_region
from masquerade.occlusion.hair import hair_mask
from masquerade.occlusion.segmenter import crop_matrix

BANGS_PHOTO = "7353/017638.jpg"  # a black fringe down to the eyebrows (celeba_occlusion_v1)


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, hopper: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return fa.get(astronaut)[0], fa.get(hopper)[0]


def test_a_painted_fringe_is_found_and_a_bare_forehead_is_not(faces, astronaut, hopper) -> None:
    astro, grace = faces
    r = 128
    # Grace Hopper's forehead is bare under her cap: nothing
    assert hair_mask(hopper, grace, crop_matrix(grace.landmarks_5, r), r) is None
    # the astronaut's hair reaches just inside the mesh's oval: a thin band at its top, and where it
    # falls over a corner of her forehead down the side (looked at), nothing near the eyes
    m = crop_matrix(astro.landmarks_5, r)
    bare = hair_mask(astronaut, astro, m, r)
    assert bare is not None and 0 < bare.mean() < 0.06
    rows = np.flatnonzero(bare.any(1))
    oval_top = (astro.mesh[idx(FACE_OVAL), :2] @ m[:, :2].T + m[:, 2])[:, 1].min()
    eyes_top = float(
        (astro.mesh[list(EYE_IMAGE_LEFT) + list(EYE_IMAGE_RIGHT), :2] @ m[:, :2].T + m[:, 2])[:, 1].min()
    )
    assert (bare[: int(oval_top + 0.1 * r)] > 0.5).sum() > 0.7 * (bare > 0.5).sum()  # mostly the band
    assert rows.max() < eyes_top - 2
    painted, fringe = painted_fringe(astronaut, astro)
    found = hair_mask(painted, astro, m, r)
    assert found is not None and found.dtype == np.float32
    truth = in_crop(fringe, m, r)
    hit = found > 0.5
    assert (hit & truth).sum() > 0.8 * truth.sum()  # the fringe
    assert (hit & ~truth & ~(bare > 0.5)).sum() < 0.05 * hit.sum()  # and little else
    assert hit[int(r * 0.6) :].sum() == 0  # nothing below the eyebrows (the crop's lower part)


def test_a_fringe_down_over_the_eyebrows_is_found_to_its_end(faces, astronaut) -> None:
    """Bangs often reach the eyebrows or below them: the part under the eyebrows' top is found too, as far
    as it hangs on from the fringe above without a gap (the eyebrows of a bare forehead are not)."""
    astro = faces[0]
    r = 128
    m = crop_matrix(astro.landmarks_5, r)
    painted, fringe = painted_fringe(astronaut, astro, long=True)
    found = hair_mask(painted, astro, m, r)
    assert found is not None
    truth, hit = in_crop(fringe, m, r), found > 0.5
    brows = (astro.mesh[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), :2] @ m[:, :2].T + m[:, 2])[
        :, 1
    ].min()
    low = truth.copy()
    low[: int(brows) + 1] = False  # the fringe under the eyebrows' top
    assert low.sum() > 50 and (hit & low).sum() > 0.8 * low.sum()
    assert (hit & truth).sum() > 0.85 * truth.sum()
    bare = hair_mask(astronaut, astro, m, r)
    assert bare is not None and (hit & ~truth & ~(bare > 0.5)).sum() < 0.05 * hit.sum()


def test_hair_alike_in_colour_to_the_skin_is_left_alone(faces, astronaut) -> None:
    """A fringe in the skin's own colour cannot be told from skin: nothing is found, rather than guesses."""
    astro = faces[0]
    painted, fringe = painted_fringe(astronaut, astro)
    skin = np.median(astronaut[face_region(astronaut.shape, astro)], 0)
    painted[fringe] = skin.astype(np.uint8)
    m = crop_matrix(astro.landmarks_5, 128)
    found = hair_mask(painted, astro, m, 128)
    assert found is None or found.mean() < 0.01


@pytest.fixture(scope="module")
def bangs_photo(celeba: Path):
    return real_occluder(celeba, BANGS_PHOTO)


@pytest.mark.slow
def test_real_bangs_are_found_and_stay_in_front_of_the_swap(bangs_photo, hopper: np.ndarray) -> None:
    """The hair finder by itself finds the real fringe (most of it, little else), and with it on the
    fringe stays in front of the swapped face; without any occlusion handling it is painted over."""
    rgb, face, truth = bangs_photo
    r = 128
    m = crop_matrix(face.landmarks_5, r)
    found = hair_mask(rgb, face, m, r)
    assert found is not None
    hit, t = found > 0.5, in_crop(truth, m, r)
    assert t.sum() > 100 and (hit & t).sum() / (hit | t).sum() > 0.3, ((hit & t).sum(), (hit | t).sum())
    iou, kept = found_and_kept(rgb, face, truth, hopper, hands=False, hair=True)
    kept_off = kept_without_occlusion(rgb, truth, hopper)
    assert truth.sum() > 200 and iou > 0.3, iou
    assert kept > kept_off + 0.2 and kept > 0.6, (kept_off, kept)


def test_a_lock_of_hair_down_the_side_of_the_face_is_found(faces, astronaut) -> None:
    """Hair hanging over the side of the face below the eyebrows (a swap would otherwise copy a source's
    strands onto the target's cheek, or paint over a target's): the part inside the oval is found, and
    nothing on the other side of the face or near the eyes."""
    astro = faces[0]
    r = 128
    m = crop_matrix(astro.landmarks_5, r)
    painted, lock = side_lock(astronaut, astro)
    found = hair_mask(painted, astro, m, r)
    assert found is not None
    truth, hit = in_crop(lock, m, r), found > 0.5
    bare = hair_mask(astronaut, astro, m, r)
    bare_hit = np.zeros_like(hit) if bare is None else bare > 0.5
    assert truth.sum() > 50 and (hit & truth).sum() > 0.6 * truth.sum(), ((hit & truth).sum(), truth.sum())
    centre = (astro.mesh[:468, :2] @ m[:, :2].T + m[:, 2])[:, 0].mean()
    assert (hit & ~bare_hit)[:, int(centre) :].sum() == 0  # the other side: nothing new
    eyes = (astro.mesh[list(EYE_IMAGE_LEFT) + list(EYE_IMAGE_RIGHT), :2] @ m[:, :2].T + m[:, 2]).astype(int)
    assert not hit[eyes[:, 1].clip(0, r - 1), eyes[:, 0].clip(0, r - 1)].any()

"""Synthetic occluders: deterministic from their spec, placed on the face, exact masks, pasted exactly."""

from __future__ import annotations

import numpy as np
import pytest

from masquerade import FaceAnalyzer, InputError
from masquerade.analysis.regions import FACE_OVAL, idx
from masquerade.evaluation.metrics import face_region
from masquerade.occlusion.synthetic import ALL_KINDS, make_occluder, parse_occluder


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, hopper: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return fa.get(astronaut)[0], fa.get(hopper)[0]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_occluder_is_deterministic_and_on_the_face(
    kind: str, faces, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    face, hopper_face = faces
    a = make_occluder(kind, 3, face.landmarks_68, astronaut.shape, hopper, hopper_face.box, astronaut)
    b = make_occluder(kind, 3, face.landmarks_68, astronaut.shape, hopper, hopper_face.box, astronaut)
    c = make_occluder(kind, 4, face.landmarks_68, astronaut.shape, hopper, hopper_face.box, astronaut)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.alpha, c.alpha)
    region = face_region(astronaut.shape, face)
    covered = (a.mask & region).sum() / region.sum()
    assert 0.01 < covered < 0.6, covered  # in front of the face, not hiding all of it
    out = a.over(astronaut)
    # exact where the occluder is opaque, untouched where it is absent
    full = a.alpha >= 1.0
    assert np.array_equal(out[full], a.rgb[full])
    assert np.array_equal(out[a.alpha == 0], astronaut[a.alpha == 0])
    assert a.alpha.min() >= 0 and a.alpha.max() <= 1


def test_occluder_moves_with_the_face(faces, astronaut: np.ndarray) -> None:
    face = faces[0]
    shifted = face.landmarks_68 + np.array([40.0, 25.0])
    a = make_occluder("hand", 1, face.landmarks_68, astronaut.shape)
    b = make_occluder("hand", 1, shifted, astronaut.shape)
    ya, xa = np.nonzero(a.mask)
    yb, xb = np.nonzero(b.mask)
    assert abs((xb.mean() - xa.mean()) - 40) < 2 and abs((yb.mean() - ya.mean()) - 25) < 2
    assert face.mesh is not None and len(idx(FACE_OVAL))


def test_palm_takes_the_skin_tone_of_the_face_it_is_on(faces, astronaut: np.ndarray) -> None:
    face = faces[0]
    lm = face.landmarks_68
    points = (lm[2:5].mean(0) * 0.6 + lm[48] * 0.4, lm[12:15].mean(0) * 0.6 + lm[54] * 0.4)
    cheeks = np.concatenate(
        [astronaut[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5].reshape(-1, 3) for x, y in points]
    )
    tinted = np.clip(astronaut * np.array([0.55, 0.9, 1.4]), 0, 255).astype(np.uint8)
    means = []
    for img in (astronaut, tinted):
        palms = [make_occluder("palm", s, lm, img.shape, image=img) for s in range(6)]
        means.append(np.mean([p.rgb[p.mask].mean(0) for p in palms], 0))
    assert np.abs(means[0] - np.median(cheeks, 0)).max() < 30, (means[0], np.median(cheeks, 0))
    # the tint moves the palm's colour with it: red down, blue up
    assert means[1][0] < means[0][0] - 25 and means[1][2] > means[0][2] + 20, means


def test_occluder_specs() -> None:
    assert parse_occluder("strands:12") == ("strands", 12)
    assert parse_occluder("bangs:3") == ("bangs", 3)
    for bad in ("hand", "hand:x", "cat:3", ":3"):
        with pytest.raises(InputError, match="KIND:SEED"):
            parse_occluder(bad)

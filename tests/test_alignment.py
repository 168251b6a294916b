"""Alignment to templates and exact inverse paste-back, on the sample photos."""

from __future__ import annotations

import numpy as np
import pytest

from masquerade.analysis.alignment import (
    TEMPLATES,
    align_face,
    paste_back,
    similarity_matrix,
    template,
    umeyama,
)


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(20, 2))
    a = np.radians(33)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    s, r2, t = umeyama(pts, 2.5 * pts @ r.T + [4, -7])
    assert s == pytest.approx(2.5) and np.allclose(r2, r) and np.allclose(t, [4, -7])


@pytest.mark.parametrize(("name", "size"), [("arcface", 112), ("arcface_v2", 128), ("ffhq", 256)])
def test_alignment_puts_landmarks_on_the_template(analyzer, astronaut, name, size):
    (face,) = analyzer.get(astronaut, identity=False)
    crop, m = align_face(astronaut, face.landmarks_5, size, name)
    assert crop.shape == (size, size, 3)
    mapped = face.landmarks_5 @ m[:, :2].T + m[:, 2]
    # 5 real landmarks never fit a template exactly; residual stays within a few % of the crop
    assert np.abs(mapped - template(name, size)).max() < 0.06 * size
    # re-analysing the aligned crop finds the face where the template says
    again = analyzer.get(crop, identity=False)
    assert again, "no face found in the aligned crop"
    assert np.linalg.norm(again[0].landmarks_5[2] - template(name, size)[2]) < 0.08 * size


def test_paste_back_is_the_exact_inverse(analyzer, hopper):
    (face,) = analyzer.get(hopper, identity=False)
    # 512 px: the crop is not smaller than the face, so the round trip loses no resolution
    size = 512
    crop, m = align_face(hopper, face.landmarks_5, size, "ffhq")
    mask = np.zeros((size, size), np.float32)
    mask[80:432, 80:432] = 1.0
    out = paste_back(hopper, crop, m, mask)
    ys, xs = np.mgrid[0 : hopper.shape[0], 0 : hopper.shape[1]]
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    region = (u > 90) & (u < 422) & (v > 90) & (v < 422)
    diff = np.abs(out.astype(int) - hopper.astype(int)).max(axis=2)
    # inside: resampled twice, so only interpolation error remains ...
    assert diff[region].mean() < 3.0
    # ... and it is geometric exactness: pasting back one pixel off is clearly worse
    off = m.copy()
    off[:, 2] += m[:, :2] @ [1.0, 0.0]
    shifted = np.abs(paste_back(hopper, crop, off, mask).astype(int) - hopper.astype(int)).max(axis=2)
    assert shifted[region].mean() > 1.5 * diff[region].mean()
    # outside the pasted mask: bit-identical
    outside = ~((u > 76) & (u < 436) & (v > 76) & (v < 436))
    assert diff[outside].max() == 0
    # a changed crop really lands where the face was
    changed = paste_back(hopper, np.zeros_like(crop), m, mask)
    assert changed[region].mean() < 5


def test_similarity_matrix_maps_points():
    src = TEMPLATES["arcface"] * 112
    m = similarity_matrix(src, src * 2 + 10)
    assert np.allclose(src @ m[:, :2].T + m[:, 2], src * 2 + 10)

"""Region masks from a real face mesh (the astronaut sample, whose mouth is open): inside and outside
the outline, the skin mask's eye and mouth holes, erosion, ``keep_mouth``, drawing with an offset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer
from masquerade.analysis.regions import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, INNER_MOUTH, idx
from masquerade.compose.masks import face_size, region_mask

SHAPE = (512, 512)


@pytest.fixture(scope="module")
def mesh(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> np.ndarray:
    (face,) = analyzer.get(astronaut, identity=False)
    assert face.expression["mouth_open"] > 0.05  # the mouth tests need an open mouth
    return face.mesh


def scaled(mesh: np.ndarray, k: float) -> tuple[tuple[int, int], np.ndarray]:
    """The same face on a k× larger canvas (masks are geometry only)."""
    return (SHAPE[0] * k, SHAPE[1] * k), mesh * k


def points(mesh: np.ndarray) -> dict[str, np.ndarray]:
    m = mesh[:, :2]
    return {
        "eye_left": m[idx(EYE_IMAGE_LEFT)].mean(0),
        "eye_right": m[idx(EYE_IMAGE_RIGHT)].mean(0),
        "mouth": m[idx(INNER_MOUTH)].mean(0),
        "lower_lip": (m[14] + m[17]) / 2,  # halfway between the inner and outer lip contours
        "nose": m[1],
        "forehead": m[151],
    }


def at(mask: np.ndarray, p: np.ndarray) -> float:
    x, y = np.round(p).astype(int)
    return float(mask[y, x])


def oval(shape: tuple[int, int], mesh: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    return out


def test_face_size_is_the_mesh_extent(mesh) -> None:
    lo, hi = mesh[:468, :2].min(0), mesh[:468, :2].max(0)
    assert face_size(mesh) == pytest.approx(np.sqrt(np.prod(hi - lo)))
    assert 80 < face_size(mesh) < 130  # the astronaut's face is about 100 px
    assert face_size(mesh * 3) == pytest.approx(3 * face_size(mesh))


def holes(shape: tuple[int, int], mesh: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, INNER_MOUTH):
        cv2.fillPoly(out, [np.round(mesh[idx(loop), :2]).astype(np.int32)], 1)
    return out


@pytest.mark.parametrize("k", [1, 3])  # 3×: a wide blur, taken at reduced resolution
def test_face_mask_is_one_inside_and_zero_outside_the_outline(mesh, k) -> None:
    shape, m = scaled(mesh, k)
    erode, blur, size = 0.03, 0.06, face_size(m)
    mask = region_mask(shape, m, erode=erode, blur=blur)
    assert mask.shape == shape and mask.dtype == np.float32
    assert mask.min() == 0.0 and mask.max() == 1.0
    inside = oval(shape, m)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)  # 0 outside the outline
    # nothing outside the outline or within the eroded band (less a pixel of anti-aliasing)
    assert mask[depth < erode * size - 1.5].max() == 0.0
    # the face itself, from four blur widths inside the eroded edge
    deep = depth > (erode + 4 * blur) * size
    assert deep.sum() > 0.05 * inside.sum()
    assert mask[deep].min() > 0.999
    soft = (mask > 0) & (mask < 0.999)
    assert soft.sum() > 0.3 * (mask > 0).sum()  # a wide feathered edge


def test_without_erosion_or_blur_the_mask_is_the_outline(mesh) -> None:
    mask = region_mask(SHAPE, mesh, erode=0.0, blur=0.0)
    inside = oval(SHAPE, mesh).astype(bool)
    hard = mask > 0.5
    assert (hard & inside).sum() / (hard | inside).sum() > 0.97
    perimeter = cv2.arcLength(mesh[idx(FACE_OVAL), :2].astype(np.float32), closed=True)
    assert ((mask > 0) & (mask < 1)).sum() < 2 * perimeter  # only the anti-aliased edge is soft


def test_skin_cuts_the_eyes_and_the_mouth(mesh) -> None:
    p = points(mesh)
    face = region_mask(SHAPE, mesh, "face", erode=0.0, blur=0.0)
    skin = region_mask(SHAPE, mesh, "skin", erode=0.0, blur=0.0)
    for name in ("eye_left", "eye_right", "mouth"):
        assert at(face, p[name]) == 1.0 and at(skin, p[name]) == 0.0, name
    cut = holes(SHAPE, mesh)
    assert skin[cut > 0].max() == 0.0
    # only the holes are cut: grown by 1.5 % of the face, plus anti-aliasing and this test's rounding
    away = cv2.distanceTransform(1 - cut, cv2.DIST_L2, 5) > 0.015 * face_size(mesh) + 2.5
    assert np.array_equal(skin[away], face[away])
    assert at(skin, p["nose"]) == at(skin, p["forehead"]) == 1.0
    # with the default erosion and blur too: skin is never more than face, and the holes stay holes
    face, skin = region_mask(SHAPE, mesh, "face"), region_mask(SHAPE, mesh, "skin")
    assert np.all(skin <= face)
    assert skin[cut > 0].max() == 0.0
    assert 0.6 < (skin > 0).sum() / (face > 0).sum() < 0.95


def test_skin_holes_come_from_the_hole_mesh(mesh) -> None:
    """Another face's eyes and mouth (here the same ones 25 px to the right) are cut instead."""
    p = points(mesh)
    moved = mesh + np.array([25.0, 0.0, 0.0])
    skin = region_mask(SHAPE, mesh, "skin", hole_mesh=moved, erode=0.0, blur=0.0)
    assert at(skin, p["eye_left"]) == 1.0
    assert at(skin, p["eye_left"] + [25, 0]) == 0.0
    assert at(skin, p["mouth"] + [25, 0]) == 0.0
    assert region_mask(SHAPE, mesh, "face", hole_mesh=moved).tolist() == region_mask(SHAPE, mesh).tolist()


def test_erode_shrinks_by_its_fraction_of_the_face(mesh) -> None:
    masks = {e: region_mask(SHAPE, mesh, erode=e) for e in (0.0, 0.03, 0.08)}
    areas = [float((masks[e] > 0).sum()) for e in (0.0, 0.03, 0.08)]
    assert areas[0] > areas[1] > areas[2]
    assert np.all(masks[0.08] <= masks[0.03]) and np.all(masks[0.03] <= masks[0.0])  # nested
    # without blur: nothing within (erode × face size) of the outline, everything beyond it
    e = 0.08
    crisp = region_mask(SHAPE, mesh, erode=e, blur=0.0)
    depth = cv2.distanceTransform(oval(SHAPE, mesh), cv2.DIST_L2, 5)
    r = e * face_size(mesh)
    assert crisp[depth < r - 1.5].max() == 0.0
    assert crisp[depth > r + 1.5].min() == 1.0


def test_keep_mouth_cuts_the_inner_mouth_or_the_whole_lips(mesh) -> None:
    shape, m = scaled(mesh, 3)  # lips thick enough to tell the inner mouth from the lips
    p = points(m)
    face = region_mask(shape, m, erode=0.0, blur=0.0)
    inner = region_mask(shape, m, keep_mouth="inner", erode=0.0, blur=0.0)
    lips = region_mask(shape, m, keep_mouth="lips", erode=0.0, blur=0.0)
    assert at(face, p["mouth"]) == at(face, p["lower_lip"]) == 1.0
    assert at(inner, p["mouth"]) == 0.0 and at(inner, p["lower_lip"]) == 1.0
    assert at(lips, p["mouth"]) == 0.0 and at(lips, p["lower_lip"]) == 0.0
    for mask in (inner, lips):
        assert at(mask, p["eye_left"]) == at(mask, p["eye_right"]) == at(mask, p["nose"]) == 1.0
    assert (lips > 0).sum() < (inner > 0).sum() < (face > 0).sum()


def test_offset_draws_the_same_mask_in_a_region_of_interest(mesh) -> None:
    x0, y0, h, w = 120, 30, 220, 200
    full = region_mask(SHAPE, mesh, blur=0.05)
    assert (full[y0 + h :, :] == 0).all() and (full[:, x0 + w :] == 0).all()  # the ROI holds the face
    roi = region_mask((h, w), mesh, offset=(x0, y0), blur=0.05)
    assert np.abs(roi - full[y0 : y0 + h, x0 : x0 + w]).max() < 1e-5
    # a wide blur is taken at reduced resolution, on a grid that depends on the canvas: nearly the same
    roi = region_mask((h, w), mesh, offset=(x0, y0), blur=0.12)
    assert np.abs(roi - region_mask(SHAPE, mesh, blur=0.12)[y0 : y0 + h, x0 : x0 + w]).max() < 0.02


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown mask 'hair'; choose from face, skin"):
        region_mask(SHAPE, np.zeros((478, 3)), "hair")

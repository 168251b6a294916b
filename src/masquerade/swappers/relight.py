"""Relighting the 3-D warp: the source's own light taken out, the target's put in.

mesh3d copies the source's texels, and with them the light they were photographed in: a hard light from
the side, the shadow beside the nose, shine on one cheek. The colour correction afterwards matches the
face's overall tone and its low-frequency lighting, but the source's light at the scale of the nose and
cheeks stays, which is much of why a swap looks pasted on. Here each face's light is estimated from its
own mesh, as in 3-D morphable-model face exchange (Blanz et al. 2004): the lightness of the face's skin
at the mesh's vertices is fitted, with robust least squares, by second-order spherical harmonics of the
vertex normals (nine numbers; the skin's albedo taken as constant, the eyes, brows, lips and the face's
outline left out). Every vertex of the swapped face then gets the ratio of the target's light on its
normal (the result's geometry, in the target's pose) to the source's light on its normal where the
texel was photographed; the ratio, interpolated over the triangles at low resolution, multiplies the
warp. Nine numbers per face carry the light, not the target's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    IRIS_IMAGE_LEFT,
    IRIS_IMAGE_RIGHT,
    LIPS,
    idx,
)

RIDGE = 0.01  # ridge on the light's non-constant terms, per vertex: a face's normals span half a sphere
RATIO_RANGE = (0.5, 2.0)  # how far a vertex may be darkened or brightened
MIN_VERTICES = 40  # fewer usable skin vertices: the light is not estimated (no relighting)
RATIO_GRID = 64  # px: the largest side at which the ratio is interpolated over the triangles
VIDEO_SMOOTHING = 0.2  # per frame in video: the share of a new estimate of the target's light taken


def vertex_normals(mesh: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals (468×3) of a mesh's vertices (area-weighted means of their triangles' normals),
    facing the camera (negative z: the mesh's z grows away from it)."""
    p = np.asarray(mesh[:468], np.float64)
    a, b, c = p[triangles[:, 0]], p[triangles[:, 1]], p[triangles[:, 2]]
    face_n = np.cross(b - a, c - a)
    corners = triangles.T.ravel()  # each triangle's normal counts for its three corners
    n: np.ndarray = np.stack(
        [np.bincount(corners, np.tile(face_n[:, j], 3), minlength=len(p)) for j in range(3)], 1
    ).astype(np.float64)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    return -n if n[:, 2].mean() > 0 else n


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """The nine second-order spherical-harmonic functions of each normal (N×9; constants left out, they
    fold into the fitted coefficients)."""
    x, y, z = normals[:, 0], normals[:, 1], -normals[:, 2]
    one = np.ones_like(x)
    return np.stack([one, x, y, z, x * y, x * z, y * z, x * x - y * y, 3.0 * z * z - 1.0], 1)


def skin_vertices(canonical_vertices: np.ndarray) -> np.ndarray:
    """Which of the 468 mesh vertices are plain skin: away from the eyes, brows and lips (their albedo is
    not the skin's) and not on the face's outline (hair and background sit next to it)."""
    v = np.asarray(canonical_vertices[:468, :2], np.float64)
    groups = (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT, LIPS)
    parts = np.concatenate([idx(g) for g in groups])
    parts = parts[parts < 468]
    near = np.linalg.norm(v[:, None, :] - v[None, parts, :], axis=2).min(1)
    keep = near > 0.08 * float(np.linalg.norm(v[33] - v[263]))
    keep[idx(FACE_OVAL)] = False
    return keep


def vertex_lightness(rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """The image's luma (0..255) at each of the 468 vertices, blurred over a twentieth of the distance
    between the eye corners (skin texture and pores out); only the face's box is blurred, at a resolution
    reduced to a third of that blur (a large face costs as little as a small one)."""
    pts = np.asarray(mesh[:468, :2], np.float64)
    sigma = max(0.8, float(np.linalg.norm(pts[33] - pts[263])) / 20.0)
    h, w = rgb.shape[:2]
    pad = int(3 * sigma) + 2
    x0, y0 = (max(0, int(np.floor(v)) - pad) for v in pts.min(0))
    x1, y1 = (int(np.ceil(v)) + pad for v in pts.max(0))
    x1, y1 = min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))
    crop = rgb[y0:y1, x0:x1]
    if not crop.size:
        return np.zeros(468, np.float32)
    f = max(1.0, sigma / 3.0)
    small = (max(1, round((x1 - x0) / f)), max(1, round((y1 - y0) / f)))
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)  # the same luma weights
    if f > 1.0:
        grey = cv2.resize(grey, small, interpolation=cv2.INTER_AREA)
    luma = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), sigma / f)
    mx = ((pts[:, 0] - x0 + 0.5) * small[0] / (x1 - x0) - 0.5).astype(np.float32)[None, :]
    my = ((pts[:, 1] - y0 + 0.5) * small[1] / (y1 - y0) - 0.5).astype(np.float32)[None, :]
    return cv2.remap(luma, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()


def _times(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``m @ v`` without BLAS: these products are tiny, and in video, beside the face-mesh thread, a
    threaded BLAS call waits for its threads several times longer than it computes."""
    return np.einsum("ni,i->n", m, v)


@dataclass(frozen=True)
class Lighting:
    """A face's light: the spherical-harmonic coefficients (9) fitted to its skin's lightness."""

    coeffs: np.ndarray

    def shading(self, normals: np.ndarray) -> np.ndarray:
        return _times(sh_basis(normals), self.coeffs)


def fit_lighting(
    lightness: np.ndarray, normals: np.ndarray, skin: np.ndarray, exclude: np.ndarray | None = None
) -> Lighting | None:
    """The light that best explains ``lightness`` at the ``skin`` vertices facing the camera (robust:
    three rounds of least squares, each down-weighting vertices far off the last fit — shine, shadows of
    things in front, stray hair), or None when too few vertices are usable. ``exclude``: vertices to
    leave out (hidden by an occluder)."""
    sel = skin & (-normals[:, 2] > 0.2)
    if exclude is not None:
        sel &= ~exclude
    if int(sel.sum()) < MIN_VERTICES:
        return None
    b, y = sh_basis(normals[sel]), lightness[sel].astype(np.float64)
    reg = RIDGE * len(y) * np.eye(b.shape[1])
    reg[0, 0] = 0.0
    w = np.ones(len(y))
    for _ in range(3):
        bw = b * w[:, None]
        # cv2's solver: numpy's LAPACK waits for its thread pool several times longer than it computes
        gram, rhs = np.einsum("ni,nj->ij", bw, b) + reg, np.einsum("ni,n->i", bw, y)
        c = cv2.solve(gram, rhs, flags=cv2.DECOMP_CHOLESKY)[1].ravel()
        r = np.abs(y - _times(b, c))
        spread = 1.4826 * float(np.median(r)) + 1e-3
        w = 1.0 / np.maximum(1.0, r / (2.5 * spread))
    return Lighting(c)


def face_lighting(
    rgb: np.ndarray, mesh: np.ndarray, triangles: np.ndarray, skin: np.ndarray,
    exclude: np.ndarray | None = None,
) -> tuple[Lighting | None, np.ndarray]:  # fmt: skip
    """A face's light in ``rgb`` (:func:`fit_lighting` of its :func:`vertex_lightness`; None where it
    cannot be estimated) and the mesh's vertex normals it was fitted on."""
    normals = vertex_normals(mesh, triangles)
    return fit_lighting(vertex_lightness(rgb, mesh), normals, skin, exclude), normals


def vertex_ratio(
    target_light: Lighting,
    result_normals: np.ndarray,
    source_light: Lighting,
    source_normals: np.ndarray,
    skin: np.ndarray,
    strength: float = 1.0,
) -> np.ndarray:
    """Per vertex, the target's light on the swapped face's normal over the source's light where its
    texel was photographed, each relative to its median over the skin (the overall level is the colour
    correction's), within :data:`RATIO_RANGE`, raised to ``strength`` (0: no change)."""
    out = []
    for light, n in ((target_light, result_normals), (source_light, source_normals)):
        s = light.shading(n)
        ref = max(float(np.median(s[skin])), 1e-3)
        out.append(np.maximum(s / ref, 0.25))
    ratio = np.clip(out[0] / out[1], *RATIO_RANGE)
    return np.power(ratio, strength) if strength != 1.0 else ratio


def ratio_canvas(
    points: np.ndarray, triangles: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A rasterisation of the mesh (``points``: its 468 vertices in canvas pixels, x, y, z) for
    :func:`ratio_image` where the warp's own is not at hand: at most :data:`RATIO_GRID` px on a side
    (the light is smooth). Returns the triangle ids and the points on that canvas."""
    from .mesh3d import rasterise_triangles

    w, h = size
    k = min(1.0, RATIO_GRID / max(w, h))
    small = (max(4, round(w * k)), max(4, round(h * k)))
    pts = (points[:468, :2] + 0.5) * k - 0.5
    order = np.argsort(-points[:468, 2][triangles].mean(1))
    return rasterise_triangles(pts, triangles, order, small, outline=pts[idx(FACE_OVAL)]), pts


def ratio_image(
    ratio: np.ndarray,
    ids: np.ndarray,
    points: np.ndarray,
    triangles: np.ndarray,
    size: tuple[int, int],
) -> np.ndarray:
    """The per-vertex ``ratio`` (468) interpolated linearly over the ``triangles`` on the canvas that
    :func:`~.mesh3d.rasterise_triangles` made (``ids``, the mesh's ``points`` on it; vertices past the 468,
    the irises, take the mean of their eye's ring), brought up bilinearly to ``size`` (w, h), float32.
    Outside the face the nearest inside value continues, so the upsampling does not pull the face's rim
    towards 1. (Spreading the vertices' values with a blur instead is softer: same-person SSIM +0.020
    against +0.023 on 100 pairs of ``celeba_swap_v1``.)"""
    from .mesh3d import affine_maps

    w, h = size
    values = np.ones((len(points), 2))
    values[:, 1] = 0.0
    values[:468, 0] = ratio
    for ring, iris in ((EYE_IMAGE_LEFT, IRIS_IMAGE_LEFT), (EYE_IMAGE_RIGHT, IRIS_IMAGE_RIGHT)):
        at = idx(iris)
        values[at[at < len(points)], 0] = float(ratio[idx(ring)].mean())
    # every step-th pixel of the canvas is plenty (the light is smooth); the points are moved onto that
    # coarser grid with them, so the interpolation stays exact at the pixels it keeps
    step = max(1, round(max(ids.shape) / RATIO_GRID))
    off = step // 2
    sub = ids[off::step, off::step]
    r, _, cover = affine_maps(sub, (points - off) / step, values, triangles)  # within each triangle's corners
    if not cover.any():
        return np.ones((h, w), np.float32)
    if not cover.all():  # normalised blur of the inside carried outward, used only outside
        sigma = max(1.0, max(sub.shape) / 16.0)
        spread = cv2.GaussianBlur(np.where(cover, r, 0).astype(np.float32), (0, 0), sigma)
        weight = cv2.GaussianBlur(cover.astype(np.float32), (0, 0), sigma)
        r = np.where(cover, r, np.where(weight > 1e-3, spread / np.maximum(weight, 1e-3), 1.0))
    r = r.astype(np.float32)
    return r if r.shape == (h, w) else cv2.resize(r, size, interpolation=cv2.INTER_LINEAR)

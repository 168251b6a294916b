"""Metrics of one output: SSIM, PSNR, Fréchet distance, retrieval rank, pose and expression error,
box overlap, and the summaries the aggregates are made of (definitions in :mod:`masquerade.evaluation`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ..analysis.landmarks import MESH_TO_68
from ..face import Face
from ..identity.encoder import euclidean_distance

PSNR_CAP = 100.0  # dB stored for identical images (PSNR is infinite there)
OUTPUT_IOU = 0.3  # minimum box overlap between the output face and the target face
FACE_BOX_MARGIN = 0.10  # the SSIM/PSNR face box is the target face box enlarged by this fraction
# 68-point regions whose shape carries the expression: brows, eyes, outer+inner lips
EXPRESSION_REGIONS: tuple[tuple[int, int], ...] = ((17, 22), (22, 27), (36, 42), (42, 48), (48, 68))


def _luma(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, np.float64)
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] >= 3:
        return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    if a.ndim == 3 and a.shape[2] == 1:
        return a[..., 0]
    raise ValueError(f"expected an H×W or H×W×3 image, got shape {a.shape}")


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5, win: int = 11) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) of two images' luma.

    Gaussian-weighted local statistics (``win``×``win`` window, ``sigma``), population variances,
    C1 = (0.01·L)², C2 = (0.03·L)²; the map is averaged without the ``win // 2`` border where the
    window would leave the image. Colour images are reduced to BT.601 luma first. 1.0 for identical
    images; lower as structure, contrast or brightness differ.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    x, y = _luma(a), _luma(b)
    if min(x.shape) < win:
        raise ValueError(f"images of {x.shape[1]}×{x.shape[0]} pixels are smaller than the {win}-px window")

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (win, win), sigma, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    p = win // 2
    return float(m[p:-p, p:-p].mean())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (``inf`` for identical images)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mse))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    ``|μa − μb|² + tr(Σa + Σb − 2·sqrtm(Σa·Σb))`` with unbiased covariances, as in FID; a tiny ridge
    is added when the product is singular, and the imaginary round-off of ``sqrtm`` is dropped.
    """
    from scipy import linalg

    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be n×d with equal d, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each feature set needs at least two samples")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(len(sa))
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    d = float(diff @ diff + np.trace(sa) + np.trace(sb) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def retrieval_rank(query: np.ndarray, gallery: Mapping[str, Sequence[np.ndarray]], true_id: str) -> int:
    """1-based rank of ``true_id`` when the gallery identities are sorted by euclidean distance to
    ``query`` (an identity's distance is the minimum over its embeddings). Identities exactly as far
    as the true one do not push it down. Raises ``KeyError`` if ``true_id`` is not in the gallery."""
    dist = {k: min(euclidean_distance(query, e) for e in v) for k, v in gallery.items() if len(v)}
    own = dist[true_id]
    return 1 + sum(d < own for k, d in dist.items() if k != true_id)


def pose_error(out: Face, target: Face) -> np.ndarray | None:
    """``|Δyaw|, |Δpitch|, |Δroll|`` in degrees, wrapped to [0, 180] (None without a pose)."""
    if out.pose is None or target.pose is None:
        return None
    d = out.pose.as_array() - target.pose.as_array()
    return np.abs((d + 180.0) % 360.0 - 180.0)


def expression_error(out: Face, target: Face, canonical: Any) -> float | None:
    """Mean distance (inter-ocular distances) between the region-centred, pose-normalised brows, eyes
    and mouth of two faces (see :mod:`masquerade.evaluation`); None without meshes."""
    if out.mesh is None or target.mesh is None:
        return None
    idx = np.asarray(MESH_TO_68)
    pts = []
    for mesh in (out.mesh, target.mesh):
        n = canonical.normalised(mesh)
        iod = float(np.linalg.norm(n[263, :2] - n[33, :2])) or 1.0
        pts.append(n[idx, :2] / iod)
    dists = []
    for lo, hi in EXPRESSION_REGIONS:
        a, b = pts[0][lo:hi], pts[1][lo:hi]
        dists.append(np.linalg.norm((a - a.mean(0)) - (b - b.mean(0)), axis=1))
    return float(np.concatenate(dists).mean())


def expression_measures_error(out: Face, target: Face) -> float | None:
    keys = sorted(set(out.expression) & set(target.expression))
    if not keys:
        return None
    return float(np.mean([abs(out.expression[k] - target.expression[k]) for k in keys]))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def face_crop_box(
    box: np.ndarray, shape: tuple[int, ...], margin: float = FACE_BOX_MARGIN
) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1) / 2, margin * (y2 - y1) / 2
    h, w = shape[:2]
    xa, ya = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    xb, yb = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    return slice(ya, yb), slice(xa, xb)


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    """``n``, ``mean``, ``median``, ``std`` of the values that exist."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"n": 0, "mean": None, "median": None, "std": None}
    return {"n": len(v), "mean": float(np.mean(v)), "median": float(np.median(v)), "std": float(np.std(v))}


# ---------------------------------------------------------------------------------------- realism
# eye corners (outer, inner), lids (upper, lower) and iris centre of the mediapipe mesh, per eye
GAZE_EYES: tuple[tuple[int, int, int, int, int], ...] = ((33, 133, 159, 145, 468), (263, 362, 386, 374, 473))
SHARPNESS_SIGMA = 1.5  # high frequencies: luma minus its Gaussian blur with this sigma (pixels)


def gaze_vector(mesh: np.ndarray) -> np.ndarray | None:
    """Per eye, where the iris centre sits in the eye: (along the corner axis from the outer corner, 0..1;
    across it from the corners' midpoint, down positive), both in eye widths; 2×2, None without irises."""
    if mesh is None or len(mesh) < 478:
        return None
    out = []
    for outer, inner, _, _, iris in GAZE_EYES:
        a, b, p = mesh[outer, :2], mesh[inner, :2], mesh[iris, :2]
        axis = b - a
        width2 = float(axis @ axis)
        if width2 <= 1e-9:
            return None
        normal = np.array([-axis[1], axis[0]]) / np.sqrt(width2)
        if normal[1] < 0:  # pointing down the image
            normal = -normal
        out.append([float((p - a) @ axis) / width2, float((p - (a + b) / 2) @ normal) / np.sqrt(width2)])
    return np.array(out)


def gaze_error(out: Face, target: Face) -> float | None:
    """Mean distance (eye widths) between where the irises sit in the eyes of output and target, over both
    eyes (:func:`gaze_vector`); None without iris landmarks."""
    if out.mesh is None or target.mesh is None:
        return None
    a, b = gaze_vector(out.mesh), gaze_vector(target.mesh)
    if a is None or b is None:
        return None
    return float(np.linalg.norm(a - b, axis=1).mean())


def face_region(shape: tuple[int, ...], face: Face) -> np.ndarray:
    """The face's oval from its mesh (or its box without one), as a bool mask of an image of ``shape``."""
    from ..analysis.regions import FACE_OVAL, idx

    h, w = shape[:2]
    m = np.zeros((h, w), np.uint8)
    if face.mesh is not None:
        pts = face.mesh[idx(FACE_OVAL), :2]
    else:
        x1, y1, x2, y2 = face.box
        pts = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    return m > 0


def _bbox(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (
        slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
        slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)),
    )


def masked_ssim(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray, sigma: float = 1.5, win: int = 11
) -> float | None:
    """SSIM (as :func:`ssim`: luma, Gaussian window) averaged over the pixels of ``mask`` only."""
    if not mask.any():
        return None
    ys, xs = _bbox(mask, win)
    x, y, m = _luma(a[ys, xs]), _luma(b[ys, xs]), mask[ys, xs]
    if min(x.shape) < win:
        return None

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (win, win), sigma, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s[m].mean())


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR (dB, 8-bit peak, all channels) over the pixels of ``mask``; capped at :data:`PSNR_CAP`."""
    if not mask.any():
        return None
    d = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(d * d))
    return PSNR_CAP if mse == 0.0 else min(PSNR_CAP, float(10.0 * np.log10(255.0**2 / mse)))


def colour_error(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean CIE76 ΔE (Lab, L in 0..100) between two RGB images over ``mask``."""
    if not mask.any():
        return None
    la = cv2.cvtColor(a.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[mask]
    lb = cv2.cvtColor(b.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[mask]
    return float(np.linalg.norm(la - lb, axis=1).mean())


def high_frequency_energy(img: np.ndarray, mask: np.ndarray) -> float | None:
    """RMS of the luma's high frequencies (luma minus its σ = :data:`SHARPNESS_SIGMA` blur) over ``mask``."""
    if not mask.any():
        return None
    ys, xs = _bbox(mask, int(4 * SHARPNESS_SIGMA) + 1)
    y = _luma(img[ys, xs])
    hf = y - cv2.GaussianBlur(y, (0, 0), SHARPNESS_SIGMA, borderType=cv2.BORDER_REFLECT)
    return float(np.sqrt(np.mean(hf[mask[ys, xs]] ** 2)))


def sharpness_ratio(out: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float | None:
    """High-frequency energy of ``out`` over that of ``target`` inside ``mask``: < 1 is blurrier than the
    real photo (a blurry swap can score well on PSNR and badly here), > 1 sharper or noisier."""
    eo, et = high_frequency_energy(out, mask), high_frequency_energy(target, mask)
    if eo is None or et is None or et <= 1e-9:
        return None
    return eo / et


def occluder_survival(
    out: np.ndarray, occluded_target: np.ndarray, painted: np.ndarray, mask: np.ndarray
) -> float | None:
    """How much of an occluder in front of the target survives a swap, 0..1: 1 − (error of ``out`` vs the
    occluded target inside ``mask``) / (the same error of ``painted``, the swap of the clean target, i.e.
    the occluder fully painted over). 1: kept pixel for pixel; 0: painted over as if absent. None where
    the clean swap does not change those pixels (nothing to survive)."""
    if not mask.any():
        return None
    t = occluded_target[mask].astype(np.float64)
    e_out = float(np.abs(out[mask].astype(np.float64) - t).mean())
    e_ref = float(np.abs(painted[mask].astype(np.float64) - t).mean())
    if e_ref < 1.0:
        return None
    return float(np.clip(1.0 - e_out / e_ref, 0.0, 1.0))


def mean_abs_difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean absolute difference (8-bit grey levels, all channels) over ``mask``."""
    if not mask.any():
        return None
    return float(np.abs(a[mask].astype(np.float64) - b[mask].astype(np.float64)).mean())

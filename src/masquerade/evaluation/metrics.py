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

"""Similarity alignment to canonical 5-point templates and exact inverse paste-back."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

TemplateName = Literal["arcface", "arcface_v2", "ffhq", "refine"]

# Normalised (0..1) 5-point templates: eye (image-left), eye (image-right), nose tip, mouth corners.
_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
_FFHQ = np.array(
    [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
     [0.39308822, 0.72541100], [0.61150205, 0.72490465]]
)  # fmt: skip
TEMPLATES: dict[str, np.ndarray] = {
    # insightface ArcFace 112×112 template
    "arcface": _ARCFACE_112 / 112.0,
    # ArcFace template as used on 128-px crops by one-shot swappers (8-px horizontal shift)
    "arcface_v2": (_ARCFACE_112 + np.array([8.0, 0.0])) / 128.0,
    # FFHQ-style looser crop with the whole face, forehead and chin
    "ffhq": _FFHQ,
    # the refiner's crop: FFHQ zoomed 1.15× about the face centre (the whole face oval and a margin)
    "refine": 0.5 + (_FFHQ - np.array([0.5, 0.57])) * 1.15,
}


def template(name: TemplateName | str, size: int) -> np.ndarray:
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; choose from {', '.join(TEMPLATES)}")
    return TEMPLATES[name] * float(size)


def umeyama(
    src: np.ndarray, dst: np.ndarray, with_scale: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s·R·src + t for N×D point sets (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1, -1] = -1
    r = u @ sign @ vt
    var = (xs**2).sum() / len(src)
    s = float(np.trace(np.diag(d) @ sign) / var) if with_scale and var > 0 else 1.0
    t = mu_d - s * r @ mu_s
    return s, r, t


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 similarity matrix mapping 2-D ``src`` points onto ``dst``."""
    s, r, t = umeyama(src, dst)
    return np.hstack([s * r, t[:, None]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def align_face(
    rgb: np.ndarray, landmarks_5: np.ndarray, size: int = 112, template_name: TemplateName | str = "arcface"
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face to a ``size``×``size`` crop; returns (crop, 2×3 matrix image→crop)."""
    m = similarity_matrix(landmarks_5, template(template_name, size))
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def warp_back(
    crop: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """Inverse of :func:`align_face` without pasting: warp ``crop`` (and ``mask``, crop-space, 0..1
    float or 0..255; default the whole crop) back into an image of ``shape``. Only the bounding region of
    the warped crop is computed; returns (warped crop, float32 coverage in 0..1 that is 0 outside the
    crop, x0, y0) over image pixels ``[y0:y0+h, x0:x0+w]``, or None when the crop falls outside."""
    h, w = shape[:2]
    inv = invert_affine(matrix)
    if mask is None:
        mask = np.ones(crop.shape[:2], np.float32)
    mask = mask.astype(np.float32)
    if mask.max() > 1.0:
        mask /= 255.0
    corners = np.array(
        [[0, 0], [crop.shape[1], 0], [0, crop.shape[0]], [crop.shape[1], crop.shape[0]]], float
    )
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.clip(np.floor(pts.min(0)).astype(int) - 1, 0, [w, h])
    x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int) + 1, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    shift = inv.copy()
    shift[:, 2] -= [x0, y0]
    size = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpAffine(crop, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(mask, shift, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    return warped, a, int(x0), int(y0)


def paste_back(
    target: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Inverse of :func:`align_face`: warp ``crop`` back into ``target`` under ``mask`` (crop-space,
    0..1 float or 0..255). Only pixels the warped mask covers change; the rest stay bit-identical."""
    back = warp_back(crop, matrix, target.shape, mask)
    if back is None:
        return target.copy()
    warped, alpha, x0, y0 = back
    a = alpha[..., None]
    h, w = alpha.shape
    out = target.copy()
    region = out[y0 : y0 + h, x0 : x0 + w]
    blended = region.astype(np.float32) * (1.0 - a) + warped.astype(np.float32) * a
    sel = alpha > 0
    region[sel] = np.clip(np.rint(blended[sel]), 0, 255).astype(np.uint8)
    return out

"""Region masks from the face mesh: whole face, or skin only (target eyes and mouth interior kept)."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from ..analysis.regions import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, INNER_MOUTH, OUTER_LIPS, idx

MaskKind = Literal["face", "skin"]
MouthKeep = Literal["inner", "lips"] | None
MASK_KINDS: tuple[str, ...] = ("face", "skin")


def _poly(mask: np.ndarray, pts: np.ndarray, value: float) -> None:
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], value, lineType=cv2.LINE_AA, shift=4)


def face_size(mesh: np.ndarray) -> float:
    lo, hi = mesh[:468, :2].min(0), mesh[:468, :2].max(0)
    return float(np.sqrt(np.prod(np.maximum(hi - lo, 1.0))))


def eye_mask(
    shape: tuple[int, int], mesh: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Float mask in [0, 1] of ``shape`` (h, w): the eye openings (between the lids) of ``mesh``, edges
    anti-aliased; ``offset`` is subtracted from the mesh coordinates."""
    m = np.zeros(shape, np.float32)
    off = np.asarray(offset, np.float64)
    for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
        _poly(m, mesh[idx(loop), :2] - off, 1.0)
    return m


def region_mask(
    shape: tuple[int, int],
    face_mesh: np.ndarray,
    kind: MaskKind | str = "face",
    hole_mesh: np.ndarray | None = None,
    erode: float = 0.03,
    blur: float = 0.06,
    offset: tuple[float, float] = (0.0, 0.0),
    keep_mouth: MouthKeep = None,
) -> np.ndarray:
    """Float mask in [0, 1] of ``shape`` (h, w).

    ``face_mesh`` gives the outline; for ``skin``, the eyes and inner mouth of ``hole_mesh`` (default:
    the same mesh) are cut out. ``erode`` and ``blur`` are fractions of the face size; ``offset`` is
    subtracted from the mesh coordinates (to draw in a region of interest). ``keep_mouth`` cuts, in ``face``
    mode too, the ``inner`` mouth of ``face_mesh`` (an open target mouth keeps its teeth) or the target's
    whole ``lips`` (a source with an open mouth cannot close it convincingly).
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask {kind!r}; choose from {', '.join(MASK_KINDS)}")
    off = np.asarray(offset, np.float64)
    # drawn and eroded in 8 bits (OpenCV's morphology is several times faster there), blurred in float
    m: np.ndarray = np.zeros(shape, np.uint8)
    _poly(m, face_mesh[idx(FACE_OVAL), :2] - off, 255)
    size = face_size(face_mesh)
    cuts: list[np.ndarray] = []
    if kind == "skin":
        holes = face_mesh if hole_mesh is None else hole_mesh
        cuts = [holes[idx(loop), :2] for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, INNER_MOUTH)]
    elif keep_mouth == "inner":
        cuts = [face_mesh[idx(INNER_MOUTH), :2]]
    elif keep_mouth == "lips":
        cuts = [(face_mesh if hole_mesh is None else hole_mesh)[idx(OUTER_LIPS), :2]]
    if cuts:
        h = np.zeros(shape, np.uint8)
        for pts in cuts:
            _poly(h, pts - off, 255)
        grow = max(1, int(round(size * 0.015)))
        h = cv2.dilate(h, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        m = np.minimum(m, 255 - h)
    e = int(round(size * erode))
    if e > 0:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1)))
    sigma = size * blur
    if sigma > 6.0:
        # a wide blur loses little when done at reduced resolution (≥ 6 px of blur remain there, so
        # resampling adds about a sixth of a sigma) and costs far less
        k = 6.0 / sigma
        small = (max(1, round(shape[1] * k)), max(1, round(shape[0] * k)))
        m = cv2.resize(m, small, interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)
        m = cv2.GaussianBlur(m, (0, 0), 6.0)
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        m = m.astype(np.float32) * np.float32(1 / 255)
        if sigma > 0.3:
            m = cv2.GaussianBlur(m, (0, 0), sigma)
    if sigma > 0.3:
        # keep the blur inside the eroded outline so nothing bleeds past the face
        m = np.clip((m - 0.5) * 2.0, 0.0, 1.0)
    return m

"""A real photo of ``celeba_occlusion_v1`` with its hand-drawn occluder mask, synthetic occluders pasted
over a target, and a lock of hair painted down the side of a face (tests of occlusion handling)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image
from masquerade.analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    idx,
)
from masquerade.evaluation.metrics import face_region
from masquerade.face import Face
from masquerade.occlusion.hair import HAIRLINE_POINTS
from masquerade.occlusion.handling import Occlusion
from masquerade.occlusion.synthetic import make_occluder

# hands and bars pasted over a target's face by the survival tests
PASTED = (("hand", 3), ("hand", 11), ("bar", 3), ("bar", 5))


def real_occluder(celeba: Path, photo: str) -> tuple[np.ndarray, Face, np.ndarray]:
    """(RGB, its largest face, the hand-drawn occluder mask inside the face region) of ``photo``."""
    doc = json.loads((resources.files("masquerade") / "data/benchmarks/celeba_occlusion_v1.json").read_text())
    (entry,) = [e for e in doc["faces"] if e["photo"] == photo]
    rgb = load_image(celeba / "images" / photo).rgb
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(rgb)[0]
    truth = np.zeros(rgb.shape[:2], np.uint8)
    for poly in entry["polygons"]:
        cv2.fillPoly(truth, [np.round(np.asarray(poly)).astype(np.int32)], 1)
    return rgb, face, (truth > 0) & face_region(rgb.shape, face)


def found_and_kept(
    rgb: np.ndarray, face: Face, truth: np.ndarray, source: np.ndarray, **finders: bool
) -> tuple[float, float]:
    """With occlusion handling as ``finders`` ask (``hands``, ``hair``, ``glasses``): the IoU of the target
    mask with the occluder ``truth``, and the share of the occluder's pixels (less a 1-px rim) that a swap
    of ``source`` onto ``rgb`` leaves within 8 grey levels of the photo."""
    occ = Occlusion(**finders)  # type: ignore[arg-type]
    found = occ.target_mask(rgb, face).full(rgb.shape) > 0.5
    occ.close()
    iou = float((found & truth).sum() / max(1, (found | truth).sum()))
    with FaceSwapper(SwapOptions(**{f"occlusion_{k}": v for k, v in finders.items()})) as fs:  # type: ignore[arg-type]
        return iou, _kept(fs.swap(source, rgb)[0], rgb, truth)


def kept_without_occlusion(rgb: np.ndarray, truth: np.ndarray, source: np.ndarray) -> float:
    """:func:`found_and_kept`'s share of the occluder kept, for a swap with occlusion handling off."""
    with FaceSwapper(SwapOptions(occlusion=False)) as fs:
        return _kept(fs.swap(source, rgb)[0], rgb, truth)


def _kept(out: np.ndarray, rgb: np.ndarray, truth: np.ndarray) -> float:
    inner = cv2.erode(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return float((np.abs(out[inner].astype(int) - rgb[inner].astype(int)).max(-1) <= 8).mean())


def pasted_kept(swap: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, face: Face) -> list[float]:
    """For each occluder of :data:`PASTED` pasted over ``face`` in ``rgb``: the share of its pixels (in the
    face region) that ``swap`` of the occluded photo leaves within 8 grey levels of it."""
    shares = []
    for kind, seed in PASTED:
        layer = make_occluder(kind, seed, face.landmarks_68, rgb.shape)
        target = layer.over(rgb)
        inside = layer.mask & face_region(rgb.shape, face)
        diff = np.abs(swap(target)[inside].astype(int) - target[inside].astype(int)).max(-1)
        shares.append(float((diff <= 8).mean()))
    return shares


def in_crop(mask: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """A photo-sized bool ``mask`` in the size×size crop of the image → crop matrix ``m``."""
    return cv2.warpAffine(mask.astype(np.float32), m, (size, size), flags=cv2.INTER_AREA) > 0.5


def side_lock(rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` with a lock of the face's own hair (its colour: the median above the top of the oval) painted
    down the image-left side of the face, from the eyebrows to the mouth's corners, over the oval's edge
    (a tenth of the face's width inside it, as far again outside), and the lock's mask."""
    mesh = face.mesh
    assert mesh is not None
    oval = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    width = float(np.ptp(mesh[idx(FACE_OVAL), 0]))
    g = int(round(0.1 * width))
    kernel = np.ones((2 * g + 1, 2 * g + 1), np.uint8)
    ring = (cv2.dilate(oval, kernel) > 0) & (cv2.erode(oval, kernel) == 0)
    top = mesh[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].min()
    low = mesh[[61, 291], 1].max()
    ys, xs = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    lock = ring & (ys > top) & (ys < low) & (xs < mesh[:468, 0].mean())
    height = float(np.ptp(mesh[:468, 1]))
    above = np.round(mesh[list(HAIRLINE_POINTS), :2] - (0.0, 0.08 * height)).astype(int)
    hair = np.median(rgb[above[:, 1], above[:, 0]], 0)
    out = rgb.copy()
    noise = np.random.default_rng(1).normal(0, 6, rgb.shape)
    out[lock] = np.clip(hair + noise[lock], 0, 255).astype(np.uint8)
    return out, lock & (oval > 0)


def painted_fringe(rgb: np.ndarray, face: Face, long: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` with a dark brown fringe painted over the forehead (the oval above the eyebrows, less a
    margin; ``long``: down over the eyebrows to just above the eyes), and the fringe's mask."""
    mesh = face.mesh
    assert mesh is not None
    oval = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    brows = mesh[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].min()
    top = mesh[idx(FACE_OVAL), 1].min()
    eyes_top = float(mesh[list(EYE_IMAGE_LEFT) + list(EYE_IMAGE_RIGHT), 1].min())
    end = eyes_top - 0.08 * np.ptp(mesh[:468, 1]) if long else top + 0.8 * (brows - top)
    fringe = (oval > 0) & (np.arange(rgb.shape[0])[:, None] < end)
    out = rgb.copy()
    noise = np.random.default_rng(0).normal(0, 6, rgb.shape)
    out[fringe] = np.clip(np.array([62, 40, 28]) + noise[fringe], 0, 255).astype(np.uint8)
    return out, fringe

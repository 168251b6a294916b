"""A real photo of ``celeba_occlusion_v1`` with its hand-drawn occluder mask, and synthetic occluders pasted
over a target (tests of occlusion handling)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image
from masquerade.evaluation.metrics import face_region
from masquerade.face import Face
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

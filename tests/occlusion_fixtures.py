"""A real photo of ``celeba_occlusion_v1`` with its hand-drawn occluder mask (tests of occlusion handling)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from masquerade import FaceAnalyzer, load_image
from masquerade.evaluation.metrics import face_region
from masquerade.face import Face


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

"""Identity embeddings with dlib's ResNet (128-d) from face-recognition-models, and comparisons.

The face chip is aligned by dlib's own 5-point predictor run inside the detected face box, exactly as
in dlib's published LFW protocol (99.38 %); two embeddings of one person are usually within euclidean
distance 0.6.
"""

from __future__ import annotations

import numpy as np

from .models import get_model

SAME_PERSON_DISTANCE = 0.6


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else 0.0


def euclidean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()))


def dlib_rect_from_landmarks(lm68: np.ndarray) -> tuple[int, int, int, int]:
    """A box shaped like dlib's HOG detector output, from 68 landmarks (brows to chin, ear to ear)."""
    x1, y1 = lm68[:, 0].min(), lm68[17:27, 1].min()
    x2, y2 = lm68[:, 0].max(), lm68[:, 1].max()
    w, h = x2 - x1, y2 - y1
    return int(x1 + 0.02 * w), int(y1 - 0.05 * h), int(x2 - 0.02 * w), int(y2 + 0.02 * h)


class IdentityEncoder:
    """dlib ResNet face descriptor (128-d, unit-scale euclidean space)."""

    dim = 128

    def __init__(self, num_jitters: int = 0) -> None:
        import dlib

        self._dlib = dlib
        self.num_jitters = num_jitters
        self._sp5 = dlib.shape_predictor(str(get_model("dlib-5").path()))
        self._net = dlib.face_recognition_model_v1(str(get_model("dlib-resnet-128").path()))

    def close(self) -> None:
        pass

    def chip(self, rgb: np.ndarray, lm68: np.ndarray, size: int = 150) -> np.ndarray:
        """The 150×150 aligned chip dlib's network sees."""
        shape = self._shape(rgb, lm68)
        return np.asarray(self._dlib.get_face_chip(rgb, shape, size=size, padding=0.25))

    def _shape(self, rgb: np.ndarray, lm68: np.ndarray) -> object:
        x1, y1, x2, y2 = dlib_rect_from_landmarks(lm68)
        return self._sp5(rgb, self._dlib.rectangle(x1, y1, x2, y2))

    def embed(self, rgb: np.ndarray, lm68: np.ndarray) -> np.ndarray:
        shape = self._shape(rgb, lm68)
        vec = self._net.compute_face_descriptor(np.ascontiguousarray(rgb), shape, self.num_jitters)
        return np.asarray(vec, dtype=np.float32)

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        """Embedding of an already aligned 150×150 RGB chip."""
        vec = self._net.compute_face_descriptor(np.ascontiguousarray(chip), self.num_jitters)
        return np.asarray(vec, dtype=np.float32)

"""Identity embeddings with dlib's ResNet (128-d) from face-recognition-models, and comparisons.

The face chip is aligned by dlib's own 5-point predictor run inside the detected face box, exactly as
in dlib's published LFW protocol (99.38 %); two embeddings of one person are usually within euclidean
distance 0.6.

Two backends compute the same descriptor from the same chip:

* ``"onnx"`` (default): dlib's network rebuilt as an ONNX graph from the weights in dlib's ``.dat`` file
  (:mod:`masquerade.identity.dlibnet`, :mod:`masquerade.identity.onnx_net`) and run by onnxruntime — about 20×
  faster than dlib on a 2-core CPU (``benchmarks/bench_identity.py``), batchable, and equal to dlib's
  descriptors to ~1e-6;
* ``"dlib"``: ``dlib.face_recognition_model_v1.compute_face_descriptor``.

dlib is used by both for the 5-point alignment (``shape_predictor`` + ``get_face_chip``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from ..models import get_model

log = logging.getLogger(__name__)

SAME_PERSON_DISTANCE = 0.6
CHIP_SIZE = 150
CHIP_PADDING = 0.25

Backend = Literal["onnx", "dlib"]
BACKENDS: tuple[str, ...] = ("onnx", "dlib")


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


def jitter_chip(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly jittered copy of a square chip, drawn like ``dlib::jitter_image``.

    Up to ±2 % shift, a 0.97–1.0 zoom, ±3° rotation and a 50 % left-right mirror (same ranges as dlib;
    the random numbers, and OpenCV's bilinear sampling, differ from dlib's).
    """
    n = chip.shape[0]
    side = n - 6  # dlib: shrink_rect(get_rect(img), 3)
    shift = np.rint(rng.uniform(-0.02, 0.02, 2) * side)
    box = int(side / rng.uniform(0.97, 0.99999))
    angle = rng.uniform(-3.0, 3.0)
    centre = ((n - 1) / 2 + shift[0], (n - 1) / 2 + shift[1])
    m = cv2.getRotationMatrix2D(centre, angle, n / box)
    m[:, 2] += (n - 1) / 2 - np.array(centre)  # the crop's centre goes to the chip's centre
    out = cv2.warpAffine(chip, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out[:, ::-1].copy() if rng.random() > 0.5 else out


def chip_details_matrix(details: object) -> np.ndarray:
    """dlib's ``get_mapping_to_chip`` for a ``dlib.chip_details``: the rectangle rotated by ``angle``
    about its centre, its top-left, top-right and bottom-right corners onto the chip's; a 2×3 matrix
    from image pixels to chip pixels (pixel centres at integers, as in OpenCV)."""
    r = details.rect  # type: ignore[attr-defined]
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    c, s = np.cos(details.angle), np.sin(details.angle)  # type: ignore[attr-defined]
    rot = np.array([[c, -s], [s, c]])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]], np.float64)
    src = (corners - centre) @ rot.T + centre
    cols, rows = details.cols - 1, details.rows - 1  # type: ignore[attr-defined]
    dst = np.array([[0.0, 0.0], [cols, 0.0], [cols, rows]])
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def _as_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:  # pixel values 0..255 in another dtype
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


class IdentityEncoder:
    """dlib ResNet face descriptor (128-d, unit-scale euclidean space).

    ``backend="onnx"`` (default) runs dlib's network with onnxruntime; ``"dlib"`` runs dlib itself. With
    ``num_jitters > 1`` each descriptor is the mean over that many randomly jittered copies of the chip
    (dlib's semantics; the onnx backend draws its own jitters, see :func:`jitter_chip`, from a generator
    seeded with ``seed``). ``threads`` sets onnxruntime's intra-op threads (default: the CPU count up
    to 8, or ``$MASQUERADE_THREADS``). Without onnxruntime the encoder falls back to dlib, with a
    warning.
    """

    dim = 128

    def __init__(
        self,
        num_jitters: int = 0,
        backend: Backend = "onnx",
        threads: int | None = None,
        seed: int | None = 0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        import dlib

        self._dlib = dlib
        self.backend = backend
        self.num_jitters = num_jitters
        self._rng = np.random.default_rng(seed)
        self._sp5 = dlib.shape_predictor(str(get_model("dlib-5").path()))
        self._net = None
        self._onnx = None
        if backend == "onnx":
            try:
                from .onnx_net import OnnxFaceEncoder

                self._onnx = OnnxFaceEncoder(threads=threads)
            except ImportError as exc:  # onnxruntime missing: same descriptors from dlib, slower
                log.warning("onnx identity backend unavailable (%s); using dlib's", exc)
                self.backend = "dlib"
        if self.backend == "dlib":
            self._net = dlib.face_recognition_model_v1(str(get_model("dlib-resnet-128").path()))

    def close(self) -> None:
        if self._onnx is not None:
            self._onnx.close()
        self._onnx = self._net = None

    def __enter__(self) -> IdentityEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chip(self, rgb: np.ndarray, lm68: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
        """The 150×150 aligned chip dlib's network sees."""
        shape = self._shape(rgb, lm68)
        return np.asarray(self._dlib.get_face_chip(rgb, shape, size=size, padding=CHIP_PADDING))

    def chip_matrix(self, rgb: np.ndarray, lm68: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
        """The 2×3 matrix from image pixels to the pixels of :meth:`chip` (e.g. to take the chip from a
        generated face differentiably, with a sampling grid)."""
        details = self._dlib.get_face_chip_details(self._shape(rgb, lm68), size, CHIP_PADDING)
        return chip_details_matrix(details)

    def _shape(self, rgb: np.ndarray, lm68: np.ndarray) -> object:
        x1, y1, x2, y2 = dlib_rect_from_landmarks(lm68)
        return self._sp5(rgb, self._dlib.rectangle(x1, y1, x2, y2))

    def embed(self, rgb: np.ndarray, lm68: np.ndarray) -> np.ndarray:
        """Descriptor of the face with 68 landmarks ``lm68`` in the RGB image."""
        if self._net is not None:
            shape = self._shape(rgb, lm68)
            vec = self._net.compute_face_descriptor(np.ascontiguousarray(rgb), shape, self.num_jitters)
            return np.asarray(vec, dtype=np.float32)
        return self.embed_chip(self.chip(rgb, lm68))

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        """Embedding of an already aligned 150×150 RGB chip."""
        if self._net is not None:
            vec = self._net.compute_face_descriptor(_as_uint8(chip), self.num_jitters)
            return np.asarray(vec, dtype=np.float32)
        return self.embed_chips(np.asarray(chip)[None])[0]

    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (N×128 float32) of aligned 150×150 RGB chips: an N×150×150×3 array or a list."""
        arrs = [_as_uint8(c) for c in chips]
        if not arrs:
            return np.zeros((0, self.dim), np.float32)
        if self._net is not None:
            vecs = self._net.compute_face_descriptor(arrs, self.num_jitters)
            return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32)
        assert self._onnx is not None, "encoder is closed"
        if self.num_jitters <= 1:
            return self._onnx.embed_chips(np.stack(arrs))
        k = self.num_jitters
        jittered = np.stack([jitter_chip(c, self._rng) for c in arrs for _ in range(k)])
        return self._onnx.embed_chips(jittered).reshape(len(arrs), k, -1).mean(axis=1)

"""The face-occlusion segmenter: per pixel of a face, "visible face" or "something in front of it".

A small U-Net (``masquerade train segmenter``, :mod:`masquerade.training.segmenter`) over the face's crop
(the ``refine`` template of :mod:`masquerade.analysis.alignment`, ``resolution`` px), trained on faces with
synthetic occluders of known masks (:mod:`.synthetic`). It ships in the package (``data/models/occlusion``:
``model.json`` + ``segmenter.onnx``, sha256-checked; registry name ``masquerade-occlusion``).

:meth:`OcclusionSegmenter.crop_mask` gives the occlusion probability in the crop, :meth:`image_mask` the
same over the image (only inside the face's oval, grown a little), so the swap can keep a target's
fingers, bangs or microphone, and leave out a source's hand or sunglasses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..analysis.alignment import invert_affine, similarity_matrix, template
from ..analysis.regions import FACE_OVAL, idx
from ..errors import ModelError
from ..face import Face

if TYPE_CHECKING:
    from ..compose.composite import BlendMask
    from ..swappers.aligned import ModelInfo

MODEL_FORMAT = "masquerade-occlusion"
MODEL_VERSION = 1
SHIPPED = "masquerade-occlusion"


def crop_matrix(landmarks_5: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 image → crop matrix of a face's crop (the ``refine`` template)."""
    return similarity_matrix(np.asarray(landmarks_5, np.float64), template("refine", size))


def face_crop(rgb: np.ndarray, face: Face, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The size×size crop of ``face`` the segmenter (and the hair finder) look at, and its image → crop
    matrix."""
    m = crop_matrix(face.landmarks_5, size)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE), m


def oval_mask(mesh: np.ndarray, matrix: np.ndarray, size: int, grow: float = 0.0) -> np.ndarray:
    """size×size float32: the face oval of a mesh drawn through ``matrix``, grown by ``grow`` × the crop."""
    pts = mesh[idx(FACE_OVAL), :2] @ matrix[:, :2].T + matrix[:, 2]
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    g = int(round(grow * size))
    if g > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))
    return m.astype(np.float32) / 255.0


def read_segmenter_info(folder: str | os.PathLike[str] | None = None, verify: bool = True) -> ModelInfo:
    """A segmenter model folder's checked ``model.json`` (the shipped one by default, also checked
    against the registry's sha256)."""
    from ..swappers.aligned import read_model_folder

    if folder is None:
        from ..models import get_model

        spec = get_model(SHIPPED)
        info = read_model_folder(
            spec.path().parent, MODEL_FORMAT, "occlusion segmenter", MODEL_VERSION, verify
        )
        if verify and info.sha256 != spec.sha256:
            raise ModelError(f"{info.onnx}: sha256 {info.sha256[:16]}… is not the shipped segmenter's")
        return info
    return read_model_folder(folder, MODEL_FORMAT, "occlusion segmenter", MODEL_VERSION, verify)


class OcclusionSegmenter:
    """Occlusion masks of faces with the segmenter model (the shipped one, or ``model`` DIR)."""

    def __init__(
        self, model: str | os.PathLike[str] | None = None, providers: list[str] | None = None
    ) -> None:
        from ..swappers.aligned import onnx_session

        self.info = read_segmenter_info(model)
        # one thread: a 4-ms inference gains little from two, and in video the other core is decoding
        self.session = onnx_session(self.info.onnx, providers, "the occlusion segmenter", threads=1)
        ins = self.session.get_inputs()
        if len(ins) != 1 or len(self.session.get_outputs()) != 1:
            raise ModelError(f"{self.info.onnx}: expected one input (image) and one output (occlusion)")
        self.input_name = ins[0].name

    @property
    def resolution(self) -> int:
        return int(self.info.resolution)

    @property
    def path(self) -> Path:
        return self.info.onnx

    def crop_mask(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(R×R float32 probability that something is in front of the face, image → crop matrix)."""
        crop, m = face_crop(rgb, face, self.resolution)
        return self.crop_prob(crop, face, m), m

    def crop_prob(self, crop: np.ndarray, face: Face, m: np.ndarray) -> np.ndarray:
        """:meth:`crop_mask`'s probability for the :func:`face_crop` ``crop`` of ``face`` (matrix ``m``)."""
        x = crop.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
        (logit,) = self.session.run(None, {self.input_name: x})
        prob = 1.0 / (1.0 + np.exp(-logit[0, 0].astype(np.float32)))
        if face.mesh is not None:
            prob = prob * oval_mask(face.mesh, m, crop.shape[0], grow=0.03)
        return prob.astype(np.float32)

    def image_mask(self, rgb: np.ndarray, face: Face, prob: np.ndarray | None = None) -> np.ndarray:
        """The occlusion probability over the whole image (float32, zero away from the face)."""
        return self.region_mask(rgb, face, prob).full(rgb.shape)

    def region_mask(
        self, rgb: np.ndarray, face: Face, prob: np.ndarray | None = None, matrix: np.ndarray | None = None
    ) -> BlendMask:
        """The occlusion probability over the crop's footprint in the image (zero outside it): what
        :meth:`image_mask` holds, without a whole-image array per face and frame. ``matrix``: ``prob``'s
        image → crop matrix, when already known."""
        from ..compose.composite import BlendMask

        if prob is None:
            prob, m = self.crop_mask(rgb, face)
        else:
            m = crop_matrix(face.landmarks_5, prob.shape[0]) if matrix is None else matrix
        h, w = rgb.shape[:2]
        inv = invert_affine(m)
        r = prob.shape[0]
        # only the crop's footprint is warped (the same samples as a whole-image warp, a tenth of the work
        # on a 720p frame)
        corners = np.array([[0, 0], [r, 0], [0, r], [r, r]], np.float64) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = (min(max(0, int(np.floor(v)) - 1), n) for v, n in zip(corners.min(0), (w, h), strict=True))
        x1, y1 = min(w, int(np.ceil(corners[:, 0].max())) + 2), min(h, int(np.ceil(corners[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return BlendMask(np.zeros((0, 0), np.float32), x0, y0)
        shifted: np.ndarray = inv - np.array([[0, 0, x0], [0, 0, y0]], np.float64)
        out = cv2.warpAffine(
            prob, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )  # fmt: skip
        return BlendMask(out, x0, y0)

    def visible_share(self, rgb: np.ndarray, face: Face, prob: np.ndarray | None = None) -> float:
        """The share of the face oval the segmenter sees as visible (1: nothing in front of it); ``prob``:
        :meth:`crop_mask`'s, when already computed."""
        if prob is None:
            prob, m = self.crop_mask(rgb, face)
        else:
            m = crop_matrix(face.landmarks_5, prob.shape[0])
        if face.mesh is None:
            return float(1.0 - prob.mean())
        oval = oval_mask(face.mesh, m, self.resolution)
        return float(1.0 - (prob * oval).sum() / max(float(oval.sum()), 1.0))

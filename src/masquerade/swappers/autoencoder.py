"""A trained per-pair autoencoder (DeepFaceLab-style DF / LIAE) exported to ONNX.

The identity is baked into the model (trained on the two people), so no source photo is needed. The
model folder holds ``model.json``::

    {"format": "masquerade-autoencoder", "version": 1, "variant": "df" | "liae", "resolution": R,
     "template": "ffhq", "onnx": "autoencoder.onnx", "sha256": "<hex of the ONNX file>", "steps": N, ...}

and the ONNX file: one input (``face``), float32 N×3×R×R RGB in [0, 1] (the target face aligned with
:func:`masquerade.analysis.alignment.align_face` on its 5 landmarks, ``R``, ``template``); two outputs,
the swapped face (N×3×R×R in [0, 1], same alignment; ``swapped`` as masquerade's trainer names it — ONNX
forbids an output with the input's name) and the face region the decoder predicts
(N×1×R×R in [0, 1]; ``mask``).
Outputs named otherwise are told apart by their channel count.

:meth:`AutoencoderSwapper.swap` aligns the target face, runs the model and warps its face back over
the target (:func:`masquerade.analysis.alignment.warp_back`); the patch keeps the target's mesh (an
autoencoder keeps the target's geometry), so the common mask / colour / blend path composites it like
any other swapper's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..analysis.alignment import align_face
from ..errors import ModelError
from ..face import Face
from .aligned import (
    MANIFEST,
    MASK_HIGH,
    MASK_LOW,
    ModelInfo,
    check_nchw,
    check_swap_inputs,
    crop_patch,
    default_providers,
    face_and_mask_outputs,
    folder_kind,
    mask_coverage,
    onnx_session,
    read_model_folder,
)
from .base import SwapPatch, SwapperInfo

log = logging.getLogger(__name__)

MODEL_FORMAT = "masquerade-autoencoder"
MODEL_VERSION = 1

AutoencoderModelInfo = ModelInfo  # (the name before the generator shared it)


def read_model_info(folder: str | os.PathLike[str], verify: bool = True) -> ModelInfo:
    """Read and check ``folder/model.json`` (and, with ``verify``, the ONNX file's sha256); every problem
    is a :class:`ModelError` with a one-line message."""
    return read_model_folder(folder, MODEL_FORMAT, "autoencoder", MODEL_VERSION, verify)


def takes_model(model: str | os.PathLike[str]) -> bool:
    """A folder that is not another kind of model folder (a broken one gets this swapper's errors)."""
    p = Path(model)
    return not p.is_file() and folder_kind(p) in (None, "autoencoder")


class AutoencoderSwapper:
    """Swap with a trained autoencoder model folder (see the module docstring)."""

    info: ClassVar[SwapperInfo] = SwapperInfo(
        name="autoencoder",
        summary="autoencoder (a trained model, --model DIR, with the identity built in)",
        needs_source=False,  # the identity is in the model
        needs_model=True,
        model_help="DIR (a trained model folder)",
        read_model=read_model_info,
        takes_model=takes_model,
    )

    # the model's mask is mapped to coverage with a ramp centred on 0.5 (0 below 0.25, 1 above 0.75):
    # "the face is where the mask says > 0.5", without a hard edge where the decoder is unsure
    mask_low, mask_high = MASK_LOW, MASK_HIGH

    def __init__(self, model: str | os.PathLike[str], providers: list[str] | None = None) -> None:
        self.model_info = read_model_info(model)
        self.session = onnx_session(self.model_info.onnx, providers)
        self._bind()

    def _bind(self) -> None:
        """Find the input and the face / mask outputs, and check their shapes against model.json."""
        r = self.model_info.resolution
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        where = self.model_info.onnx
        if len(ins) != 1:
            raise ModelError(f"{where}: expected one input (the aligned face), found {len(ins)}")
        if len(outs) != 2:
            raise ModelError(f"{where}: expected two outputs (face, mask), found {len(outs)}")

        face, mask = face_and_mask_outputs(outs, where)
        for what, node, c in (("input", ins[0], 3), ("face output", face, 3), ("mask output", mask, 1)):
            check_nchw(where, what, node, c, r)
        self.input_name, self.face_name, self.mask_name = ins[0].name, face.name, mask.name

    @property
    def resolution(self) -> int:
        return self.model_info.resolution

    def align(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The model's input crop of ``face`` (R×R RGB uint8) and the 2×3 image→crop matrix."""
        return align_face(rgb, face.landmarks_5, self.model_info.resolution, self.model_info.template)

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on N aligned crops (N×R×R×3 uint8 RGB, or one R×R×3): returns the swapped faces
        (N×R×R×3 float32 in 0..255) and masks (N×R×R float32 in 0..1)."""
        x = np.asarray(crops)
        if x.ndim == 3:
            x = x[None]
        inp = np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32) * np.float32(1 / 255)
        face, mask = self.session.run([self.face_name, self.mask_name], {self.input_name: inp})
        faces = np.clip(face.transpose(0, 2, 3, 1), 0.0, 1.0) * np.float32(255)
        masks = np.clip(mask[:, 0], 0.0, 1.0)
        return faces.astype(np.float32), masks.astype(np.float32)

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face
    ) -> SwapPatch:
        """The model's face over the target face's region; ``source_rgb``/``source`` are not used."""
        check_swap_inputs(self.info.name, source_rgb, source, target, needs_source=False)
        crop, m = self.align(target_rgb, target)
        faces, masks = self.predict(crop)
        return self.patch(faces[0], masks[0], m, target_rgb.shape, target)

    def patch(
        self, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], target: Face
    ) -> SwapPatch:
        """Warp one predicted face (R×R×3, 0..255) and mask back over the target image as a patch."""
        return crop_patch(face, mask_coverage(mask, self.mask_low, self.mask_high), matrix, shape, target)


__all__ = [
    "MANIFEST",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "AutoencoderModelInfo",
    "AutoencoderSwapper",
    "default_providers",
    "read_model_info",
]

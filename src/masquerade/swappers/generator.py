"""The one-shot identity-conditioned generator (``masquerade train generator``) exported to ONNX.

One model swaps any pair: the identity comes from the source photo, as masquerade's 128-d dlib
embedding (:mod:`masquerade.identity.encoder`), so ``--swapper generator --model DIR`` needs ``--source``. The
model folder holds ``model.json``::

    {"format": "masquerade-generator", "version": 1, "resolution": R, "template": "ffhq",
     "onnx": "generator.onnx", "sha256": "<hex of the ONNX file>", "identity": "dlib128", "steps": N, ...}

and the ONNX file: inputs ``target`` (float32 N×3×R×R RGB in [0, 1], the target face aligned with
:func:`masquerade.analysis.alignment.align_face` on its 5 landmarks, ``R``, ``template``) and ``identity``
(float32 N×128, the source face's dlib embedding, L2-normalised); outputs ``swapped`` (N×3×R×R RGB in
[0, 1], same alignment) and ``mask`` (N×1×R×R in [0, 1], where the face is). Inputs and outputs named
otherwise are told apart by their shapes.

:meth:`GeneratorSwapper.swap` computes the source embedding (once per source face), aligns the target
face, runs the model and warps its face back over the target like the autoencoder swapper
(:mod:`.aligned`); the patch keeps the target's mesh, so the common mask / colour / blend and video
paths composite it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..analysis.alignment import align_face
from ..errors import ModelError
from ..face import Face
from .aligned import (
    MASK_HIGH,
    MASK_LOW,
    ModelInfo,
    SourceIdentities,
    check_nchw,
    check_swap_inputs,
    crop_patch,
    face_and_mask_outputs,
    folder_kind,
    mask_coverage,
    onnx_session,
    read_model_folder,
)
from .base import SwapPatch, SwapperInfo

MODEL_FORMAT = "masquerade-generator"
MODEL_VERSION = 1
IDENTITY_KINDS = {"dlib128": 128}


def read_generator_info(folder: str | os.PathLike[str], verify: bool = True) -> ModelInfo:
    """Read and check a generator model folder (one-line :class:`ModelError` on any problem)."""
    info = read_model_folder(folder, MODEL_FORMAT, "generator", MODEL_VERSION, verify)
    kind = info.meta.get("identity", "dlib128")
    if kind not in IDENTITY_KINDS:
        raise ModelError(
            f"{info.folder / 'model.json'}: identity {kind!r} is not supported (masquerade computes "
            f"{', '.join(IDENTITY_KINDS)})"
        )
    return info


def takes_model(model: str | os.PathLike[str]) -> bool:
    """A folder whose model.json is a generator's."""
    return folder_kind(Path(model)) == "generator"


class GeneratorSwapper:
    """Swap with a trained one-shot generator model folder (see the module docstring)."""

    info: ClassVar[SwapperInfo] = SwapperInfo(
        name="generator",
        summary="generator (a trained one-shot model, --model DIR, needs --source)",
        needs_model=True,
        model_help="DIR (a trained generator model folder)",
        read_model=read_generator_info,
        takes_model=takes_model,
    )
    mask_low, mask_high = MASK_LOW, MASK_HIGH

    def __init__(self, model: str | os.PathLike[str], providers: list[str] | None = None) -> None:
        self.model_info = read_generator_info(model)
        self.session = onnx_session(self.model_info.onnx, providers)
        self.identities = SourceIdentities()
        self._bind()

    def _bind(self) -> None:
        """Find the target / identity inputs and the face / mask outputs; check their shapes."""
        r, where = self.model_info.resolution, self.model_info.onnx
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 2:
            raise ModelError(f"{where}: expected two inputs (target face, identity), found {len(ins)}")
        if len(outs) != 2:
            raise ModelError(f"{where}: expected two outputs (face, mask), found {len(outs)}")

        def pick(nodes: list[Any], name: str, rank: int, what: str) -> tuple[Any, Any]:
            named = [n for n in nodes if n.name == name]
            if not named:
                named = [n for n in nodes if len(n.shape) == rank]
            if len(named) != 1:
                raise ModelError(f"{where}: cannot tell the {what} ({[n.name for n in nodes]})")
            return named[0], next(n for n in nodes if n is not named[0])

        target, ident = pick(ins, "target", 4, "target input from the identity input")

        face, mask = face_and_mask_outputs(outs, where)
        dim = IDENTITY_KINDS[self.model_info.meta.get("identity", "dlib128")]
        for what, node, c in (
            ("target input", target, 3),
            ("face output", face, 3),
            ("mask output", mask, 1),
        ):
            check_nchw(where, what, node, c, r)
        if len(ident.shape) != 2 or (ident.shape[1] not in (dim, None) and isinstance(ident.shape[1], int)):
            raise ModelError(
                f"{where}: identity input {ident.name!r} has shape {ident.shape}, expected N×{dim}"
            )
        self.target_name, self.identity_name = target.name, ident.name
        self.face_name, self.mask_name = face.name, mask.name

    @property
    def resolution(self) -> int:
        return self.model_info.resolution

    def align(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The model's input crop of ``face`` (R×R RGB uint8) and the 2×3 image→crop matrix."""
        return align_face(rgb, face.landmarks_5, self.model_info.resolution, self.model_info.template)

    def predict(self, crops: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on N aligned crops (N×R×R×3 uint8 RGB, or one R×R×3) with N unit identity
        embeddings (N×128, or one): the swapped faces (N×R×R×3 float32 in 0..255) and masks (N×R×R)."""
        x = np.asarray(crops)
        if x.ndim == 3:
            x = x[None]
        ids = np.asarray(identities, np.float32).reshape(len(x), -1)
        feeds = {
            self.target_name: np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32) * np.float32(1 / 255),
            self.identity_name: np.ascontiguousarray(ids),
        }
        face, mask = self.session.run([self.face_name, self.mask_name], feeds)
        faces = np.clip(face.transpose(0, 2, 3, 1), 0.0, 1.0) * np.float32(255)
        return faces.astype(np.float32), np.clip(mask[:, 0], 0.0, 1.0).astype(np.float32)

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face
    ) -> SwapPatch:
        """The model's face for (source identity, target face) over the target face's region."""
        check_swap_inputs(self.info.name, source_rgb, source, target)
        assert source_rgb is not None and source is not None
        crop, m = self.align(target_rgb, target)
        faces, masks = self.predict(crop, self.identities(source_rgb, source))
        return self.patch(faces[0], masks[0], m, target_rgb.shape, target)

    def patch(
        self, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], target: Face
    ) -> SwapPatch:
        """Warp one predicted face (R×R×3, 0..255) and mask back over the target image as a patch."""
        return crop_patch(face, mask_coverage(mask, self.mask_low, self.mask_high), matrix, shape, target)

"""A trained per-pair autoencoder (DeepFaceLab-style DF / LIAE) exported to ONNX.

The identity is baked into the model (trained on the two people), so no source photo is needed. The
model folder holds ``model.json``::

    {"format": "masquerade-autoencoder", "version": 1, "variant": "df" | "liae", "resolution": R,
     "template": "ffhq", "onnx": "autoencoder.onnx", "sha256": "<hex of the ONNX file>", "steps": N, ...}

and the ONNX file: one input (``face``), float32 N×3×R×R RGB in [0, 1] (the target face aligned with
:func:`masquerade.alignment.align_face` on its 5 landmarks, ``R``, ``template``); two outputs, the swapped
face (N×3×R×R in [0, 1], same alignment; ``swapped`` as masquerade's trainer names it — ONNX forbids an
output with the input's name) and the face region the decoder predicts (N×1×R×R in [0, 1]; ``mask``).
Outputs named otherwise are told apart by their channel count.

:meth:`AutoencoderSwapper.swap` aligns the target face, runs the model and warps its face back over the
target (:func:`masquerade.alignment.warp_back`); the patch keeps the target's mesh (an autoencoder keeps
the target's geometry), so the common mask / colour / blend path composites it like any other swapper's.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..alignment import TEMPLATES, align_face, warp_back
from ..errors import ModelError
from ..face import Face
from ..models import file_sha256
from .base import SwapPatch

log = logging.getLogger(__name__)

MODEL_FORMAT = "masquerade-autoencoder"
MODEL_VERSION = 1
MANIFEST = "model.json"


@dataclass(frozen=True)
class AutoencoderModelInfo:
    """The checked contents of a model folder's ``model.json``."""

    folder: Path
    onnx: Path
    sha256: str
    resolution: int
    template: str
    variant: str | None
    steps: int | None
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return self.folder.name or str(self.folder)

    def describe(self) -> dict[str, Any]:
        """What a report should say about the model: name, folder, sha256 and training facts."""
        return {
            "name": self.name, "path": str(self.folder), "sha256": self.sha256, "variant": self.variant,
            "resolution": self.resolution, "template": self.template, "steps": self.steps,
        }  # fmt: skip

    def summary(self) -> str:
        return f"{self.name} (sha256 {self.sha256[:12]}…)"


def read_model_info(folder: str | os.PathLike[str], verify: bool = True) -> AutoencoderModelInfo:
    """Read and check ``folder/model.json`` (and, with ``verify``, the ONNX file's sha256); every problem
    is a :class:`ModelError` with a one-line message."""
    d = Path(folder)
    if not d.exists():
        raise ModelError(f"{d}: no such model folder")
    if not d.is_dir():
        raise ModelError(f"{d}: not a folder (--model takes the folder holding {MANIFEST})")
    mf = d / MANIFEST
    if not mf.is_file():
        raise ModelError(f"{d}: no {MANIFEST}; not an autoencoder model folder")
    try:
        meta = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{mf}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{mf}: not a JSON object")
    if meta.get("format") != MODEL_FORMAT:
        raise ModelError(f"{mf}: format is {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
    if meta.get("version") != MODEL_VERSION:
        raise ModelError(
            f"{mf}: model version {meta.get('version')!r} is not supported (this masquerade reads "
            f"version {MODEL_VERSION})"
        )
    res = meta.get("resolution")
    if not isinstance(res, int) or isinstance(res, bool) or not 8 <= res <= 4096:
        raise ModelError(f"{mf}: resolution must be an integer from 8 to 4096, got {res!r}")
    tmpl = meta.get("template", "ffhq")
    if tmpl not in TEMPLATES:
        raise ModelError(f"{mf}: unknown template {tmpl!r}; expected one of {', '.join(TEMPLATES)}")
    name = meta.get("onnx")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ModelError(f"{mf}: 'onnx' must name a file in the model folder, got {name!r}")
    sha = meta.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise ModelError(f"{mf}: 'sha256' must be the 64 hex digits of {name}")
    onnx = d / name
    if not onnx.is_file():
        raise ModelError(f"{d}: the model file {name} named in {MANIFEST} is missing")
    if verify:
        actual = file_sha256(onnx)
        if actual != sha.lower():
            raise ModelError(
                f"{onnx}: sha256 {actual[:16]}… does not match {MANIFEST} ({sha.lower()[:16]}…); "
                "the file is damaged or from another model"
            )
    steps = meta.get("steps")
    variant = meta.get("variant")
    return AutoencoderModelInfo(
        folder=d, onnx=onnx, sha256=sha.lower(), resolution=res, template=tmpl,
        variant=variant if isinstance(variant, str) else None,
        steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else None, meta=meta,
    )  # fmt: skip


def default_providers() -> list[str]:
    """CUDA when onnxruntime has it, else (and always as the fallback) the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class AutoencoderSwapper:
    """Swap with a trained autoencoder model folder (see the module docstring)."""

    name = "autoencoder"
    needs_source = False  # the identity is in the model
    needs_model = True
    model_help = "DIR (a trained model folder)"
    read_model = staticmethod(read_model_info)

    # the model's mask is mapped to coverage with a ramp centred on 0.5 (0 below 0.25, 1 above 0.75):
    # "the face is where the mask says > 0.5", without a hard edge where the decoder is unsure
    mask_low, mask_high = 0.25, 0.75

    def __init__(self, model: str | os.PathLike[str], providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.info = read_model_info(model)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.info.onnx), opts, providers=providers or default_providers()
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.info.onnx}: onnxruntime cannot load it ({_first_line(exc)})") from None
        self._bind()

    def _bind(self) -> None:
        """Find the input and the face / mask outputs, and check their shapes against model.json."""
        r = self.info.resolution
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        where = self.info.onnx
        if len(ins) != 1:
            raise ModelError(f"{where}: expected one input (the aligned face), found {len(ins)}")
        if len(outs) != 2:
            raise ModelError(f"{where}: expected two outputs (face, mask), found {len(outs)}")

        def channels(o: Any) -> int | None:
            shape = o.shape
            return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None

        names = [o.name for o in outs]
        if "mask" in names:
            k = names.index("mask")
        else:
            ones = [i for i, o in enumerate(outs) if channels(o) == 1]
            if len(ones) != 1:
                raise ModelError(f"{where}: cannot tell the face output from the mask output ({names})")
            k = ones[0]
        mask, face = outs[k], outs[1 - k]
        for what, node, c in (("input", ins[0], 3), ("face output", face, 3), ("mask output", mask, 1)):
            shape = node.shape
            ok = len(shape) == 4 and all(
                not isinstance(v, int) or v == want for v, want in zip(shape[1:], (c, r, r), strict=True)
            )
            if not ok:
                raise ModelError(f"{where}: {what} {node.name!r} has shape {shape}, expected N×{c}×{r}×{r}")
        self.input_name, self.face_name, self.mask_name = ins[0].name, face.name, mask.name

    @property
    def resolution(self) -> int:
        return self.info.resolution

    def align(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The model's input crop of ``face`` (R×R RGB uint8) and the 2×3 image→crop matrix."""
        return align_face(rgb, face.landmarks_5, self.info.resolution, self.info.template)

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
        if target.mesh is None:
            raise ValueError("the autoencoder swapper needs the target's mediapipe mesh (478 points)")
        crop, m = self.align(target_rgb, target)
        faces, masks = self.predict(crop)
        return self.patch(faces[0], masks[0], m, target_rgb.shape, target)

    def patch(
        self, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], target: Face
    ) -> SwapPatch:
        """Warp one predicted face (R×R×3, 0..255) and mask back over the target image as a patch."""
        assert target.mesh is not None
        lo, hi = self.mask_low, self.mask_high
        cover = np.clip((mask - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
        back = warp_back(face, matrix, shape, cover)
        if back is None:
            raise ValueError("the swapped face falls outside the target image")
        warped, coverage, x0, y0 = back
        if warped.shape[0] < 4 or warped.shape[1] < 4:
            raise ValueError("the swapped face falls outside the target image")
        image = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
        return SwapPatch(image=image, coverage=coverage, x0=x0, y0=y0, mesh=target.mesh)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

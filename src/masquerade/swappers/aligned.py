"""What the swappers built on masquerade's trained ONNX models share (``autoencoder``, ``generator``).

* a model folder with a checked ``model.json`` (:func:`read_model_folder`: format, version,
  resolution, template, ONNX file name and its sha256) and its onnxruntime session
  (:func:`onnx_session`, CUDA when onnxruntime has it);
* the way back: the model's face, predicted on the target face's aligned crop, is warped back over the
  target image with :func:`masquerade.analysis.alignment.warp_back` as a :class:`~.base.SwapPatch` that
  keeps the target's mesh (:func:`crop_patch`), the model's mask mapped to coverage by :func:`mask_coverage`;
* the source identity for one-shot models: masquerade's 128-d dlib embedding of the source face,
  computed once per source face (:class:`SourceIdentities`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.alignment import TEMPLATES, warp_back
from ..errors import ModelError, SkipFace
from ..face import Face
from ..models import file_sha256
from .base import SwapPatch

MANIFEST = "model.json"
#: model.json ``format`` → the swapper that reads such folders
FOLDER_FORMATS: dict[str, str] = {
    "masquerade-autoencoder": "autoencoder",
    "masquerade-generator": "generator",
    "masquerade-diffusion": "diffusion",
    "masquerade-refiner": "refined",
}

# a model's mask is mapped to coverage with a ramp centred on 0.5 (0 below 0.25, 1 above 0.75): "the
# face is where the mask says > 0.5", without a hard edge where the model is unsure
MASK_LOW, MASK_HIGH = 0.25, 0.75


@dataclass(frozen=True)
class ModelInfo:
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


def folder_kind(folder: str | os.PathLike[str]) -> str | None:
    """Which of :data:`FOLDER_FORMATS`' swappers ``folder/model.json`` is for; None when the folder has
    no readable manifest or another format (the caller decides who reports the problem)."""
    try:
        meta = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return FOLDER_FORMATS.get(str(meta.get("format"))) if isinstance(meta, dict) else None


def read_model_folder(
    folder: str | os.PathLike[str], model_format: str, kind: str, version: int = 1, verify: bool = True
) -> ModelInfo:
    """Read and check ``folder/model.json`` of format ``model_format`` (and, with ``verify``, the ONNX
    file's sha256); every problem is a :class:`ModelError` with a one-line message naming ``kind``."""
    d = Path(folder)
    if not d.exists():
        raise ModelError(f"{d}: no such model folder")
    if not d.is_dir():
        raise ModelError(f"{d}: not a folder (--model takes the folder holding {MANIFEST})")
    mf = d / MANIFEST
    if not mf.is_file():
        raise ModelError(f"{d}: no {MANIFEST}; not a{'n' if kind[0] in 'aeiou' else ''} {kind} model folder")
    try:
        meta = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{mf}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{mf}: not a JSON object")
    if meta.get("format") != model_format:
        raise ModelError(f"{mf}: format is {meta.get('format')!r}, expected {model_format!r}")
    if meta.get("version") != version:
        raise ModelError(
            f"{mf}: model version {meta.get('version')!r} is not supported (this masquerade reads "
            f"version {version})"
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
    return ModelInfo(
        folder=d, onnx=onnx, sha256=sha.lower(), resolution=res, template=tmpl,
        variant=variant if isinstance(variant, str) else None,
        steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else None, meta=meta,
    )  # fmt: skip


def default_providers() -> list[str]:
    """CUDA when onnxruntime has it, else (and always as the fallback) the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def onnx_session(
    path: Path, providers: list[str] | None = None, what: str = "it", threads: int | None = None
) -> Any:
    """An onnxruntime session for ``path`` (one-line :class:`ModelError` when it cannot load it;
    ``what`` names the file in that message), on ``threads`` threads (None: onnxruntime's choice).

    Its threads do not spin-wait for the next inference: onnxruntime's default keeps them busy-waiting
    after each run, which in a video pipeline took the CPU that decoding, tracking and encoding need
    (the occlusion segmenter, a 4-ms inference, cost about 28 ms of CPU per call that way)."""
    import onnxruntime as ort

    opts = no_spinning(ort.SessionOptions())
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=providers or default_providers())
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: onnxruntime cannot load {what} ({first_line(exc)})") from None


def no_spinning(opts: Any) -> Any:
    """onnxruntime ``SessionOptions`` whose thread pools sleep between inferences instead of spinning."""
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def face_and_mask_outputs(outs: list[Any], where: Path) -> tuple[Any, Any]:
    """An aligned-face model's two outputs as (face, mask): the one named ``mask``, else the only
    one with 1 channel, is the mask (one-line :class:`ModelError` when that cannot be told)."""
    names = [o.name for o in outs]
    if "mask" in names:
        mask = outs[names.index("mask")]
    else:
        ones = [o for o in outs if len(o.shape) == 4 and isinstance(o.shape[1], int) and o.shape[1] == 1]
        if len(ones) != 1:
            raise ModelError(f"{where}: cannot tell the face output from the mask output ({names})")
        mask = ones[0]
    return next(o for o in outs if o is not mask), mask


def check_nchw(where: Path, what: str, node: Any, channels: int, size: int) -> None:
    """A one-line :class:`ModelError` unless ``node``'s shape is N×channels×size×size (dynamic axes
    pass)."""
    shape = node.shape
    want = (channels, size, size)
    ok = len(shape) == 4 and all(
        not isinstance(v, int) or v == w for v, w in zip(shape[1:], want, strict=True)
    )
    if not ok:
        raise ModelError(
            f"{where}: {what} {node.name!r} has shape {shape}, expected N×{channels}×{size}×{size}"
        )


def check_swap_inputs(
    name: str, source_rgb: np.ndarray | None, source: Face | None, target: Face, needs_source: bool = True
) -> None:
    """What every aligned-crop swapper needs to swap: a source face (when it takes its identity from
    one) and the target's mediapipe mesh (the patch keeps it)."""
    if needs_source and (source_rgb is None or source is None):
        raise SkipFace(f"the {name} swapper needs a source face")
    if target.mesh is None:
        raise SkipFace(f"the {name} swapper needs the target's mediapipe mesh (478 points)")


def mask_coverage(mask: np.ndarray, low: float = MASK_LOW, high: float = MASK_HIGH) -> np.ndarray:
    """A predicted mask (0..1) as coverage: 0 below ``low``, 1 above ``high``, linear between."""
    return np.clip((mask - low) / (high - low), 0.0, 1.0).astype(np.float32)


def crop_patch(
    face: np.ndarray, coverage: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], target: Face
) -> SwapPatch:
    """Warp a predicted face (crop-sized, RGB 0..255) and its coverage back over the target image
    (``matrix``: image → crop) as a patch with the target's mesh; :class:`SkipFace` when it falls outside."""
    assert target.mesh is not None
    back = warp_back(face, matrix, shape, coverage)
    if back is None:
        raise SkipFace("the swapped face falls outside the target image")
    warped, cover, x0, y0 = back
    if warped.shape[0] < 4 or warped.shape[1] < 4:
        raise SkipFace("the swapped face falls outside the target image")
    image = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return SwapPatch(image=image, coverage=cover, x0=x0, y0=y0, mesh=target.mesh)


class SourceIdentities:
    """The L2-normalised 128-d dlib embedding (:mod:`masquerade.identity.encoder`) of source faces,
    computed once per (source image, source face) and kept for the last ``size`` of them (video: every
    frame)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._encoder: Any = None
        self._cache: list[tuple[np.ndarray, Face, np.ndarray]] = []

    def __call__(self, source_rgb: np.ndarray, source: Face) -> np.ndarray:
        for rgb, face, vec in self._cache:
            if rgb is source_rgb and face is source:
                return vec
        if source.embedding is not None:
            raw = np.asarray(source.embedding, np.float32)
        else:
            if self._encoder is None:
                from ..identity.encoder import IdentityEncoder

                self._encoder = IdentityEncoder()
            raw = self._encoder.embed(source_rgb, source.landmarks_68)
        vec = np.asarray(raw, np.float32).reshape(-1)
        vec = vec / max(float(np.linalg.norm(vec)), 1e-8)
        self._cache = [(source_rgb, source, vec), *self._cache[: self.size - 1]]
        return vec

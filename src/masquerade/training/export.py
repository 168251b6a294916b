"""Export a trained pair autoencoder's A→B swap network to ONNX, with its ``model.json``.

The contract read by the autoencoder swapper:

- ``OUT/autoencoder.onnx``: input ``face`` float32 N×3×R×R, RGB in [0, 1], aligned with the faceset
  template (``ffhq``) at R×R; outputs, in this order, ``swapped`` (N×3×R×R RGB in [0, 1], the face as
  identity B) and ``mask`` (N×1×R×R in [0, 1]); dynamic batch N. (ONNX value names are unique, so
  the output cannot also be called ``face``; ``model.json`` lists the names.)
- ``OUT/model.json``: ``{"format": "masquerade-autoencoder", "version": 1, "variant", "resolution",
  "template", "onnx", "sha256", "inputs", "outputs", "steps", "faceset_a", "faceset_b", "config",
  "parameters", "trained": {"device", "seconds", "torch"}}``.

The one-shot generator (:func:`export_generator`) writes ``OUT/generator.onnx``: inputs ``target``
(float32 N×3×R×R RGB in [0, 1], aligned with the run's template) and ``identity`` (float32 N×128, the
L2-normalised dlib embedding of the source face, :mod:`masquerade.identity.encoder`); outputs ``swapped``
(N×3×R×R) and ``mask`` (N×1×R×R), dynamic batch; and ``OUT/model.json``: ``{"format":
"masquerade-generator", "version": 1, "resolution", "template", "onnx", "sha256", "identity":
"dlib128", "inputs", "outputs", "steps", "data", "config", "parameters", "trained"}``.
:func:`export_diffusion` writes ``OUT/denoiser.onnx`` (the EMA weights; inputs ``x``, ``t``, ``condition``,
``identity``, output ``eps``: :mod:`masquerade.swappers.diffusion`) and ``OUT/model.json`` (format
``masquerade-diffusion`` with the noise schedule, default sampling steps and guidance).
:func:`export_run` exports whichever trainer a checkpoint comes from.

Every export is checked with onnxruntime: its outputs must equal PyTorch's (max abs diff < 1e-4).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, ModelError
from ..files import atomic_write_bytes
from ..swappers import refined as refined_swapper
from .autoencoder import PairAutoencoder, SwapNet, build_autoencoder
from .common import IDENTITY_DIM, parameter_count
from .configs import AutoencoderTrainConfig, DiffusionTrainConfig, GeneratorTrainConfig
from .generator import Generator, GeneratorNet, build_generator
from .trainer import load_checkpoint

MODEL_FORMAT = "masquerade-autoencoder"
MODEL_VERSION = 1
ONNX_NAME = "autoencoder.onnx"
INPUT_NAMES = ("face",)
OUTPUT_NAMES = ("swapped", "mask")
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    model_json: Path
    onnx: Path
    sha256: str
    max_abs_diff: float
    steps: int


def onnx_bytes(
    net: torch.nn.Module,
    dummies: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int = 17,
) -> bytes:
    """``net`` (in eval mode) as an ONNX graph (TorchScript exporter, ``dynamo=False``), dynamic batch."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            dummies,
            buf,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in (*input_names, *output_names)},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


def onnx_difference(
    net: torch.nn.Module, data: bytes, inputs: dict[str, np.ndarray], output_names: Sequence[str]
) -> float:
    """Max abs difference between onnxruntime's and PyTorch's outputs on ``inputs`` (name → array, in
    ``net``'s argument order)."""
    import onnxruntime as ort

    with torch.no_grad():
        res = net.eval()(*(torch.from_numpy(x) for x in inputs.values()))
        ref = [t.numpy() for t in ((res,) if isinstance(res, torch.Tensor) else res)]
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run(list(output_names), inputs)
    return float(max(np.abs(g - e).max() for g, e in zip(got, ref, strict=True)))


def swap_onnx_bytes(model: PairAutoencoder, opset: int = 17) -> bytes:
    """The A→B swap network as an ONNX graph (TorchScript exporter, ``dynamo=False``), dynamic batch."""
    r = model.config.resolution
    return onnx_bytes(SwapNet(model), (torch.full((1, 3, r, r), 0.5),), INPUT_NAMES, OUTPUT_NAMES, opset)


def compare_onnx(model: PairAutoencoder, onnx_bytes: bytes, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference between onnxruntime's and PyTorch's outputs on a random batch."""
    r = model.config.resolution
    x = np.random.default_rng(seed).random((batch, 3, r, r), dtype=np.float32)
    return onnx_difference(SwapNet(model), onnx_bytes, {INPUT_NAMES[0]: x}, OUTPUT_NAMES)


def _checkpoint_state(out: Path, checkpoint: str | os.PathLike[str] | None) -> dict[str, Any]:
    ckpt = Path(checkpoint) if checkpoint is not None else out / "checkpoints" / "latest.pt"
    if not ckpt.is_file():
        raise InputError(f"{out}: no checkpoint to export ({ckpt} not found; train first)")
    return load_checkpoint(ckpt, map_location="cpu")


def _write_model(out: Path, data: bytes, diff: float, meta: dict[str, Any]) -> ExportResult:
    """Check ``diff``, write the ONNX file ``meta["onnx"]`` and ``model.json`` (with the file's sha256)."""
    if not diff < TOLERANCE:
        raise ModelError(f"ONNX export differs from PyTorch by {diff:.2e} (limit {TOLERANCE:.0e})")
    onnx_path = out / meta["onnx"]
    atomic_write_bytes(onnx_path, data)
    sha = hashlib.sha256(data).hexdigest()
    meta = {**meta, "sha256": sha}
    model_json = out / "model.json"
    atomic_write_bytes(model_json, (json.dumps(meta, indent=2) + "\n").encode())
    return ExportResult(model_json, onnx_path, sha, diff, int(meta["steps"]))


def _trained(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "device": str(state.get("device", "")),
        "seconds": round(float(state.get("seconds", 0.0)), 1),
        "torch": str(state.get("torch", torch.__version__)),
    }


def model_from_checkpoint(state: dict[str, Any]) -> tuple[PairAutoencoder, AutoencoderTrainConfig]:
    if state.get("trainer") != "autoencoder":
        raise InputError(f"checkpoint is from the {state.get('trainer')!r} trainer, not the autoencoder")
    cfg_dict = {k: v for k, v in state["config"].items() if k not in ("trainer", "seed")}
    cfg = AutoencoderTrainConfig.from_dict(cfg_dict)
    model = build_autoencoder(cfg.model)
    model.load_state_dict(state["modules"]["model"])
    return model.float().eval(), cfg


def export_autoencoder(
    out_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None, opset: int = 17
) -> ExportResult:
    """Export ``checkpoint`` (default ``OUT/checkpoints/latest.pt``) to ``OUT/autoencoder.onnx`` and
    write ``OUT/model.json``; raises :class:`ModelError` if onnxruntime disagrees with PyTorch."""
    out = Path(out_dir)
    return _export_autoencoder_state(out, _checkpoint_state(out, checkpoint), opset)


def _export_autoencoder_state(out: Path, state: dict[str, Any], opset: int = 17) -> ExportResult:
    model, cfg = model_from_checkpoint(state)
    data = swap_onnx_bytes(model, opset)
    meta = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "variant": cfg.model.variant,
        "resolution": cfg.model.resolution,
        "template": cfg.template,
        "onnx": ONNX_NAME,
        "sha256": "",
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
        "steps": int(state["step"]),
        "faceset_a": cfg.faceset_a,
        "faceset_b": cfg.faceset_b,
        "config": cfg.to_dict(),
        "parameters": parameter_count(model),
        "trained": _trained(state),
    }
    return _write_model(out, data, compare_onnx(model, data), meta)


# -- the one-shot generator -------------------------------------------------------------------------
GENERATOR_FORMAT = "masquerade-generator"


def _identity_model_meta(
    state: dict[str, Any],
    cfg: Any,
    model: torch.nn.Module,
    fmt: str,
    version: int,
    onnx_name: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> dict[str, Any]:
    """``model.json`` fields shared by the models trained on identity data (generator, diffusion)."""
    return {
        "format": fmt,
        "version": version,
        "resolution": cfg.model.resolution,
        "template": cfg.template,
        "onnx": onnx_name,
        "sha256": "",
        "identity": "dlib128",
        "inputs": list(inputs),
        "outputs": list(outputs),
        "steps": int(state["step"]),
        "data": {
            "folder": cfg.data,
            "people": cfg.people,
            "max_photos": cfg.max_photos,
            "holdout": cfg.holdout,
        },
        "config": cfg.to_dict(),
        "parameters": parameter_count(model),
        "trained": _trained(state),
    }


GENERATOR_VERSION = 1
GENERATOR_ONNX = "generator.onnx"
GENERATOR_INPUTS = ("target", "identity")
GENERATOR_OUTPUTS = ("swapped", "mask")


def generator_from_checkpoint(state: dict[str, Any]) -> tuple[Generator, GeneratorTrainConfig]:
    if state.get("trainer") != "generator":
        raise InputError(f"checkpoint is from the {state.get('trainer')!r} trainer, not the generator")
    cfg = GeneratorTrainConfig.from_dict(
        {k: v for k, v in state["config"].items() if k not in ("trainer", "seed")}
    )
    model = build_generator(cfg.model)
    model.load_state_dict(state["modules"]["generator"])
    return model.float().eval(), cfg


def generator_onnx_bytes(model: Generator, opset: int = 17) -> bytes:
    r = model.config.resolution
    dummies = (torch.full((1, 3, r, r), 0.5), torch.full((1, IDENTITY_DIM), IDENTITY_DIM**-0.5))
    return onnx_bytes(GeneratorNet(model), dummies, GENERATOR_INPUTS, GENERATOR_OUTPUTS, opset)


def compare_generator_onnx(model: Generator, data: bytes, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference between onnxruntime's and PyTorch's outputs on a random batch."""
    rng = np.random.default_rng(seed)
    r = model.config.resolution
    ident = rng.standard_normal((batch, IDENTITY_DIM)).astype(np.float32)
    inputs = {
        "target": rng.random((batch, 3, r, r), dtype=np.float32),
        "identity": ident / np.linalg.norm(ident, axis=1, keepdims=True),
    }
    return onnx_difference(GeneratorNet(model), data, inputs, GENERATOR_OUTPUTS)


def export_generator(
    out_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None, opset: int = 17
) -> ExportResult:
    """Export a generator run's ``checkpoint`` (default ``OUT/checkpoints/latest.pt``) to
    ``OUT/generator.onnx`` + ``OUT/model.json``; :class:`ModelError` if onnxruntime disagrees."""
    out = Path(out_dir)
    return _export_generator_state(out, _checkpoint_state(out, checkpoint), opset)


def _export_generator_state(out: Path, state: dict[str, Any], opset: int = 17) -> ExportResult:
    model, cfg = generator_from_checkpoint(state)
    data = generator_onnx_bytes(model, opset)
    meta = _identity_model_meta(
        state,
        cfg,
        model,
        GENERATOR_FORMAT,
        GENERATOR_VERSION,
        GENERATOR_ONNX,
        GENERATOR_INPUTS,
        GENERATOR_OUTPUTS,
    )
    return _write_model(out, data, compare_generator_onnx(model, data), meta)


DIFFUSION_ONNX = "denoiser.onnx"


def diffusion_from_checkpoint(state: dict[str, Any]) -> tuple[Any, Any]:
    """(the EMA denoiser in eval mode, the run's config) of a diffusion checkpoint."""
    from .diffusion import build_unet

    if state.get("trainer") != "diffusion":
        raise InputError(f"checkpoint is from the {state.get('trainer')!r} trainer, not the diffusion model")
    stored = {k: v for k, v in state["config"].items() if k not in ("trainer", "seed")}
    cfg = DiffusionTrainConfig.from_dict(stored)
    model = build_unet(cfg.model)
    model.load_state_dict(state["modules"]["ema"])
    return model.float().eval(), cfg


def diffusion_onnx_bytes(model: Any, opset: int = 17) -> bytes:
    from ..swappers.diffusion import INPUT_NAMES, OUTPUT_NAMES
    from .diffusion import DenoiserNet

    r = model.config.resolution
    dummies = (
        torch.zeros((1, 3, r, r)),
        torch.full((1,), 500.0),
        torch.zeros((1, model.config.condition_channels, r, r)),
        torch.full((1, IDENTITY_DIM), IDENTITY_DIM**-0.5),
    )
    return onnx_bytes(DenoiserNet(model), dummies, INPUT_NAMES, OUTPUT_NAMES, opset)


def compare_diffusion_onnx(model: Any, data: bytes, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference between onnxruntime's and PyTorch's noise predictions on a random batch."""
    from ..swappers.diffusion import OUTPUT_NAMES
    from .diffusion import DenoiserNet

    rng = np.random.default_rng(seed)
    r = model.config.resolution
    ident = rng.standard_normal((batch, IDENTITY_DIM)).astype(np.float32)
    inputs = {
        "x": rng.standard_normal((batch, 3, r, r)).astype(np.float32),
        "t": rng.integers(0, 1000, batch).astype(np.float32),
        "condition": rng.random((batch, model.config.condition_channels, r, r), dtype=np.float32),
        "identity": ident / np.linalg.norm(ident, axis=1, keepdims=True),
    }
    return onnx_difference(DenoiserNet(model), data, inputs, OUTPUT_NAMES)


def export_diffusion(
    out_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None, opset: int = 17
) -> ExportResult:
    """Export a diffusion run's ``checkpoint`` (default ``OUT/checkpoints/latest.pt``) to
    ``OUT/denoiser.onnx`` + ``OUT/model.json``; :class:`ModelError` if onnxruntime disagrees."""
    out = Path(out_dir)
    return _export_diffusion_state(out, _checkpoint_state(out, checkpoint), opset)


def _export_diffusion_state(out: Path, state: dict[str, Any], opset: int = 17) -> ExportResult:
    from ..swappers.diffusion import (
        CONDITION,
        INPUT_NAMES,
        MODEL_FORMAT,
        MODEL_VERSION,
        OUTPUT_NAMES,
        WARP_CONDITION,
    )

    model, cfg = diffusion_from_checkpoint(state)
    data = diffusion_onnx_bytes(model, opset)
    meta = _identity_model_meta(
        state, cfg, model, MODEL_FORMAT, MODEL_VERSION, DIFFUSION_ONNX, INPUT_NAMES, OUTPUT_NAMES
    )
    if cfg.condition == "warp":
        meta.update(template="refine", strength=cfg.strength)
        meta["data"]["folders"] = [cfg.data, *cfg.extra_data]
    meta.update(
        condition=WARP_CONDITION if cfg.condition == "warp" else CONDITION,
        schedule=cfg.schedule,
        timesteps=cfg.timesteps,
        sampling_steps=cfg.sampling_steps,
        guidance=cfg.guidance,
    )
    return _write_model(out, data, compare_diffusion_onnx(model, data), meta)


REFINER_ONNX = "refiner.onnx"
REFINER_INPUTS = (*refined_swapper.INPUTS, refined_swapper.HIDDEN)  # what the refined swapper feeds
REFINER_OUTPUTS = ("correction",)


def refiner_from_checkpoint(state: dict[str, Any]) -> tuple[Any, Any]:
    from .configs import RefinerTrainConfig
    from .refiner import build_refiner

    cfg = RefinerTrainConfig.from_dict(
        {k: v for k, v in state["config"].items() if k not in ("trainer", "seed")}
    )
    model = build_refiner(cfg.model)
    model.load_state_dict(state["modules"]["refiner"])
    return model.eval(), cfg


def _refiner_dummies(r: int, batch: int, seed: int, shade: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((batch, 1, r, r), np.float32)
    mask[:, :, r // 4 : 3 * r // 4, r // 4 : 3 * r // 4] = 1.0
    out = {
        "image": rng.random((batch, 3, r, r), dtype=np.float32),
        "mask": mask,
        "parts": rng.random((batch, 3, r, r), dtype=np.float32),
        "identity": rng.standard_normal((batch, IDENTITY_DIM)).astype(np.float32),
        "hidden": (rng.random((batch, 1, r, r), dtype=np.float32) > 0.8).astype(np.float32) * mask,
    }
    if shade:
        out[refined_swapper.TARGET] = rng.random((batch, 3, r, r), dtype=np.float32)
    return out


def export_refiner_state(out: Path, state: dict[str, Any], opset: int = 17) -> ExportResult:
    """``OUT/refiner.onnx`` (inputs ``image`` N×3×R×R composite crop in [0, 1], ``mask`` N×1×R×R, ``parts``
    N×3×R×R eyes/irises/mouth, ``identity`` N×128 unit dlib embedding of the source, ``hidden`` N×1×R×R
    the source's hidden texels, and for a model trained with ``shade`` ``target`` N×3×R×R the target's own
    crop before the swap; output ``correction`` N×3×R×R to add) and ``OUT/model.json`` (format
    ``masquerade-refiner``)."""
    from .refiner import CorrectionNet

    model, cfg = refiner_from_checkpoint(state)
    r = cfg.model.resolution
    shade = bool(cfg.model.shade)
    inputs = (*REFINER_INPUTS, refined_swapper.TARGET) if shade else REFINER_INPUTS
    net = CorrectionNet(model)
    dummies = tuple(torch.from_numpy(v) for v in _refiner_dummies(r, 1, 0, shade).values())
    data = onnx_bytes(net, dummies, inputs, REFINER_OUTPUTS, opset)
    diff = onnx_difference(net, data, _refiner_dummies(r, 2, 1, shade), REFINER_OUTPUTS)
    meta = {
        "format": refined_swapper.MODEL_FORMAT,
        "version": refined_swapper.MODEL_VERSION,
        "resolution": r,
        "template": "refine",
        "onnx": REFINER_ONNX,
        "sha256": "",
        "identity": "dlib128",
        "inputs": list(inputs),
        "outputs": list(REFINER_OUTPUTS),
        "steps": int(state["step"]),
        "data": {"folders": list(cfg.data), "holdout": cfg.holdout, "max_photos": cfg.max_photos},
        "config": cfg.to_dict(),
        "relight": cfg.relight,  # the warp's relighting in its training pairs: the swapper's default
        "parameters": parameter_count(model),
        "trained": _trained(state),
    }
    return _write_model(out, data, diff, meta)


def export_run(
    out_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None, opset: int = 17
) -> ExportResult:
    """Export a run folder's checkpoint, whichever trainer wrote it (autoencoder, generator, diffusion)."""
    out = Path(out_dir)
    state = _checkpoint_state(out, checkpoint)
    trainer = state.get("trainer")
    if trainer == "generator":
        return _export_generator_state(out, state, opset)
    if trainer == "diffusion":
        return _export_diffusion_state(out, state, opset)
    if trainer == "autoencoder":
        return _export_autoencoder_state(out, state, opset)
    if trainer == "refiner":
        return export_refiner_state(out, state, opset)
    if trainer == "segmenter":
        from .segmenter import export_segmenter_state

        return export_segmenter_state(out, state, opset)
    raise InputError(f"{out}: checkpoint from an unknown trainer {trainer!r}")

"""Export a trained pair autoencoder's A→B swap network to ONNX, with its ``model.json``.

The contract read by the autoencoder swapper:

- ``OUT/autoencoder.onnx``: input ``face`` float32 N×3×R×R, RGB in [0, 1], aligned with the faceset
  template (``ffhq``) at R×R; outputs, in this order, ``swapped`` (N×3×R×R RGB in [0, 1], the face as
  identity B) and ``mask`` (N×1×R×R in [0, 1]); dynamic batch N. (ONNX value names are unique, so
  the output cannot also be called ``face``; ``model.json`` lists the names.)
- ``OUT/model.json``: ``{"format": "masquerade-autoencoder", "version": 1, "variant", "resolution",
  "template", "onnx", "sha256", "inputs", "outputs", "steps", "faceset_a", "faceset_b", "config",
  "parameters", "trained": {"device", "seconds", "torch"}}``.

The export is checked with onnxruntime: its outputs must equal PyTorch's (max abs diff < 1e-4).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, ModelError
from ..imageio import atomic_write_bytes
from .autoencoder import AutoencoderTrainConfig, PairAutoencoder, SwapNet, build_autoencoder, parameter_count
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


def swap_onnx_bytes(model: PairAutoencoder, opset: int = 17) -> bytes:
    """The A→B swap network as an ONNX graph (TorchScript exporter, ``dynamo=False``), dynamic batch."""
    net = SwapNet(model).eval()
    r = model.config.resolution
    dummy = torch.full((1, 3, r, r), 0.5)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (dummy,),
            buf,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


def compare_onnx(model: PairAutoencoder, onnx_bytes: bytes, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference between onnxruntime's and PyTorch's outputs on a random batch."""
    import onnxruntime as ort

    r = model.config.resolution
    x = np.random.default_rng(seed).random((batch, 3, r, r), dtype=np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in SwapNet(model).eval()(torch.from_numpy(x))]
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUT_NAMES), {INPUT_NAMES[0]: x})
    return float(max(np.abs(g - e).max() for g, e in zip(got, ref, strict=True)))


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
    ckpt = Path(checkpoint) if checkpoint is not None else out / "checkpoints" / "latest.pt"
    if not ckpt.is_file():
        raise InputError(f"{out}: no checkpoint to export ({ckpt} not found; train first)")
    state = load_checkpoint(ckpt, map_location="cpu")
    model, cfg = model_from_checkpoint(state)
    data = swap_onnx_bytes(model, opset)
    diff = compare_onnx(model, data)
    if not diff < TOLERANCE:
        raise ModelError(f"ONNX export differs from PyTorch by {diff:.2e} (limit {TOLERANCE:.0e})")
    onnx_path = out / ONNX_NAME
    atomic_write_bytes(onnx_path, data)
    sha = hashlib.sha256(data).hexdigest()
    meta = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "variant": cfg.model.variant,
        "resolution": cfg.model.resolution,
        "template": cfg.template,
        "onnx": ONNX_NAME,
        "sha256": sha,
        "inputs": list(INPUT_NAMES),
        "outputs": list(OUTPUT_NAMES),
        "steps": int(state["step"]),
        "faceset_a": cfg.faceset_a,
        "faceset_b": cfg.faceset_b,
        "config": cfg.to_dict(),
        "parameters": parameter_count(model),
        "trained": {
            "device": str(state.get("device", "")),
            "seconds": round(float(state.get("seconds", 0.0)), 1),
            "torch": str(state.get("torch", torch.__version__)),
        },
    }
    model_json = out / "model.json"
    atomic_write_bytes(model_json, (json.dumps(meta, indent=2) + "\n").encode())
    return ExportResult(model_json, onnx_path, sha, diff, int(state["step"]))

"""User-supplied ONNX models (``--fid-onnx``, ``--lpips-onnx``): a feature extractor or a distance
model, run with onnxruntime on the CPU."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, ModelError
from ..models import file_sha256


@dataclass(frozen=True)
class OnnxModelSpec:
    """A user-supplied ONNX network and its input convention.

    The network takes NCHW float32 RGB (N = 1) of ``size`` = (height, width), with pixel values
    ``(rgb / 255 − mean) / std`` per channel; images are resized bilinearly to ``size``. Anything left
    ``None`` here is read from a sidecar ``MODEL.json`` beside the file (keys ``size``, ``mean``,
    ``std``), then from the graph's static input shape (size only); mean/std default to 0 and 1
    (inputs in [0, 1]). A feature model has one input and its first output, flattened, is the feature
    vector; a distance model (LPIPS-style) has two inputs (output image, reference image) and the
    mean of its first output is the distance.
    """

    path: Path
    size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


class OnnxImageModel:
    """Runs a user-supplied ONNX model (see :class:`OnnxModelSpec`) with onnxruntime on the CPU."""

    def __init__(self, spec: OnnxModelSpec | str | os.PathLike[str], inputs: int) -> None:
        spec = spec if isinstance(spec, OnnxModelSpec) else OnnxModelSpec(Path(spec))
        path = Path(spec.path)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(
                "onnxruntime is needed for --fid-onnx/--lpips-onnx (pip install onnxruntime)"
            ) from None
        side: dict[str, Any] = {}
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            try:
                side = json.loads(sidecar.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(f"{sidecar}: not readable JSON ({exc})") from None
        try:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InputError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        ins = self.session.get_inputs()
        if len(ins) != inputs:
            what = (
                "a feature extractor (one image input)"
                if inputs == 1
                else "a distance model (two image inputs)"
            )
            raise InputError(f"{path}: has {len(ins)} inputs; expected {what}")
        self.input_names = [i.name for i in ins]
        self.path = path
        self.sha256 = file_sha256(path)
        size = spec.size or (tuple(side["size"]) if "size" in side else None)
        shape = ins[0].shape
        static = (
            (int(shape[2]), int(shape[3]))
            if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int)
            else None
        )
        if len(shape) == 4 and isinstance(shape[1], int) and shape[1] != 3:
            raise InputError(f"{path}: input has {shape[1]} channels; expected NCHW RGB (3)")
        if size is None:
            size = static
        if size is None:
            raise InputError(
                f"{path}: input size is dynamic; declare it (e.g. --fid-size 299 or sidecar 'size')"
            )
        if static is not None and tuple(size) != static:
            raise InputError(f"{path}: declared size {tuple(size)} differs from the model's input {static}")
        self.size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.mean = np.asarray(spec.mean or side.get("mean", (0.0, 0.0, 0.0)), np.float32).reshape(3, 1, 1)
        self.std = np.asarray(spec.std or side.get("std", (1.0, 1.0, 1.0)), np.float32).reshape(3, 1, 1)
        if (self.std == 0).any():
            raise InputError(f"{path}: std must not be zero")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.path.name} (sha256 {self.sha256[:12]}…)"

    def describe(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "input_size_hw": list(self.size),
            "mean": self.mean.ravel().tolist(),
            "std": self.std.ravel().tolist(),
        }

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        h, w = self.size
        img = rgb if rgb.shape[:2] == (h, w) else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
        x = img.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
        return ((x - self.mean) / self.std)[None].astype(np.float32)

    def features(self, rgb: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_names[0]: self.preprocess(rgb)})[0]
        return np.asarray(out, np.float64).ravel()

    def distance(self, rgb: np.ndarray, reference: np.ndarray) -> float:
        feeds = {self.input_names[0]: self.preprocess(rgb), self.input_names[1]: self.preprocess(reference)}
        return float(np.mean(self.session.run(None, feeds)[0]))

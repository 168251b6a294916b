"""dlib's face-recognition ResNet as an ONNX graph run by onnxruntime (no dlib, no torch at run time).

The graph is built with ``onnx.helper`` straight from the weights :mod:`masquerade.identity.dlibnet` reads out
of dlib's ``.dat`` file and is cached in the user cache (keyed by the file's sha256). It reproduces
dlib's ``anet_type`` exactly:

* input: 150×150 RGB ``uint8`` chips, batched (N×150×150×3, as ``dlib.get_face_chip`` returns them);
  dlib's ``input_rgb_image_sized<150>`` feeds ``(pixel − average colour) / 256`` per channel, with the
  average colour stored in the file (≈ 122.8, 117.0, 104.3);
* every ``affine`` (frozen batch-norm) is folded into the convolution below it (exact up to float
  rounding);
* dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the larger one (more
  channels after a down-sampling block; in the 8→4 px block the strided branch is 3×3 and the pooled
  shortcut 4×4, so the sum is 4×4 with the 3×3 map in the top-left corner) — done with ``Pad`` here;
* output: the 128-d descriptor of ``fc_no_bias`` (``loss_metric`` returns it unnormalised).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import atomic_write_bytes
from ..models import file_sha256
from . import dlibnet
from .dlibnet import DlibNet, cache_path

log = logging.getLogger(__name__)

#: bump when the generated graph changes (invalidates cached .onnx files)
BUILD_VERSION = 1
OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"


# ------------------------------------------------------------------------------------------ build


def build_model(net: DlibNet, opset: int = OPSET) -> Any:
    """The ONNX ``ModelProto`` for ``net``: uint8 N×H×W×3 RGB chips → float32 N×D descriptors."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError("building the ONNX face model needs the 'onnx' package (pip install onnx)") from exc

    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}_{count[0]}"

    def const(prefix: str, arr: np.ndarray) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = name(prefix)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    nr, nc = net.input_size
    shapes = net.shapes()
    ops = net.ops
    x = node("Transpose", [INPUT_NAME], "nchw_u8", perm=[0, 3, 1, 2])
    x = node("Cast", [x], "to_float", to=TensorProto.FLOAT)
    avg = net.avg_rgb.astype(np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", [x, const("avg_rgb", avg)], "centre")
    x = node("Mul", [x, const("inv256", np.array(net.input.attrs["scale"], np.float32))], "scale")

    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    cur_shape = shapes[0]
    i = 1
    while i < len(ops):
        op = ops[i]
        a = op.attrs
        if op.kind == "conv":
            w = op.arrays["weight"].astype(np.float64)
            b = op.arrays["bias"].astype(np.float64)
            if i + 1 < len(ops) and ops[i + 1].kind == "affine":  # fold the frozen batch-norm
                g = ops[i + 1].arrays["gamma"].astype(np.float64)
                w = w * g[:, None, None, None]
                b = b * g + ops[i + 1].arrays["beta"].astype(np.float64)
                i += 1
            py, px = a["pad"]
            x = node(
                "Conv",
                [x, const("w", w.astype(np.float32)), const("b", b.astype(np.float32))],
                "conv",
                kernel_shape=list(w.shape[2:]),
                strides=list(a["stride"]),
                pads=[py, px, py, px],
            )
        elif op.kind == "affine":
            g = op.arrays["gamma"].reshape(1, -1, 1, 1)
            x = node("Mul", [x, const("gamma", g)], "affine_mul")
            x = node("Add", [x, const("beta", op.arrays["beta"].reshape(1, -1, 1, 1))], "affine_add")
        elif op.kind == "relu":
            x = node("Relu", [x], "relu")
        elif op.kind in ("max_pool", "avg_pool"):
            if a["size"][0] == 0:
                x = node("GlobalMaxPool" if op.kind == "max_pool" else "GlobalAveragePool", [x], "gpool")
            else:
                py, px = a["pad"]
                if op.kind == "avg_pool" and (py or px):
                    raise NotImplementedError("padded avg_pool is not used by dlib's anet_type")
                x = node(
                    "MaxPool" if op.kind == "max_pool" else "AveragePool",
                    [x],
                    op.kind,
                    kernel_shape=list(a["size"]),
                    strides=list(a["stride"]),
                    pads=[py, px, py, px],
                )
        elif op.kind == "tag":
            tags[a["id"]] = (x, shapes[i - 1])
        elif op.kind == "skip":
            x = tags[a["id"]][0]
        elif op.kind == "add_prev":
            other, oshape = tags[a["id"]]
            cshape = shapes[i - 1]
            target = shapes[i]
            terms = []
            for t, s in ((x, cshape), (other, oshape)):
                if s != target:
                    pads = [0, 0, 0, 0, 0, target[0] - s[0], target[1] - s[1], target[2] - s[2]]
                    t = node("Pad", [t, const("pads", np.array(pads, np.int64))], "zero_pad")
                terms.append(t)
            x = node("Add", terms, "add_prev")
        elif op.kind == "fc":
            x = node("Flatten", [x], "flatten", axis=1)
            x = node("MatMul", [x, const("fc_w", op.arrays["weight"])], "fc")
            if "bias" in op.arrays:
                x = node("Add", [x, const("fc_b", op.arrays["bias"])], "fc_bias")
        else:
            raise NotImplementedError(op.kind)
        cur_shape = shapes[i]
        i += 1

    nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", nr, nc, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", cur_shape[0]])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="masquerade",
        doc_string=f"dlib anet_type from sha256 {net.sha256} (masquerade.identity.onnx_net v{BUILD_VERSION})",
    )
    model.ir_version = 8  # readable by onnxruntime ≥ 1.10
    onnx.checker.check_model(model)
    return model


def onnx_path(dat_path: str | os.PathLike[str] | None = None, use_cache: bool = True) -> Path | bytes:
    """Path of the cached ONNX file for ``dat_path`` (built and cached on first use).

    Returns the serialized model bytes instead when the cache cannot be written.
    """
    if dat_path is None:
        from ..models import get_model

        dat_path = get_model("dlib-resnet-128").path()
    sha = file_sha256(dat_path)
    path = cache_path(sha, f"-onnx{BUILD_VERSION}.onnx")
    if use_cache and path.is_file():
        return path
    t0 = time.perf_counter()
    net = dlibnet.load(dat_path, use_cache=use_cache)
    data = build_model(net).SerializeToString()
    log.info("built ONNX model for %s in %.0f ms", dat_path, 1e3 * (time.perf_counter() - t0))
    if not use_cache:
        return data
    try:
        atomic_write_bytes(path, data)
        return path
    except OSError as exc:
        log.warning("could not cache the ONNX model at %s: %s", path, exc)
        return data


def default_threads() -> int:
    """Intra-op threads: ``$MASQUERADE_THREADS`` if set, else the CPU count capped at 8."""
    env = os.environ.get("MASQUERADE_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(8, n))


class OnnxFaceEncoder:
    """dlib's 128-d face descriptor computed by onnxruntime on the CPU.

    ``embed_chips`` takes aligned 150×150 RGB uint8 chips (one H×W×3 array, a N×H×W×3 array or a list
    of arrays) and returns float32 N×128 descriptors equal to ``dlib.face_recognition_model_v1``'s.
    """

    def __init__(
        self,
        dat_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        use_cache: bool = True,
        max_batch: int = 64,
    ) -> None:
        import onnxruntime as ort

        t0 = time.perf_counter()
        src = onnx_path(dat_path, use_cache=use_cache)
        from ..swappers.aligned import no_spinning

        so = no_spinning(ort.SessionOptions())
        so.intra_op_num_threads = threads or default_threads()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(src) if isinstance(src, Path) else src, so, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged cache file: rebuild in memory (onnxruntime raises its own types)
            if not isinstance(src, Path):
                raise
            log.warning("cached ONNX model %s unusable (%s); rebuilding", src, exc)
            data = onnx_path(dat_path, use_cache=False)
            with contextlib.suppress(OSError):
                atomic_write_bytes(src, data)  # type: ignore[arg-type]
            self._session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self.size = (int(inp.shape[1]), int(inp.shape[2]))
        self.dim = int(self._session.get_outputs()[0].shape[1])
        self.max_batch = max_batch
        self.threads = so.intra_op_num_threads
        log.debug(
            "ONNX face encoder ready in %.0f ms (%d threads)", 1e3 * (time.perf_counter() - t0), self.threads
        )

    def _batch(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        if isinstance(chips, np.ndarray) and chips.ndim == 4:
            arr = chips
        elif isinstance(chips, np.ndarray) and chips.ndim == 3:
            arr = chips[None]
        else:
            arr = np.stack([np.asarray(c) for c in chips]) if len(chips) else np.zeros((0, *self.size, 3))
        if arr.shape[1:] != (*self.size, 3):
            raise InputError(f"face chips must be {self.size[0]}×{self.size[1]}×3 RGB, got {arr.shape[1:]}")
        if arr.dtype != np.uint8:  # pixel values 0..255 in another dtype
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)

    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        arr = self._batch(chips)
        if len(arr) == 0:
            return np.zeros((0, self.dim), np.float32)
        outs = [
            self._session.run([OUTPUT_NAME], {INPUT_NAME: arr[i : i + self.max_batch]})[0]
            for i in range(0, len(arr), self.max_batch)
        ]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        return self.embed_chips(chip[None] if chip.ndim == 3 else chip)[0]

    def close(self) -> None:
        self._session = None

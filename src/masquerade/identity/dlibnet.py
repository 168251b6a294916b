"""A pure numpy reader for dlib's serialized face-recognition ResNet (``anet_type``).

dlib writes a network with its own serialization (``dlib/serialize.h``, ``dlib/dnn/*.h``):

* integers: one control byte (low 4 bits = number of magnitude bytes that follow, bit 7 = sign,
  bits 4–6 reserved and zero) then the magnitude, little-endian;
* floats: a ``float_details`` pair (int64 mantissa, int16 exponent) in that integer encoding; the value
  is ``mantissa · 2**exponent`` (exponents 32000/32001/32002 mean +inf/−inf/NaN);
* strings: integer length then the bytes; bools: the characters ``'1'``/``'0'``;
* tensors: version, then (num_samples, k, nr, nc), then the values — as dlib floats (version 1) or as
  raw little-endian float32 (version 2, which the shipped model uses);
* the network nests like its C++ type: ``add_loss_layer`` writes its version, the loss details, then its
  subnetwork; every ``add_layer`` writes its version and *its subnetwork first*, then its own details
  and bookkeeping; ``tag``/``skip`` layers write only a version and their subnetwork. So the stream holds
  all wrapper versions outermost-first, then the input layer, then each computational layer's details
  from the input upwards.

Tags and skips carry no id in the stream, so the reader checks the stream against the C++ type of
dlib's face-recognition network (``examples/dnn_face_recognition_ex.cpp``), written out below as
:func:`anet_structure`. The result, :class:`DlibNet`, is a flat list of :class:`Op` in data-flow order
(input first) that both the ONNX builder (:mod:`masquerade.identity.onnx_net`) and the PyTorch module
(:mod:`masquerade.identity.torch_net`) interpret.

Parsed weights are cached as ``.npz`` in :func:`cache_dir` keyed by the file's sha256.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..files import atomic_write_bytes

log = logging.getLogger(__name__)

#: bump when the parsed representation changes (invalidates cached .npz / .onnx files)
FORMAT_VERSION = 1

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibFormatError(ModelError):
    """The file is not a dlib network of the expected type, or is damaged."""


# ------------------------------------------------------------------------------------- cache dir


def cache_dir() -> Path:
    """``$MASQUERADE_CACHE`` if set, else ``~/.cache/masquerade`` (not created here)."""
    env = os.environ.get("MASQUERADE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "masquerade"


# ----------------------------------------------------------------------------------- dlib floats


def decode_floats(buf: np.ndarray, start: int, count: int) -> tuple[np.ndarray, int]:
    """Decode ``count`` consecutive dlib floats from ``buf`` (uint8) at ``start``.

    Returns (float64 values, end offset). Fully vectorised: every byte that could start a float (valid
    mantissa and exponent control bytes) is a node pointing at the next float's start; the chain from
    ``start`` is then followed by pointer doubling (log2(count) numpy gathers over the candidates).
    """
    if count == 0:
        return np.zeros(0, np.float64), start
    hi = min(len(buf), start + 12 * count)  # at most 1+8 mantissa bytes and 1+2 exponent bytes
    n = hi - start
    seg = np.zeros(n + 16, np.uint8)  # zero tail: reads past the end need no bounds checks
    seg[:n] = buf[start:hi]
    low = seg & np.uint8(0x0F)
    # mantissa control byte: reserved bits clear, at most 8 bytes
    cand = np.flatnonzero(((seg[:n] & np.uint8(0x70)) == 0) & (low[:n] <= 8))
    p2 = cand + 1 + low[cand]  # exponent control byte
    inside = p2 < n
    cand, p2 = cand[inside], p2[inside]
    c2 = seg[p2]
    good = ((c2 & np.uint8(0x70)) == 0) & ((c2 & np.uint8(0x0F)) <= 2)
    cand, p2, c2 = cand[good], p2[good], c2[good]
    if len(cand) == 0 or cand[0] != 0:
        raise DlibFormatError(f"no dlib float at offset {start}")
    ends = p2 + 1 + (c2 & np.uint8(0x0F))
    # the next float's start as a candidate index (sentinel m when it is not a candidate)
    m = len(cand)
    nxt = np.searchsorted(cand, ends)
    hit = nxt < m
    hit[hit] = cand[nxt[hit]] == ends[hit]
    jump = np.append(np.where(hit, nxt, m), m)  # the sentinel points at itself
    chain = np.zeros(1, np.intp)
    while len(chain) < count:  # chain[i] is float i; each round doubles the known prefix
        chain = np.concatenate([chain, jump[chain]])
        if len(chain) < count:
            jump = jump[jump]
    chain = chain[:count]
    if chain[-1] >= m:
        raise DlibFormatError(f"dlib float run at offset {start} is broken")
    p, q = cand[chain], p2[chain]
    c1, k1 = seg[p], low[p]
    kmax = int(k1.max())
    mant: np.ndarray = np.zeros(count, np.uint64 if kmax > 6 else np.int64)  # 6 bytes fit int64 exactly
    for j in range(kmax):
        b = seg[p + (1 + j)].astype(mant.dtype)
        b[k1 <= j] = 0
        mant |= b << mant.dtype.type(8 * j)
    c2 = seg[q]
    k2 = c2 & np.uint8(0x0F)
    ex = np.zeros(count, np.int64)
    for j in range(int(k2.max())):
        b = seg[q + (1 + j)].astype(np.int64)
        b[k2 <= j] = 0
        ex |= b << (8 * j)
    np.negative(ex, out=ex, where=c2 >= 0x80)
    mf = mant.astype(np.float64)
    np.negative(mf, out=mf, where=c1 >= 0x80)
    special = ex >= _INF
    vals = np.ldexp(mf, np.where(special, 0, ex).astype(np.int32))
    if special.any():
        vals[ex == _INF] = np.inf
        vals[ex == _NINF] = -np.inf
        vals[ex == _NAN] = np.nan
    end = start + int(ends[chain[-1]])
    return vals, end


def _encode_ints(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's signed integer encoding of int64 values: (bytes per value (uint8, ≤9 each), lengths)."""
    neg = v < 0
    mag = np.abs(v).astype(np.uint64)
    nbytes = np.ones(len(v), np.int64)
    for j in range(1, 8):
        nbytes += (mag >> np.uint64(8 * j)) > 0
    out = np.zeros((len(v), 9), np.uint8)
    out[:, 0] = nbytes.astype(np.uint8) | np.where(neg, 0x80, 0).astype(np.uint8)
    for j in range(8):
        out[:, 1 + j] = ((mag >> np.uint64(8 * j)) & np.uint64(0xFF)).astype(np.uint8)
    return out, nbytes + 1


def encode_floats(values: np.ndarray) -> bytes:
    """dlib's ``float_details`` serialization of float32 values (the inverse of :func:`decode_floats`).

    Used by the tests and the benchmark to build version-1 tensors; dlib itself writes version 2.
    """
    x = np.asarray(values, np.float32).astype(np.float64).ravel()
    finite = np.isfinite(x)
    m, e = np.frexp(np.where(finite, x, 0.0))
    mant = np.round(m * (1 << 24)).astype(np.int64)
    ex = (e - 24).astype(np.int64)
    for _ in range(8):  # shift off zero low-order bytes, as dlib does (arithmetic shift)
        z = (mant & 0xFF) == 0
        if not z.any():
            break
        mant = np.where(z, mant >> 8, mant)
        ex = np.where(z, ex + 8, ex)
    ex = np.where(np.isposinf(x), _INF, ex)
    ex = np.where(np.isneginf(x), _NINF, ex)
    ex = np.where(np.isnan(x), _NAN, ex)
    mant = np.where(finite, mant, 0)
    mb, ml = _encode_ints(mant)
    eb, el = _encode_ints(ex)
    rows = np.concatenate([mb, eb], axis=1)
    keep = np.concatenate([np.arange(9)[None, :] < ml[:, None], np.arange(9)[None, :] < el[:, None]], axis=1)
    return rows[keep].tobytes()


# ----------------------------------------------------------------------------------------- reader


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.arr = np.frombuffer(data, np.uint8)
        self.pos = 0

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{what} at byte {self.pos}")

    def int(self) -> int:
        d, p = self.data, self.pos
        if p >= len(d):
            raise self.fail("unexpected end of file")
        c = d[p]
        if c & 0x70:
            raise self.fail(f"bad integer control byte 0x{c:02x}")
        n = c & 0x0F
        if n > 8 or p + 1 + n > len(d):
            raise self.fail("bad integer length")
        v = int.from_bytes(d[p + 1 : p + 1 + n], "little")
        self.pos = p + 1 + n
        return -v if c & 0x80 else v

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail("old ASCII float format (not supported)")
        mant, ex = self.int(), self.int()
        if ex == _INF:
            return math.inf
        if ex == _NINF:
            return -math.inf
        if ex == _NAN:
            return math.nan
        return math.ldexp(mant, ex)

    def str(self) -> str:
        n = self.int()
        if n > 4096 or self.pos + n > len(self.data):
            raise self.fail("bad string length")
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s.decode("latin-1")

    def expect(self, *names: builtins.str) -> builtins.str:
        p = self.pos
        s = self.str()
        if s not in names:
            self.pos = p
            raise self.fail(f"expected {' or '.join(map(repr, names))}, found {s!r}")
        return s

    def bool(self) -> bool:
        c = self.data[self.pos : self.pos + 1]
        if c not in (b"0", b"1"):
            raise self.fail("bad bool")
        self.pos += 1
        return c == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        dims = tuple(self.int() for _ in range(4))
        count = int(np.prod(dims)) if all(d > 0 for d in dims) else 0
        if version == 2:
            nbytes = 4 * count
            if self.pos + nbytes > len(self.data):
                raise self.fail("tensor runs past the end of the file")
            vals = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
            self.pos += nbytes
        elif version == 1:
            v64, self.pos = decode_floats(self.arr, self.pos, count)
            vals = v64.astype(np.float32)
        else:
            raise self.fail(f"unknown tensor version {version}")
        return vals.reshape(dims) if count else np.zeros((0,), np.float32)

    def alias_tensor(self) -> tuple[builtins.int, builtins.int, builtins.int, builtins.int]:
        if self.int() != 1:
            raise self.fail("unknown alias_tensor version")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


# ------------------------------------------------------------------------------------ structure


def anet_structure() -> list[tuple[Any, ...]]:
    """dlib's face-recognition ``anet_type`` in data-flow order (input first), loss excluded.

    Entries: ("input",), ("con", filters, size, stride), ("affine",), ("relu",),
    ("max_pool", size, stride), ("avg_pool", size, stride) (size 0 = whole map), ("tag", id),
    ("skip", id), ("add_prev", id), ("fc_no_bias", outputs).
    """

    def block(n: int, stride: int) -> list[tuple[Any, ...]]:
        return [("con", n, 3, stride), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",)]

    def ares(n: int) -> list[tuple[Any, ...]]:
        return [("tag", 1), *block(n, 1), ("add_prev", 1), ("relu",)]

    def ares_down(n: int) -> list[tuple[Any, ...]]:
        return [
            ("tag", 1), *block(n, 2), ("tag", 2), ("skip", 1), ("avg_pool", 2, 2), ("add_prev", 2), ("relu",)
        ]  # fmt: skip

    s: list[tuple[Any, ...]] = [("input",), ("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    s += ares(32) * 3  # alevel4
    s += ares_down(64) + ares(64) * 3  # alevel3
    s += ares_down(128) + ares(128) * 2  # alevel2
    s += ares_down(256) + ares(256) * 2  # alevel1
    s += ares_down(256)  # alevel0
    s += [("avg_pool", 0, 1), ("fc_no_bias", 128)]
    return s


@dataclass
class Op:
    """One layer in data-flow order. ``arrays`` holds float32 weights; ``attrs`` plain values."""

    kind: str  # input | conv | affine | relu | max_pool | avg_pool | tag | skip | add_prev | fc
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib network: ops in data-flow order, with the loss settings and input geometry."""

    ops: list[Op]
    loss: dict[str, Any]
    sha256: str = ""
    source: str = ""

    @property
    def input(self) -> Op:
        return self.ops[0]

    @property
    def avg_rgb(self) -> np.ndarray:
        return self.ops[0].arrays["avg_rgb"]

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.ops[0].attrs["nr"]), int(self.ops[0].attrs["nc"])

    @property
    def out_dim(self) -> int:
        return int(self.ops[-1].arrays["weight"].shape[1])

    def shapes(self) -> list[tuple[int, int, int]]:
        """(channels, rows, cols) after every op, for one input sample."""
        return infer_shapes(self.ops)

    def num_params(self) -> int:
        return int(sum(a.size for op in self.ops for k, a in op.arrays.items() if k != "avg_rgb"))


def _pool_out(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def infer_shapes(ops: list[Op]) -> list[tuple[int, int, int]]:
    shapes: list[tuple[int, int, int]] = []
    tags: dict[int, tuple[int, int, int]] = {}
    cur = (3, 0, 0)
    for op in ops:
        a = op.attrs
        if op.kind == "input":
            cur = (3, int(a["nr"]), int(a["nc"]))
        elif op.kind == "conv":
            o, _i, kh, kw = op.arrays["weight"].shape
            cur = (
                o,
                _pool_out(cur[1], kh, a["stride"][0], a["pad"][0]),
                _pool_out(cur[2], kw, a["stride"][1], a["pad"][1]),
            )
        elif op.kind in ("max_pool", "avg_pool"):
            if a["size"][0] == 0:
                cur = (cur[0], 1, 1)
            else:
                cur = (
                    cur[0],
                    _pool_out(cur[1], a["size"][0], a["stride"][0], a["pad"][0]),
                    _pool_out(cur[2], a["size"][1], a["stride"][1], a["pad"][1]),
                )
        elif op.kind == "tag":
            tags[a["id"]] = cur
        elif op.kind == "skip":
            cur = tags[a["id"]]
        elif op.kind == "add_prev":
            t = tags[a["id"]]
            cur = (max(cur[0], t[0]), max(cur[1], t[1]), max(cur[2], t[2]))
        elif op.kind == "fc":
            cur = (op.arrays["weight"].shape[1], 1, 1)
        shapes.append(cur)
    return shapes


# ---------------------------------------------------------------------------------------- parsing


def _read_layer(r: _Reader, spec: tuple[Any, ...]) -> Op:
    kind = spec[0]
    if kind == "con":
        r.expect("con_4")
        params = r.tensor().ravel()
        nf, nr, nc = r.int(), r.int(), r.int()
        sy, sx, py, px = r.int(), r.int(), r.int(), r.int()
        fdims = r.alias_tensor()
        bdims = r.alias_tensor()
        for _ in range(4):
            r.float()  # learning-rate / weight-decay multipliers
        if (nf, nr, nc, sy) != (spec[1], spec[2], spec[2], spec[3]):
            raise r.fail(f"con_ is {nf}×{nr}×{nc}/{sy}, expected {spec[1]}×{spec[2]}×{spec[2]}/{spec[3]}")
        nw = int(np.prod(fdims))
        if fdims[0] != nf or params.size != nw + int(np.prod(bdims)):
            raise r.fail("con_ parameter sizes do not add up")
        return Op(
            "conv",
            {"stride": [sy, sx], "pad": [py, px]},
            {"weight": params[:nw].reshape(fdims).copy(), "bias": params[nw:].copy()},
        )
    if kind == "affine":
        version = r.expect("affine_", "bn_con2")
        params = r.tensor().ravel()
        if version == "affine_":
            g = r.alias_tensor()
            r.alias_tensor()
            mode = r.int()
            if mode != 0:
                raise r.fail("affine_ is not in CONV mode")
            c = int(np.prod(g))
            gamma, beta = params[:c], params[c : 2 * c]
        else:  # a batch-norm layer saved during training: fold its running statistics
            g = r.alias_tensor()
            r.alias_tensor()
            r.tensor(), r.tensor()  # means, invstds of the last batch
            rmean, rvar = r.tensor().ravel(), r.tensor().ravel()
            r.int(), r.int()  # num_updates, running_stats_window_size
            for _ in range(4):
                r.float()
            eps = r.float()
            c = int(np.prod(g))
            scale = params[:c].astype(np.float64) / np.sqrt(rvar.astype(np.float64) + eps)
            gamma = scale.astype(np.float32)
            beta = (params[c : 2 * c] - scale * rmean).astype(np.float32)
        return Op("affine", {}, {"gamma": gamma.copy(), "beta": beta.copy()})
    if kind == "relu":
        r.expect("relu_")
        return Op("relu")
    if kind in ("max_pool", "avg_pool"):
        r.expect(f"{kind}_2")
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        if (nr, sy) != (spec[1], spec[2]):
            raise r.fail(f"{kind} is {nr}/{sy}, expected {spec[1]}/{spec[2]}")
        return Op(kind, {"size": [nr, nc], "stride": [sy, sx], "pad": [py, px]})
    if kind == "add_prev":
        r.expect("add_prev_")
        return Op("add_prev", {"id": spec[1]})
    if kind == "fc_no_bias":
        r.expect("fc_2")
        nout, nin = r.int(), r.int()
        params = r.tensor().ravel()
        r.alias_tensor()
        r.alias_tensor()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        if nout != spec[1] or bias_mode != 1 or params.size != nin * nout:
            raise r.fail("fc_ layer does not match fc_no_bias<128>")
        return Op("fc", {}, {"weight": params.reshape(nin, nout).copy()})
    raise AssertionError(kind)


def parse_bytes(data: bytes) -> DlibNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat`` (or a retrained network of
    the same ``anet_type``)."""
    r = _Reader(data)
    if r.int() != 1:
        raise r.fail("unknown add_loss_layer version")
    lv = r.expect("loss_metric_", "loss_metric_2")
    loss: dict[str, Any] = {"type": "loss_metric", "margin": 0.1, "dist_thresh": 0.75}
    if lv == "loss_metric_2":
        loss["margin"] = r.float()
        loss["dist_thresh"] = r.float()

    spec = anet_structure()
    wrappers = spec[1:]  # data order; the stream holds them outermost (last) first
    versions: dict[int, int] = {}
    for i in range(len(wrappers) - 1, -1, -1):
        v = r.int()
        kind = wrappers[i][0]
        if kind in ("tag", "skip"):
            ok = v == 1
        elif i == 0:  # add_layer directly over the input layer
            ok = v in (2, 3)
        else:
            ok = v in (1, 2)
        if not ok:
            raise r.fail(f"unexpected version {v} for {kind} layer #{i} (is this dlib's face ResNet?)")
        versions[i] = v

    iv = r.expect("input_rgb_image_sized", "input_rgb_image")
    avg = np.array([r.float(), r.float(), r.float()], np.float32)
    nr = nc = 150
    if iv == "input_rgb_image_sized":
        nr, nc = r.int(), r.int()
    ops = [Op("input", {"nr": nr, "nc": nc, "scale": 1 / 256}, {"avg_rgb": avg})]

    for i, w in enumerate(wrappers):
        if w[0] in ("tag", "skip"):
            ops.append(Op(w[0], {"id": w[1]}))
            continue
        ops.append(_read_layer(r, w))
        r.bool(), r.bool(), r.bool()  # setup called, gradient stale, outputs disabled
        r.tensor(), r.tensor()  # x_grad, cached_output
        if i == 0:
            r.tensor()  # grad_final
            if versions[i] >= 3:
                r.int()  # sample_expansion_factor
        elif versions[i] == 2:
            r.tensor()  # params_grad
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unread bytes at the end")
    return DlibNet(ops, loss)


# ------------------------------------------------------------------------------------ npz cache


def _to_npz(net: DlibNet, path: Path) -> None:
    arrays = {f"{i}/{k}": a for i, op in enumerate(net.ops) for k, a in op.arrays.items()}
    meta = {
        "format": FORMAT_VERSION,
        "sha256": net.sha256,
        "loss": net.loss,
        "ops": [{"kind": op.kind, "attrs": op.attrs} for op in net.ops],
    }
    import io

    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _from_npz(path: Path) -> DlibNet:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        if meta.get("format") != FORMAT_VERSION:
            raise DlibFormatError("cached weights use another format version")
        ops = [Op(o["kind"], o["attrs"]) for o in meta["ops"]]
        for key in z.files:
            if key != "__meta__":
                i, name = key.split("/", 1)
                ops[int(i)].arrays[name] = z[key]
    return DlibNet(ops, meta["loss"], sha256=meta["sha256"])


def cache_path(sha256: str, suffix: str) -> Path:
    return cache_dir() / "dlib-resnet" / f"{sha256[:24]}-v{FORMAT_VERSION}{suffix}"


def load(path: str | os.PathLike[str] | None = None, use_cache: bool = True) -> DlibNet:
    """Parse a dlib face-recognition network (default: the registry's ``dlib-resnet-128``).

    With ``use_cache`` the parsed weights are read from / written to the user cache, keyed by the
    file's sha256; a cache that cannot be written only costs a warning.
    """
    if path is None:
        from ..models import get_model

        path = get_model("dlib-resnet-128").path()
    t0 = time.perf_counter()
    data = Path(path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cp = cache_path(sha, ".npz")
    if use_cache and cp.is_file():
        try:
            net = _from_npz(cp)
            net.source = str(path)
            log.debug("dlib net %s from cache %s in %.1f ms", path, cp, 1e3 * (time.perf_counter() - t0))
            return net
        except (OSError, ValueError, KeyError, DlibFormatError) as exc:
            log.warning("ignoring unreadable cache %s: %s", cp, exc)
    net = parse_bytes(data)
    net.sha256, net.source = sha, str(path)
    log.debug("parsed dlib net %s in %.1f ms", path, 1e3 * (time.perf_counter() - t0))
    if use_cache:
        try:
            _to_npz(net, cp)
        except OSError as exc:
            log.warning("could not write cache %s: %s", cp, exc)
    return net

"""Evaluation suite: run swappers over a benchmark of (source, target) pairs and measure the results.

Used by ``masquerade evaluate``; every function is usable from Python too::

    from masquerade.evaluation.suite import evaluate, load_benchmark, write_report
    bench = load_benchmark("lfw_swap_v1", "../shared/data/lfw")
    reports = evaluate(["mesh3d", "none"], bench)
    write_report(reports, "report/", benchmark=bench)

**Benchmark files** are tab-separated text, ``#`` comment lines and an optional header row, one pair
per row: ``kind  source  target  [source_other  [source_id  [target_id]]]``. ``kind`` is ``swap`` (a
different person's face is put onto the target) or ``self`` (source and target show the same person;
with source = target = one photo, the output can be compared with the target pixel by pixel).
``source_other`` is another photo of the source person (``-`` for none): the output shares pixels with
the source photo, so distance to another photo of that person is the fairer identity test. Ids name
people; without them each distinct source path is its own identity. A row ``gallery  photo  -  -  id``
adds a photo of a further identity (or of a source's) to the retrieval galleries without swapping it:
distractors, so that retrieval means something when few people are swapped (e.g. a trained
autoencoder, which has one identity). Relative paths resolve against a
root folder (``--root``; by default the pairs file's own folder). The shipped benchmark
``lfw_swap_v1`` (``data/benchmarks/lfw_swap_v1.tsv``, built by ``scripts/make_lfw_benchmark.py
--seed 0``) has 100 swap pairs of 200 distinct LFW people, each source person with a second photo,
and 50 self pairs of 50 further people; its paths are relative to LFW's ``images/`` folder.

**Swappers** are named through the registry (:data:`masquerade.swappers.SWAPPERS`, run through
:class:`~masquerade.pipeline.FaceSwapper` with a :class:`~masquerade.pipeline.SwapOptions`) or are one
of the reference baselines: ``none`` (output = target unchanged: what no swap scores) and ``source``
(output = the source photo itself: the identity ceiling, with the source's pose and expression).

**Metrics**, measured with one :class:`~masquerade.analysis.analyzer.FaceAnalyzer` (mediapipe mesh + dlib
128-d identity) on the largest face of source and target and, in the output, the face overlapping the
target face (IoU ≥ 0.3):

* identity: cosine similarity and euclidean distance of the output embedding to the source, to the
  target and to the source's other photo; *closer to source* when d(out, src) < d(out, tgt);
* retrieval: the output's rank among all distinct source identities of the benchmark's swap pairs
  (plus the identities of its ``gallery`` rows)
  (an identity's distance is the minimum over its photos; ties rank in the output's favour only when
  exactly equal), top-1 and top-5; once with the source photos as gallery and once with the other
  photos of the source people;
* pose error: ``|Δyaw|, |Δpitch|, |Δroll|`` output vs target (degrees, wrapped), and their mean;
* expression error: mediapipe meshes of output and target are brought into the canonical frame
  (:meth:`CanonicalMesh.normalised`: pose, scale and position removed; divided by the inter-ocular
  distance), the 68-point brows, eyes and mouth are taken in x/y, each of the five regions is centred
  on its own centroid (which removes where a feature sits — identity proportions — and keeps its
  shape: opening, curvature), and the mean point distance is reported in inter-ocular distances;
  ``expr_measures_err`` is the mean absolute difference of :meth:`CanonicalMesh.expression`'s eight
  measures;
* self pairs: SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, on BT.601
  luma, mean over the map without the 5-pixel border, no downsampling) and PSNR (all channels, 8-bit
  peak; identical images give infinity, stored as :data:`PSNR_CAP` dB) of output vs target, over the
  whole image and within the target face box enlarged by 10 %;
* Fréchet distance on identity features: ``|μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)`` between the dlib
  embeddings of the swap pairs' outputs and those of the distinct source photos. This is a Fréchet
  distance on dlib identity features, **not** FID; with ~100 samples in 128 dimensions it is biased
  upwards and only comparable between runs with the same n;
* optional, only with a user-supplied ONNX file (:class:`OnnxImageModel`): a Fréchet distance over that
  model's features (outputs of swap pairs vs the distinct targets) and an LPIPS-style distance (self
  pairs, output vs target). Both are labelled with the model's file name and sha256; they are a
  standard FID / LPIPS only if the file is the standard network;
* video (:func:`evaluate_video`): landmark jitter and colour flicker of the swapped clip against the
  input clip (:mod:`masquerade.video.temporal`).

**Failures**: a pair whose swap raises :class:`MasqueradeError` (or ``ValueError``), or whose output
(or target) has no face where the target face was, is a failure: it counts as *not closer* and as a
retrieval miss in the rates (whose denominator is every pair of that kind), has no value in the
continuous metrics (whose ``n`` is reported), and is listed with its reason. Unreadable input files
raise :class:`InputError` before any swap is run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..analysis.landmarks import MESH_TO_68
from ..errors import InputError, MasqueradeError, ModelError, OutputError
from ..face import Face
from ..identity.encoder import cosine_similarity, euclidean_distance
from ..imageio import atomic_write_bytes, load_image
from ..models import file_sha256
from ..pipeline import FaceSwapper, SwapOptions

log = logging.getLogger(__name__)

PairKind = Literal["swap", "self"]
PAIR_KINDS: tuple[str, ...] = ("swap", "self")
GALLERY_KIND = "gallery"  # a benchmark row adding a photo to the retrieval galleries only
BASELINES: dict[str, str] = {
    "none": "baseline: output = target unchanged",
    "source": "baseline: output = the source photo itself",
}
BENCHMARKS_PACKAGE = "data/benchmarks"
PSNR_CAP = 100.0  # dB stored for identical images (PSNR is infinite there)
OUTPUT_IOU = 0.3  # minimum box overlap between the output face and the target face
FACE_BOX_MARGIN = 0.10  # the SSIM/PSNR face box is the target face box enlarged by this fraction
TOP_K = 5
# 68-point regions whose shape carries the expression: brows, eyes, outer+inner lips
EXPRESSION_REGIONS: tuple[tuple[int, int], ...] = ((17, 22), (22, 27), (36, 42), (42, 48), (48, 68))

ProgressFn = Callable[[str, int, int], None]


# ============================================================================================ metrics


def _luma(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, np.float64)
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] >= 3:
        return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    if a.ndim == 3 and a.shape[2] == 1:
        return a[..., 0]
    raise ValueError(f"expected an H×W or H×W×3 image, got shape {a.shape}")


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5, win: int = 11) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) of two images' luma.

    Gaussian-weighted local statistics (``win``×``win`` window, ``sigma``), population variances,
    C1 = (0.01·L)², C2 = (0.03·L)²; the map is averaged without the ``win // 2`` border where the
    window would leave the image. Colour images are reduced to BT.601 luma first. 1.0 for identical
    images; lower as structure, contrast or brightness differ.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    x, y = _luma(a), _luma(b)
    if min(x.shape) < win:
        raise ValueError(f"images of {x.shape[1]}×{x.shape[0]} pixels are smaller than the {win}-px window")

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (win, win), sigma, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    p = win // 2
    return float(m[p:-p, p:-p].mean())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (``inf`` for identical images)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"image shapes differ: {np.shape(a)} vs {np.shape(b)}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mse))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    ``|μa − μb|² + tr(Σa + Σb − 2·sqrtm(Σa·Σb))`` with unbiased covariances, as in FID; a tiny ridge
    is added when the product is singular, and the imaginary round-off of ``sqrtm`` is dropped.
    """
    from scipy import linalg

    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be n×d with equal d, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each feature set needs at least two samples")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(len(sa))
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    d = float(diff @ diff + np.trace(sa) + np.trace(sb) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def retrieval_rank(query: np.ndarray, gallery: Mapping[str, Sequence[np.ndarray]], true_id: str) -> int:
    """1-based rank of ``true_id`` when the gallery identities are sorted by euclidean distance to
    ``query`` (an identity's distance is the minimum over its embeddings). Identities exactly as far
    as the true one do not push it down. Raises ``KeyError`` if ``true_id`` is not in the gallery."""
    dist = {k: min(euclidean_distance(query, e) for e in v) for k, v in gallery.items() if len(v)}
    own = dist[true_id]
    return 1 + sum(d < own for k, d in dist.items() if k != true_id)


def pose_error(out: Face, target: Face) -> np.ndarray | None:
    """``|Δyaw|, |Δpitch|, |Δroll|`` in degrees, wrapped to [0, 180] (None without a pose)."""
    if out.pose is None or target.pose is None:
        return None
    d = out.pose.as_array() - target.pose.as_array()
    return np.abs((d + 180.0) % 360.0 - 180.0)


def expression_error(out: Face, target: Face, canonical: Any) -> float | None:
    """Mean distance (inter-ocular distances) between the region-centred, pose-normalised brows, eyes
    and mouth of two faces (see the module docstring); None without meshes."""
    if out.mesh is None or target.mesh is None:
        return None
    idx = np.asarray(MESH_TO_68)
    pts = []
    for mesh in (out.mesh, target.mesh):
        n = canonical.normalised(mesh)
        iod = float(np.linalg.norm(n[263, :2] - n[33, :2])) or 1.0
        pts.append(n[idx, :2] / iod)
    dists = []
    for lo, hi in EXPRESSION_REGIONS:
        a, b = pts[0][lo:hi], pts[1][lo:hi]
        dists.append(np.linalg.norm((a - a.mean(0)) - (b - b.mean(0)), axis=1))
    return float(np.concatenate(dists).mean())


def expression_measures_error(out: Face, target: Face) -> float | None:
    keys = sorted(set(out.expression) & set(target.expression))
    if not keys:
        return None
    return float(np.mean([abs(out.expression[k] - target.expression[k]) for k in keys]))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def face_crop_box(
    box: np.ndarray, shape: tuple[int, ...], margin: float = FACE_BOX_MARGIN
) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1) / 2, margin * (y2 - y1) / 2
    h, w = shape[:2]
    xa, ya = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    xb, yb = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    return slice(ya, yb), slice(xa, xb)


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    """``n``, ``mean``, ``median``, ``std`` of the values that exist."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"n": 0, "mean": None, "median": None, "std": None}
    return {"n": len(v), "mean": float(np.mean(v)), "median": float(np.median(v)), "std": float(np.std(v))}


# ============================================================================= user-supplied ONNX models


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


# =========================================================================================== benchmarks


@dataclass(frozen=True)
class PairSpec:
    """One benchmark row. ``source_name``/``target_name`` are the paths as written in the file."""

    index: int
    kind: PairKind
    source: Path
    target: Path
    source_other: Path | None = None
    source_id: str = ""
    target_id: str = ""
    source_name: str = ""
    target_name: str = ""
    line: int = 0


@dataclass(frozen=True)
class GalleryEntry:
    """A ``gallery`` row: one photo of ``identity`` for the retrieval galleries (not swapped)."""

    identity: str
    path: Path
    line: int = 0


@dataclass(frozen=True)
class Benchmark:
    name: str
    path: Path | None
    sha256: str | None
    root: Path | None
    pairs: list[PairSpec]
    gallery: list[GalleryEntry] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(p.kind == k for p in self.pairs) for k in PAIR_KINDS}

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "file": None if self.path is None else str(self.path),
            "sha256": self.sha256,
            "root": None if self.root is None else str(self.root),
            "pairs": self.counts(),
        }
        if self.gallery:
            d["gallery_photos"] = len(self.gallery)
            d["gallery_identities"] = len({g.identity for g in self.gallery})
        return d


def shipped_benchmarks() -> list[str]:
    folder = resources.files("masquerade") / BENCHMARKS_PACKAGE
    try:
        return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".tsv"))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _resolve(text: str, root: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else root / p


def load_pairs(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, name: str | None = None
) -> Benchmark:
    """Read a pairs file (format in the module docstring); relative paths resolve against ``root``
    (default: the file's folder). Raises :class:`InputError` naming the file and line on a malformed
    row, and listing missing image files."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such pairs file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the pairs file ({exc})") from None
    base = Path(root) if root is not None else p.parent
    if not base.is_dir():
        raise InputError(f"{base}: root folder does not exist")
    pairs: list[PairSpec] = []
    gallery: list[GalleryEntry] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text), delimiter="\t"), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if cells[0].lower() == "kind":
            continue
        if len(cells) < 3 or len(cells) > 6:
            raise InputError(
                f"{p}:{lineno}: expected 3 to 6 tab-separated columns "
                "(kind, source, target[, source_other, source_id, target_id]), got {len(cells)}"
            )
        cells += [""] * (6 - len(cells))
        kind, src, tgt, other, sid, tid = cells
        if kind == GALLERY_KIND:
            if not src:
                raise InputError(f"{p}:{lineno}: empty gallery photo path")
            gallery.append(GalleryEntry(sid if sid not in ("", "-") else src, _resolve(src, base), lineno))
            continue
        if kind not in PAIR_KINDS:
            raise InputError(f"{p}:{lineno}: kind must be 'swap', 'self' or 'gallery', got {kind!r}")
        if not src or not tgt:
            raise InputError(f"{p}:{lineno}: empty source or target path")
        sid = sid if sid not in ("", "-") else src
        tid = tid if tid not in ("", "-") else (sid if kind == "self" else tgt)
        pairs.append(
            PairSpec(
                index=len(pairs), kind=kind,  # type: ignore[arg-type]
                source=_resolve(src, base), target=_resolve(tgt, base),
                source_other=None if other in ("", "-") else _resolve(other, base),
                source_id=sid, target_id=tid, source_name=src, target_name=tgt, line=lineno,
            )
        )  # fmt: skip
    if not pairs:
        raise InputError(f"{p}: no pairs in the file")
    missing = sorted(
        {
            str(q)
            for pr in pairs
            for q in (pr.source, pr.target, pr.source_other)
            if q is not None and not q.is_file()
        }
        | {str(g.path) for g in gallery if not g.path.is_file()}
    )
    if missing:
        raise InputError(
            f"{p}: {len(missing)} image file(s) missing under {base}, first: {missing[0]}"
            + (" (is --lfw/--root the right folder?)" if len(missing) > 1 else "")
        )
    return Benchmark(
        name=name or p.stem, path=p, sha256=file_sha256(p), root=base, pairs=pairs, gallery=gallery
    )


def load_benchmark(
    name_or_path: str | os.PathLike[str], lfw_root: str | os.PathLike[str] | None = None
) -> Benchmark:
    """A shipped benchmark by name (``lfw_swap_v1``; its paths resolve under ``lfw_root/images``) or a
    pairs file by path (relative paths resolve under ``lfw_root`` if given, else the file's folder)."""
    text = os.fspath(name_or_path)
    if text in shipped_benchmarks():
        if lfw_root is None:
            raise InputError(f"benchmark {text} needs the LFW folder (--lfw DIR, holding images/)")
        root = Path(lfw_root)
        if not root.is_dir():
            raise InputError(f"{root}: LFW folder does not exist")
        images = root / "images" if (root / "images").is_dir() else root
        res = resources.files("masquerade") / BENCHMARKS_PACKAGE / f"{text}.tsv"
        with resources.as_file(res) as f:
            return load_pairs(f, images, name=text)
    p = Path(text)
    if not p.exists():
        known = ", ".join(shipped_benchmarks()) or "none"
        raise InputError(f"{text}: neither a pairs file nor a shipped benchmark (shipped: {known})")
    return load_pairs(p, lfw_root, name=p.stem)


def limit_pairs(bench: Benchmark, limit: int | None) -> Benchmark:
    """The first ``limit`` pairs of each kind, in file order."""
    if limit is None:
        return bench
    seen = dict.fromkeys(PAIR_KINDS, 0)
    keep = []
    for p in bench.pairs:
        if seen[p.kind] < limit:
            seen[p.kind] += 1
            keep.append(p)
    return replace(bench, pairs=keep)


# ============================================================================================ results


@dataclass(frozen=True)
class SwapperSpec:
    """What to evaluate: a registry swapper run through the image pipeline with ``options``, or a
    baseline (``none``, ``source``). ``label`` names the report column (default: ``name``)."""

    name: str
    options: SwapOptions | None = None
    label: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def is_baseline(self) -> bool:
        return self.name in BASELINES

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "label": self.title}
        if self.is_baseline:
            d["baseline"] = BASELINES[self.name]
        else:
            o = self.options or SwapOptions(swapper=self.name)
            d["options"] = {
                f.name: getattr(o, f.name)
                for f in fields(o)
                if not isinstance(getattr(o, f.name), np.ndarray) and getattr(o, f.name) is not None
            }
            if o.model is not None:
                from ..swappers import read_swapper_model

                try:
                    d["model"] = read_swapper_model(self.name, o.model, verify=False).describe()
                except ModelError as exc:  # gone since the run: say so rather than fail the report
                    d["model"] = {"name": Path(o.model).name, "path": str(o.model), "error": str(exc)}
        return d

    def title_long(self) -> str:
        """How the report names it: the baseline's meaning, or the swapper (and its model: folder name
        and sha256 prefix)."""
        if self.is_baseline:
            return BASELINES[self.name]
        m = self.describe().get("model")
        if not m:
            return f"swapper {self.name}"
        sha = f", sha256 `{m['sha256'][:12]}…`" if m.get("sha256") else ""
        return f"swapper {self.name} (model `{m['name']}`{sha})"


def swapper_spec(item: str | SwapOptions | SwapperSpec, model: str | None = None) -> SwapperSpec:
    """Normalise a swapper given by name, by :class:`SwapOptions` or as a :class:`SwapperSpec`;
    ``model`` is the model (folder or card) of a swapper that needs one (checked now, sha256 included)."""
    from ..swappers import SWAPPERS, read_swapper_model, swapper_model_help, swapper_needs_model

    if isinstance(item, SwapperSpec):
        spec = item
    elif isinstance(item, SwapOptions):
        spec = SwapperSpec(item.swapper, item)
    else:
        spec = SwapperSpec(str(item))
    if spec.name not in SWAPPERS and spec.name not in BASELINES:
        raise InputError(f"unknown swapper {spec.name!r}; choose from {', '.join([*SWAPPERS, *BASELINES])}")
    if not spec.is_baseline:
        opts = spec.options or SwapOptions()
        spec = replace(spec, options=replace(opts, swapper=spec.name, model=model or opts.model))
        assert spec.options is not None
        if swapper_needs_model(spec.name):
            if spec.options.model is None:
                raise InputError(f"--swapper {spec.name} needs --model {swapper_model_help(spec.name)}")
            read_swapper_model(spec.name, spec.options.model)
        elif spec.options.model is not None:
            raise InputError(f"the {spec.name} swapper takes no model")
    elif model is not None:
        raise InputError(f"the {spec.name} baseline takes no model")
    return spec


@dataclass
class PairMetrics:
    """Everything measured on one pair for one swapper (None: not measured; see ``failure``)."""

    index: int
    kind: str
    source: str
    target: str
    source_id: str
    failure: str | None = None
    swap_ms: float | None = None
    cos_src: float | None = None
    cos_tgt: float | None = None
    dist_src: float | None = None
    dist_tgt: float | None = None
    dist_src_tgt: float | None = None
    cos_src_other: float | None = None
    dist_src_other: float | None = None
    closer_to_source: bool = False
    rank: int | None = None
    top1: bool = False
    top5: bool = False
    rank_other: int | None = None
    top1_other: bool = False
    top5_other: bool = False
    pose_err: float | None = None
    pose_err_ypr: list[float] | None = None
    expr_err: float | None = None
    expr_measures_err: float | None = None
    ssim: float | None = None
    ssim_face: float | None = None
    psnr: float | None = None
    psnr_face: float | None = None
    lpips_onnx: float | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    model_features: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("embedding", "model_features")
        }
        return _jsonable(d)


@dataclass
class VideoPairSpec:
    source: Path
    target: Path


@dataclass
class VideoMetrics:
    source: str
    target: str
    failure: str | None = None
    skipped: str | None = None  # why the swapper was not run on video (not a failure)
    frames: int | None = None
    frames_swapped: int | None = None
    jitter_input: float | None = None
    jitter_output: float | None = None
    jitter_ratio: float | None = None
    flicker_input: float | None = None
    flicker_output: float | None = None
    flicker_ratio: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class SwapperReport:
    spec: SwapperSpec
    pairs: list[PairMetrics] = field(default_factory=list)
    video: list[VideoMetrics] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    measured_with: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.spec.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "swapper": self.spec.describe(),
            "seconds": round(self.seconds, 2),
            "measured_with": self.measured_with,
            "aggregate": _jsonable(self.aggregate),
            "pairs": [p.to_dict() for p in self.pairs],
            "video": [v.to_dict() for v in self.video],
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return round(f, 6) if math.isfinite(f) else None
    if isinstance(v, Path):
        return str(v)
    return v


# ========================================================================================= evaluation


@dataclass
class _Input:
    face: Face | None
    shape: tuple[int, ...]
    features: np.ndarray | None = None  # user ONNX feature model, whole image


def _largest(analyzer: FaceAnalyzer, rgb: np.ndarray) -> Face | None:
    faces = analyzer.get(rgb, identity=True)
    return faces[0] if faces else None


def _output_face(analyzer: FaceAnalyzer, out: np.ndarray, target: Face | None, match: bool) -> Face | None:
    faces = analyzer.get(out, identity=True)
    if not faces:
        return None
    if not match or target is None:
        return faces[0]
    best = max(faces, key=lambda f: box_iou(f.box, target.box))
    return best if box_iou(best.box, target.box) >= OUTPUT_IOU else None


def _load(path: Path, pair: PairSpec | None = None) -> np.ndarray:
    try:
        return load_image(path).rgb
    except InputError as exc:
        where = f" (pair on line {pair.line})" if pair is not None and pair.line else ""
        raise InputError(f"{exc}{where}") from None


def gallery_embeddings(
    entries: Sequence[GalleryEntry], analyzer: FaceAnalyzer
) -> dict[str, list[np.ndarray]]:
    """Identity embeddings of the largest face in each gallery photo, by identity (photos without a
    face are left out, with a log line)."""
    out: dict[str, list[np.ndarray]] = {}
    for g in entries:
        try:
            rgb = load_image(g.path).rgb
        except InputError as exc:
            raise InputError(f"{exc} (gallery row on line {g.line})") from None
        face = _largest(analyzer, rgb)
        if face is None or face.embedding is None:
            log.info("no face found in the gallery photo %s", g.path)
            continue
        out.setdefault(g.identity, []).append(face.embedding)
    return out


def _analyse_inputs(
    pairs: Sequence[PairSpec], analyzer: FaceAnalyzer, fid: OnnxImageModel | None, tick: Callable[[], None]
) -> dict[Path, _Input]:
    cache: dict[Path, _Input] = {}
    first_pair: dict[Path, PairSpec] = {}
    fid_targets = {p.target for p in pairs if p.kind == "swap"}
    for p in pairs:
        for q in (p.source, p.target, p.source_other):
            if q is not None:
                first_pair.setdefault(q, p)
    for q, p in first_pair.items():
        rgb = _load(q, p)
        face = _largest(analyzer, rgb)
        if face is None:
            log.info("no face found in the input %s", q)
        feats = fid.features(rgb) if fid is not None and q in fid_targets else None
        cache[q] = _Input(face=face, shape=rgb.shape, features=feats)
        tick()
    return cache


def _swap_one(
    spec: SwapperSpec, fs: FaceSwapper | None, pair: PairSpec, inputs: dict[Path, _Input],
    analyzer: FaceAnalyzer, fid: OnnxImageModel | None, lpips: OnnxImageModel | None,
) -> PairMetrics:  # fmt: skip
    m = PairMetrics(
        index=pair.index, kind=pair.kind, source=pair.source_name or str(pair.source),
        target=pair.target_name or str(pair.target), source_id=pair.source_id,
    )  # fmt: skip
    src_in, tgt_in = inputs[pair.source], inputs[pair.target]
    sf, tf = src_in.face, tgt_in.face
    if sf is not None and tf is not None:
        m.dist_src_tgt = euclidean_distance(sf.embedding, tf.embedding)
    src = _load(pair.source, pair)
    tgt = _load(pair.target, pair)
    t0 = time.perf_counter()
    try:
        if spec.name == "none":
            out = tgt.copy()
        elif spec.name == "source":
            out = src.copy()
        else:
            assert fs is not None
            out, _ = fs.swap(src, tgt)
    except (MasqueradeError, ValueError) as exc:
        m.failure = f"swap failed: {exc}"
        return m
    m.swap_ms = (time.perf_counter() - t0) * 1000.0
    if sf is None:
        m.failure = "no face in source"
        return m
    if tf is None:
        m.failure = "no face in target"
        return m
    of = _output_face(analyzer, out, tf, match=spec.name != "source")
    if of is None:
        m.failure = "no face in output" + ("" if spec.name == "source" else " at the target face")
        return m
    assert of.embedding is not None and sf.embedding is not None and tf.embedding is not None
    m.embedding = of.embedding
    m.cos_src, m.dist_src = (
        cosine_similarity(of.embedding, sf.embedding),
        euclidean_distance(of.embedding, sf.embedding),
    )
    m.cos_tgt, m.dist_tgt = (
        cosine_similarity(of.embedding, tf.embedding),
        euclidean_distance(of.embedding, tf.embedding),
    )
    m.closer_to_source = m.dist_src < m.dist_tgt
    if pair.source_other is not None:
        of2 = inputs[pair.source_other].face
        if of2 is not None:
            m.cos_src_other = cosine_similarity(of.embedding, of2.embedding)
            m.dist_src_other = euclidean_distance(of.embedding, of2.embedding)
    pe = pose_error(of, tf)
    if pe is not None:
        m.pose_err_ypr = pe.tolist()
        m.pose_err = float(pe.mean())
    m.expr_err = expression_error(of, tf, analyzer.canonical)
    m.expr_measures_err = expression_measures_error(of, tf)
    if pair.kind == "self" and out.shape == tgt.shape:
        m.ssim, m.psnr = ssim(out, tgt), min(psnr(out, tgt), PSNR_CAP)
        ys, xs = face_crop_box(tf.box, tgt.shape)
        a, b = out[ys, xs], tgt[ys, xs]
        if min(a.shape[:2]) >= 11:
            m.ssim_face, m.psnr_face = ssim(a, b), min(psnr(a, b), PSNR_CAP)
        if lpips is not None:
            m.lpips_onnx = lpips.distance(out, tgt)
    if fid is not None and pair.kind == "swap":
        m.model_features = fid.features(out)
    return m


def _retrieval(
    pairs: list[PairMetrics], specs: Sequence[PairSpec], inputs: dict[Path, _Input],
    extra: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> int:  # fmt: skip
    """Fill rank/top-k (own and other-photo galleries) of swap pairs; returns the gallery size.
    ``extra``: embeddings of the benchmark's ``gallery`` rows, added to both galleries."""
    gallery: dict[str, list[np.ndarray]] = {k: list(v) for k, v in (extra or {}).items()}
    other: dict[str, list[np.ndarray]] = {k: list(v) for k, v in (extra or {}).items()}
    for s in specs:
        if s.kind != "swap":
            continue
        f = inputs[s.source].face
        if f is not None and f.embedding is not None:
            gallery.setdefault(s.source_id, []).append(f.embedding)
        if s.source_other is not None:
            f2 = inputs[s.source_other].face
            if f2 is not None and f2.embedding is not None:
                other.setdefault(s.source_id, []).append(f2.embedding)
    for m in pairs:
        if m.kind != "swap" or m.embedding is None:
            continue
        if m.source_id in gallery:
            m.rank = retrieval_rank(m.embedding, gallery, m.source_id)
            m.top1, m.top5 = m.rank == 1, m.rank <= TOP_K
        if m.source_id in other:
            m.rank_other = retrieval_rank(m.embedding, other, m.source_id)
            m.top1_other, m.top5_other = m.rank_other == 1, m.rank_other <= TOP_K
    return len(gallery)


def _failure_kinds(pairs: Sequence[PairMetrics]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for m in pairs:
        if m.failure is not None:
            key = "swap failed" if m.failure.startswith("swap failed") else m.failure
            kinds[key] = kinds.get(key, 0) + 1
    return kinds


def _rate(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if len(flags) else None


def aggregate(
    pairs: list[PairMetrics], specs: Sequence[PairSpec], inputs: dict[Path, _Input],
    fid: OnnxImageModel | None = None, lpips: OnnxImageModel | None = None,
    gallery: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Per-kind aggregates (rates over every pair of the kind, failures included as misses;
    continuous metrics over the pairs that produced a value, with their ``n``). ``gallery``: extra
    identities for retrieval (the benchmark's ``gallery`` rows, see :func:`gallery_embeddings`)."""
    gallery_size = _retrieval(pairs, specs, inputs, gallery)
    agg: dict[str, Any] = {}
    for kind in PAIR_KINDS:
        sub = [m for m in pairs if m.kind == kind]
        if not sub:
            continue
        ok = [m for m in sub if m.failure is None]
        a: dict[str, Any] = {
            "pairs": len(sub),
            "failures": len(sub) - len(ok),
            "failure_kinds": _failure_kinds(sub),
            "cos_src": summary([m.cos_src for m in sub]),
            "cos_tgt": summary([m.cos_tgt for m in sub]),
            "dist_src": summary([m.dist_src for m in sub]),
            "dist_tgt": summary([m.dist_tgt for m in sub]),
            "pose_err": summary([m.pose_err for m in sub]),
            "pose_err_yaw": summary([m.pose_err_ypr[0] if m.pose_err_ypr else None for m in sub]),
            "pose_err_pitch": summary([m.pose_err_ypr[1] if m.pose_err_ypr else None for m in sub]),
            "pose_err_roll": summary([m.pose_err_ypr[2] if m.pose_err_ypr else None for m in sub]),
            "expr_err": summary([m.expr_err for m in sub]),
            "expr_measures_err": summary([m.expr_measures_err for m in sub]),
            "swap_ms": summary([m.swap_ms for m in sub]),
        }
        if kind == "swap":
            with_other = [s.index for s in specs if s.kind == "swap" and s.source_other is not None]
            sub_other = [m for m in sub if m.index in set(with_other)]
            a.update({
                "closer_to_source": _rate([m.closer_to_source for m in sub]),
                "top1": _rate([m.top1 for m in sub]),
                "top5": _rate([m.top5 for m in sub]),
                "gallery_identities": gallery_size,
                "top1_other": _rate([m.top1_other for m in sub_other]),
                "top5_other": _rate([m.top5_other for m in sub_other]),
                "pairs_with_other": len(sub_other),
                "closer_to_source_other": _rate([
                    m.dist_src_other is not None and m.dist_tgt is not None and m.dist_src_other < m.dist_tgt
                    for m in sub_other
                ]),
                "cos_src_other": summary([m.cos_src_other for m in sub]),
                "dist_src_other": summary([m.dist_src_other for m in sub]),
                "dist_src_tgt": summary([m.dist_src_tgt for m in sub]),
            })  # fmt: skip
            out_e = [m.embedding for m in sub if m.embedding is not None]
            src_paths = {s.source for s in specs if s.kind == "swap"}
            src_e = [inputs[q].face.embedding for q in src_paths if inputs[q].face is not None]  # type: ignore[union-attr]
            a["frechet_identity"] = {
                "value": frechet_distance(np.array(out_e), np.array(src_e))
                if len(out_e) >= 2 and len(src_e) >= 2
                else None,
                "n_outputs": len(out_e),
                "n_sources": len(src_e),
            }
            if fid is not None:
                out_f = [m.model_features for m in sub if m.model_features is not None]
                tgt_paths = {s.target for s in specs if s.kind == "swap"}
                tgt_f = [inputs[q].features for q in tgt_paths if inputs[q].features is not None]
                a["frechet_onnx"] = {
                    "model": fid.describe(),
                    "value": frechet_distance(np.array(out_f), np.array(tgt_f))
                    if len(out_f) >= 2 and len(tgt_f) >= 2
                    else None,
                    "n_outputs": len(out_f),
                    "n_targets": len(tgt_f),
                }
        else:
            a.update({
                "ssim": summary([m.ssim for m in sub]),
                "ssim_face": summary([m.ssim_face for m in sub]),
                "psnr": summary([m.psnr for m in sub]),
                "psnr_face": summary([m.psnr_face for m in sub]),
            })  # fmt: skip
            if lpips is not None:
                a["lpips_onnx"] = {"model": lpips.describe(), **summary([m.lpips_onnx for m in sub])}
        agg[kind] = a
    return agg


def evaluate(
    swappers: Sequence[str | SwapOptions | SwapperSpec],
    pairs: Benchmark | Sequence[PairSpec],
    analyzer: FaceAnalyzer | None = None,
    progress: ProgressFn | None = None,
    fid_model: OnnxImageModel | None = None,
    lpips_model: OnnxImageModel | None = None,
    videos: Sequence[VideoPairSpec] = (),
    video_seconds: float | None = None,
) -> list[SwapperReport]:
    """Run every swapper over every pair (and video pair) and measure it; one report per swapper.

    ``progress(stage, done, total)`` is called after each unit of work. Input images are loaded and
    analysed once, before any swap (an unreadable one raises :class:`InputError`).
    """
    specs = [swapper_spec(s) for s in swappers]
    if not specs:
        raise InputError("no swapper to evaluate")
    labels = [s.title for s in specs]
    if len(set(labels)) != len(labels):
        raise InputError(f"swapper labels must be distinct, got {', '.join(labels)}")
    plist = list(pairs.pairs if isinstance(pairs, Benchmark) else pairs)
    if not plist and not videos:
        raise InputError("nothing to evaluate: no pairs and no videos")
    own = analyzer is None
    fa = analyzer or FaceAnalyzer(identity=True)
    if fa.options.landmarks != "mediapipe":
        raise ValueError("evaluation needs an analyzer with mediapipe landmarks (meshes for pose/expression)")
    n_inputs = len({q for p in plist for q in (p.source, p.target, p.source_other) if q is not None})
    total = n_inputs + len(specs) * (len(plist) + len(videos))
    done = 0

    def tick(stage: str) -> Callable[[], None]:
        def f() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(stage, done, total)

        return f

    reports: list[SwapperReport] = []
    try:
        if videos:
            from ..video.videoio import probe

            for v in videos:  # unreadable clips or source photos fail now, not after the pairs
                probe(v.target)
                _load(v.source)
        inputs = _analyse_inputs(plist, fa, fid_model, tick("analysing inputs"))
        extra = gallery_embeddings(pairs.gallery, fa) if isinstance(pairs, Benchmark) else {}
        measured: dict[str, Any] = {"landmarks": "mediapipe face mesh"}
        if plist:
            backend = getattr(fa.identity, "backend", "dlib")
            measured["identity"] = f"dlib ResNet 128-d face descriptor ({backend} backend)"
        for spec in specs:
            t0 = time.perf_counter()
            fs = None if spec.is_baseline else FaceSwapper(spec.options, analyzer=fa)
            rep = SwapperReport(spec, measured_with=measured)
            step = tick(f"{spec.title}: pairs")
            for p in plist:
                rep.pairs.append(_swap_one(spec, fs, p, inputs, fa, fid_model, lpips_model))
                step()
            if plist:
                rep.aggregate = aggregate(rep.pairs, plist, inputs, fid_model, lpips_model, extra)
            step = tick(f"{spec.title}: video")
            for v in videos:
                rep.video.append(evaluate_video(spec, v, fa, video_seconds))
                step()
            if rep.video:
                rep.aggregate["video"] = {
                    "clips": len(rep.video),
                    "failures": sum(v.failure is not None for v in rep.video),
                    "skipped": sum(v.skipped is not None for v in rep.video),
                    "jitter_ratio": summary([v.jitter_ratio for v in rep.video]),
                    "flicker_ratio": summary([v.flicker_ratio for v in rep.video]),
                }
            rep.seconds = time.perf_counter() - t0
            log.info("%s: %d pairs in %.1f s", spec.title, len(plist), rep.seconds)
            reports.append(rep)
    finally:
        if own:
            fa.close()
    return reports


def evaluate_video(
    spec: SwapperSpec, pair: VideoPairSpec, analyzer: FaceAnalyzer, seconds: float | None = None
) -> VideoMetrics:
    """Swap ``pair.target`` (a clip; its first ``seconds`` when given) with ``pair.source`` and compare
    landmark jitter and colour flicker of output and input (:mod:`masquerade.video.temporal`). The ``none``
    baseline measures the input against itself; ``source`` does not apply to video."""
    from ..swappers import swapper_needs_source
    from ..video.swap import VideoOptions, swap_video
    from ..video.temporal import measure
    from ..video.videoio import EncodeOptions, iter_frames, probe

    vm = VideoMetrics(source=str(pair.source), target=str(pair.target))
    t0 = time.perf_counter()
    info = probe(pair.target)
    if spec.name == "source":
        vm.skipped = "not applicable to video"
        return vm
    max_frames = int(round(seconds * info.fps)) if seconds else None
    with tempfile.TemporaryDirectory(prefix="masquerade-eval-") as tmp:
        if spec.name == "none":
            out_path = Path(pair.target)
            vm.frames_swapped = 0
        else:
            assert spec.options is not None
            src_rgb = _load(pair.source)
            try:
                sources = []
                if swapper_needs_source(spec.name):  # (a built-in identity needs no source face)
                    fs = FaceSwapper(spec.options, analyzer=analyzer)
                    sources = [(src_rgb, fs.source_face(src_rgb))]
                out_path = Path(tmp) / "swapped.mp4"
                rep = swap_video(
                    sources, pair.target, out_path, spec.options,
                    VideoOptions(encode=EncodeOptions(end=seconds)), analyzer,
                )  # fmt: skip
            except MasqueradeError as exc:
                vm.failure = f"swap failed: {exc}"
                return vm
            vm.frames_swapped = rep.frames_swapped
            max_frames = rep.frames
        st_in = measure(iter_frames(pair.target), analyzer, max_frames)
        st_out = st_in if spec.name == "none" else measure(iter_frames(out_path), analyzer, max_frames)
    vm.frames = st_out.jitter.frames
    vm.jitter_input, vm.jitter_output = st_in.jitter.jitter, st_out.jitter.jitter
    vm.flicker_input, vm.flicker_output = st_in.flicker.flicker, st_out.flicker.flicker

    def ratio(o: float, i: float) -> float | None:
        return o / i if math.isfinite(o) and math.isfinite(i) and i > 0 else None

    vm.jitter_ratio = ratio(st_out.jitter.jitter, st_in.jitter.jitter)
    vm.flicker_ratio = ratio(st_out.flicker.flicker, st_in.flicker.flicker)
    if st_out.jitter.face_frames == 0:
        vm.failure = "no face in any output frame"
    vm.seconds = time.perf_counter() - t0
    return vm


# ============================================================================================== report


def prepare_out_folder(folder: str | os.PathLike[str], force: bool = False, create: bool = True) -> Path:
    """Create ``folder`` (and parents) or accept an existing empty one; a non-empty one only with
    ``force`` (files of the same names are then replaced, others left alone). ``create=False`` only
    checks, so a run can refuse before doing any work and leave nothing behind."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out}: folder is not empty (use --force to write into it)")
    if not create:
        anc = out.absolute()
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir() or not os.access(anc, os.W_OK):
            raise OutputError(f"{out}: cannot create it ({anc} is not a writable folder)")
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: folder is not writable")
    return out


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _mm(s: dict[str, Any] | None, spec: str = ".3f", unit: str = "") -> str:
    """``mean / median (n)`` of a :func:`summary` dict."""
    if not s or not s.get("n"):
        return "— (n=0)"
    return f"{format(s['mean'], spec)}{unit} / {format(s['median'], spec)}{unit} (n={s['n']})"


def _rows_swap(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    def g(r: SwapperReport) -> dict[str, Any]:
        return r.aggregate.get("swap", {})

    gal = next((g(r).get("gallery_identities") for r in reports if g(r)), 0)
    rows: list[tuple[str, list[str]]] = [
        ("pairs / failures", [f"{g(r).get('pairs', 0)} / {g(r).get('failures', 0)}" for r in reports]),
        ("output closer to source than to target ↑", [_pct(g(r).get("closer_to_source")) for r in reports]),
        (f"identity retrieval top-1 / top-5 ↑ (gallery: {gal} identities, source photos)",
         [f"{_pct(g(r).get('top1'))} / {_pct(g(r).get('top5'))}" for r in reports]),
        ("retrieval top-1 / top-5 ↑, gallery of the sources' *other* photos",
         [f"{_pct(g(r).get('top1_other'))} / {_pct(g(r).get('top5_other'))}" for r in reports]),
        ("output closer to the source's other photo than to target ↑",
         [_pct(g(r).get("closer_to_source_other")) for r in reports]),
        ("cosine(output, source) ↑ mean / median", [_mm(g(r).get("cos_src")) for r in reports]),
        ("cosine(output, target) ↓", [_mm(g(r).get("cos_tgt")) for r in reports]),
        ("cosine(output, source's other photo) ↑", [_mm(g(r).get("cos_src_other")) for r in reports]),
        ("distance(output, source) ↓ (dlib; same person < 0.6)",
         [_mm(g(r).get("dist_src")) for r in reports]),
        ("distance(output, target) ↑", [_mm(g(r).get("dist_tgt")) for r in reports]),
        ("Fréchet distance, dlib identity features, outputs vs sources ↓ (not FID)",
         [_fmt((g(r).get("frechet_identity") or {}).get("value"), ".4f")
          + f" (n={(g(r).get('frechet_identity') or {}).get('n_outputs', 0)})" for r in reports]),
    ]  # fmt: skip
    fo = next((g(r)["frechet_onnx"] for r in reports if "frechet_onnx" in g(r)), None)
    if fo is not None:
        m = fo["model"]
        rows.append((
            f"Fréchet distance on features of `{m['file']}` (sha256 {m['sha256'][:12]}…), "
            "outputs vs targets ↓",
            [_fmt((g(r).get("frechet_onnx") or {}).get("value"), ".3f")
             + f" (n={(g(r).get('frechet_onnx') or {}).get('n_outputs', 0)})" for r in reports],
        ))  # fmt: skip
    rows += [
        ("pose error, mean abs. Δ of yaw / pitch / roll ↓",
         [_mm(g(r).get("pose_err"), ".2f", "°") for r in reports]),
        ("pose error, median abs. Δ yaw / pitch / roll",
         [" / ".join(_fmt((g(r).get(f"pose_err_{k}") or {}).get("median"), ".2f") + "°"
                     for k in ("yaw", "pitch", "roll"))
          for r in reports]),
        ("expression error, landmarks (IOD) ↓", [_mm(g(r).get("expr_err")) for r in reports]),
        ("expression error, measures ↓", [_mm(g(r).get("expr_measures_err")) for r in reports]),
        ("swap time per pair (ms) mean / median", [_mm(g(r).get("swap_ms"), ".0f") for r in reports]),
    ]  # fmt: skip
    return rows


def _rows_self(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    def g(r: SwapperReport) -> dict[str, Any]:
        return r.aggregate.get("self", {})

    rows: list[tuple[str, list[str]]] = [
        ("pairs / failures", [f"{g(r).get('pairs', 0)} / {g(r).get('failures', 0)}" for r in reports]),
        ("SSIM, whole image ↑ mean / median", [_mm(g(r).get("ssim"), ".4f") for r in reports]),
        ("SSIM, face box ↑", [_mm(g(r).get("ssim_face"), ".4f") for r in reports]),
        (
            f"PSNR, whole image (dB, identical = {PSNR_CAP:.0f}) ↑",
            [_mm(g(r).get("psnr"), ".2f") for r in reports],
        ),
        ("PSNR, face box (dB) ↑", [_mm(g(r).get("psnr_face"), ".2f") for r in reports]),
        ("cosine(output, target) ↑", [_mm(g(r).get("cos_tgt")) for r in reports]),
        ("pose error ↓", [_mm(g(r).get("pose_err"), ".2f", "°") for r in reports]),
        ("expression error, landmarks (IOD) ↓", [_mm(g(r).get("expr_err")) for r in reports]),
    ]
    lp = next((g(r)["lpips_onnx"] for r in reports if "lpips_onnx" in g(r)), None)
    if lp is not None:
        m = lp["model"]
        rows.append((
            f"distance by `{m['file']}` (sha256 {m['sha256'][:12]}…), output vs target ↓",
            [_mm(g(r).get("lpips_onnx"), ".4f") for r in reports],
        ))  # fmt: skip
    return rows


def _table(reports: list[SwapperReport], rows: list[tuple[str, list[str]]]) -> list[str]:
    head = "| metric | " + " | ".join(f"`{r.label}`" for r in reports) + " |"
    sep = "|---|" + "---|" * len(reports)
    return [head, sep, *(f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows)]


def markdown_report(
    reports: list[SwapperReport], benchmark: Benchmark | None = None, meta: dict[str, Any] | None = None,
    plots: Sequence[str] = (),
) -> str:  # fmt: skip
    """The ``report.md`` text: swappers side by side, metric notes, failures, plots."""
    meta = meta or {}
    lines = [f"# masquerade evaluation{': ' + benchmark.name if benchmark else ''}", ""]
    if benchmark is not None:
        c = benchmark.counts()
        lines.append(
            f"Benchmark `{benchmark.name}`: {c['swap']} different-person swap pairs and "
            f"{c['self']} self pairs"
            + (
                f", plus {len(benchmark.gallery)} gallery photos of "
                f"{len({g.identity for g in benchmark.gallery})} further identities for retrieval"
                if benchmark.gallery
                else ""
            )
            + (f" (file sha256 `{benchmark.sha256[:16]}…`)" if benchmark.sha256 else "")
            + (f", images under `{benchmark.root}`" if benchmark.root else "")
            + "."
        )
    if meta:
        lines.append(
            f"Run {meta.get('date', '')} with masquerade {meta.get('masquerade', '')} in "
            f"{meta.get('seconds', 0):.0f} s; command: `{meta.get('command', '')}`."
        )
    if reports and reports[0].measured_with:
        mw = reports[0].measured_with
        lines.append("Measured with: " + "; ".join(f"{k}: {v}" for k, v in mw.items()) + ".")
    lines += ["", "Swappers: " + "; ".join(f"`{r.label}` = {r.spec.title_long()}" for r in reports) + ".", ""]
    if any("swap" in r.aggregate for r in reports):
        lines += ["## Different-person swaps", ""]
        base = next((r.aggregate["swap"].get("dist_src_tgt") for r in reports if "swap" in r.aggregate), None)
        if base and base.get("n"):
            lines += [f"Reference: distance(source, target) before swapping: {_mm(base)}.", ""]
        lines += [*_table(reports, _rows_swap(reports)), ""]
    if any("self" in r.aggregate for r in reports):
        lines += ["## Self swaps (source and target the same person; output vs target)", ""]
        lines += [*_table(reports, _rows_self(reports)), ""]
    if any(r.video for r in reports):
        lines += ["## Video (jitter and flicker of the output relative to the input clip; 1 = as stable)", ""]
        lines += [
            "| swapper | clip | frames (swapped) | jitter in → out (IOD) | ratio "
            "| flicker in → out (L) | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in reports:
            for v in r.video:
                if v.frames is None:
                    why = v.skipped or f"failed: {v.failure}"
                    lines.append(f"| `{r.label}` | {Path(v.target).name} | {why} | | | | |")
                    continue
                lines.append(
                    f"| `{r.label}` | {Path(v.target).name} | {v.frames} ({v.frames_swapped}) | "
                    f"{_fmt(v.jitter_input, '.4f')} → {_fmt(v.jitter_output, '.4f')} | "
                    f"{_fmt(v.jitter_ratio, '.2f')} | {_fmt(v.flicker_input, '.3f')} → "
                    f"{_fmt(v.flicker_output, '.3f')} | {_fmt(v.flicker_ratio, '.2f')} |"
                )
        lines.append("")
    has_pairs = any(r.pairs for r in reports)
    lines += ["## How to read it", ""]
    if any(r.video for r in reports):
        lines += [
            "Video: landmark jitter = mean frame-to-frame landmark acceleration in inter-ocular distances; "
            "flicker = mean |second difference| of the face's mean LAB lightness; both from "
            "`masquerade.video.temporal`, output clip vs input clip over the same frames "
            "(ratio > 1: less stable).",
            "",
        ]
    if has_pairs:
        lines += [
        "Rates (closer, top-k) count every pair of the kind, failures as misses; the other rows are "
        "mean / median over the pairs that produced a value, with that n. ↑ / ↓: better is higher / lower "
        "for a swapper (the `none` baseline shows what no swap scores, `source` the identity ceiling).",
        "Identity: dlib ResNet 128-d embeddings of the largest source/target face and of the output face "
        f"overlapping the target face (IoU ≥ {OUTPUT_IOU}). Retrieval ranks the output among the distinct "
        "source identities of the swap pairs (and the benchmark's gallery rows). Pose: mediapipe mesh fit "
        "to the canonical mesh. Expression "
        "(landmarks): brows, eyes and mouth of the pose-normalised meshes, each region centred, mean point "
        "distance in inter-ocular distances; (measures): mean |Δ| of the eight expression measures. SSIM: "
        "Wang et al. 2004 on luma (11×11 Gaussian, σ 1.5); face box = target face box + 10 %.",
        "The Fréchet distance on dlib identity features compares the distribution of output embeddings with "
        "that of the source photos' embeddings; it is not FID, and biased upwards at this sample size.",
        "",
        ]  # fmt: skip
    if any(any(m.failure for m in r.pairs) or any(v.failure for v in r.video) for r in reports):
        lines += [
            "## Failures",
            "",
            "| swapper | pair | kind | source | target | reason |",
            "|---|---|---|---|---|---|",
        ]
        for r in reports:
            for m in r.pairs:
                if m.failure is not None:
                    reason = m.failure.replace("|", "/").replace("\n", " ")
                    lines.append(
                        f"| `{r.label}` | {m.index} | {m.kind} | {m.source} | {m.target} | {reason} |"
                    )
            for v in r.video:
                if v.failure is not None:
                    lines.append(f"| `{r.label}` | video | video | {v.source} | {v.target} | {v.failure} |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def write_plots(reports: list[SwapperReport], folder: Path) -> list[str]:
    """Matplotlib PNGs (Agg canvas, no pyplot state); returns the file names written."""
    written: list[str] = []
    labels = [r.label for r in reports]
    swap = [[m for m in r.pairs if m.kind == "swap"] for r in reports]
    if any(swap):
        n = len(reports)
        fig = _figure(4.2 * n, 3.4)
        axes = fig.subplots(1, n, squeeze=False)[0]
        every = [c for ms in swap for m in ms for c in (m.cos_src, m.cos_tgt) if c is not None]
        lo = min(0.8, np.floor(20 * min(every)) / 20) if every else 0.8
        bins = np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.01)) + 1)
        for ax, lab, ms in zip(axes, labels, swap, strict=True):
            cs = np.clip([m.cos_src for m in ms if m.cos_src is not None], lo, 1.0)
            ct = np.clip([m.cos_tgt for m in ms if m.cos_tgt is not None], lo, 1.0)
            ax.hist(cs, bins=bins, alpha=0.6, label=f"to source (n={len(cs)})", color="tab:blue")
            ax.hist(ct, bins=bins, alpha=0.6, label=f"to target (n={len(ct)})", color="tab:orange")
            fails = sum(m.failure is not None for m in ms)
            ax.set_title(f"{lab}: identity cosine ({fails} failures)", fontsize=10)
            ax.set_xlabel("cosine similarity of output embedding")
            ax.legend(fontsize=8)
        axes[0].set_ylabel("pairs")
        _save_figure(fig, folder / "identity_cosine.png")
        written.append("identity_cosine.png")

        fig = _figure(max(6.0, 1.6 * n + 3), 3.6)
        ax = fig.subplots()
        keys = [("closer_to_source", "closer to source"), ("top1", "top-1"), ("top5", "top-5"),
                ("top1_other", "top-1 (other photo)"), ("top5_other", "top-5 (other photo)")]  # fmt: skip
        width = 0.8 / len(keys)
        x = np.arange(n)
        for i, (k, name) in enumerate(keys):
            vals = [100 * (r.aggregate.get("swap", {}).get(k) or 0.0) for r in reports]
            ax.bar(x + (i - (len(keys) - 1) / 2) * width, vals, width, label=name)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 105)
        ax.set_ylabel("% of swap pairs (failures count as misses)")
        ax.set_title("identity transfer and retrieval", fontsize=10)
        ax.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        _save_figure(fig, folder / "retrieval.png")
        written.append("retrieval.png")

        panels = (("pose_err", "pose error (°), mean |Δ| yaw/pitch/roll"),
                  ("expr_err", "expression error (IOD), landmarks"))  # fmt: skip
        written.append(_boxplots(swap, labels, panels, folder / "pose_expression.png"))
    selfp = [[m for m in r.pairs if m.kind == "self"] for r in reports]
    if any(selfp):
        panels = (("ssim_face", "self swaps: SSIM in the face box"),
                  ("psnr_face", "self swaps: PSNR in the face box (dB)"))  # fmt: skip
        written.append(_boxplots(selfp, labels, panels, folder / "self_swap.png"))
    return written


def _boxplots(
    per_swapper: list[list[PairMetrics]], labels: list[str], panels: tuple[tuple[str, str], ...], path: Path
) -> str:
    """One box-plot panel per (metric attribute, title), one box per swapper; returns the file name."""
    fig = _figure(max(7.0, 2.2 * len(labels) + 3), 3.6)
    for ax, (key, title) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        data = [[getattr(m, key) for m in ms if getattr(m, key) is not None] for ms in per_swapper]
        ax.boxplot([d if d else [np.nan] for d in data], showfliers=True)
        ax.set_xticks(np.arange(1, len(labels) + 1), labels)
        ax.set_title(title, fontsize=10)
    _save_figure(fig, path)
    return path.name


def environment() -> dict[str, Any]:
    import platform
    from importlib import metadata

    from .. import __version__

    versions = {}
    for pkg in (
        "numpy",
        "opencv-python-headless",
        "mediapipe",
        "dlib-bin",
        "scipy",
        "matplotlib",
        "onnxruntime",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "masquerade": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }


def write_report(
    reports: list[SwapperReport], folder: str | os.PathLike[str], benchmark: Benchmark | None = None,
    meta: dict[str, Any] | None = None, force: bool = False,
) -> list[Path]:  # fmt: skip
    """Write ``report.md``, ``results.json`` (per pair and aggregate) and the PNG plots into ``folder``
    (each file atomically); returns the paths written."""
    out = prepare_out_folder(folder, force)
    env = {**environment(), **(meta or {})}
    plots = write_plots(reports, out)
    doc = {
        "benchmark": None if benchmark is None else benchmark.describe(),
        "environment": env,
        "notes": {
            "frechet_identity": "Fréchet distance between dlib 128-d identity embeddings of outputs and of "
            "sources (swap pairs); not FID.",
            "rates": "closer_to_source and top-k rates count failures as misses; continuous metrics are over "
            "pairs with a value (see n).",
            "psnr_cap": PSNR_CAP,
            "output_face_iou": OUTPUT_IOU,
        },
        "swappers": [r.to_dict() for r in reports],
    }
    atomic_write_bytes(
        out / "results.json", (json.dumps(_jsonable(doc), indent=1, ensure_ascii=False) + "\n").encode()
    )
    md = markdown_report(reports, benchmark, env, plots)
    atomic_write_bytes(out / "report.md", md.encode())
    return [out / "results.json", out / "report.md", *(out / p for p in plots)]


__all__ = [
    "BASELINES",
    "Benchmark",
    "OnnxImageModel",
    "OnnxModelSpec",
    "PairMetrics",
    "PairSpec",
    "SwapperReport",
    "SwapperSpec",
    "VideoMetrics",
    "VideoPairSpec",
    "aggregate",
    "evaluate",
    "evaluate_video",
    "expression_error",
    "frechet_distance",
    "limit_pairs",
    "load_benchmark",
    "load_pairs",
    "markdown_report",
    "pose_error",
    "prepare_out_folder",
    "psnr",
    "retrieval_rank",
    "shipped_benchmarks",
    "ssim",
    "write_plots",
    "write_report",
]

"""The evaluation run: every swapper over every pair (and video clip), measured and aggregated."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..errors import InputError, MasqueradeError
from ..face import Face
from ..identity.encoder import cosine_similarity, euclidean_distance
from ..imageio import load_image
from ..job import SwapJob
from ..occlusion.handling import source_warnings_off
from ..occlusion.synthetic import make_occluder, parse_occluder
from ..pipeline import FaceSwapper, SwapOptions, source_face
from .attributes import REPORT_SUBSETS, in_subset
from .benchmarks import DIFFERENT_PERSON_KINDS, PAIR_KINDS, Benchmark, GalleryEntry, PairSpec
from .metrics import (
    OUTPUT_IOU,
    PSNR_CAP,
    box_iou,
    colour_error,
    expression_error,
    expression_measures_error,
    face_crop_box,
    face_region,
    frechet_distance,
    gaze_error,
    masked_psnr,
    masked_ssim,
    mean_abs_difference,
    occluder_survival,
    pose_error,
    psnr,
    retrieval_rank,
    sharpness_ratio,
    ssim,
    summary,
)
from .onnx_models import OnnxImageModel
from .results import PairMetrics, SwapperReport, SwapperSpec, VideoMetrics, VideoPairSpec, swapper_spec

log = logging.getLogger(__name__)

TOP_K = 5
GRID_CELL = 160  # px of one face in the picture grids
GRID_ROWS = 6  # pairs per picture grid

ProgressFn = Callable[[str, int, int], None]


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


def _crop(rgb: np.ndarray, box: np.ndarray, size: int = GRID_CELL) -> np.ndarray:
    """A square ``size``-px crop centred on a face box, 1.6× its larger side (grey outside the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = 1.6 * max(x2 - x1, y2 - y1, 1.0)
    k = size / side
    m = np.float32([[k, 0, size / 2 - k * (x1 + x2) / 2], [0, k, size / 2 - k * (y1 + y2) / 2]])
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(rgb, m, (size, size), flags=interp, borderValue=(128, 128, 128))


def _run_swap(spec: SwapperSpec, fs: FaceSwapper | None, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    if spec.name == "none":
        return tgt.copy()
    if spec.name == "source":
        return src.copy()
    assert fs is not None
    return fs.swap(src, tgt)[0]


def _swap_one(
    spec: SwapperSpec, fs: FaceSwapper | None, pair: PairSpec, inputs: dict[Path, _Input],
    analyzer: FaceAnalyzer, fid: OnnxImageModel | None, lpips: OnnxImageModel | None,
    crops: dict[int, dict[str, np.ndarray]] | None = None,
) -> PairMetrics:  # fmt: skip
    """Swap one pair and measure it; with ``crops``, the pair's source, target and output face crops
    are kept there (picture grids)."""
    m = PairMetrics(
        index=pair.index, kind=pair.kind, source=pair.source_name or str(pair.source),
        target=pair.target_name or str(pair.target), source_id=pair.source_id, occluder=pair.occluder,
        tags=list(pair.tags),
    )  # fmt: skip
    src_in, tgt_in = inputs[pair.source], inputs[pair.target]
    sf, tf = src_in.face, tgt_in.face
    if sf is not None and tf is not None:
        m.dist_src_tgt = euclidean_distance(sf.embedding, tf.embedding)
    src = _load(pair.source, pair)
    tgt = _load(pair.target, pair)
    src_use, tgt_use, layer = src, tgt, None
    if pair.occluder is not None:
        if sf is None or tf is None:
            m.failure = "no face in source" if sf is None else "no face in target"
            return m
        kind, seed = parse_occluder(pair.occluder)
        if pair.kind == "occ_target":
            layer = make_occluder(kind, seed, tf.landmarks_68, tgt.shape, src, sf.box)
            tgt_use = layer.over(tgt)
        else:
            layer = make_occluder(kind, seed, sf.landmarks_68, src.shape, tgt, tf.box)
            src_use = layer.over(src)
    t0 = time.perf_counter()
    try:
        out = _run_swap(spec, fs, src_use, tgt_use)
        m.swap_ms = (time.perf_counter() - t0) * 1000.0
        clean = _run_swap(spec, fs, src, tgt) if layer is not None else None
    except (MasqueradeError, ValueError) as exc:
        m.failure = f"swap failed: {exc}"
        return m
    if crops is not None and sf is not None and tf is not None:
        crops[pair.index] = {
            "source": _crop(src_use, sf.box),
            "target": _crop(tgt_use, tf.box),
            "output": _crop(out, tf.box),
        }
    if sf is None:
        m.failure = "no face in source"
        return m
    if tf is None:
        m.failure = "no face in target"
        return m
    measurable = spec.name != "source" and out.shape == tgt.shape  # (the source photo is no swap)
    if layer is not None and clean is not None and measurable and clean.shape == tgt.shape:
        face = face_region(tgt.shape, tf)
        if pair.kind == "occ_target":
            grown = cv2.dilate(face.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            m.occ_survival = occluder_survival(out, tgt_use, clean, layer.mask & grown)
        else:
            m.occ_source_err = mean_abs_difference(out, clean, face)
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
    m.gaze_err = gaze_error(of, tf)
    if pair.kind in ("self", "same") and measurable:
        region = face_region(tgt.shape, tf)
        m.ssim_region, m.psnr_region = masked_ssim(out, tgt, region), masked_psnr(out, tgt, region)
        m.colour_err, m.sharpness = colour_error(out, tgt, region), sharpness_ratio(out, tgt, region)
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
        if s.kind not in DIFFERENT_PERSON_KINDS:
            continue
        f = inputs[s.source].face
        if f is not None and f.embedding is not None:
            gallery.setdefault(s.source_id, []).append(f.embedding)
        if s.source_other is not None:
            f2 = inputs[s.source_other].face
            if f2 is not None and f2.embedding is not None:
                other.setdefault(s.source_id, []).append(f2.embedding)
    for m in pairs:
        if m.kind not in DIFFERENT_PERSON_KINDS or m.embedding is None:
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


def _identity_block(
    sub: list[PairMetrics], kind: str, specs: Sequence[PairSpec], inputs: dict[Path, _Input],
    gallery_size: int,
) -> dict[str, Any]:  # fmt: skip
    """Identity transfer and retrieval of different-person pairs."""
    with_other = {s.index for s in specs if s.kind == kind and s.source_other is not None}
    sub_other = [m for m in sub if m.index in with_other]
    return {
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
    }  # fmt: skip


def _region_block(sub: list[PairMetrics]) -> dict[str, Any]:
    """Fidelity to the real target inside its face (self and same-person pairs)."""
    return {
        "ssim_region": summary([m.ssim_region for m in sub]),
        "psnr_region": summary([m.psnr_region for m in sub]),
        "colour_err": summary([m.colour_err for m in sub]),
        "sharpness": summary([m.sharpness for m in sub]),
    }


def _subsets(pairs: list[PairMetrics]) -> dict[str, Any]:
    """Per subset (pair tags) and kind: the headline figures of the pairs in it."""
    out: dict[str, Any] = {}
    for tag in REPORT_SUBSETS:
        per_kind: dict[str, Any] = {}
        for kind in ("swap", "same"):
            sub = [m for m in pairs if m.kind == kind and in_subset(tag, m.tags)]
            if not sub:
                continue
            a: dict[str, Any] = {
                "pairs": len(sub),
                "failures": sum(m.failure is not None for m in sub),
                "pose_err": summary([m.pose_err for m in sub]),
                "expr_err": summary([m.expr_err for m in sub]),
                "gaze_err": summary([m.gaze_err for m in sub]),
            }
            if kind == "swap":
                a["closer_to_source"] = _rate([m.closer_to_source for m in sub])
                a["top1"] = _rate([m.top1 for m in sub])
                a["top1_other"] = _rate([m.top1_other for m in sub])
            else:
                a.update(_region_block(sub))
            per_kind[kind] = a
        if per_kind:
            out[tag] = per_kind
    return out


def aggregate(
    pairs: list[PairMetrics], specs: Sequence[PairSpec], inputs: dict[Path, _Input],
    fid: OnnxImageModel | None = None, lpips: OnnxImageModel | None = None,
    gallery: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Per-kind aggregates (rates over every pair of the kind, failures included as misses;
    continuous metrics over the pairs that produced a value, with their ``n``), and per subset
    (``subsets``). ``gallery``: extra identities for retrieval (the benchmark's ``gallery`` rows, see
    :func:`gallery_embeddings`)."""
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
            "gaze_err": summary([m.gaze_err for m in sub]),
            "swap_ms": summary([m.swap_ms for m in sub]),
        }
        if kind in DIFFERENT_PERSON_KINDS:
            a.update(_identity_block(sub, kind, specs, inputs, gallery_size))
        if kind == "occ_target":
            a["occ_survival"] = summary([m.occ_survival for m in sub])
        if kind == "occ_source":
            a["occ_source_err"] = summary([m.occ_source_err for m in sub])
        if kind == "swap":
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
        if kind in ("self", "same"):
            a.update(_region_block(sub))
        if kind == "self":
            a.update({
                "ssim": summary([m.ssim for m in sub]),
                "ssim_face": summary([m.ssim_face for m in sub]),
                "psnr": summary([m.psnr for m in sub]),
                "psnr_face": summary([m.psnr_face for m in sub]),
            })  # fmt: skip
            if lpips is not None:
                a["lpips_onnx"] = {"model": lpips.describe(), **summary([m.lpips_onnx for m in sub])}
        agg[kind] = a
    subsets = _subsets(pairs)
    if subsets:
        agg["subsets"] = subsets
    return agg


def grid_selection(pairs: Sequence[PairSpec], rows: int = GRID_ROWS) -> dict[str, list[int]]:
    """The pairs each picture grid shows (file order): per kind its first ``rows`` pairs, and for swap and
    same pairs the first ``rows`` of each subset; grids named ``KIND`` or ``KIND-SUBSET``."""
    grids: dict[str, list[int]] = {}
    for kind in PAIR_KINDS:
        of_kind = [p for p in pairs if p.kind == kind]
        if not of_kind:
            continue
        grids[kind] = [p.index for p in of_kind[:rows]]
        if kind in ("swap", "same"):
            for tag in REPORT_SUBSETS:
                chosen = [p.index for p in of_kind if in_subset(tag, p.tags)][:rows]
                if chosen:
                    grids[f"{kind}-{tag}"] = chosen
    return grids


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
            from ..video.probe import probe

            for v in videos:  # unreadable clips or source photos fail now, not after the pairs
                probe(v.target)
                _load(v.source)
        inputs = _analyse_inputs(plist, fa, fid_model, tick("analysing inputs"))
        shown = {i for ids in grid_selection(plist).values() for i in ids}
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
                keep = rep.crops if p.index in shown else None
                with source_warnings_off():  # benchmarks hold occluded sources on purpose
                    rep.pairs.append(_swap_one(spec, fs, p, inputs, fa, fid_model, lpips_model, keep))
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
    from ..video.probe import iter_frames, probe
    from ..video.swap import VideoOptions, swap_video
    from ..video.temporal import measure
    from ..video.transcode import EncodeOptions

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
                    sources = [(src_rgb, source_face(analyzer, src_rgb, spec.options))]
                out_path = Path(tmp) / "swapped.mp4"
                job = SwapJob(spec.options, tuple(sources), VideoOptions(encode=EncodeOptions(end=seconds)))
                rep = swap_video(job, pair.target, out_path, analyzer)
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

"""Benchmark the default image swap: identity transfer and pose keeping on LFW, and speed at 1280×720.

Usage (from the repository root)::

    python benchmarks/bench_swap.py --lfw ../shared/data/lfw --pairs 200 --out benchmarks/out

Quality: the first ``--pairs`` mismatched pairs of LFW's ``pairs.txt`` in file order (source = first
person, target = second) are swapped with one :class:`FaceSwapper` (default :class:`SwapOptions`). A
separate ``FaceAnalyzer(identity=True)`` measures the largest face of source, target and output:

* dlib 128-d embeddings (euclidean distance): how often the output is closer to the source than to
  the target, and top-1/top-5 retrieval of the output among the sources' identities;
* head pose (yaw/pitch/roll) of output vs target.

A pair whose swap raises :class:`MasqueradeError`, or whose output (or source/target) has no face for
the identity analyzer, is a failure: it counts as "not closer" and as a retrieval miss. Distance and
pose statistics are over the pairs that produced a value; their ``n`` is reported.

As a supplementary check, each source person's *other* LFW photo (lowest-numbered one that is not the
source photo), where one exists, is embedded too: the output copies the source photo's pixels, so the
distance to a different photo of the same person is the fairer identity test.

Speed: ``astronaut`` (512×512) is resized to 720×720 (bicubic) and padded left and right by edge
replication to 1280×720; source is ``grace_hopper``. After the source face is computed once and 3
warm-up swaps, 30 ``fs.swap`` calls are timed with ``time.perf_counter`` (model load excluded), for
the default options and for ``target_faces="all"`` (which adds the detector's tiled small-face pass).

Writes ``results.json``, ``results.md``, ``preview.png`` (6 evenly spaced pairs) and
``preview_worst.png`` (failures and the pairs least moved towards the source) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from envinfo import environment

import masquerade
from masquerade import (
    FaceAnalyzer,
    FaceSwapper,
    MasqueradeError,
    SwapOptions,
    euclidean_distance,
    load_image,
    sample_path,
)

TILE = 250  # LFW images are 250×250
TARGET_MS = 60.0
YAW_GAP = 20.0  # degrees; splits pairs by how differently source and target are turned


# --------------------------------------------------------------------------------------------- pairs


@dataclass
class Pair:
    index: int
    src_name: str
    src_num: int
    tgt_name: str
    tgt_num: int
    src2_num: int | None = None  # another photo of the source person, if any

    def path(self, lfw: Path, which: str) -> Path:
        name, num = {
            "src": (self.src_name, self.src_num),
            "tgt": (self.tgt_name, self.tgt_num),
            "src2": (self.src_name, self.src2_num),
        }[which]
        return lfw / "images" / name / f"{name}_{num:04d}.jpg"


def read_mismatched_pairs(lfw: Path, limit: int) -> list[Pair]:
    """The first ``limit`` mismatched pairs of ``pairs.txt`` in file order."""
    lines = (lfw / "pairs.txt").read_text().splitlines()
    folds, per_fold = (int(v) for v in lines[0].split())
    pairs: list[Pair] = []
    row = 1
    for _ in range(folds):
        row += per_fold  # matched pairs: "name n1 n2"
        for line in lines[row : row + per_fold]:
            a, n1, b, n2 = line.split()
            pairs.append(Pair(len(pairs), a, int(n1), b, int(n2)))
            if len(pairs) == limit:
                return pairs
        row += per_fold
    return pairs


def other_photo(lfw: Path, name: str, num: int) -> int | None:
    """Lowest-numbered photo of ``name`` other than ``num`` (None for one-photo people)."""
    nums = sorted(int(p.stem.rsplit("_", 1)[1]) for p in (lfw / "images" / name).glob(f"{name}_*.jpg"))
    return next((n for n in nums if n != num), None)


# ------------------------------------------------------------------------------------------- quality


@dataclass
class PairResult:
    pair: Pair
    failure: str | None = None  # None when every measurement was made
    swap_ms: float | None = None
    d_out_src: float | None = None
    d_out_tgt: float | None = None
    d_src_tgt: float | None = None
    d_out_src2: float | None = None
    pose_out: list[float] | None = None
    pose_src: list[float] | None = None
    pose_tgt: list[float] | None = None
    top1: bool = False
    top5: bool = False
    rank: int | None = None
    emb_out: np.ndarray | None = field(default=None, repr=False)
    emb_src: np.ndarray | None = field(default=None, repr=False)

    @property
    def closer(self) -> bool:
        return self.failure is None and self.d_out_src < self.d_out_tgt  # type: ignore[operator]

    def pose_diff(self) -> np.ndarray | None:
        if self.pose_out is None or self.pose_tgt is None:
            return None
        d = np.asarray(self.pose_out) - np.asarray(self.pose_tgt)
        return np.abs((d + 180.0) % 360.0 - 180.0)

    def yaw_gap(self) -> float | None:
        """|yaw(source) − yaw(target)|: large when the faces turn different ways."""
        if self.pose_src is None or self.pose_tgt is None:
            return None
        return abs(self.pose_src[0] - self.pose_tgt[0])

    def to_dict(self) -> dict[str, Any]:
        p = self.pair
        pd = self.pose_diff()
        r = {
            "index": p.index,
            "source": f"{p.src_name}_{p.src_num:04d}",
            "target": f"{p.tgt_name}_{p.tgt_num:04d}",
            "source_other_photo": None if p.src2_num is None else f"{p.src_name}_{p.src2_num:04d}",
            "failure": self.failure,
            "swap_ms": self.swap_ms,
            "d_out_src": self.d_out_src,
            "d_out_tgt": self.d_out_tgt,
            "d_src_tgt": self.d_src_tgt,
            "d_out_src_other_photo": self.d_out_src2,
            "closer_to_source": self.closer,
            "retrieval_rank": self.rank,
            "top1": self.top1,
            "top5": self.top5,
            "pose_out_ypr": self.pose_out,
            "pose_tgt_ypr": self.pose_tgt,
            "pose_src_ypr": self.pose_src,
            "yaw_gap_src_tgt": self.yaw_gap(),
            "pose_abs_diff_ypr": None if pd is None else pd.tolist(),
        }
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}


def largest(fa: FaceAnalyzer, rgb: np.ndarray) -> masquerade.Face | None:
    faces = fa.get(rgb)
    return faces[0] if faces else None


def pose_list(face: masquerade.Face) -> list[float] | None:
    return None if face.pose is None else [float(v) for v in face.pose.as_array()]


def run_pairs(
    lfw: Path, pairs: list[Pair], fs: FaceSwapper, fa: FaceAnalyzer, log_every: int = 25
) -> tuple[list[PairResult], dict[int, np.ndarray]]:
    """Swap and measure every pair; returns the results and the output images of successful swaps."""
    results: list[PairResult] = []
    outputs: dict[int, np.ndarray] = {}
    emb_cache: dict[Path, np.ndarray | None] = {}

    def embedding(path: Path, rgb: np.ndarray | None = None) -> tuple[np.ndarray | None, list | None]:
        rgb = load_image(path).rgb if rgb is None else rgb
        f = largest(fa, rgb)
        return (None, None) if f is None else (f.embedding, pose_list(f))

    t0 = time.perf_counter()
    for p in pairs:
        if p.index and p.index % log_every == 0:
            print(f"  {p.index}/{len(pairs)} pairs, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        r = PairResult(p)
        results.append(r)
        src = load_image(p.path(lfw, "src")).rgb
        tgt = load_image(p.path(lfw, "tgt")).rgb
        r.emb_src, r.pose_src = embedding(p.path(lfw, "src"), src)
        emb_tgt, r.pose_tgt = embedding(p.path(lfw, "tgt"), tgt)
        if r.emb_src is not None and emb_tgt is not None:
            r.d_src_tgt = euclidean_distance(r.emb_src, emb_tgt)  # baseline, kept even if the swap fails
        if p.src2_num is not None:
            path2 = p.path(lfw, "src2")
            if path2 not in emb_cache:
                emb_cache[path2] = embedding(path2)[0]
        try:
            t = time.perf_counter()
            src_face = fs.source_face(src)
            out, _report = fs.swap(src, tgt, source=src_face)
            r.swap_ms = (time.perf_counter() - t) * 1000.0
        except MasqueradeError as exc:
            r.failure = f"swap: {type(exc).__name__}: {exc}"
            continue
        outputs[p.index] = out
        f_out = largest(fa, out)
        if f_out is None:
            r.failure = "no face in output"
            continue
        r.emb_out = f_out.embedding
        r.pose_out = pose_list(f_out)
        if r.emb_src is not None:
            r.d_out_src = euclidean_distance(r.emb_out, r.emb_src)
        if emb_tgt is not None:
            r.d_out_tgt = euclidean_distance(r.emb_out, emb_tgt)
        if p.src2_num is not None and emb_cache[p.path(lfw, "src2")] is not None:
            r.d_out_src2 = euclidean_distance(r.emb_out, emb_cache[p.path(lfw, "src2")])
        if r.emb_src is None or emb_tgt is None:
            r.failure = "no face in source" if r.emb_src is None else "no face in target"
    retrieval(results)
    return results, outputs


def retrieval(results: list[PairResult]) -> None:
    """Rank the output embedding against the gallery of source identities.

    The gallery holds one entry per source *person* (a person's distance is the minimum over that
    person's source photos, since several pairs can share a source person); a hit is the own person.
    """
    gallery: dict[str, list[np.ndarray]] = {}
    for r in results:
        if r.emb_src is not None:
            gallery.setdefault(r.pair.src_name, []).append(r.emb_src)
    names = list(gallery)
    for r in results:
        if r.failure is not None or r.emb_out is None:
            continue
        dist = {n: min(euclidean_distance(r.emb_out, e) for e in gallery[n]) for n in names}
        order = sorted(names, key=dist.__getitem__)
        r.rank = order.index(r.pair.src_name) + 1
        r.top1 = r.rank == 1
        r.top5 = r.rank <= 5


def stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "median": None}
    return {"n": len(values), "mean": float(np.mean(values)), "median": float(np.median(values))}


def summarise(results: list[PairResult]) -> dict[str, Any]:
    n = len(results)
    ok = [r for r in results if r.failure is None]
    failures: dict[str, int] = {}
    for r in results:
        if r.failure is not None:
            key = r.failure.split(":")[0] if r.failure.startswith("swap") else r.failure
            failures[key] = failures.get(key, 0) + 1
    pose = [d for r in ok if (d := r.pose_diff()) is not None]
    pose_arr = np.array(pose) if pose else np.zeros((0, 3))
    with_src2 = [r for r in ok if r.d_out_src2 is not None]
    gallery_people = len({r.pair.src_name for r in results if r.emb_src is not None})
    swap_ms = [r.swap_ms for r in results if r.swap_ms is not None]
    gaps = [(r, r.yaw_gap()) for r in results]
    gap_le = [r for r, g in gaps if g is not None and g <= YAW_GAP]
    gap_gt = [r for r, g in gaps if g is not None and g > YAW_GAP]
    return {
        "pairs": n,
        "failures": n - len(ok),
        "failure_kinds": failures,
        "closer_to_source_rate": sum(r.closer for r in results) / n if n else None,
        "top1_rate": sum(r.top1 for r in results) / n if n else None,
        "top5_rate": sum(r.top5 for r in results) / n if n else None,
        "gallery_people": gallery_people,
        "d_out_src": stats([r.d_out_src for r in ok]),
        "d_out_tgt": stats([r.d_out_tgt for r in ok]),
        "d_src_tgt": stats([r.d_src_tgt for r in results if r.d_src_tgt is not None]),
        "d_out_src_other_photo": stats([r.d_out_src2 for r in with_src2]),
        "closer_to_source_other_photo_rate": (
            sum(r.d_out_src2 < r.d_out_tgt for r in with_src2) / len(with_src2) if with_src2 else None
        ),
        "pairs_with_source_other_photo": len(with_src2),
        "out_src_within_0.6_rate": sum(r.d_out_src < 0.6 for r in ok) / n if n else None,
        "pose_n": len(pose),
        "pose_max_abs_diff_deg": stats(pose_arr.max(1).tolist() if len(pose) else []),
        "pose_abs_diff_deg": {
            k: stats(pose_arr[:, i].tolist()) for i, k in enumerate(("yaw", "pitch", "roll"))
        },
        "yaw_gap_split_deg": YAW_GAP,
        "closer_to_source_by_yaw_gap": {
            name: {
                "n": len(sub),
                "rate": sum(r.closer for r in sub) / len(sub) if sub else None,
                "top1_rate": sum(r.top1 for r in sub) / len(sub) if sub else None,
            }
            for name, sub in (("le", gap_le), ("gt", gap_gt))
        },
        "lfw_swap_ms_median": statistics.median(swap_ms) if swap_ms else None,
    }


# --------------------------------------------------------------------------------------------- speed


def canvas_720p() -> np.ndarray:
    """``astronaut`` resized to 720×720 (bicubic) and edge-replicated left/right to 1280×720."""
    img = load_image(sample_path("astronaut")).rgb
    img = cv2.resize(img, (720, 720), interpolation=cv2.INTER_CUBIC)
    pad = (1280 - 720) // 2
    return cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_REPLICATE)


def time_swaps(fs: FaceSwapper, src: np.ndarray, canvas: np.ndarray, runs: int, warmup: int) -> dict:
    src_face = fs.source_face(src)
    faces = 0
    for _ in range(warmup):
        _, report = fs.swap(src, canvas, source=src_face)
        faces = len(report.targets)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fs.swap(src, canvas, source=src_face)
        times.append((time.perf_counter() - t) * 1000.0)
    return {
        "runs": runs,
        "warmup": warmup,
        "faces_swapped": faces,
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": float(np.min(times)),
        "max_ms": float(np.max(times)),
        "times_ms": [round(t, 2) for t in times],
    }


def run_speed(runs: int, warmup: int) -> dict[str, Any]:
    src = load_image(sample_path("grace_hopper")).rgb
    canvas = canvas_720p()
    out: dict[str, Any] = {"canvas": "astronaut 512→720×720 bicubic, edge-replicated to 1280×720"}
    with FaceSwapper() as fs:
        fs.analyzer.prepare()
        out["default"] = time_swaps(fs, src, canvas, runs, warmup)
    with FaceSwapper(SwapOptions(target_faces="all")) as fs:
        fs.analyzer.prepare()
        out["faces_all"] = time_swaps(fs, src, canvas, runs, warmup)
    return out


# -------------------------------------------------------------------------------------------- output


def labelled(rgb: np.ndarray, text: str) -> np.ndarray:
    tile = (
        cv2.resize(rgb, (TILE, TILE), interpolation=cv2.INTER_AREA) if rgb.shape[:2] != (TILE, TILE) else rgb
    )
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (TILE, 20), (0, 0, 0), -1)
    cv2.putText(tile, text[:34], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def preview(lfw: Path, results: list[PairResult], outputs: dict[int, np.ndarray], path: Path) -> None:
    """Rows of source | target | output (a grey tile where the swap failed)."""
    rows = []
    for r in results:
        p = r.pair
        src = load_image(p.path(lfw, "src")).rgb
        tgt = load_image(p.path(lfw, "tgt")).rgb
        if p.index in outputs:
            info = (
                f"out d_s {r.d_out_src:.2f} d_t {r.d_out_tgt:.2f}"
                if r.d_out_src is not None and r.d_out_tgt is not None
                else f"out ({r.failure})"
            )
            out = labelled(outputs[p.index], info)
        else:
            out = labelled(np.full((TILE, TILE, 3), 96, np.uint8), f"FAILED: {r.failure}")
        rows.append(
            np.hstack(
                [
                    labelled(src, f"#{p.index} src {p.src_name}"),
                    labelled(tgt, f"tgt {p.tgt_name}"),
                    out,
                ]
            )
        )
    grid = np.vstack(rows)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def markdown(s: dict[str, Any], speed: dict[str, Any] | None) -> str:
    lines = []
    if s:
        n = s["pairs"]
        fk = ", ".join(f"{k}: {v}" for k, v in s["failure_kinds"].items()) or "none"
        pa = s["pose_abs_diff_deg"]
        pm = s["pose_max_abs_diff_deg"]
        yg = s["closer_to_source_by_yaw_gap"]
        lines += [
            f"| Metric ({n} LFW different-person pairs) | Value |",
            "|---|---|",
            f"| Failures (counted as misses below) | {s['failures']} / {n} ({fk}) |",
            f"| Output closer to source than to target | {pct(s['closer_to_source_rate'])} |",
            f"| Identity retrieval top-1 (gallery: {s['gallery_people']} source people) "
            f"| {pct(s['top1_rate'])} |",
            f"| Identity retrieval top-5 | {pct(s['top5_rate'])} |",
            f"| Output within 0.6 of source (dlib same-person threshold) "
            f"| {pct(s['out_src_within_0.6_rate'])} |",
            f"| Mean / median distance output → source (n={s['d_out_src']['n']}) "
            f"| {fmt(s['d_out_src']['mean'])} / {fmt(s['d_out_src']['median'])} |",
            f"| Mean / median distance output → target (n={s['d_out_tgt']['n']}) "
            f"| {fmt(s['d_out_tgt']['mean'])} / {fmt(s['d_out_tgt']['median'])} |",
            f"| Baseline: mean / median distance source → target (n={s['d_src_tgt']['n']}) "
            f"| {fmt(s['d_src_tgt']['mean'])} / {fmt(s['d_src_tgt']['median'])} |",
            f"| Supplementary: mean / median distance output → *other* photo of source "
            f"(n={s['d_out_src_other_photo']['n']}) "
            f"| {fmt(s['d_out_src_other_photo']['mean'])} / {fmt(s['d_out_src_other_photo']['median'])} |",
            f"| Supplementary: output closer to other photo of source than to target "
            f"(n={s['pairs_with_source_other_photo']}) | {pct(s['closer_to_source_other_photo_rate'])} |",
            f"| Pose change output vs target, largest of Δyaw/Δpitch/Δroll, median / mean (n={s['pose_n']}) "
            f"| {fmt(pm['median'], '.2f')}° / {fmt(pm['mean'], '.2f')}° |",
            f"| Pose change per angle, median abs Δyaw / Δpitch / Δroll "
            f"| {fmt(pa['yaw']['median'], '.2f')}° / {fmt(pa['pitch']['median'], '.2f')}° / "
            f"{fmt(pa['roll']['median'], '.2f')}° |",
            f"| Output closer to source, by source–target yaw gap ≤ {YAW_GAP:.0f}° / > {YAW_GAP:.0f}° "
            f"(n={yg['le']['n']} / {yg['gt']['n']}) "
            f"| {pct(yg['le']['rate'])} / {pct(yg['gt']['rate'])} |",
            f"| Top-1 retrieval, by yaw gap ≤ {YAW_GAP:.0f}° / > {YAW_GAP:.0f}° "
            f"| {pct(yg['le']['top1_rate'])} / {pct(yg['gt']['top1_rate'])} |",
            f"| Swap time per 250×250 LFW pair incl. source analysis (median) "
            f"| {fmt(s['lfw_swap_ms_median'], '.1f')} ms |",
        ]
    if speed:
        if lines:
            lines.append("")
        lines += [
            "| Swap at 1280×720, one face (model load excluded) | Median | p90 | Faces swapped | "
            f"Target ≤ {TARGET_MS:.0f} ms |",
            "|---|---|---|---|---|",
        ]
        for key, label in (("default", "default options (largest face)"), ("faces_all", "target_faces=all")):
            t = speed[key]
            met = "met" if t["median_ms"] <= TARGET_MS else "not met"
            lines.append(
                f"| {label} | {t['median_ms']:.1f} ms | {t['p90_ms']:.1f} ms | {t['faces_swapped']} | {met} |"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def pick_worst(results: list[PairResult], k: int) -> list[PairResult]:
    """Failures first, then the pairs with the largest d(out, src) − d(out, tgt)."""

    def badness(r: PairResult) -> float:
        if r.failure is not None or r.d_out_src is None or r.d_out_tgt is None:
            return float("inf")
        return r.d_out_src - r.d_out_tgt

    return sorted(results, key=badness, reverse=True)[:k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--lfw", type=Path, default=Path("../shared/data/lfw"), help="LFW root (images/, pairs.txt)"
    )
    ap.add_argument("--pairs", type=int, default=200, help="number of mismatched pairs (file order)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="output folder")
    ap.add_argument("--runs", type=int, default=30, help="timed swaps per speed setting")
    ap.add_argument("--warmup", type=int, default=3, help="untimed swaps before timing")
    ap.add_argument("--preview", type=int, default=6, help="pairs per preview grid")
    ap.add_argument("--skip-quality", action="store_true", help="only run the speed benchmark")
    ap.add_argument("--skip-speed", action="store_true", help="only run the LFW quality benchmark")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "environment": environment("mediapipe", "dlib"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }

    summary: dict[str, Any] = {}
    if not args.skip_quality:
        pairs = read_mismatched_pairs(args.lfw, args.pairs)
        if len(pairs) < args.pairs:
            print(f"warning: only {len(pairs)} mismatched pairs available", file=sys.stderr)
        for p in pairs:
            p.src2_num = other_photo(args.lfw, p.src_name, p.src_num)
        print(f"quality: {len(pairs)} pairs from {args.lfw}", file=sys.stderr)
        t = time.perf_counter()
        with FaceSwapper() as fs, FaceAnalyzer(identity=True) as fa:
            fs.analyzer.prepare()
            fa.prepare()
            results, outputs = run_pairs(args.lfw, pairs, fs, fa)
        summary = summarise(results)
        summary["seconds"] = round(time.perf_counter() - t, 1)
        result["quality"] = {"summary": summary, "pairs": [r.to_dict() for r in results]}
        idx = np.linspace(0, len(results) - 1, min(args.preview, len(results))).round().astype(int)
        preview(args.lfw, [results[i] for i in idx], outputs, args.out / "preview.png")
        preview(args.lfw, pick_worst(results, args.preview), outputs, args.out / "preview_worst.png")

    speed: dict[str, Any] | None = None
    if not args.skip_speed:
        print(
            f"speed: 1280x720, {args.warmup} warm-up + {args.runs} timed swaps per setting", file=sys.stderr
        )
        t = time.perf_counter()
        speed = run_speed(args.runs, args.warmup)
        speed["seconds"] = round(time.perf_counter() - t, 1)
        result["speed"] = speed

    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    md = markdown(summary, speed)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "results.md").write_text(md)
    print(md)
    print(f"total {result['total_seconds']} s; wrote {args.out}/results.json, results.md, preview*.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

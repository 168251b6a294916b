"""Colour-correction comparison on different-person pairs (LFW's, or ``celeba_swap_v1``'s with --celeba).

For each pair, swap with colour = none / reinhard / shading (everything else default) and measure,
inside the face mask (mask > 0.9):

* tone error: |mean LAB of output − mean LAB of the target face| (ΔE-like, lower is better);
* lighting error: mean |low-pass L of output − low-pass L of target| after removing each one's mean
  (σ = face size / 10), i.e. how well the target's shading pattern (light direction, shadows) survives;
* seam: mean |gradient| of L along the mask's 0.5 contour in the output minus the target's there;
* over-bright: the share of the face brighter than anything in the target's own face (L above the target
  face's 99.5th percentile + 3): shine carried over from the source as flat white patches. Reported as
  its mean and the number of swaps where it exceeds 1 % of the face;
* cost: :func:`~masquerade.compose.colour.correct_colour` alone on the face's box (the uncorrected
  swap as the patch, the target, the swap's mask), median ms per face over ``TIMED_CALLS`` calls a pair.

    python benchmarks/bench_colour.py --lfw ../shared/data/lfw --pairs 100
    python benchmarks/bench_colour.py --celeba ../shared/data/celeba   # celeba_swap_v1's 200 swaps
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from masquerade import FaceAnalyzer, FaceSwapper, MasqueradeError, SwapOptions, load_image
from masquerade.compose.colour import correct_colour
from masquerade.compose.masks import face_size
from masquerade.evaluation.benchmarks import load_benchmark

MODES = ("none", "reinhard", "shading")
TIMED_CALLS = 10


def mismatched_pairs(lfw: Path, count: int) -> list[tuple[Path, Path]]:
    out = []
    for line in (lfw / "pairs.txt").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) == 4:
            a = lfw / "images" / f[0] / f"{f[0]}_{int(f[1]):04d}.jpg"
            b = lfw / "images" / f[2] / f"{f[2]}_{int(f[3]):04d}.jpg"
            out.append((a, b))
        if len(out) >= count:
            break
    return out


def celeba_pairs(celeba: Path, count: int) -> list[tuple[Path, Path]]:
    bench = load_benchmark("celeba_swap_v1", celeba_root=celeba)
    return [(p.source, p.target) for p in bench.pairs if p.kind == "swap"][:count]


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def measures(out: np.ndarray, tgt: np.ndarray, mask: np.ndarray, sigma: float) -> tuple[float, ...]:
    inside = mask > 0.9
    lo, lt = lab(out), lab(tgt)
    bright = float((lo[..., 0][inside] > np.percentile(lt[..., 0][inside], 99.5) + 3.0).mean())
    tone = float(np.linalg.norm(lo[inside].mean(0) - lt[inside].mean(0)))
    w = inside.astype(np.float32)

    def lowpass(l_chan: np.ndarray) -> np.ndarray:
        num = cv2.GaussianBlur(l_chan * w, (0, 0), sigma)
        return num / np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-4)

    a, b = lowpass(lo[..., 0])[inside], lowpass(lt[..., 0])[inside]
    light = float(np.abs((a - a.mean()) - (b - b.mean())).mean())
    edge = (mask > 0.5).astype(np.uint8)
    ring = (cv2.dilate(edge, np.ones((3, 3), np.uint8)) - cv2.erode(edge, np.ones((3, 3), np.uint8))) > 0

    def grad(l_chan: np.ndarray) -> np.ndarray:
        return np.hypot(cv2.Sobel(l_chan, cv2.CV_32F, 1, 0), cv2.Sobel(l_chan, cv2.CV_32F, 0, 1))

    seam = float(grad(lo[..., 0])[ring].mean() - grad(lt[..., 0])[ring].mean())
    return tone, light, seam, bright


def colour_ms(patch: np.ndarray, tgt: np.ndarray, mask: np.ndarray, mode: str, face_px: float) -> float:
    """Median ms of ``correct_colour`` over the box of ``mask`` (grown by a tenth of its size)."""
    ys, xs = np.nonzero(mask > 0)
    pad = int(0.1 * max(ys.ptp(), xs.ptp()))
    y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
    box = (slice(y0, ys.max() + pad + 1), slice(x0, xs.max() + pad + 1))
    p, t, m = (np.ascontiguousarray(a[box]) for a in (patch, tgt, mask))
    times = []
    for _ in range(TIMED_CALLS):
        t0 = time.perf_counter()
        correct_colour(p, t, m, mode, face_px=face_px)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--celeba", type=Path, help="use celeba_swap_v1's different-person pairs (CelebA root)")
    ap.add_argument("--pairs", type=int, help="at most this many (default: LFW's first 100, CelebA's 200)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = ap.parse_args()
    analyzer = FaceAnalyzer(identity=False)
    swappers = {m: FaceSwapper(SwapOptions(colour=m), analyzer=analyzer) for m in MODES}
    rows: dict[str, list[tuple[float, ...]]] = {m: [] for m in MODES}
    failures = 0
    t0 = time.perf_counter()
    if args.celeba is not None:
        pairs = celeba_pairs(args.celeba, args.pairs or 200)
    else:
        pairs = mismatched_pairs(args.lfw, args.pairs or 100)
    for a, b in pairs:
        src, tgt = load_image(a).rgb, load_image(b).rgb
        try:
            src_face = swappers["none"].source_face(src)
            results = {m: fs.swap(src, tgt, source=src_face) for m, fs in swappers.items()}
        except MasqueradeError:
            failures += 1
            continue
        patch = results["none"][0]
        for m, (out, report) in results.items():
            px = face_size(report.targets[0].mesh)
            cost = colour_ms(patch, tgt, report.mask, m, px)
            rows[m].append((*measures(out, tgt, report.mask, max(2.0, px / 10.0)), cost))
    lines = [
        f"pairs: {len(pairs)}, measured: {len(rows['none'])}, failed (no face): {failures}, "
        f"time {time.perf_counter() - t0:.0f} s",
        "",
        "| colour | tone error ΔLAB (median) | lighting error ΔL (median) | seam Δ|∇L| (median) "
        "| over-bright share of the face (mean) | swaps over-bright on > 1 % | ms per face (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for m in MODES:
        arr = np.array(rows[m])
        med = np.median(arr, axis=0)
        bright, many = float(arr[:, 3].mean()), int((arr[:, 3] > 0.01).sum())
        summary[m] = {"tone": med[0], "lighting": med[1], "seam": med[2]}
        summary[m] |= {"over_bright": bright, "over_bright_swaps": many, "ms_per_face": med[4]}
        lines.append(
            f"| {m} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.3f} | {bright:.4f} | {many} | {med[4]:.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "colour.md").write_text(text + "\n")
    (args.out / "colour.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

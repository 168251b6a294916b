"""How far a perfect low-resolution correction of mesh3d could raise same-person fidelity (issue #19).

The refiner (and the diffusion swapper on the warp) correct mesh3d's composite at a low resolution and
add the change at the face's size. This script measures the ceiling of that design on the same-person
pairs of a benchmark: an *oracle* correction made from the real target itself — the target's crop minus
the composite's crop at R px (the refiner's ``refine`` crop, INTER_AREA), inside the composite's mask,
added back exactly as the refiner adds its own (:func:`masquerade.swappers.refined.add_correction`) —
and reports the same-person SSIM and PSNR in the target's face (the evaluation's figures) for mesh3d and
for each R. No network is involved: it says what any corrector at R px could reach at most.

    python benchmarks/bench_refiner_ceiling.py --benchmark celeba_swap_v1 --sizes 8 16 32 64 128 256 \\
        --scales 1 2 3 4 6 --out benchmarks/out/refiner_ceiling.json

With ``--scales`` it also measures the package's refiner with its correction scaled (mesh3d + K·(refined −
mesh3d)) and compares its correction with each oracle's (RMS and cosine, luma, in the target's face).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from envinfo import environment

from masquerade import FaceSwapper, SwapOptions, load_image
from masquerade.evaluation import load_benchmark
from masquerade.evaluation.metrics import face_region, masked_psnr, masked_ssim
from masquerade.occlusion.handling import source_warnings_off
from masquerade.swappers.mesh3d import Mesh3DSwapper
from masquerade.swappers.refined import RefinedSwapper, add_correction, composite_crop, target_crop


class OracleSwapper(Mesh3DSwapper):
    """mesh3d, then the oracle correction at ``size`` px from the photo as it was before the swap (the
    pipeline's ``original``)."""

    info = dataclasses.replace(Mesh3DSwapper.info, refines=True)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def refine(
        self, image: np.ndarray, source_rgb: Any, source: Any, target: Any, mask: Any,
        original: np.ndarray | None = None, **_: Any,
    ) -> Any:  # fmt: skip
        assert original is not None
        crop, mcrop, _, m = composite_crop(image, mask, target, self.size)
        real = target_crop(original, m, self.size)
        corr = (real.astype(np.float32) - crop.astype(np.float32)) * mcrop[..., None]
        return add_correction(image, corr, m)


LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="celeba_swap_v1")
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    ap.add_argument(
        "--scales", type=float, nargs="*", default=[],
        help="also the package's refiner with its correction scaled by each K (mesh3d + K·(refined − "
        "mesh3d)), and how its correction compares with each oracle's (RMS, cosine; luma in the face)",
    )  # fmt: skip
    ap.add_argument(
        "--refiner", type=Path, help="with --scales: this refiner model folder, not the package's"
    )
    ap.add_argument("--limit", type=int, help="only the first N same-person pairs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/refiner_ceiling.json"))
    args = ap.parse_args()

    bench = load_benchmark(args.benchmark, args.lfw, args.celeba)
    pairs = [p for p in bench.pairs if p.kind == "same"][: args.limit]
    labels = ["mesh3d", *(f"oracle {r} px" for r in args.sizes)]
    swappers: list[Any] = [None, *(OracleSwapper(r) for r in args.sizes)]
    if args.scales:
        swappers.append(RefinedSwapper(model=args.refiner))
    scales = [f"refiner ×{k:g}" for k in args.scales]
    scores: dict[str, dict[str, list[float]]] = {k: {"ssim": [], "psnr": []} for k in labels + scales}
    versus: dict[str, list[tuple[float, float, float]]] = {k: [] for k in labels[1:]}  # refiner vs oracle
    t0 = time.perf_counter()
    with FaceSwapper(SwapOptions(swapper="mesh3d")) as fs, source_warnings_off():
        plain = fs.swapper
        for p in pairs:
            src, tgt = load_image(p.source).rgb, load_image(p.target).rgb
            faces = fs.analyzer.get(tgt)
            if not faces:
                continue
            region = face_region(tgt.shape, faces[0])
            sface = fs.source_face(src)
            outs = []
            for sw in swappers:
                fs.swapper = plain if sw is None else sw
                outs.append(fs.swap(src, tgt, source=sface)[0])
            if args.scales:
                base, corr = outs[0].astype(np.float32), outs.pop().astype(np.float32) - outs[0]
                outs += [np.clip(np.round(base + k * corr), 0, 255).astype(np.uint8) for k in args.scales]
            ssims = [masked_ssim(o, tgt, region) for o in outs]
            if any(v is None for v in ssims):
                continue
            for label, out, v in zip(labels + scales, outs, ssims, strict=True):
                scores[label]["ssim"].append(float(v))  # type: ignore[arg-type]
                scores[label]["psnr"].append(float(masked_psnr(out, tgt, region)))  # type: ignore[arg-type]
            if args.scales:
                mine = (corr @ LUMA)[region]
                for label, out in zip(labels[1:], outs[1 : len(labels)], strict=True):
                    theirs = ((out - base) @ LUMA)[region]
                    cos = float(
                        mine @ theirs / max(float(np.linalg.norm(mine) * np.linalg.norm(theirs)), 1e-6)
                    )
                    versus[label].append((_rms(mine), _rms(theirs), cos))
    wall = time.perf_counter() - t0
    rows = {
        k: {m: float(np.mean(v)) for m, v in d.items()} | {"pairs": len(d["ssim"])} for k, d in scores.items()
    }
    for k, r in rows.items():
        print(f"{k:>16}: SSIM {r['ssim']:.4f}  PSNR {r['psnr']:.2f} dB  ({r['pairs']} pairs)")
    corrections = {}
    for k, v in versus.items():
        if v:
            a = np.array(v)
            corrections[k] = {
                "rms_refiner": a[:, 0].mean(),
                "rms_oracle": a[:, 1].mean(),
                "cosine": a[:, 2].mean(),
            }
            print(f"{k:>16}: correction RMS {a[:, 1].mean():.2f} grey levels (refiner {a[:, 0].mean():.2f}), "
                  f"cosine with the refiner's {a[:, 2].mean():.3f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "environment": environment(), "benchmark": args.benchmark, "seconds": wall, "figures": rows,
        "corrections": corrections,
    }  # fmt: skip
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{wall:.0f} s → {args.out}")


if __name__ == "__main__":
    main()

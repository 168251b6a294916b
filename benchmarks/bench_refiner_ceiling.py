"""How far a perfect low-resolution correction of mesh3d could raise same-person fidelity (issue #19).

The refiner (and the diffusion swapper on the warp) correct mesh3d's composite at a low resolution and
add the change at the face's size. This script measures the ceiling of that design on the same-person
pairs of a benchmark: an *oracle* correction made from the real target itself — the target's crop minus
the composite's crop at R px (the refiner's ``refine`` crop, INTER_AREA), inside the composite's mask,
added back exactly as the refiner adds its own (:func:`masquerade.swappers.refined.add_correction`) —
and reports the same-person SSIM and PSNR in the target's face (the evaluation's figures) for mesh3d and
for each R. No network is involved: it says what any corrector at R px could reach at most.

    python benchmarks/bench_refiner_ceiling.py --benchmark celeba_swap_v1 --sizes 8 16 32 64 128 256 \\
        --out benchmarks/out/refiner_ceiling.json
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
from masquerade.swappers.refined import add_correction, composite_crop


class OracleSwapper(Mesh3DSwapper):
    """mesh3d, then the oracle correction at ``size`` px from the target photo it was given."""

    info = dataclasses.replace(Mesh3DSwapper.info, refines=True)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._target: np.ndarray | None = None

    def swap(
        self, source_rgb: Any, source: Any, target_rgb: np.ndarray, target: Any, holes: Any = None
    ) -> Any:
        self._target = target_rgb.copy()
        return super().swap(source_rgb, source, target_rgb, target, holes)

    def refine(
        self, image: np.ndarray, source_rgb: Any, source: Any, target: Any, mask: Any, **_: Any
    ) -> Any:
        assert self._target is not None
        crop, mcrop, _, m = composite_crop(image, mask, target, self.size)
        real, _, _, _ = composite_crop(self._target, mask, target, self.size)
        corr = (real.astype(np.float32) - crop.astype(np.float32)) * mcrop[..., None]
        return add_correction(image, corr, m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="celeba_swap_v1")
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    ap.add_argument("--limit", type=int, help="only the first N same-person pairs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/refiner_ceiling.json"))
    args = ap.parse_args()

    bench = load_benchmark(args.benchmark, args.lfw, args.celeba)
    pairs = [p for p in bench.pairs if p.kind == "same"][: args.limit]
    labels = ["mesh3d", *(f"oracle {r} px" for r in args.sizes)]
    swappers = [None, *(OracleSwapper(r) for r in args.sizes)]
    scores: dict[str, dict[str, list[float]]] = {k: {"ssim": [], "psnr": []} for k in labels}
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
            if any(masked_ssim(o, tgt, region) is None for o in outs):
                continue
            for label, out in zip(labels, outs, strict=True):
                scores[label]["ssim"].append(float(masked_ssim(out, tgt, region)))  # type: ignore[arg-type]
                scores[label]["psnr"].append(float(masked_psnr(out, tgt, region)))  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    rows = {
        k: {m: float(np.mean(v)) for m, v in d.items()} | {"pairs": len(d["ssim"])} for k, d in scores.items()
    }
    for k, r in rows.items():
        print(f"{k:>16}: SSIM {r['ssim']:.4f}  PSNR {r['psnr']:.2f} dB  ({r['pairs']} pairs)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(), "benchmark": args.benchmark, "seconds": wall, "figures": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{wall:.0f} s → {args.out}")


if __name__ == "__main__":
    main()

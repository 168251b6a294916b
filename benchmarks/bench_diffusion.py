"""Sampling time per face of a trained diffusion model folder (``masquerade train diffusion``).

Times :meth:`DiffusionSwapper.generate` — the DDIM loop through onnxruntime on one aligned target
face of the bundled samples — for several step counts, with and without classifier-free guidance
(guidance doubles the batch of every denoiser call), and the whole ``FaceSwapper.swap`` (analysis,
alignment, sampling, blending; for a model conditioned on the 3-D warp also mesh3d's warp and composite)
at the model's default steps.

    python benchmarks/bench_diffusion.py --model RUN_DIR [--steps 10 25 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from envinfo import environment

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path
from masquerade.swappers.diffusion import (
    WARP_CONDITION,
    WARP_CONDITION_CHANNELS,
    DiffusionOptions,
    DiffusionSwapper,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="diffusion model folder")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per setting (after one warm-up)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/diffusion.json"))
    args = ap.parse_args()

    target, source = load_image(sample_path("astronaut")).rgb, load_image(sample_path("grace_hopper")).rgb
    rows = []
    with FaceAnalyzer(identity=False) as fa:
        t_face, s_face = fa.get(target)[0], fa.get(source)[0]
        probe = DiffusionSwapper(args.model)
        if probe.model_info.condition == WARP_CONDITION:  # the time does not depend on the values
            r = probe.resolution
            cond, start = (
                np.zeros((WARP_CONDITION_CHANNELS, r, r), np.float32),
                np.zeros((1, 3, r, r), np.float32),
            )
        else:
            (cond, _, _), start = probe.condition(target, t_face), None
        ident = probe.identities(source, s_face)[None]
        for guidance in (probe.model_info.guidance, 1.0):
            for steps in args.steps:
                sw = DiffusionSwapper(args.model, DiffusionOptions(steps=steps, guidance=guidance))
                sw.generate(cond[None], ident, start)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    sw.generate(cond[None], ident, start)
                    times.append(time.perf_counter() - t0)
                ms = 1e3 * float(np.median(times))
                rows.append({"steps": steps, "guidance": guidance, "ms_per_face": round(ms, 1)})
                print(f"steps {steps:4d}  guidance {guidance:g}: {ms:8.1f} ms per face")
        opts = SwapOptions(swapper="diffusion", model=str(args.model))
        fs = FaceSwapper(opts, analyzer=fa)
        src = fs.source_face(source)
        fs.swap(source, target, source=src)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fs.swap(source, target, source=src)
            times.append(time.perf_counter() - t0)
        whole = 1e3 * float(np.median(times))
        print(f"whole swap at the model's defaults ({probe.steps} steps): {whole:.1f} ms")
    report = {
        "environment": environment("numpy", "onnxruntime"),
        "model": str(args.model),
        "resolution": probe.resolution,
        "sampling": rows,
        "whole_swap_ms": round(whole, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()

"""Compare refiner models with each other and with mesh3d on the shipped benchmarks: one
``masquerade.evaluation.evaluate`` run per benchmark, every column in it.

Usage (from the repository root)::

    python benchmarks/bench_refiner_models.py --model RUN --model OLD_MODEL_DIR \\
        --benchmark celeba_swap_v1 --benchmark lfw_swap_v2 --out benchmarks/out/refiner_models

Columns: ``mesh3d``, ``refined`` (the model in the package) and ``refined`` with each ``--model`` folder
(a ``masquerade train refiner`` run folder or a copy of its ``refiner.onnx`` + ``model.json``) or
``diffusion`` with each diffusion model folder (``masquerade train diffusion --condition warp``: it
refines mesh3d's composite too), labelled by the swapper and the folder's name; all with the default
options (occlusion handling on, unless ``--occlusion off``; ``--occlusion-forehead on`` for that option).
Each benchmark's report folder (``--out/<benchmark>/``: ``report.md`` with every figure per subset and
the paired comparison against mesh3d, grids) is written as ``masquerade evaluate`` writes it;
``--out/results.md`` has the figures issue #19 names, one table per benchmark, and each ``--model``
compared pair by pair with the package's refiner.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from envinfo import environment

from masquerade.evaluation import evaluate, limit_pairs, load_benchmark, write_report
from masquerade.evaluation.compare import compare, comparison_lines
from masquerade.evaluation.results import SwapperSpec
from masquerade.pipeline import SwapOptions
from masquerade.swappers import swapper_takes_model

FIGURES = (  # (subset, metric, label)
    ("swap", "closer_to_source", "closer to source ↑"),
    ("swap", "top1", "retrieval top-1 ↑"),
    ("swap", "pose_err", "pose error ↓"),
    ("swap", "gaze_err", "gaze error ↓"),
    ("same", "ssim_region", "same-person SSIM ↑"),
    ("same", "sharpness", "sharpness ratio"),
    ("occ_target", "occ_survival", "target occluder survival ↑"),
    ("occ_source", "occ_source_err", "source-occluder error ↓"),
)


def _value(report: Any, kind: str, key: str) -> float | None:
    a = report.aggregate.get(kind)
    if a is None or key not in a:
        return None
    v = a[key]
    return float(v["mean"] if isinstance(v, dict) else v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", type=Path, action="append", default=[],
        help="a refiner model folder, or a diffusion model folder trained with --condition warp (repeat)",
    )  # fmt: skip
    ap.add_argument("--benchmark", action="append", help="shipped benchmark (repeat; default celeba_swap_v1)")
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--occlusion", choices=("on", "off"), default="on")
    ap.add_argument(
        "--occlusion-forehead", choices=("on", "off"), default="off",
        help="with occlusion on: a source's forehead mostly hidden is left out whole (the swap option)",
    )  # fmt: skip
    ap.add_argument("--limit", type=int, help="pairs per kind")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/refiner_models"))
    args = ap.parse_args(argv)
    on = args.occlusion == "on"
    forehead = args.occlusion_forehead == "on"
    specs = [
        SwapperSpec("mesh3d", SwapOptions(swapper="mesh3d", occlusion=on, occlusion_forehead=forehead)),
        SwapperSpec("refined", SwapOptions(swapper="refined", occlusion=on, occlusion_forehead=forehead)),
    ]
    for m in args.model:
        kind = "diffusion" if swapper_takes_model("diffusion", m) else "refined"
        options = SwapOptions(swapper=kind, model=str(m), occlusion=on, occlusion_forehead=forehead)
        specs.append(SwapperSpec(kind, options, label=f"{kind} {m.name}"))
    command = "python benchmarks/bench_refiner_models.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res: dict[str, Any] = {"environment": environment(), "command": command}
    lines = []
    for name in args.benchmark or ["celeba_swap_v1"]:
        bench = limit_pairs(load_benchmark(name, args.lfw, args.celeba), args.limit)
        t0 = time.perf_counter()
        reports = evaluate(specs, bench)
        wall = time.perf_counter() - t0
        write_report(reports, args.out / name, bench, {"command": command, "seconds": wall}, force=True)
        table = {r.label: {f"{k}.{m}": _value(r, k, m) for k, m, _ in FIGURES} for r in reports}
        res[name] = {"seconds": wall, "figures": table}
        labels = [r.label for r in reports]
        lines += [f"### {name} ({wall / 60:.1f} min)", "", "| | " + " | ".join(labels) + " |",
                  "|---|" + "---|" * len(labels)]  # fmt: skip
        for kind, metric, label in FIGURES:
            vals = [table[lab][f"{kind}.{metric}"] for lab in labels]
            if all(v is None for v in vals):
                continue
            lines.append(f"| {label} | " + " | ".join("—" if v is None else f"{v:.4g}" for v in vals) + " |")
        lines.append("")
        print("\n".join(lines[-len(FIGURES) - 5 :]), flush=True)
        if len(reports) > 2:  # each --model against the package's refiner, pair by pair
            rows = [c for r in reports[2:] for c in compare([reports[1], r])]
            title = f"Against the package's refiner, pair by pair ({name}):"
            lines += [title, "", *comparison_lines(rows), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

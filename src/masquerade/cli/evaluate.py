"""``masquerade evaluate``: measure swappers over a benchmark; report.md, results.json and plots."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError
from .common import add_swapper_options, given_swapper_options, resolve


def _triple(text: str) -> tuple[float, float, float]:
    parts = [float(x) for x in text.replace(" ", "").split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give one value or three comma-separated values (R,G,B)")
    return parts[0], parts[1], parts[2]


def _size(text: str) -> tuple[int, int]:
    parts = [int(x) for x in text.lower().replace("x", ",").split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError("give N or HEIGHTxWIDTH")
    return parts[0], parts[1]


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "evaluate",
        help="measure swappers over a benchmark of (source, target) pairs; writes report.md, "
        "results.json and plots to a folder",
    )  # fmt: skip
    e.add_argument(
        "--swapper", action="append", metavar="NAME",
        help="swapper to evaluate (repeat): a registered one (mesh3d; autoencoder, generator or onnx with "
        "--model) or "
        "a baseline: none (target unchanged), source (the source photo itself); default: every registered "
        "swapper that can run (autoencoder / generator / onnx only with a --model folder / card) and none",
    )  # fmt: skip
    e.add_argument(
        "--model", type=Path, metavar="DIR|CARD",
        help="trained model folder for --swapper autoencoder or generator; model card (.toml) for "
        "--swapper onnx",
    )  # fmt: skip
    add_swapper_options(e)
    e.add_argument(
        "--occlusion", choices=["on", "off"], default="on",
        help="swap with occlusion handling on or off, as in masquerade swap (default on)",
    )  # fmt: skip
    e.add_argument(
        "--occlusion-model", type=Path, metavar="DIR",
        help="the occlusion segmenter in DIR instead of the package's, as in masquerade swap (implies "
        "--occlusion on)",
    )  # fmt: skip
    e.add_argument(
        "--benchmark",
        help="shipped benchmark (lfw_swap_v1, lfw_swap_v2, celeba_swap_v1) or a pairs file (default "
        "lfw_swap_v1, unless only --video is given)",
    )
    e.add_argument(
        "--lfw", type=Path, default=Path("../shared/data/lfw"),
        help="LFW root (holding images/) for the lfw benchmarks (default ../shared/data/lfw)",
    )  # fmt: skip
    e.add_argument(
        "--celeba", type=Path, default=Path("../shared/data/celeba"),
        help="CelebA root (holding images/) for celeba_swap_v1 (default ../shared/data/celeba)",
    )  # fmt: skip
    e.add_argument("--pairs", type=Path, help="your own pairs file (tab-separated: kind, source, target …)")
    e.add_argument("--root", type=Path, help="folder that relative paths in --pairs resolve against")
    e.add_argument(
        "--limit",
        type=int,
        help="only the first N pairs of each kind (swap, self, same, occ_target, occ_source)",
    )
    e.add_argument("-o", "--out", type=Path, required=True, help="report folder (created; must be empty)")
    e.add_argument("--force", action="store_true", help="write into a non-empty report folder")
    e.add_argument(
        "--video", nargs=2, action="append", metavar=("SOURCE_PHOTO", "TARGET_CLIP"),
        help="also swap this clip and report jitter/flicker of output vs input (repeatable)",
    )  # fmt: skip
    e.add_argument("--video-seconds", type=float, help="only the first S seconds of each clip")
    onnx_kinds = (
        ("fid", "feature extractor for a Fréchet distance (outputs vs targets)"),
        ("lpips", "LPIPS-style distance model (two image inputs) for self pairs"),
    )
    for kind, what in onnx_kinds:
        e.add_argument(
            f"--{kind}-onnx", type=Path, metavar="MODEL.onnx",
            help=f"your ONNX {what}; input NCHW float RGB (rgb/255 - mean)/std; settings from the options "
            "below, else a MODEL.json sidecar (size, mean, std), else the graph's input shape",
        )  # fmt: skip
        e.add_argument(f"--{kind}-size", type=_size, metavar="HxW", help="model input size")
        e.add_argument(f"--{kind}-mean", type=_triple, metavar="R,G,B", help="input mean (default 0)")
        e.add_argument(f"--{kind}-std", type=_triple, metavar="R,G,B", help="input std (default 1)")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..analysis.analyzer import FaceAnalyzer
    from ..evaluation import (
        OnnxImageModel,
        OnnxModelSpec,
        VideoPairSpec,
        evaluate,
        limit_pairs,
        load_benchmark,
        load_pairs,
        prepare_out_folder,
        swapper_spec,
        write_report,
    )
    from ..evaluation.compare import compare
    from ..swappers import SWAPPERS, swapper_needs_model, swapper_takes_model

    t0 = time.perf_counter()
    prepare_out_folder(args.out, args.force, create=False)
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    if args.video_seconds is not None and args.video_seconds <= 0:
        raise InputError("--video-seconds must be positive")
    if args.pairs is not None and args.benchmark is not None:
        raise InputError("give either --benchmark or --pairs, not both")
    if args.root is not None and args.pairs is None:
        raise InputError("--root goes with --pairs (the shipped benchmark uses --lfw)")
    names = args.swapper or [
        *(n for n in SWAPPERS if not swapper_needs_model(n) or (
            args.model is not None and swapper_takes_model(n, args.model))), "none",
    ]  # fmt: skip
    if args.model is not None and not any(n in SWAPPERS and SWAPPERS[n].info.takes_a_model for n in names):
        users = " or ".join(f"--swapper {n}" for n in SWAPPERS if SWAPPERS[n].info.takes_a_model)
        raise InputError(f"--model goes with {users}")
    model = str(args.model) if args.model is not None else None
    specs = [
        swapper_spec(
            _options(n, model, own), model if n in SWAPPERS and swapper_takes_model(n, model or "") else None
        )
        for n in names
        for own in [_own_options(n, names, given_swapper_options(args))]
    ]
    on = args.occlusion == "on" or args.occlusion_model is not None
    seg = None if args.occlusion_model is None else str(args.occlusion_model)
    specs = [
        s if s.options is None else replace(s, options=replace(s.options, occlusion=on, occlusion_model=seg))
        for s in specs
    ]
    bench = None
    if args.pairs is not None:
        bench = load_pairs(args.pairs, args.root)
    elif args.benchmark is not None or not args.video:
        bench = load_benchmark(args.benchmark or "lfw_swap_v1", args.lfw, args.celeba)
    if bench is not None:
        bench = limit_pairs(bench, args.limit)
    videos = []
    for src, clip in args.video or []:
        sp, cp = resolve(src), Path(clip)
        for q in (sp, cp):
            if not q.is_file():
                raise InputError(f"{q}: no such file")
        videos.append(VideoPairSpec(sp, cp))
    models = {}
    for kind, inputs in (("fid", 1), ("lpips", 2)):
        path = getattr(args, f"{kind}_onnx")
        if path is not None:
            size, mean, std = (getattr(args, f"{kind}_{k}") for k in ("size", "mean", "std"))
            spec = OnnxModelSpec(path, size, mean, std)
            models[kind] = OnnxImageModel(spec, inputs)
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(),
    )  # fmt: skip
    with FaceAnalyzer(identity=True) as fa, Progress(
        *columns, console=err, transient=True, disable=not err.is_terminal
    ) as bar:  # fmt: skip
        task = bar.add_task("evaluating", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        reports = evaluate(
            specs, bench if bench else [], fa, progress, models.get("fid"), models.get("lpips"),
            videos, args.video_seconds,
        )  # fmt: skip
    command = _evaluate_command(args)
    secs = time.perf_counter() - t0
    written = write_report(reports, args.out, bench, {"command": command, "seconds": secs}, force=args.force)
    for r in reports:
        a = r.aggregate
        parts = []
        if "swap" in a:
            s = a["swap"]
            pe = s["pose_err"]["median"]
            parts.append(
                f"closer to source {100 * (s['closer_to_source'] or 0):.1f} %, "
                f"top-1 {100 * (s['top1'] or 0):.1f} %, median pose error "
                f"{'-' if pe is None else f'{pe:.2f}°'}, {s['failures']}/{s['pairs']} failed"
            )
        if "self" in a:
            s = a["self"]
            sv = s["ssim_face"]["mean"]
            sv_text = "-" if sv is None else f"{sv:.4f}"
            parts.append(f"self SSIM (face) {sv_text}, {s['failures']}/{s['pairs']} failed")
        if "same" in a:
            s = a["same"]
            sv, sh = s["ssim_region"]["mean"], s["sharpness"]["mean"]
            parts.append(
                f"same-person SSIM {'-' if sv is None else f'{sv:.3f}'}, sharpness "
                f"{'-' if sh is None else f'{sh:.2f}'}"
            )
        if "video" in a:
            jr = a["video"]["jitter_ratio"]["mean"]
            parts.append(f"video jitter ratio {'-' if jr is None else f'{jr:.2f}'}")
        err.print(f"{r.label}: " + "; ".join(parts), highlight=False)
    for c in compare(reports):
        if c.verdict != "too few pairs":
            err.print(f"  {c.b} vs {c.a}, {c.label} ({c.kind}, {c.n} pairs): {c.verdict}", highlight=False)
    err.print(
        f"evaluated in {secs:.1f} s → {args.out}/ ({', '.join(p.name for p in written)})", highlight=False
    )
    return 0


def _own_options(name: str, names: list[str], given: dict[str, Any]) -> dict[str, Any]:
    """Of the swapper options given, those ``name`` takes; an option no evaluated swapper takes is the
    same one-line error as in ``masquerade swap``."""
    from ..swappers import SWAPPERS, swapper_options

    takers = [n for n in names if n in SWAPPERS]
    for k in given:
        if not any(k in {o.name for o in SWAPPERS[n].info.options} for n in takers):
            swapper_options(takers[0] if takers else "mesh3d", {k: given[k]})  # raises
    if name not in SWAPPERS:
        return {}
    return {k: v for k, v in given.items() if k in {o.name for o in SWAPPERS[name].info.options}}


def _options(name: str, model: str | None, own: dict[str, Any]) -> Any:
    """The swapper to evaluate: its name, or its swap options when it was given options of its own."""
    from ..pipeline import SwapOptions
    from ..swappers import swapper_options

    if not own:
        return name
    return SwapOptions(swapper=name, model=model, swapper_options=swapper_options(name, own))


def _evaluate_command(args: argparse.Namespace) -> str:
    parts = ["masquerade", "evaluate"]
    for n in args.swapper or []:
        parts += ["--swapper", n]
    if args.model is not None:
        parts += ["--model", str(args.model)]
    for k, v in given_swapper_options(args).items():
        parts += ["--" + k.replace("_", "-"), str(v)]
    if args.occlusion == "off" and args.occlusion_model is None:
        parts += ["--occlusion", "off"]
    if args.occlusion_model is not None:
        parts += ["--occlusion-model", str(args.occlusion_model)]
    if args.pairs is not None:
        parts += ["--pairs", str(args.pairs)] + (["--root", str(args.root)] if args.root else [])
    elif args.benchmark is not None or not args.video:
        name = args.benchmark or "lfw_swap_v1"
        parts += ["--benchmark", name]
        parts += ["--celeba", str(args.celeba)] if name.startswith("celeba") else ["--lfw", str(args.lfw)]
    if args.limit is not None:
        parts += ["--limit", str(args.limit)]
    for src, clip in args.video or []:
        parts += ["--video", src, clip]
    if args.video_seconds is not None:
        parts += ["--video-seconds", str(args.video_seconds)]
    for kind in ("fid", "lpips"):
        if getattr(args, f"{kind}_onnx") is not None:
            parts += [f"--{kind}-onnx", str(getattr(args, f"{kind}_onnx"))]
    parts += ["--out", str(args.out)]
    return " ".join(parts)

"""The ``masquerade`` command line. Library code logs; this module prints.

Every failure ends in one line on stderr and a non-zero exit status (2: bad input or usage,
3: no usable face, 1: unexpected); set ``MASQUERADE_DEBUG=1`` to see a traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from ..errors import InputError, MasqueradeError, NoFaceError
from ..imageio import DEFAULT_MAX_PIXELS, check_output_path, load_image, save_image
from ..samples import SAMPLE_NAMES, sample_path
from .extract import add_extract_parser, cmd_extract
from .serve import add_serve_parser, cmd_serve
from .train import add_train_parser, cmd_train

if TYPE_CHECKING:
    from ..provenance.stamp import OutputStamp, ProvenanceOptions
    from ..swappers import DiffusionOptions

INTENDED_USE = (
    "Intended for consented media, research and film work; do not use it to deceive, "
    "harass or impersonate people."
)


def _resolve(path: str) -> Path:
    """Accept ``sample:NAME`` for the bundled public-domain photos."""
    if path.startswith("sample:"):
        name = path.split(":", 1)[1]
        if name not in SAMPLE_NAMES:
            raise InputError(f"unknown sample {name!r}; choose from {', '.join(SAMPLE_NAMES)}")
        return sample_path(name)
    return Path(path)


def _fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 0.3:
        raise argparse.ArgumentTypeError("must be between 0 and 0.3")
    return v


def _quality(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="masquerade", description=f"Offline face swapping. {INTENDED_USE}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="detect faces and print them as JSON")
    a.add_argument("photo", help="image file (or sample:NAME)")
    a.add_argument("--annotate", type=Path, metavar="PNG", help="also write an annotated image here")
    a.add_argument("--landmarks", choices=["mediapipe", "dlib"], default="mediapipe")
    a.add_argument("--no-identity", action="store_true", help="skip the 128-d identity embedding")
    a.add_argument("--mesh", action="store_true", help="include the 478-point mesh in the JSON")
    a.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    a.add_argument("--force", action="store_true", help="replace an existing --annotate file")

    s = sub.add_parser(
        "swap", help="put the source face onto the target's face(s); the target may be a photo or a video"
    )
    s.add_argument(
        "-s", "--source", action="append",
        help="photo whose identity is used (or sample:NAME); repeat with --faces many; not used by "
        "--swapper autoencoder (the identity is in the model)",
    )  # fmt: skip
    s.add_argument(
        "-t", "--target", required=True,
        help="photo or video whose faces are replaced, or a folder of them (a batch)",
    )  # fmt: skip
    s.add_argument(
        "-o", "--output", required=True, type=Path,
        help="output image (.png .jpg .webp .bmp .tif) or video (.mp4 .mov .mkv .m4v); with a folder as "
        "--target, the output folder",
    )  # fmt: skip
    _add_swap_options(s)
    s.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality (default 95)")
    s.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    v = s.add_argument_group("video")
    v.add_argument("--codec", choices=["libx264", "mpeg4"], default="libx264", help="video codec (H.264)")
    v.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    v.add_argument(
        "--preset", default="superfast",
        choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
        help="H.264 speed/size trade-off (default superfast: real time at 720p on 2 cores)",
    )  # fmt: skip
    v.add_argument("--start", type=float, help="start time in seconds")
    v.add_argument("--end", type=float, help="end time in seconds")
    v.add_argument("--detect-every", type=int, default=10, help="frames between detector runs (default 10)")
    v.add_argument("--no-smooth", action="store_true", help="turn temporal smoothing off")
    b = s.add_argument_group("batch (a folder as -t/--target: its photos and videos, into the folder -o)")
    b.add_argument(
        "--recursive", action="store_true", help="also the photos and videos in subfolders (mirrored in -o)"
    )
    b.add_argument(
        "--report", type=Path, metavar="JSON",
        help="where to write the per-file report (default OUTPUT/batch-report.json)",
    )  # fmt: skip
    r = s.add_argument_group("scale-out")
    r.add_argument(
        "--backend", choices=["local", "ray"], default="local",
        help="local (default: this process) or ray: a video is cut at keyframes into segments swapped on "
        "Ray workers, then joined with the original timing and audio; a folder's files are shared out "
        "among the workers",
    )  # fmt: skip
    r.add_argument("--address", help="with --backend ray: an existing Ray cluster (default: a local one)")
    r.add_argument("--workers", type=int, default=2, help="with --backend ray: Ray workers (default 2)")
    r.add_argument(
        "--segment-seconds", type=float, default=10.0,
        help="with --backend ray and a video: segment length (default 10)",
    )  # fmt: skip
    r.add_argument(
        "--join", choices=["copy", "decode"], default="copy",
        help="with --backend ray and a video: copy (default: each segment is encoded on its worker and "
        "the parts are joined by stream copy) or decode (lossless segments re-encoded here as one stream)",
    )  # fmt: skip
    r.add_argument(
        "--work-dir", type=Path,
        help="with --backend ray and a video: folder for the swapped segments (default: a temporary folder "
        "beside the output; on a cluster, one every node can reach)",
    )  # fmt: skip

    lv = sub.add_parser("live", help="swap faces in a camera or stream at its own pace")
    lv.add_argument(
        "-s", "--source", action="append",
        help="photo whose identity is used (not with --swapper autoencoder: the identity is in the model)",
    )  # fmt: skip
    lv.add_argument("-i", "--input", required=True, help="camera index (0), stream URL or video file")
    lv.add_argument("-o", "--output", type=Path, help="also write the swapped frames to this video")
    lv.add_argument("--max-seconds", type=float, help="stop after this much stream time")
    lv.add_argument("--no-pace", action="store_true", help="process a file as fast as possible")
    lv.add_argument("--force", action="store_true", help="replace an existing output file")
    _add_swap_options(lv)

    _add_evaluate(sub)
    add_extract_parser(sub)

    d = sub.add_parser("demo", help="swap the bundled sample photos (Grace Hopper onto the astronaut)")
    d.add_argument("-o", "--output", type=Path, default=Path("masquerade-demo.png"))
    d.add_argument("--force", action="store_true", help="replace an existing output file")

    vf = sub.add_parser(
        "verify",
        help="is this image or video marked as made by masquerade? (watermark, C2PA manifest, metadata)",
        description="Looks for masquerade's invisible watermark and checks the file's C2PA manifest "
        "(embedded or in a NAME.c2pa sidecar). Exit status: 0 provenance found and intact; 3 none "
        "found; 4 a C2PA manifest is present but invalid or tampered with (or disagrees with the "
        "watermark); 2 the file cannot be read.",
    )  # fmt: skip
    vf.add_argument("file", type=Path, help="image or video to check")
    vf.add_argument("--json", action="store_true", help="print the findings as JSON")
    vf.add_argument(
        "--max-frames", type=int, default=32, help="video frames sampled for the watermark (default 32)"
    )  # fmt: skip
    vf.add_argument(
        "--trust-anchors", type=Path, metavar="PEM",
        help="CA certificates to trust (default $MASQUERADE_C2PA_TRUST_ANCHORS)",
    )  # fmt: skip

    add_train_parser(sub)
    add_serve_parser(sub)

    m = sub.add_parser("models", help="list the models used, their origin and licences")
    m.add_argument("--verify", action="store_true", help="check every file's sha256")
    return p


def _add_swap_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--swapper", choices=["mesh3d", "autoencoder", "generator", "diffusion", "onnx"], default="mesh3d",
        help="swapping method: mesh3d (default, training-free, needs --source), autoencoder (a trained "
        "model, --model DIR, with the identity built in), generator (a trained one-shot model, --model "
        "DIR, needs --source), diffusion (a trained diffusion model, --model DIR, needs --source) or onnx "
        "(your own ONNX swapper described by a model card, --model CARD.toml, needs --source)",
    )  # fmt: skip
    s.add_argument(
        "--model", type=Path, metavar="DIR|CARD",
        help="trained model folder for --swapper autoencoder, generator or diffusion; model card (.toml) "
        "for --swapper onnx",
    )  # fmt: skip
    dg = s.add_argument_group("diffusion sampling (--swapper diffusion)")
    dg.add_argument(
        "--steps", type=int, metavar="N", help="DDIM sampling steps, 1–1000 (default: the model's, e.g. 25)"
    )
    dg.add_argument(
        "--guidance", type=float, metavar="G",
        help="classifier-free guidance on identity, 0–50; 1 = none (default: the model's)",
    )  # fmt: skip
    dg.add_argument(
        "--seed", type=int, metavar="S", help="seed of the start noise (default 0; same seed, same output)"
    )
    s.add_argument(
        "--faces", choices=["largest", "all", "reference", "many"], default="largest",
        help="target faces to replace: the largest, all, those matching --reference, or 'many': several "
        "people, each given the --source at the same position as the --reference they match (or, "
        "without references, in order of appearance / left to right) (default largest)",
    )  # fmt: skip
    s.add_argument("--reference", action="append", help="photo of a target person (repeat with --faces many)")
    s.add_argument(
        "--source-face", choices=["largest", "reference"], default="largest",
        help="face of the source photo to use; 'reference' = the one matching --source-reference",
    )  # fmt: skip
    s.add_argument("--source-reference", help="photo picking the source face in a group photo")
    s.add_argument(
        "--mask", choices=["face", "skin"], default="face",
        help="'face' replaces the whole face; 'skin' keeps the target's eyes and mouth (default face)",
    )  # fmt: skip
    s.add_argument("--mask-erode", type=_fraction, default=0.03, help="mask erosion, fraction of face size")
    s.add_argument("--mask-blur", type=_fraction, default=0.06, help="mask feathering, fraction of face size")
    s.add_argument(
        "--colour", choices=["none", "reinhard", "shading"], default="shading",
        help="colour correction: LAB statistics (reinhard) plus the target's lighting (shading, default)",
    )  # fmt: skip
    s.add_argument("--blend", choices=["feather", "poisson", "multiband"], default="feather")
    pv = s.add_argument_group("provenance (on by default: invisible watermark + signed C2PA manifest)")
    pv.add_argument(
        "--no-provenance", action="store_true",
        help="write neither watermark nor C2PA manifest; the output's metadata records that it was "
        "turned off (only for consented uses where the marks must be absent)",
    )  # fmt: skip
    pv.add_argument(
        "--c2pa-cert", type=Path, metavar="PEM",
        help="certificate chain to sign the C2PA manifest with (default $MASQUERADE_C2PA_CERT, else a "
        "local key made on first use)",
    )  # fmt: skip
    pv.add_argument("--c2pa-key", type=Path, metavar="PEM", help="private key of --c2pa-cert")


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


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
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
    e.add_argument(
        "--benchmark",
        help="shipped benchmark name or a pairs file (default lfw_swap_v1, unless only --video is given)",
    )
    e.add_argument(
        "--lfw", type=Path, default=Path("../shared/data/lfw"),
        help="LFW root (holding images/) for the shipped benchmark (default ../shared/data/lfw)",
    )  # fmt: skip
    e.add_argument("--pairs", type=Path, help="your own pairs file (tab-separated: kind, source, target …)")
    e.add_argument("--root", type=Path, help="folder that relative paths in --pairs resolve against")
    e.add_argument("--limit", type=int, help="only the first N pairs of each kind (swap, self)")
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


def cmd_evaluate(args: argparse.Namespace, out: Console, err: Console) -> int:
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
    if args.model is not None and not any(n in SWAPPERS and swapper_needs_model(n) for n in names):
        users = " or ".join(f"--swapper {n}" for n in SWAPPERS if swapper_needs_model(n))
        raise InputError(f"--model goes with {users}")
    model = str(args.model) if args.model is not None else None
    specs = [swapper_spec(n, model if n in SWAPPERS and swapper_needs_model(n) else None) for n in names]
    bench = None
    if args.pairs is not None:
        bench = load_pairs(args.pairs, args.root)
    elif args.benchmark is not None or not args.video:
        bench = load_benchmark(args.benchmark or "lfw_swap_v1", args.lfw)
    if bench is not None:
        bench = limit_pairs(bench, args.limit)
    videos = []
    for src, clip in args.video or []:
        sp, cp = _resolve(src), Path(clip)
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
        if "video" in a:
            jr = a["video"]["jitter_ratio"]["mean"]
            parts.append(f"video jitter ratio {'-' if jr is None else f'{jr:.2f}'}")
        err.print(f"{r.label}: " + "; ".join(parts), highlight=False)
    err.print(
        f"evaluated in {secs:.1f} s → {args.out}/ ({', '.join(p.name for p in written)})", highlight=False
    )
    return 0


def _evaluate_command(args: argparse.Namespace) -> str:
    parts = ["masquerade", "evaluate"]
    for n in args.swapper or []:
        parts += ["--swapper", n]
    if args.model is not None:
        parts += ["--model", str(args.model)]
    if args.pairs is not None:
        parts += ["--pairs", str(args.pairs)] + (["--root", str(args.root)] if args.root else [])
    elif args.benchmark is not None or not args.video:
        parts += ["--benchmark", args.benchmark or "lfw_swap_v1", "--lfw", str(args.lfw)]
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


def cmd_analyze(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..analysis.draw import annotate

    src = _resolve(args.photo)
    if args.annotate is not None:
        check_output_path(args.annotate, [src], args.force)
    img = load_image(src, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=not args.no_identity, landmarks=args.landmarks) as fa:
        faces = fa.get(img.rgb)
    doc = {
        "image": str(src),
        "width": img.rgb.shape[1],
        "height": img.rgb.shape[0],
        "faces": [f.to_dict(with_mesh=args.mesh) for f in faces],
    }
    sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    if args.annotate is not None:
        save_image(args.annotate, annotate(img.rgb, faces))
        err.print(f"annotated image written to {args.annotate}", highlight=False)
    return 0


def _reference_embedding(analyzer: object, path: Path, max_pixels: int) -> np.ndarray:
    img = load_image(path, max_pixels=max_pixels)
    found = analyzer.get(img.rgb, identity=True)  # type: ignore[attr-defined]
    if not found:
        raise NoFaceError(f"no face found in the reference photo {path}")
    return found[0].embedding


@dataclass
class _Prepared:
    options: object
    sources: list
    references: list | None
    swapper: object  # the FaceSwapper built once (its model loaded once) for the whole command


def _prepare(args: argparse.Namespace, analyzer: object) -> _Prepared:
    """Resolve and load sources/references and build SwapOptions; checks the combinations."""
    from ..pipeline import FaceSwapper, SwapOptions

    max_px = getattr(args, "max_pixels", DEFAULT_MAX_PIXELS)
    _check_swapper_args(args)
    srcs = [_resolve(x) for x in args.source or []]
    refs = [_resolve(x) for x in (args.reference or [])]
    sref = _resolve(args.source_reference) if args.source_reference else None
    if args.faces != "many" and len(srcs) > 1:
        raise InputError("several --source photos need --faces many")
    if args.faces == "reference" and len(refs) != 1:
        raise InputError("--faces reference needs exactly one --reference PHOTO")
    if args.faces == "many" and refs and len(refs) != len(srcs):
        raise InputError(
            f"--faces many: give one --reference per --source ({len(srcs)} sources, {len(refs)} references)"
        )
    if args.faces in ("largest", "all") and refs:
        raise InputError("--reference is used with --faces reference or --faces many")
    if args.source_face == "reference" and sref is None:
        raise InputError("--source-face reference needs --source-reference PHOTO")
    ref_embs = [_reference_embedding(analyzer, r, max_px) for r in refs]
    opts = SwapOptions(
        swapper=args.swapper, target_faces=args.faces, source_face=args.source_face,
        reference=ref_embs[0] if args.faces == "reference" else None,
        source_reference=_reference_embedding(analyzer, sref, max_px) if sref else None,
        mask=args.mask, mask_erode=args.mask_erode, mask_blur=args.mask_blur,
        colour=args.colour, blend=args.blend, model=str(args.model) if args.model is not None else None,
        sampling=_sampling(args),
    )  # fmt: skip
    fs = FaceSwapper(opts, analyzer=analyzer)  # type: ignore[arg-type]
    sources = []
    if not srcs:  # a swapper with a built-in identity (checked above): no source face to find
        return _Prepared(options=opts, sources=sources, references=None, swapper=fs)
    for p in srcs:
        rgb = load_image(p, max_pixels=max_px).rgb
        sources.append((rgb, fs.source_face(rgb)))
    refs_many = ref_embs if args.faces == "many" else None
    return _Prepared(options=opts, sources=sources, references=refs_many, swapper=fs)


def _sampling(args: argparse.Namespace) -> DiffusionOptions | None:
    """--steps/--guidance/--seed as the diffusion swapper's options (None when none is given)."""
    from ..swappers import DiffusionOptions

    given = {k: getattr(args, k, None) for k in ("steps", "guidance", "seed")}
    if all(v is None for v in given.values()):
        return None
    if args.swapper != "diffusion":
        flags = [f"--{k}" for k, v in given.items() if v is not None]
        verb = "goes" if len(flags) == 1 else "go"
        raise InputError(f"{'/'.join(flags)} {verb} with --swapper diffusion, not --swapper {args.swapper}")
    return DiffusionOptions(steps=given["steps"], guidance=given["guidance"], seed=given["seed"] or 0)


def _check_swapper_args(args: argparse.Namespace) -> None:
    """--swapper, --model and --source go together: a source for mesh3d, a model (and no source) for
    autoencoder, a model card and a source for onnx. Checked before any work is done."""
    from ..swappers import SWAPPERS, swapper_model_help, swapper_needs_model, swapper_needs_source

    _sampling(args)  # --steps/--guidance/--seed: their values and their swapper
    name = args.swapper
    if swapper_needs_model(name) and args.model is None:
        raise InputError(f"--swapper {name} needs --model {swapper_model_help(name)}")
    if not swapper_needs_model(name) and args.model is not None:
        users = " or ".join(f"--swapper {n}" for n in SWAPPERS if swapper_needs_model(n))
        raise InputError(f"--model goes with {users}, not --swapper {name}")
    if swapper_needs_source(name):
        if not args.source:
            raise InputError(f"--swapper {name} needs -s/--source PHOTO (the identity to put on the target)")
        return
    if args.source:
        raise InputError(f"--swapper {name} takes its identity from --model; leave out -s/--source")
    if args.faces == "many":
        raise InputError(f"--faces many needs a --source per person; --swapper {name} has one identity")
    if args.source_face != "largest" or args.source_reference:
        raise InputError(f"--source-face/--source-reference pick a source face; --swapper {name} uses none")


def _stamp(args: argparse.Namespace, dest: Path, inputs: list[Path]) -> OutputStamp:
    """The provenance for this output; the sidecar it may need is checked like the output itself."""
    from ..provenance.stamp import OutputStamp

    stamp = OutputStamp(args.swapper, _provenance(args))
    side = stamp.sidecar_for(dest)
    if side is not None:
        check_output_path(side, inputs, args.force, {side.suffix.lower(): "c2pa"})
    return stamp


def _provenance(args: argparse.Namespace) -> ProvenanceOptions:
    """--no-provenance / --c2pa-cert / --c2pa-key as provenance options (checked)."""
    from ..provenance.c2pa import SigningConfig
    from ..provenance.stamp import ProvenanceOptions

    cert, key = getattr(args, "c2pa_cert", None), getattr(args, "c2pa_key", None)
    if (cert is None) != (key is None):
        raise InputError("--c2pa-cert and --c2pa-key go together")
    if args.no_provenance and cert is not None:
        raise InputError("--c2pa-cert/--c2pa-key sign provenance, which --no-provenance turns off")
    for pem in (cert, key):
        if pem is not None and not pem.is_file():
            raise InputError(f"{pem}: no such file")
    signing = SigningConfig(cert, key) if cert is not None and key is not None else None
    return ProvenanceOptions(enabled=not args.no_provenance, signing=signing)


def cmd_swap(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..run.batch import swap_loaded
    from ..video.videoio import VIDEO_EXTENSIONS, is_video_path

    _check_swapper_args(args)
    tgt_p = _resolve(args.target)
    if tgt_p.is_dir():
        return _swap_batch(args, tgt_p, err)
    for flag in ("recursive", "report"):
        if getattr(args, flag, None):
            raise InputError(f"--{flag} goes with a folder as -t/--target (a batch)")
    video = is_video_path(tgt_p)
    inputs = [tgt_p, *[_resolve(x) for x in args.source or []], *[_resolve(x) for x in args.reference or []]]
    if args.source_reference:
        inputs.append(_resolve(args.source_reference))
    dest = check_output_path(args.output, inputs, args.force, VIDEO_EXTENSIONS if video else None)
    stamp = _stamp(args, dest, inputs)
    t0 = time.perf_counter()
    if video:
        return _swap_video(args, tgt_p, dest, err, t0, stamp)
    tgt_img = load_image(tgt_p, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=False) as analyzer:
        prep = _prepare(args, analyzer)
        result, report = swap_loaded(prep.swapper, prep.sources, tgt_img.rgb, prep.references)
    stamp.write_image(dest, result, alpha=tgt_img.alpha, quality=args.quality)
    n = len(report.targets)
    err.print(
        f"swapped {n} face{'s' if n != 1 else ''} in {time.perf_counter() - t0:.2f} s → {dest}",
        highlight=False,
    )
    err.print(stamp.record.summary(), highlight=False, markup=False)
    return 0


def _video_options(args: argparse.Namespace) -> Any:
    """The video flags as VideoOptions (checked; --start/--end against a video are checked by the caller)."""
    from ..video.smoothing import OneEuroParams
    from ..video.swap import VideoOptions
    from ..video.videoio import EncodeOptions

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise InputError("--end must be after --start")
    if args.detect_every < 1:
        raise InputError("--detect-every must be at least 1")
    if args.backend == "ray":
        if args.workers < 1:
            raise InputError("--workers must be at least 1")
        if not args.segment_seconds > 0:
            raise InputError("--segment-seconds must be positive")
    elif args.address is not None or args.work_dir is not None:
        raise InputError("--address/--work-dir go with --backend ray")
    smoothing = OneEuroParams(min_cutoff=1e6, beta=0.0) if args.no_smooth else OneEuroParams()
    enc = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset, start=args.start, end=args.end)
    return VideoOptions(
        detect_every=args.detect_every,
        smoothing=smoothing,
        colour_tau=1e-6 if args.no_smooth else 0.3,
        encode=enc,
    )


def _progress_bar(err: Console, *fields: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    extra = [TextColumn(f) for f in fields]
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra,
        TimeRemainingColumn(),
    )  # fmt: skip
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def _swap_video(
    args: argparse.Namespace, tgt_p: Path, dest: Path, err: Console, t0: float, stamp: OutputStamp
) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..video.swap import swap_video
    from ..video.videoio import probe

    info = probe(tgt_p)
    for name in ("start", "end"):
        value = getattr(args, name)
        if value is not None and (value < 0 or (info.duration and value > info.duration)):
            raise InputError(f"--{name} {value} is outside the video (0 to {info.duration:.2f} s)")
    vopts = _video_options(args)
    span = (args.end or info.duration) - (args.start or 0.0)
    total = int(round(span * info.fps)) if span > 0 else None
    with FaceAnalyzer(identity=False) as analyzer:
        prep = _prepare(args, analyzer)
        with _progress_bar(err, "{task.fields[fps]:.1f} fps") as bar:
            task = bar.add_task("swapping", total=total, fps=0.0)
            start = time.perf_counter()

            def progress(n: int, _t: float) -> None:
                bar.update(task, completed=n, fps=n / max(time.perf_counter() - start, 1e-6))

            if args.backend == "ray":
                report = _swap_video_ray(args, prep, tgt_p, dest, vopts, stamp, bar, task)
            else:
                report = swap_video(
                    prep.sources, tgt_p, dest, prep.options, vopts, analyzer,  # type: ignore[arg-type]
                    references=prep.references, progress=progress, provenance=stamp,
                    swapper=prep.swapper.swapper,  # type: ignore[attr-defined]
                )  # fmt: skip
    tc = report.transcode
    secs = time.perf_counter() - t0
    audio = {"copy": "audio copied", "aac": "audio re-encoded to AAC", "none": "no audio"}[tc.audio_mode]
    # a segmented run's tracks and cuts are per segment: their sums would count the seams, so not given
    how = f"{report.tracks} tracks, {report.scene_cuts} scene cuts, " if args.backend == "local" else ""
    err.print(
        f"swapped faces in {report.frames_swapped} of {report.frames} frames ({how}{audio}) in {secs:.1f} s "
        f"({report.frames / secs:.1f} fps) → {dest}",
        highlight=False,
    )
    err.print(stamp.record.summary(), highlight=False, markup=False)
    if tc.decode_error:
        err.print(
            f"warning: the input is damaged; decoding stopped after {tc.frames_out} frames", highlight=False
        )
    return 0


def _swap_video_ray(
    args: argparse.Namespace, prep: Any, tgt_p: Path, dest: Path, vopts: Any, stamp: OutputStamp,
    bar: Any, task: Any,
) -> Any:  # fmt: skip
    """The video swapped in segments on Ray workers (:mod:`masquerade.run.ray_backend`), then joined; the bar
    advances by whole segments while they are swapped, then frame by frame through the join."""
    import tempfile

    from ..run.ray_backend import ray_runner
    from ..video.segments import swap_video_segmented

    start = time.perf_counter()
    swapped = {"frames": 0, "segments": 0}

    def on_segment(result: Any) -> None:
        swapped["frames"] += result.count
        swapped["segments"] += 1
        fps = swapped["frames"] / max(time.perf_counter() - start, 1e-6)
        what = f"swapping ({swapped['segments']} segments done)"
        bar.update(task, completed=swapped["frames"], fps=fps, description=what)

    def progress(stage: str, n: int) -> None:
        if stage != "join":  # the runner reports the segments (on_segment)
            return
        if n == 1:
            start_join[0] = time.perf_counter()
            bar.reset(task, description="joining", fps=0.0)
        bar.update(task, completed=n, fps=n / max(time.perf_counter() - start_join[0], 1e-6))

    start_join = [start]
    parent = args.work_dir or (dest.parent if str(dest.parent) else Path("."))
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".masquerade-segments-", dir=parent) as work:
        run = ray_runner(
            prep.sources, tgt_p, work, prep.options, vopts, workers=args.workers, address=args.address,
            references=prep.references, on_segment=on_segment,
        )  # fmt: skip
        return swap_video_segmented(
            prep.sources, tgt_p, dest, work, prep.options, vopts, stamp,
            segment_seconds=args.segment_seconds, runner=run, progress=progress,
            references=prep.references, join=args.join,
        )  # fmt: skip


def _swap_batch(args: argparse.Namespace, tgt_p: Path, err: Console) -> int:
    """A folder as --target: every photo and video in it, into the folder -o, with a report."""
    from ..analysis.analyzer import FaceAnalyzer
    from ..provenance.stamp import OutputStamp
    from ..run.batch import BatchSettings, plan_batch, swap_batch

    if args.start is not None or args.end is not None:
        raise InputError("--start/--end trim one video; they do not apply to a folder as --target")
    if args.work_dir is not None:
        raise InputError("--work-dir is for one video on --backend ray; a folder's files are swapped whole")
    vopts = _video_options(args)
    prov = _provenance(args)
    protect = [_resolve(x) for x in [*(args.source or []), *(args.reference or [])]]
    stamp = OutputStamp(args.swapper, prov)
    plan = plan_batch(tgt_p, args.output, args.recursive, args.force, protect, stamp.sidecar_for)
    items, skipped, _ = plan
    if args.report is not None:
        check_output_path(args.report, [*protect, *(i.input for i in items)], True, {".json": "json"})
    with FaceAnalyzer(identity=False) as analyzer:
        prep = _prepare(args, analyzer)
        settings = BatchSettings(prep.options, vopts, prov, args.quality, args.max_pixels)  # type: ignore[arg-type]
        if args.backend == "ray":
            from ..run.ray_backend import ray_batch_runner

            runner = ray_batch_runner(
                prep.sources, settings, prep.references, workers=args.workers, address=args.address
            )
        else:
            from ..run.batch import local_batch_runner

            runner = local_batch_runner(prep.sources, settings, prep.references, prep.swapper)
        with _progress_bar(err, "{task.fields[failed]} failed") as bar:
            task = bar.add_task("swapping files", total=len(items) + len(skipped), failed=0)
            failed = [0]

            def progress(r: Any) -> None:
                failed[0] += r.status == "failed"
                bar.update(task, advance=1, failed=failed[0])
                if r.status == "failed":
                    why = r.error if r.error.startswith(r.input) else f"{r.input}: {r.error}"
                    bar.console.print(f"failed: {why}", highlight=False, markup=False)

            report = swap_batch(
                prep.sources, tgt_p, args.output, settings, prep.references, args.recursive, args.force,
                runner=runner, progress=progress, report_path=args.report, protect=protect, plan=plan,
            )  # fmt: skip
    err.print(report.summary() + f" → {args.output}", highlight=False, markup=False)
    err.print(f"report: {report.report_path}", highlight=False, markup=False)
    if report.failed:
        n = len(report.failed)
        err.print(f"error: {n} file{'s' if n != 1 else ''} failed (reasons above and in the report)")
        return 1
    return 0


def cmd_live(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..video.live import open_stream, run_live
    from ..video.swap import VideoFaceSwapper
    from ..video.videoio import VIDEO_EXTENSIONS, EncodeOptions, VideoWriter, probe

    _check_swapper_args(args)
    dest = None
    stamp = None
    if args.output is not None:
        inputs = [Path(args.input)] if not args.input.isdigit() and "://" not in args.input else []
        inputs += [_resolve(x) for x in args.source or []]
        dest = check_output_path(args.output, inputs, args.force, VIDEO_EXTENSIONS)
        stamp = _stamp(args, dest, inputs)
    fps = 30.0
    if not args.input.isdigit() and "://" not in args.input:
        fps = probe(Path(args.input)).fps
    with FaceAnalyzer(identity=False) as analyzer:
        prep = _prepare(args, analyzer)
        vs = VideoFaceSwapper(
            prep.sources, prep.options, analyzer=analyzer, references=prep.references,  # type: ignore[arg-type]
            post=stamp.frame_post() if stamp is not None else None,
            swapper=prep.swapper.swapper,  # type: ignore[attr-defined]
        )  # fmt: skip
        writer = None
        if dest is not None and stamp is not None:
            enc = EncodeOptions(metadata=stamp.video_metadata())
            writer = VideoWriter(dest, fps, enc, finalize=stamp.video_finalizer(dest))
        try:
            stats = run_live(
                open_stream(args.input), vs, writer.write if writer else None,
                pace=not args.no_pace, max_seconds=args.max_seconds,
            )  # fmt: skip
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            vs.close()
        if writer is not None:
            writer.close()
    err.print(
        f"live: {stats.frames_processed} frames swapped, {stats.frames_dropped} dropped to keep pace, "
        f"{stats.fps:.1f} fps, mean latency {stats.mean_latency_ms:.0f} ms" + (f" → {dest}" if dest else ""),
        highlight=False,
    )
    if stamp is not None:
        err.print(stamp.record.summary(), highlight=False, markup=False)
    return 0


def cmd_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    ns = build_parser().parse_args(
        ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "-o", str(args.output)]
        + (["--force"] if args.force else [])
    )
    return cmd_swap(ns, out, err)


def cmd_verify(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..provenance.c2pa import verify_file
    from ..provenance.stamp import read_note
    from ..provenance.watermark import Watermarker

    p: Path = args.file
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if args.trust_anchors is not None and not args.trust_anchors.is_file():
        raise InputError(f"{args.trust_anchors}: no such file")
    wm = Watermarker().detect_file(p, max_frames=args.max_frames)
    c2 = verify_file(p, trust_anchors=args.trust_anchors)
    note = read_note(p)
    problems: list[str] = []
    if c2.present and (c2.tampered or not c2.valid):
        problems.append("the C2PA manifest is invalid or was tampered with")
    if wm.content_hex and c2.valid and c2.content_id and wm.content_hex != c2.content_id:
        problems.append(f"watermark content id {wm.content_hex} differs from the manifest's {c2.content_id}")
    if problems:
        code, verdict = 4, "PROVENANCE BROKEN: " + "; ".join(problems)
    elif wm.present or c2.valid:
        what = [w for w, ok in (("watermark", wm.present), ("valid C2PA manifest", c2.valid)) if ok]
        code, verdict = 0, f"made by masquerade (synthetic media): {' and '.join(what)}"
    else:
        code = 3
        verdict = "no masquerade provenance found"
        if note:
            verdict += " (its metadata says provenance was turned off)"
    if args.json:
        c2d = {
            "present": c2.present, "valid": c2.valid, "trusted": c2.trusted, "tampered": c2.tampered,
            "signer": c2.signer, "own_key": c2.own_key, "state": c2.state, "issues": list(c2.issues),
            "sidecar": str(c2.sidecar) if c2.sidecar else None, "swapper": c2.swapper,
            "content_id": c2.content_id, "timestamp": c2.timestamp,
        }  # fmt: skip
        doc = {"file": str(p), "watermark": wm.to_dict(), "c2pa": c2d, "note": note, "verdict": verdict}
        out.print_json(json.dumps({**doc, "exit_code": code}))
        return code
    out.print(str(p), highlight=False, markup=False)
    out.print(f"  {wm.summary()}", highlight=False, markup=False)
    out.print(f"  {c2.summary()}", highlight=False, markup=False)
    if c2.valid and c2.swapper:
        out.print(
            f"  manifest: {c2.swapper} swapper, {c2.timestamp}, content id {c2.content_id}", highlight=False
        )
    if note:
        out.print(f"  metadata: {_one_line(note)}", highlight=False, markup=False)
    out.print(verdict, highlight=False, markup=False)
    return code


def cmd_models(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..models import REGISTRY

    bad = 0
    for spec in REGISTRY:
        try:
            path = str(spec.path())
            state = "present"
            if args.verify and spec.sha256:
                ok = spec.verify()
                state = "sha256 ok" if ok else "SHA256 MISMATCH"
                bad += not ok
        except MasqueradeError as exc:
            path, state = "-", f"missing: {exc}"
            bad += 1
        out.print(f"[bold]{spec.name}[/] ({spec.kind}) {state}", highlight=False)
        out.print(f"  {spec.origin}\n  licence: {spec.licence}\n  {path}", highlight=False, markup=False)
    return 1 if bad else 0


COMMANDS = {
    "analyze": cmd_analyze,
    "swap": cmd_swap,
    "live": cmd_live,
    "evaluate": cmd_evaluate,
    "demo": cmd_demo,
    "verify": cmd_verify,
    "models": cmd_models,
    "train": cmd_train,
    "extract": cmd_extract,
    "serve": cmd_serve,
}


def _one_line(text: str) -> str:
    """An error message as one line: control characters (a newline in a file name …) are escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit instead of tracebacks."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    debug = bool(os.environ.get("MASQUERADE_DEBUG"))
    try:
        return COMMANDS[args.command](args, out, err)
    except MasqueradeError as exc:
        if debug:
            raise
        err.print(f"error: {_one_line(str(exc))}", highlight=False, markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return 130
    except Exception as exc:
        if debug:
            raise
        why = _one_line(str(exc))
        msg = f"error: unexpected {type(exc).__name__}: {why} (set MASQUERADE_DEBUG=1 for details)"
        err.print(msg, highlight=False, markup=False, soft_wrap=True)
        return 1


def entry() -> None:
    sys.exit(main())

"""``masquerade extract``: build a faceset (aligned crops, masks, landmarks, pose) from videos and photos.

Registered in :mod:`masquerade.cli.main` by :func:`add_extract_parser`; runs in :func:`cmd_extract`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from ..errors import InputError
from ..identity.encoder import SAME_PERSON_DISTANCE
from ..imageio import DEFAULT_MAX_PIXELS


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _non_negative(text: str) -> float:
    v = float(text)
    if not v >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return v


def add_extract_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..faceset.extract import ExtractOptions

    d = ExtractOptions()
    e = subparsers.add_parser(
        "extract",
        help="extract a faceset (aligned face crops, masks, landmarks, pose) from videos and photos",
        description="Detects and aligns the faces of videos, image folders and images into a new "
        "faceset folder: faces/NNNNNN.png crops and NNNNNN_mask.png masks, faceset.json (landmarks, "
        "pose, source frame), summary.txt and pose.png. Near-identical, blurry and small faces are "
        "skipped; --reference keeps only one person.",
    )  # fmt: skip
    e.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video, folder of images, or image (or sample:NAME)"
    )
    e.add_argument("-o", "--output", required=True, type=Path, help="faceset folder to create (new or empty)")
    e.add_argument("--size", type=int, default=d.size, help=f"crop side in pixels (default {d.size})")
    e.add_argument(
        "--every", type=_positive_int, default=d.every_n, metavar="N",
        help="analyse every N-th video frame (default 1)",
    )  # fmt: skip
    e.add_argument("--max-faces", type=_positive_int, metavar="N", help="stop after N kept faces")
    e.add_argument(
        "--faces", choices=["largest", "all"], default=d.faces,
        help="per frame: the largest face (the best match with --reference) or all faces (default largest)",
    )  # fmt: skip
    e.add_argument("--reference", metavar="PHOTO", help="keep only faces of the person in this photo")
    e.add_argument(
        "--max-distance", type=float, default=SAME_PERSON_DISTANCE, metavar="D",
        help=f"identity distance to the reference still kept (default {SAME_PERSON_DISTANCE})",
    )  # fmt: skip
    e.add_argument(
        "--min-face", type=_non_negative, default=d.min_face, metavar="PX",
        help=f"smallest face kept, in original pixels (default {d.min_face:g})",
    )  # fmt: skip
    e.add_argument(
        "--blur", type=_non_negative, default=d.blur_threshold, metavar="T",
        help="sharpness below which a face is skipped (Laplacian variance of the face; 0 = off; "
        f"default {d.blur_threshold:g})",
    )  # fmt: skip
    e.add_argument(
        "--dedup", type=_non_negative, default=d.dedup_threshold, metavar="T",
        help="thumbnail difference (grey levels) under which a face repeats a recent one "
        f"(0 = keep all; default {d.dedup_threshold:g})",
    )  # fmt: skip
    e.add_argument("--start", type=_non_negative, metavar="S", help="video: skip the first S seconds")
    e.add_argument("--end", type=_non_negative, metavar="S", help="video: stop at S seconds")
    e.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")
    return e


def cmd_extract(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..analysis.analyzer import FaceAnalyzer
    from ..faceset.extract import ExtractOptions, extract_faceset, plan_inputs, reference_embedding
    from ..files import check_output_folder
    from .common import resolve as _resolve

    inputs = [_resolve(x) for x in args.inputs]
    ref = _resolve(args.reference) if args.reference else None
    if args.max_distance <= 0:
        raise InputError("--max-distance must be positive")
    opts = ExtractOptions(
        size=args.size, min_face=args.min_face, blur_threshold=args.blur, dedup_threshold=args.dedup,
        every_n=args.every, max_faces=args.max_faces, faces=args.faces,
        identity_threshold=args.max_distance, start=args.start, end=args.end, max_pixels=args.max_pixels,
    )  # fmt: skip
    plans = plan_inputs(inputs, opts)
    check_output_folder(args.output, [*inputs, *([ref] if ref else [])], args.force)
    t0 = time.perf_counter()
    with FaceAnalyzer(identity=False) as analyzer:
        if ref is not None:
            from dataclasses import replace

            emb = reference_embedding(analyzer, ref, args.max_pixels)
            opts = replace(opts, reference=emb, reference_label=str(ref))
        total = sum(p.total or 0 for p in plans) or None
        columns = (
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[kept]} kept, {task.fields[fps]:.1f}/s"), TimeRemainingColumn(),
        )  # fmt: skip
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("extracting", total=total, kept=0, fps=0.0)
            start = time.perf_counter()

            def progress(done: int, total: int | None, kept: int) -> None:
                rate = done / max(time.perf_counter() - start, 1e-6)
                bar.update(task, completed=done, total=total, kept=kept, fps=rate)

            report = extract_faceset(inputs, args.output, opts, analyzer, progress, force=args.force)
    err.print(f"{report.line()} in {time.perf_counter() - t0:.1f} s → {args.output}/", highlight=False)
    return 0

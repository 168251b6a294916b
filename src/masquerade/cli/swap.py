"""``masquerade swap``: a photo, a video (here or in segments on Ray) or a folder of them (a batch)."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError
from ..files import check_input_file, check_output_path, temp_beside
from ..imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, file_frames_note, frames_note, load_image
from ..job import CODECS, PRESETS, SwapJob, check_request, prepare_job, video_options
from ..provenance.stamp import OutputStamp
from .common import (
    add_swap_options,
    one_line,
    progress_bar,
    provenance,
    quality,
    resolve,
    stamp_for,
    swap_request,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    add_swap_options(s)
    s.add_argument("--quality", type=quality, default=95, help="JPEG/WebP quality (default 95)")
    s.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger images and video frames (default {DEFAULT_MAX_PIXELS:,})",
    )  # fmt: skip
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    v = s.add_argument_group("video")
    v.add_argument("--codec", choices=CODECS, default="libx264", help="video codec (H.264)")
    v.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    v.add_argument(
        "--preset", default="superfast",
        choices=PRESETS,
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


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..video.probe import is_video_path
    from ..video.transcode import VIDEO_EXTENSIONS

    check_request(swap_request(args))  # the swapper, its model and options, sources and faces
    tgt_p = resolve(args.target)
    if tgt_p.is_dir():
        return _swap_batch(args, tgt_p, err)
    for flag in ("recursive", "report"):
        if getattr(args, flag, None):
            raise InputError(f"--{flag} goes with a folder as -t/--target (a batch)")
    video = is_video_path(tgt_p)
    inputs = [tgt_p, *_inputs(args)]
    dest = check_output_path(args.output, inputs, args.force, VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS)
    check_input_file(tgt_p, "a video" if video else "an image")  # a FIFO, /dev/zero …: refused unopened
    _check_inputs(args)
    stamp = stamp_for(args, dest, inputs)
    t0 = time.perf_counter()
    if video:
        return _swap_video(args, tgt_p, dest, err, t0, stamp)
    tgt_img = load_image(tgt_p, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=False) as analyzer:
        job, fs = prepare_job(_request(args), analyzer)
        assert fs is not None
        result, report = fs.run(list(job.sources), tgt_img.rgb)
    stamp.write_image(dest, result, alpha=tgt_img.alpha, quality=job.quality)
    n = len(report.targets)
    err.print(
        f"swapped {n} face{'s' if n != 1 else ''} in {time.perf_counter() - t0:.2f} s → {dest}",
        highlight=False,
    )
    err.print(stamp.record.summary(), highlight=False, markup=False)
    warn_inputs(err, args)
    warn(err, frames_note(tgt_img))
    return 0


def warn(err: Console, note: str | None) -> None:
    """One ``warning:`` line (nothing for None)."""
    if note:
        err.print(f"warning: {one_line(note)}", highlight=False, markup=False, soft_wrap=True)


def warn_inputs(err: Console, args: argparse.Namespace) -> None:
    """One ``warning:`` line for each source or reference photo of which only the first frame was
    used (an animation, a multi-page TIFF), as for the target."""
    seen: set[Path] = set()
    for p in _inputs(args):
        if p not in seen:
            seen.add(p)
            warn(err, file_frames_note(p))


def _check_inputs(args: argparse.Namespace) -> None:
    """The photos besides the target (sources, references) are regular files: checked before any is read."""
    for p in _inputs(args):
        check_input_file(p, "an image")


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The photos a swap reads besides its target (never to be overwritten)."""
    found = [resolve(x) for x in [*(args.source or []), *(args.reference or []), *(args.not_reference or [])]]
    return found + ([resolve(args.source_reference)] if args.source_reference else [])


def _request(args: argparse.Namespace) -> Any:
    """The whole swap request of ``masquerade swap``: swap options, video options, provenance, quality."""
    if args.backend == "ray":
        if args.workers < 1:
            raise InputError("--workers must be at least 1")
        if not args.segment_seconds > 0:
            raise InputError("--segment-seconds must be positive")
    elif args.address is not None or args.work_dir is not None:
        raise InputError("--address/--work-dir go with --backend ray")
    vopts = video_options(
        args.detect_every, not args.no_smooth, args.codec, args.crf, args.preset, args.start, args.end
    )
    return swap_request(args, video=vopts, provenance=provenance(args), quality=args.quality)


def _swap_video(
    args: argparse.Namespace, tgt_p: Path, dest: Path, err: Console, t0: float, stamp: OutputStamp
) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..video.probe import probe, short_read_note
    from ..video.swap import swap_video

    info = probe(tgt_p, max_pixels=args.max_pixels)  # frames over --max-pixels: refused before decoding
    for name in ("start", "end"):
        value = getattr(args, name)
        if value is not None and (value < 0 or (info.duration and value > info.duration)):
            raise InputError(f"--{name} {value} is outside the video (0 to {info.duration:.2f} s)")
    request = _request(args)
    span = (args.end or info.duration) - (args.start or 0.0)
    total = int(round(span * info.fps)) if span > 0 else None
    with FaceAnalyzer(identity=False) as analyzer:
        job, fs = prepare_job(request, analyzer)
        assert fs is not None
        with progress_bar(err, "{task.fields[fps]:.1f} fps") as bar:
            task = bar.add_task("swapping", total=total, fps=0.0)
            start = time.perf_counter()

            def progress(n: int, _t: float) -> None:
                bar.update(task, completed=n, fps=n / max(time.perf_counter() - start, 1e-6))

            if args.backend == "ray":
                report = _swap_video_ray(args, job, tgt_p, dest, stamp, bar, task)
            else:
                report = swap_video(
                    job, tgt_p, dest, analyzer, progress=progress, stamp=stamp, swapper=fs.swapper
                )
    tc = report.transcode
    assert tc is not None
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
    warn_inputs(err, args)
    # fewer frames than the container declares (a truncated file): said once, with the damage if any
    trimmed = args.start is not None or args.end is not None
    short = None if trimmed else short_read_note(tgt_p, info.frames, report.frames)
    if short:
        warn(err, short + ("; the input is damaged" if tc.decode_error else ""))
    elif tc.decode_error:
        warn(err, f"the input is damaged; decoding stopped after {tc.frames_out} frames")
    return 0


def _swap_video_ray(
    args: argparse.Namespace, job: SwapJob, tgt_p: Path, dest: Path, stamp: OutputStamp, bar: Any, task: Any
) -> Any:
    """The video swapped in segments on Ray workers (:mod:`masquerade.run.ray_backend`), then joined; the
    bar advances by whole segments while they are swapped, then frame by frame through the join."""
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
    # ``.OUTPUT.HOST-PID.XXXX.segments``: removed at the end, however the run ends (a stop signal
    # included); one left by a killed run is removed by the next run writing the same output
    work = temp_beside(parent / dest.name, ".segments", folder=True)
    try:
        run = ray_runner(job, tgt_p, work, workers=args.workers, address=args.address, on_segment=on_segment)
        return swap_video_segmented(
            job, tgt_p, dest, work, stamp, segment_seconds=args.segment_seconds, runner=run,
            progress=progress, join=args.join,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_batch(args: argparse.Namespace, tgt_p: Path, err: Console) -> int:
    """A folder as --target: every photo and video in it, into the folder -o, with a report."""
    from ..analysis.analyzer import FaceAnalyzer
    from ..run.batch import local_batch_runner, plan_batch, swap_batch

    if args.start is not None or args.end is not None:
        raise InputError("--start/--end trim one video; they do not apply to a folder as --target")
    if args.work_dir is not None:
        raise InputError("--work-dir is for one video on --backend ray; a folder's files are swapped whole")
    request = _request(args)
    protect = _inputs(args)
    _check_inputs(args)
    stamp = OutputStamp(args.swapper, request.provenance)
    plan = plan_batch(tgt_p, args.output, args.recursive, args.force, protect, stamp.sidecar_for)
    items, skipped, _ = plan
    if args.report is not None:
        check_output_path(args.report, [*protect, *(i.input for i in items)], True, {".json": "json"})
    with FaceAnalyzer(identity=False) as analyzer:
        job, fs = prepare_job(request, analyzer)
        if args.backend == "ray":
            from ..run.ray_backend import ray_batch_runner

            runner = ray_batch_runner(job, workers=args.workers, address=args.address)
        else:
            runner = local_batch_runner(job, fs)
        with progress_bar(err, "{task.fields[failed]} failed") as bar:
            task = bar.add_task("swapping files", total=len(items) + len(skipped), failed=0)
            failed = [0]

            def progress(r: Any) -> None:
                failed[0] += r.status == "failed"
                bar.update(task, advance=1, failed=failed[0])
                if r.status == "failed":
                    why = r.error if r.error.startswith(r.input) else f"{r.input}: {r.error}"
                    bar.console.print(f"failed: {why}", highlight=False, markup=False)
                elif r.warning:
                    bar.console.print(f"warning: {one_line(r.warning)}", highlight=False, markup=False)

            report = swap_batch(
                job, tgt_p, args.output, args.recursive, args.force, runner=runner, progress=progress,
                report_path=args.report, protect=protect, plan=plan,
            )  # fmt: skip
    err.print(report.summary() + f" → {args.output}", highlight=False, markup=False)
    err.print(f"report: {report.report_path}", highlight=False, markup=False)
    warn_inputs(err, args)
    if report.failed:
        n = len(report.failed)
        err.print(f"error: {n} file{'s' if n != 1 else ''} failed (reasons above and in the report)")
        return 1
    return 0

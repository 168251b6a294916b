"""``masquerade live``: swap faces in a camera or stream at its own pace."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..files import check_output_path
from ..job import check_request, prepare_job
from .common import add_swap_options, resolve, stamp_for, swap_request


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    add_swap_options(lv)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..video.live import open_stream, run_live
    from ..video.probe import probe
    from ..video.swap import VideoFaceSwapper
    from ..video.transcode import VIDEO_EXTENSIONS, EncodeOptions
    from ..video.writer import VideoWriter

    request = swap_request(args)
    check_request(request)
    dest = None
    stamp = None
    if args.output is not None:
        inputs = [Path(args.input)] if not args.input.isdigit() and "://" not in args.input else []
        inputs += [resolve(x) for x in args.source or []]
        dest = check_output_path(args.output, inputs, args.force, VIDEO_EXTENSIONS)
        stamp = stamp_for(args, dest, inputs)
    fps = 30.0
    if not args.input.isdigit() and "://" not in args.input:
        fps = probe(Path(args.input)).fps
    with FaceAnalyzer(identity=False) as analyzer:
        job, fs = prepare_job(request, analyzer)
        assert fs is not None
        post = stamp.frame_post() if stamp is not None else None
        vs = VideoFaceSwapper(job, analyzer, post=post, swapper=fs.swapper)
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

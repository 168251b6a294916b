"""Segmented video swapping: a video cut at keyframes into segments that are swapped independently (in
any order, on any machine) and joined into one output with the original's frames, timing and audio.

* :func:`plan_segments` cuts at keyframes about ``seconds`` apart (a segment can start decoding at
  its own first frame).
* :func:`swap_segment` swaps one segment's frames with the usual stateful video swapper (tracking,
  smoothing, colour averaging) and writes them losslessly (FFV1 in Matroska) with their timestamps
  (a ``.npy`` beside). To carry the temporal state across the cut, it first runs the swapper over the
  ``warmup`` seconds before its start (from the preceding keyframe) without writing them, so the
  tracks and smoothed landmarks at the seam are those the single-process run would have, closely.
* :func:`join_segments` re-reads the original once through the same transcoder as ``swap_video`` and
  replaces every frame by the swapped one of the same timestamp, so frame count, timestamps, rotation,
  metadata and audio are the original's by construction; the provenance watermark and C2PA manifest
  are put on as ``swap_video`` does.

:func:`swap_video_segmented` plans, runs the segments through a ``runner`` (default: one after the
other in this process; :mod:`masquerade.ray_backend` runs them on Ray workers) and joins.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, NoFaceError, OutputError
from .face import Face
from .pipeline import SwapOptions
from .provenance.stamp import OutputStamp, ProvenanceOptions
from .video import VideoFaceSwapper, VideoOptions, VideoReport, stamped_options
from .videoio import _open_input, _upright, _video_stream_in, transcode

log = logging.getLogger(__name__)

SEGMENT_CODEC = "ffv1"


@dataclass(frozen=True)
class Segment:
    index: int
    start: float  # seconds: a keyframe's time (the first segment starts at the video's start)
    end: float | None  # the next segment's start; None: to the end of the video
    warmup: float = 1.0  # seconds swapped before ``start`` (not written) to carry the temporal state

    def covers(self, t: float) -> bool:
        return t >= self.start - 1e-6 and (self.end is None or t < self.end - 1e-6)


@dataclass(frozen=True)
class SegmentResult:
    segment: Segment
    frames: Path  # FFV1/Matroska of the swapped frames
    times: Path  # .npy of their timestamps (seconds)
    count: int
    swapped: int  # frames in which a face was swapped
    faces: int


def keyframe_times(path: str | os.PathLike[str]) -> list[float]:
    """Timestamps (seconds) of the video stream's keyframes, from the packets (nothing is decoded)."""
    p = Path(path)
    out: list[float] = []
    with _open_input(p) as c:
        v = _video_stream_in(c, p)
        for packet in c.demux(v):
            if packet.pts is not None and packet.is_keyframe:
                out.append(float(packet.pts * packet.time_base))
    start = min(out) if out else 0.0
    return sorted({t - start if start < 0 else t for t in out})


def trim_bounds(
    path: str | os.PathLike[str], start: float | None, end: float | None
) -> tuple[float | None, float | None]:
    """``start``/``end`` as the transcoder applies them: rounded down to the video stream's time base
    (a frame is kept when ``start <= t < end``)."""
    if not start and not end:
        return None, None
    p = Path(path)
    with _open_input(p) as c:
        tb = _video_stream_in(c, p).time_base

    def q(x: float | None) -> float | None:
        return float(int(x / tb) * tb) if x and tb else x or None

    return q(start), q(end)


def plan_segments(
    path: str | os.PathLike[str],
    seconds: float,
    warmup: float = 1.0,
    start: float | None = None,
    end: float | None = None,
) -> list[Segment]:
    """Segments of about ``seconds`` each, cut at keyframes (one segment when the video has too few);
    ``start``/``end`` (seconds) keep only that part, as ``EncodeOptions.start``/``end`` do."""
    if not seconds > 0:
        raise InputError("segment length must be positive")
    lo, hi = trim_bounds(path, start, end)
    keys = [t for t in keyframe_times(path) if (lo is None or t > lo) and (hi is None or t < hi)]
    cuts: list[float] = []
    last = lo if lo is not None else (keys[0] if keys else 0.0)
    for t in keys if lo is not None else keys[1:]:
        if t - last >= seconds:
            cuts.append(t)
            last = t
    starts = [lo if lo is not None else -math.inf, *cuts]
    ends: list[float | None] = [*cuts, hi]
    return [Segment(i, s, e, warmup) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def swap_segment(
    sources: list[tuple[np.ndarray, Face]],
    target: str | os.PathLike[str],
    segment: Segment,
    out_dir: str | os.PathLike[str],
    options: SwapOptions | None = None,
    video: VideoOptions | None = None,
    analyzer: object | None = None,
    swapper: object | None = None,
    references: list[np.ndarray] | None = None,
) -> SegmentResult:
    """Swap the frames of ``segment`` (see the module docstring); no provenance here (the join adds it)."""
    import av

    p = Path(target)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames_path = out / f"segment-{segment.index:05d}.mkv"
    times_path = out / f"segment-{segment.index:05d}.npy"
    vs = VideoFaceSwapper(sources, options or SwapOptions(), video, analyzer, references, swapper=swapper)  # type: ignore[arg-type]
    times: list[float] = []
    swapped = faces = 0
    begin = segment.start - segment.warmup
    try:
        with _open_input(p) as c, av.open(str(frames_path), "w", format="matroska") as o:
            v = _video_stream_in(c, p)
            v.thread_type = "AUTO"
            if math.isfinite(begin) and begin > 0:
                c.seek(int(begin / v.time_base), stream=v, backward=True, any_frame=False)
            stream = None
            for frame in c.decode(v):
                if frame.pts is None:
                    continue
                t = float(frame.pts * v.time_base)
                if segment.end is not None and t >= segment.end - 1e-6:
                    break
                if math.isfinite(begin) and t < begin - 1e-6:
                    continue
                rgb = _upright(frame.to_ndarray(format="rgb24"), int(round(frame.rotation or 0)) % 360)
                before = (vs.report.frames_swapped, vs.report.faces_swapped)
                rendered = vs(rgb, t)
                if not segment.covers(t):
                    continue  # warm-up: the state advances, nothing is written
                swapped += vs.report.frames_swapped - before[0]
                faces += vs.report.faces_swapped - before[1]
                if stream is None:
                    stream = o.add_stream(SEGMENT_CODEC, rate=25)
                    stream.width, stream.height, stream.pix_fmt = rendered.shape[1], rendered.shape[0], "bgr0"
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rendered), format="rgb24")
                vf.pts = len(times)
                for packet in stream.encode(vf):
                    o.mux(packet)
                times.append(t)
            if stream is not None:
                for packet in stream.encode():
                    o.mux(packet)
    finally:
        vs.close()
    np.save(times_path, np.asarray(times, np.float64))
    return SegmentResult(segment, frames_path, times_path, len(times), swapped, faces)


class _SegmentFrames:
    """The swapped frames of all segments, in timestamp order, handed out as the join asks for them."""

    def __init__(self, results: Sequence[SegmentResult]) -> None:
        self.results = sorted(results, key=lambda r: r.segment.index)
        self._iter = self._frames()

    def _frames(self):  # type: ignore[no-untyped-def]
        import av

        for r in self.results:
            times = np.load(r.times)
            if not len(times):
                continue
            with av.open(str(r.frames)) as c:
                for t, frame in zip(times, c.decode(video=0), strict=False):
                    yield float(t), frame.to_ndarray(format="rgb24")

    def next(self, t: float, tolerance: float) -> np.ndarray:
        try:
            got_t, frame = next(self._iter)
        except StopIteration:
            raise OutputError(f"the segments end before the frame at {t:.3f} s") from None
        if abs(got_t - t) > tolerance:
            raise OutputError(f"segment frame at {got_t:.3f} s where the video has one at {t:.3f} s")
        return frame


def join_segments(
    target: str | os.PathLike[str],
    results: Sequence[SegmentResult],
    output: str | os.PathLike[str],
    options: SwapOptions | None = None,
    video: VideoOptions | None = None,
    provenance: OutputStamp | ProvenanceOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> VideoReport:
    """One output from the swapped segments, with the original's timing, rotation and audio."""
    stamp, vopts = stamped_options(options or SwapOptions(), video, provenance)
    # the transcoder counts time from the trim start; the segments keep the video's own times
    offset = trim_bounds(target, vopts.encode.start, None)[0] or 0.0
    post = stamp.frame_post(None)
    finalize = stamp.video_finalizer(output, None)
    frames = _SegmentFrames(results)
    report = VideoReport(
        frames=sum(r.count for r in results),
        frames_swapped=sum(r.swapped for r in results),
        faces_swapped=sum(r.faces for r in results),
        provenance=stamp.record,
    )

    def fn(_rgb: np.ndarray, t: float) -> np.ndarray:
        frame = frames.next(t + offset, tolerance=1e-3)
        return post(frame) if post is not None else frame

    def check() -> None:
        if report.frames and not report.frames_swapped:
            raise NoFaceError(f"no face to swap in any of the {report.frames} frames of {Path(target).name}")

    report.transcode = transcode(
        target, output, fn, vopts.encode, progress, before_commit=check, finalize=finalize
    )
    return report


SegmentRunner = Callable[[list[Segment]], list[SegmentResult]]


def swap_video_segmented(
    sources: list[tuple[np.ndarray, Face]],
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    options: SwapOptions | None = None,
    video: VideoOptions | None = None,
    provenance: OutputStamp | ProvenanceOptions | None = None,
    segment_seconds: float = 10.0,
    warmup: float = 1.0,
    runner: SegmentRunner | None = None,
    progress: Callable[[str, int], None] | None = None,
    references: list[np.ndarray] | None = None,
) -> VideoReport:
    """Plan, swap every segment (``runner``; default: in this process, one after the other), join.
    The trim (``video.encode.start``/``end``) applies as in :func:`~masquerade.video.swap_video`.
    ``progress(stage, frames)``: ``("swap", n)`` as segments finish with the frames swapped so far
    (only with the default runner: a runner reports its own), then ``("join", n)`` frame by frame."""
    enc = (video or VideoOptions()).encode
    segments = plan_segments(target, segment_seconds, warmup, enc.start, enc.end)
    if runner is None:
        from .analysis import FaceAnalyzer
        from .pipeline import make_swapper

        swapper = make_swapper(options or SwapOptions())  # loaded once for all the segments
        results = []
        with FaceAnalyzer(identity=False) as fa:
            for s in segments:
                results.append(
                    swap_segment(sources, target, s, work_dir, options, video, fa, swapper, references)
                )
                if progress is not None:
                    progress("swap", sum(r.count for r in results))
    else:
        results = runner(segments)
    log.info("%d segment(s) swapped; joining", len(results))
    join_progress = (lambda n, _t: progress("join", n)) if progress is not None else None
    return join_segments(target, results, output, options, video, provenance, join_progress)

"""Segmented video swapping: a video cut at keyframes into segments that are swapped independently (in
any order, on any machine) and joined into one output with the original's frames, timing and audio.

* :func:`plan_segments` cuts at keyframes about ``seconds`` apart (a segment can start decoding at
  its own first frame), inside the trim when there is one.
* :func:`swap_segment` swaps one segment's frames with the usual stateful video swapper (tracking,
  smoothing, colour averaging). To carry the temporal state across the cut, it first runs the
  swapper over the ``warmup`` seconds before its start (from the preceding keyframe) without writing
  them, so the tracks and smoothed landmarks at the seam are those the single-process run would have,
  closely. With ``segment.part`` (the default of :func:`swap_video_segmented`) it watermarks the
  frames and encodes them as the output will hold them (:func:`.parts.encode_part`); without, it
  stores them losslessly (FFV1 in Matroska). Their timestamps go to a ``.npy`` beside.
* :func:`join_encoded` copies the encoded parts' packets and the original's audio into the output
  (:func:`.parts.concat_parts`: no frame is decoded or encoded) and signs it; :func:`join_segments`
  instead re-reads the original once through the same transcoder as ``swap_video`` and replaces
  every frame by the swapped one of the same timestamp. Either way frame count, timestamps,
  rotation, metadata and audio are the original's, and the provenance watermark and C2PA manifest
  are put on as ``swap_video`` does.

:func:`swap_video_segmented` plans, runs the segments through a ``runner`` (default: one after the
other in this process; :mod:`masquerade.run.ray_backend` runs them on Ray workers) and joins.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..errors import InputError, NoFaceError, OutputError
from ..provenance.stamp import OutputStamp, ProvenanceOptions
from ..provenance.watermark import WatermarkPayload
from .swap import VideoFaceSwapper, VideoReport, stamped_options

if TYPE_CHECKING:
    from ..job import SwapJob
    from ..swappers import Swapper
from .parts import concat_parts, encode_part
from .probe import (
    frame_rgb,
    frame_rotation,
    open_input,
    probe,
    stored,
    stream_timing,
    upright,
    video_stream_in,
)
from .transcode import EncodeOptions, transcode

log = logging.getLogger(__name__)

SEGMENT_CODEC = "ffv1"


@dataclass(frozen=True)
class PartEncoding:
    """A segment written in the output's final codec and container (with the output's watermark), so
    that the join is a stream copy (:func:`join_encoded`) instead of a decode and re-encode."""

    encode: EncodeOptions  # codec, quality, trim
    width: int  # stored frame size of the output
    height: int
    swapper: str  # for the provenance stamp
    provenance: ProvenanceOptions
    payload: WatermarkPayload | None  # the output's content id (None when provenance is off)


@dataclass(frozen=True)
class Segment:
    index: int
    start: float  # seconds: a keyframe's time (the first segment starts at the video's start)
    end: float | None  # the next segment's start; None: to the end of the video
    warmup: float = 1.0  # seconds swapped before ``start`` (not written) to carry the temporal state
    part: PartEncoding | None = None  # None: lossless FFV1 for a join that re-encodes

    def covers(self, t: float) -> bool:
        return t >= self.start - 1e-6 and (self.end is None or t < self.end - 1e-6)


@dataclass(frozen=True)
class SegmentResult:
    segment: Segment
    frames: Path  # FFV1/Matroska of the swapped frames, or the encoded part (``segment.part``)
    times: Path  # .npy of their timestamps (seconds)
    count: int
    swapped: int  # frames in which a face was swapped
    faces: int
    rotation: int = 0  # the frames' display rotation (degrees)
    marked: int = 0  # encoded parts: frames watermarked / too small to be
    unmarked: int = 0


def keyframe_times(path: str | os.PathLike[str]) -> list[float]:
    """Timestamps (seconds) of the video stream's keyframes, from the packets (nothing is decoded)."""
    p = Path(path)
    out: list[float] = []
    with open_input(p) as c:
        v = video_stream_in(c, p)
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
    with open_input(p) as c:
        tb = video_stream_in(c, p).time_base

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
    job: SwapJob,
    target: str | os.PathLike[str],
    segment: Segment,
    out_dir: str | os.PathLike[str],
    analyzer: FaceAnalyzer | None = None,
    swapper: Swapper | None = None,
    on_frame: Callable[[], None] | None = None,
) -> SegmentResult:
    """Swap the frames of ``segment`` (see the module docstring). Without ``segment.part`` the frames
    are stored losslessly and the join adds the provenance; with it they are watermarked and encoded
    here as the output will hold them. ``on_frame()`` is called before each frame is swapped and may
    raise to stop (the segment's files are then removed)."""

    p = Path(target)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    part = segment.part
    suffix = ".packets" if part is not None else ".mkv"
    frames_path = out / f"segment-{segment.index:05d}{suffix}"
    times_path = out / f"segment-{segment.index:05d}.npy"
    vs = VideoFaceSwapper(job, analyzer, swapper=swapper)
    stamp = (
        OutputStamp(part.swapper, part.provenance, payload=part.payload) if part and part.payload else None
    )
    mark = stamp.video_marker() if stamp is not None else None
    times: list[float] = []
    swapped = faces = rotation = 0
    begin = segment.start - segment.warmup
    try:
        with open_input(p) as c:
            v = video_stream_in(c, p)
            v.thread_type = "AUTO"
            tb, rate = stream_timing(v)
            if part is not None:
                w, h = part.width, part.height
                write = encode_part(frames_path, part.encode, w, h, rate, tb, mark)
                t0_pts = int(part.encode.start / tb) if part.encode.start else 0
            else:
                write = _lossless_writer(frames_path)
                t0_pts = 0
            try:
                if math.isfinite(begin) and begin > 0:
                    c.seek(int(begin / tb), stream=v, backward=True, any_frame=False)
                for frame in c.decode(v):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * tb)
                    if segment.end is not None and t >= segment.end - 1e-6:
                        break
                    if math.isfinite(begin) and t < begin - 1e-6:
                        continue
                    if on_frame is not None:
                        on_frame()
                    rotation = frame_rotation(frame)
                    rgb = upright(frame_rgb(frame), rotation)
                    before = (vs.report.frames_swapped, vs.report.faces_swapped)
                    rendered = vs(rgb, t)
                    if not segment.covers(t):
                        continue  # warm-up: the state advances, nothing is written
                    swapped += vs.report.frames_swapped - before[0]
                    faces += vs.report.faces_swapped - before[1]
                    if part is not None:
                        write(stored(rendered, rotation), frame.pts - t0_pts, rotation)
                    else:
                        write(rendered, len(times))
                    times.append(t)
            finally:
                write(None, 0)
    except BaseException:
        frames_path.unlink(missing_ok=True)
        raise
    finally:
        vs.close()
    np.save(times_path, np.asarray(times, np.float64))
    rec = stamp.record if stamp is not None else None
    return SegmentResult(
        segment, frames_path, times_path, len(times), swapped, faces, rotation,
        rec.frames_marked if rec else 0, rec.frames_unmarked if rec else 0,
    )  # fmt: skip


def _lossless_writer(path: Path) -> Callable[[np.ndarray | None, int], None]:
    """Frames (upright RGB) into FFV1/Matroska, numbered from 0 (the times go to the .npy beside)."""
    import av

    o = av.open(str(path), "w", format="matroska")
    stream = None

    def put(rgb: np.ndarray | None, index: int) -> None:
        nonlocal stream
        if rgb is None:
            try:
                if stream is not None:
                    for packet in stream.encode():
                        o.mux(packet)
            finally:
                o.close()
            return
        if stream is None:
            stream = o.add_stream(SEGMENT_CODEC, rate=25)
            stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "bgr0"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts = index
        for packet in stream.encode(vf):
            o.mux(packet)

    return put


class _SegmentFrames:
    """The swapped frames of all segments, in timestamp order, handed out as the join asks for them."""

    def __init__(self, results: Sequence[SegmentResult]) -> None:
        self.results = sorted(results, key=lambda r: r.segment.index)
        self._iter = self._frames()

    def _frames(self):
        import av

        for r in self.results:
            times = np.load(r.times)
            if not len(times):
                continue
            with av.open(str(r.frames)) as c:
                for t, frame in zip(times, c.decode(video=0), strict=False):
                    yield float(t), frame_rgb(frame)

    def next(self, t: float, tolerance: float) -> np.ndarray:
        try:
            got_t, frame = next(self._iter)
        except StopIteration:
            raise OutputError(f"the segments end before the frame at {t:.3f} s") from None
        if abs(got_t - t) > tolerance:
            raise OutputError(f"segment frame at {got_t:.3f} s where the video has one at {t:.3f} s")
        return frame


def join_segments(
    job: SwapJob,
    target: str | os.PathLike[str],
    results: Sequence[SegmentResult],
    output: str | os.PathLike[str],
    stamp: OutputStamp | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> VideoReport:
    """One output from the swapped segments, with the original's timing, rotation and audio."""
    stamp, vopts = stamped_options(job, stamp)
    # the transcoder counts time from the trim start; the segments keep the video's own times
    offset = trim_bounds(target, vopts.encode.start, None)[0] or 0.0
    mark = stamp.video_marker()
    finalize = stamp.video_finalizer(output, None)
    frames = _SegmentFrames(results)
    report = VideoReport(
        frames=sum(r.count for r in results),
        frames_swapped=sum(r.swapped for r in results),
        faces_swapped=sum(r.faces for r in results),
        provenance=stamp.record,
    )

    def fn(_rgb: np.ndarray, t: float) -> np.ndarray:
        return frames.next(t + offset, tolerance=1e-3)

    def check() -> None:
        if report.frames and not report.frames_swapped:
            raise NoFaceError(f"no face to swap in any of the {report.frames} frames of {Path(target).name}")

    report.transcode = transcode(
        target, output, fn, vopts.encode, progress, before_commit=check, finalize=finalize, mark=mark
    )
    return report


def join_encoded(
    target: str | os.PathLike[str],
    results: Sequence[SegmentResult],
    output: str | os.PathLike[str],
    stamp: OutputStamp,
    encode: EncodeOptions,
    progress: Callable[[int, float], None] | None = None,
) -> VideoReport:
    """One output from segments encoded by the workers (``segment.part``): their packets joined by
    stream copy, the original's audio (trimmed as ``encode`` says), then signed as ``swap_video``
    signs; ``stamp`` must be the one whose content id the parts' watermark carries."""
    ordered = sorted(results, key=lambda r: r.segment.index)
    report = VideoReport(
        frames=sum(r.count for r in ordered),
        frames_swapped=sum(r.swapped for r in ordered),
        faces_swapped=sum(r.faces for r in ordered),
        provenance=stamp.record,
    )
    rec = stamp.record
    rec.frames_marked = sum(r.marked for r in ordered)
    rec.frames_unmarked = sum(r.unmarked for r in ordered)
    rec.watermarked = rec.frames_marked > 0
    if rec.frames_unmarked and rec.watermark_note is None:
        rec.watermark_note = "the frames are below the watermark's minimum size"

    def check() -> None:
        if report.frames and not report.frames_swapped:
            raise NoFaceError(f"no face to swap in any of the {report.frames} frames of {Path(target).name}")

    rotation = next((r.rotation for r in ordered if r.count), 0)
    part = ordered[0].segment.part if ordered else None
    if part is None:
        raise ValueError("join_encoded needs segments swapped with a PartEncoding")
    width, height = part.width, part.height
    report.transcode = concat_parts(
        target, [r.frames for r in ordered], output, width, height, encode, progress, before_commit=check,
        finalize=stamp.video_finalizer(output, None), rotation=rotation, expect_frames=report.frames,
    )  # fmt: skip
    return report


SegmentRunner = Callable[[list[Segment]], list[SegmentResult]]


def swap_video_segmented(
    job: SwapJob,
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    stamp: OutputStamp | None = None,
    segment_seconds: float = 10.0,
    warmup: float = 1.0,
    runner: SegmentRunner | None = None,
    progress: Callable[[str, int], None] | None = None,
    join: str = "copy",
) -> VideoReport:
    """Plan, swap every segment (``runner``; default: in this process, one after the other), join.
    The trim (``video.encode.start``/``end``) applies as in :func:`~masquerade.video.swap.swap_video`.
    ``progress(stage, frames)``: ``("swap", n)`` as segments finish with the frames swapped so far
    (only with the default runner: a runner reports its own), then ``("join", n)`` frame by frame.

    ``join="copy"`` (default): each segment is encoded in the output's codec (and watermarked) where it
    is swapped, and the join only copies the packets and the audio into the output, so that the
    calling machine's share is small; ``"decode"``: segments are stored losslessly and the join
    re-encodes the whole video (one encoder for the whole output, at the cost of a serial pass)."""
    stamp, vopts = stamped_options(job, stamp)
    enc = vopts.encode
    segments = plan_segments(target, segment_seconds, warmup, enc.start, enc.end)
    if join == "copy":
        info = probe(target)
        payload = stamp.payload if stamp.options.enabled else None
        part = PartEncoding(enc, info.width, info.height, job.options.swapper, stamp.options, payload)
        segments = [replace(s, part=part) for s in segments]
    elif join != "decode":
        raise ValueError(f"join must be 'copy' or 'decode', not {join!r}")
    if runner is None:
        from ..pipeline import make_swapper

        swapper = make_swapper(job.options)  # loaded once for all the segments
        results = []
        with FaceAnalyzer(identity=False) as fa:
            for s in segments:
                results.append(swap_segment(job, target, s, work_dir, fa, swapper))
                if progress is not None:
                    progress("swap", sum(r.count for r in results))
    else:
        results = runner(segments)
    log.info("%d segment(s) swapped; joining", len(results))
    join_progress = (lambda n, _t: progress("join", n)) if progress is not None else None
    if join == "copy":
        return join_encoded(target, results, output, stamp, enc, join_progress)
    return join_segments(job, target, results, output, stamp, join_progress)

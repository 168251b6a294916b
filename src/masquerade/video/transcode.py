"""Transcoding with PyAV: decode → (caller's frame function) → encode, one frame at a time.

* Memory stays flat in the video's length: no frame folder, no frame list.
* Timing is kept exactly: every output frame carries its input frame's presentation timestamp in the
  input's time base, so constant and variable frame rates survive; the nominal rate is copied.
* Audio packets are copied unchanged (no re-encode) when the output container accepts the codec, and
  re-encoded to AAC otherwise; trimming shifts both streams by the same offset.
* The display rotation is read from the frames and written back to the output stream; frames reach
  the caller upright.
* A decode error mid-stream stops decoding with a warning; what decoded is written as a valid file.
* The output is written to a temporary file beside the destination and renamed at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import InputError, OutputError
from ..files import commit_file, removed_on_error, temp_beside
from .probe import (
    check_frame_size,
    decoded_pixels,
    frame_rotation,
    open_input,
    stored,
    stream_timing,
    upright,
    upright_view,
    video_stream_in,
)

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"},
    "mov": {"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "ac3"},
    "matroska": None,  # accepts any
}


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "libx264"
    crf: int = 18
    preset: str = "superfast"  # real time on 2 cores at 720p; use veryfast or slower for smaller files
    start: float | None = None  # seconds
    end: float | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # container tags, e.g. (("comment", "..."),)


@dataclass
class TranscodeStats:
    frames_in: int = 0
    frames_out: int = 0
    audio_packets: int = 0
    audio_mode: str = "none"  # none | copy | aac
    decode_error: str | None = None
    frames_retimed: int = 0  # frames whose timestamp did not increase (given the next one instead)
    frames_resized: int = 0  # frames whose size differed from the first one's (scaled to it)
    audio_dropped: int = 0  # copied audio packets the output container refused (bad timestamps)
    audio_dropped_stream: bool = False  # the input's audio had no sample rate and was left out
    frames_declared: int = 0  # video frames the container says it holds (0: it does not say)


@dataclass(frozen=True)
class Rendered:
    """A frame function's result that says where it differs from the decoded frame: ``changed`` boxes
    ``(x0, y0, x1, y1)`` in upright pixels (empty: nowhere). Only those regions are converted back to
    YUV; the rest of the frame goes to the encoder exactly as it was decoded."""

    rgb: np.ndarray
    changed: tuple[tuple[int, int, int, int], ...]


FrameFn = Callable[
    [np.ndarray, float], "np.ndarray | Rendered | Future[np.ndarray] | Future[Rendered]"
]  # (upright RGB frame, seconds since start) → frame


def transcode(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    fn: FrameFn,
    options: EncodeOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
    before_commit: Callable[[], None] | None = None,
    finalize: Callable[[Path], None] | None = None,
    mark: FrameMark | None = None,
    max_pixels: int | None = None,
) -> TranscodeStats:
    """Decode ``src``, call ``fn(upright_rgb, seconds)`` on every video frame, encode to ``dst``.

    ``progress(frames_done, seconds_of_media_done)`` is called after each frame; ``before_commit()``
    runs before the finished file is moved into place and may raise to discard it; ``finalize(path)``
    then may rewrite the finished temporary file in place (e.g. to sign it) before it is moved.
    ``mark`` watermarks every frame as it is encoded (on the writer thread, in frame order).
    ``max_pixels``: frames larger than that are refused (the stream's declared size before decoding,
    then every decoded frame's), with a one-line :class:`InputError` and nothing written.
    """
    import av

    opts = options or EncodeOptions()
    srcp, dstp = Path(src), Path(dst)
    stats = TranscodeStats()
    tmp, fmt = temp_output(dstp)
    with discard_on_error(tmp, srcp, dstp):
        with open_input(srcp) as inp:
            vin = video_stream_in(inp, srcp)
            check_frame_size(srcp, vin.codec_context.width or 0, vin.codec_context.height or 0, max_pixels)
            stats.frames_declared = int(vin.frames or 0)
            vin.thread_type = "AUTO"
            ain = next((a for a in inp.streams.audio if a.codec_context is not None), None)
            tb, rate = stream_timing(vin)
            start_pts = int(opts.start / tb) if opts.start else None
            end_pts = int(opts.end / tb) if opts.end else None
            with av.open(str(tmp), mode="w", format=fmt) as out:
                for key, value in opts.metadata:
                    out.metadata[key] = value
                aout, resampler = audio_stream(out, ain, fmt, stats)
                # both streams shift by the trim start, so audio stays in sync with video
                t0_pts = start_pts or 0
                stop = threading.Event()
                to_fn: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
                to_enc: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)

                step = max(1, round(1 / (rate * tb)))  # one frame's duration in time-base units
                last_pts = -step

                def read() -> None:
                    """Demux + decode (thread 1): video frames and audio, in file order."""
                    nonlocal last_pts
                    streams = [vin] + ([ain] if ain is not None else [])
                    video_done = False
                    try:
                        for packet in inp.demux(*streams):
                            if stop.is_set():
                                return
                            if packet.stream.type == "audio":
                                if aout is None or packet.pts is None:
                                    continue
                                t = float(packet.pts * packet.time_base)
                                if video_done and opts.end and t >= opts.end:
                                    return  # both streams are past the trim end
                                for item in audio_out(packet, t, opts, resampler):
                                    _put(to_fn, ("a", item), stop)
                                continue
                            if video_done:
                                if aout is None:
                                    return
                                continue
                            for frame in packet.decode():
                                pts = frame.pts if frame.pts is not None else last_pts + step
                                if stats.frames_in and pts <= last_pts:
                                    # e.g. concatenated streams restarting at 0: the muxer needs
                                    # increasing timestamps
                                    pts = last_pts + step
                                    stats.frames_retimed += 1
                                last_pts = pts
                                stats.frames_in += 1
                                if end_pts is not None and pts >= end_pts:
                                    video_done = True  # past the trim end: read on only for audio
                                    break
                                if (start_pts is not None and pts < start_pts) or (
                                    end_pts is not None and pts >= end_pts
                                ):
                                    continue
                                check_frame_size(srcp, frame.width, frame.height, max_pixels)
                                rot = frame_rotation(frame)
                                yuv, rgb = decoded_pixels(frame)
                                if rot:  # a turned frame goes back whole (its planes are not reused)
                                    yuv = None
                                _put(to_fn, ("v", upright(rgb, rot), pts, rot, yuv), stop)
                    except av.error.FFmpegError as exc:
                        stats.decode_error = str(exc)
                    except _Stopped:
                        return
                    except Exception as exc:  # surfaced by the main thread, not as a thread traceback
                        read_failure.append(exc)
                    finally:
                        with contextlib.suppress(_Stopped):
                            _put(to_fn, ("end",), stop)

                failure: list[BaseException] = []
                read_failure: list[BaseException] = []

                def write() -> None:
                    """Encode + mux (thread 2); audio waiting for the first video frame is held back."""
                    vout = None
                    pending: list[object] = []
                    try:
                        while True:
                            item = to_enc.get()
                            if item[0] == "end":
                                break
                            if item[0] == "a":
                                if vout is None:
                                    pending.append(item[1])
                                else:
                                    mux_audio(out, aout, item[1], resampler is None, stats)
                                continue
                            _, res, pts, rot, yuv = item
                            if isinstance(res, Future):
                                res = res.result()
                            changed = res.changed if isinstance(res, Rendered) else None
                            if isinstance(res, Rendered):
                                res = res.rgb
                            if vout is None:
                                h, w = stored(res, rot).shape[:2]
                                vout = video_stream(out, opts, w, h, rate, tb, rot)
                                for a in pending:
                                    mux_audio(out, aout, a, resampler is None, stats)
                                pending.clear()
                            arr = stored(res, rot)
                            if arr.shape[:2] != (vout.height, vout.width):
                                # the stream changed size mid-way: keep the first frame's size
                                stats.frames_resized += 1
                            if (
                                yuv is not None and changed is not None
                                and vout.pix_fmt == "yuv420p" and arr.shape[:2] == (vout.height, vout.width)
                            ):  # fmt: skip
                                of = patched_frame(yuv, arr, changed, mark)
                            else:
                                of = encoder_frame(arr, vout.pix_fmt, vout.width, vout.height, mark, rot)
                            of.pts = pts - t0_pts
                            of.time_base = tb
                            for p in vout.encode(of):
                                out.mux(p)
                            stats.frames_out += 1
                        if vout is not None:
                            for p in vout.encode(None):
                                out.mux(p)
                            if aout is not None and resampler is not None:
                                for p in aout.encode(None):
                                    out.mux(p)
                    except BaseException as exc:  # surfaced by the main thread
                        failure.append(exc)
                        stop.set()
                        while True:  # drain so the main thread never blocks
                            with contextlib.suppress(queue.Empty):
                                if to_enc.get(timeout=0.1)[0] == "end":
                                    break
                            if stop.is_set() and to_enc.empty() and not main_alive.is_set():
                                break

                main_alive = threading.Event()
                main_alive.set()
                reader = threading.Thread(target=read, name="masquerade-decode", daemon=True)
                writer = threading.Thread(target=write, name="masquerade-encode", daemon=True)
                reader.start()
                writer.start()
                done = 0
                try:
                    while not failure:
                        item = to_fn.get()
                        if item[0] == "end":
                            break
                        if item[0] == "v":
                            _, rgb, pts, rot, yuv = item
                            t_sec = float((pts - t0_pts) * tb)
                            item = ("v", fn(rgb, t_sec), pts, rot, yuv)
                            done += 1
                            if progress is not None:
                                progress(done, t_sec)
                        _put(to_enc, item, stop)
                finally:
                    stop.set() if failure else None
                    main_alive.clear()
                    with contextlib.suppress(_Stopped):
                        _put(to_enc, ("end",), threading.Event())
                    writer.join()
                    stop.set()
                    while reader.is_alive():  # unblock a reader waiting on a full queue
                        with contextlib.suppress(queue.Empty):
                            to_fn.get(timeout=0.05)
                    reader.join()
                if failure:
                    raise failure[0]
                if read_failure:
                    raise read_failure[0]
                if stats.frames_out == 0:
                    if stats.decode_error:
                        log.debug("%s: decoding failed (%s)", srcp, stats.decode_error)
                    trim = " in the trim range" if opts.start or opts.end else ""
                    raise InputError(f"{srcp}: no video frame could be decoded{trim}")
        commit_output(tmp, dstp, before_commit, finalize)
        # warnings only for a file that is kept: a refusal stays a single error line
        if stats.decode_error:
            log.warning(
                "%s: decoding stopped early (%s); wrote the %d frames decoded",
                srcp, stats.decode_error, stats.frames_out,
            )  # fmt: skip
        if stats.audio_dropped:
            log.warning("%s: dropped %d damaged audio packets", srcp, stats.audio_dropped)
        if stats.audio_dropped_stream:
            log.warning("%s: the audio stream has no sample rate (damaged); it was left out", srcp)
        if stats.frames_retimed or stats.frames_resized:
            log.warning(
                "%s: %d frames had non-increasing timestamps and %d a different size (retimed, scaled)",
                srcp, stats.frames_retimed, stats.frames_resized,
            )  # fmt: skip
    return stats


def temp_output(dstp: Path) -> tuple[Path, str]:
    """A temporary file beside the video ``dstp`` (moved into place by :func:`commit_output`; its name
    keeps ``dstp``'s extension) and the container format for that extension."""
    fmt = VIDEO_EXTENSIONS.get(dstp.suffix.lower())
    if fmt is None:
        raise OutputError(f"{dstp}: unsupported video extension (use {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return temp_beside(dstp, ".part" + dstp.suffix), fmt


@contextlib.contextmanager
def discard_on_error(tmp: Path, srcp: Path, dstp: Path) -> Iterator[None]:
    """Removes ``tmp`` on any error; the muxer or encoder refusing what the input's streams hold
    (invalid codec parameters …) becomes a one-line error."""
    import av

    with removed_on_error(tmp):
        try:
            yield
        except (av.error.InvalidDataError, av.error.ArgumentError) as exc:
            why = _ffmpeg_reason(exc)
            raise InputError(f"{srcp}: its streams cannot be written to {dstp.suffix} ({why})") from None


def commit_output(
    tmp: Path, dstp: Path, before_commit: Callable[[], None] | None, finalize: Callable[[Path], None] | None
) -> None:
    """``before_commit()`` (may raise to discard), ``finalize(tmp)``, then ``tmp`` moved to ``dstp``."""
    if before_commit is not None:
        before_commit()
    if finalize is not None:
        finalize(tmp)
    commit_file(tmp, dstp)


def _ffmpeg_reason(exc: Exception) -> str:
    log_entry = getattr(exc, "log", None)
    if isinstance(log_entry, tuple) and len(log_entry) == 3 and str(log_entry[2]).strip():
        return str(log_entry[2]).strip().splitlines()[0]
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0]


QUEUE_FRAMES = 4  # frames in flight between decode, swap and encode (memory stays flat)


class _Stopped(Exception):
    pass


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                raise _Stopped from None


def audio_stream(out, ain, fmt: str, stats: TranscodeStats):
    """Output audio stream: a copy of the input's when the container takes its codec, else AAC."""
    import av

    if ain is None:
        return None, None
    if not ain.codec_context.sample_rate:
        # a damaged header: no muxer takes an audio stream without a sample rate, so drop it
        stats.audio_dropped_stream = True
        return None, None
    allowed = _COPYABLE_AUDIO.get(fmt)
    if allowed is None or ain.codec_context.name in allowed:
        stats.audio_mode = "copy"
        return out.add_stream_from_template(ain), None
    stats.audio_mode = "aac"
    aout = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
    return aout, av.AudioResampler(format="fltp", layout="stereo", rate=aout.rate)


def mux_audio(out, aout, item, copy: bool, stats: TranscodeStats) -> None:
    import av

    if copy:
        item.stream = aout
        try:
            out.mux(item)
        except (av.error.ArgumentError, av.error.InvalidDataError):
            # a damaged input's packet (e.g. a timestamp going backwards): drop it, keep the video
            stats.audio_dropped += 1
            return
    else:
        for p in aout.encode(item):
            out.mux(p)
    stats.audio_packets += 1


def configure_encoder(cc, opts: EncodeOptions, width: int, height: int, tb: Fraction) -> None:
    """The output encoder's settings, the same for a whole output and for an encoded part of one."""
    cc.width, cc.height = width, height
    # 4:2:0 needs even dimensions; odd-sized video keeps its size in 4:4:4
    cc.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
    cc.time_base = tb
    if opts.codec in ("libx264", "libx265"):
        cc.options = {"crf": str(opts.crf), "preset": opts.preset}


def audio_out(packet, t: float, opts: EncodeOptions, resampler) -> list:
    """What a demuxed audio packet (at ``t`` seconds) becomes in the output: nothing outside the trim;
    else the packet shifted by the trim start (copied audio) or its resampled frames (re-encoded)."""
    if (opts.start and t < opts.start) or (opts.end and t >= opts.end):
        return []
    if resampler is None:
        shift = int(round((opts.start or 0.0) / packet.time_base))
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        return [packet]
    out = []
    for af in packet.decode():
        for rf in resampler.resample(af):
            rf.pts = None
            out.append(rf)
    return out


def patched_frame(
    yuv: np.ndarray, rgb: np.ndarray, changed: tuple[tuple[int, int, int, int], ...], mark: FrameMark | None
):
    """The decoded I420 frame ``yuv`` (changed in place) with the ``changed`` boxes of ``rgb`` converted
    into it (widened to even coordinates, as 4:2:0 chroma needs), marked through its Y plane, as an
    ``av.VideoFrame``. Pixels outside the boxes are passed on exactly as decoded."""
    import av

    h, w = rgb.shape[:2]
    planes = i420_planes(yuv, h, w)
    for x0, y0, x1, y1 in changed:
        x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
        x1, y1 = min(w, x1 + x1 % 2), min(h, y1 + y1 % 2)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        box = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2YUV_I420)
        sub = i420_planes(box, y1 - y0, x1 - x0)
        planes[0][y0:y1, x0:x1] = sub[0]
        planes[1][y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = sub[1]
        planes[2][y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = sub[2]
    if mark is not None:
        mark.mark_luma(planes[0])
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


def i420_planes(yuv: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (h×w), U and V (h/2 × w/2) planes of an I420 array of shape (h·3/2, w)."""
    flat = yuv.reshape(-1)
    n, q = h * w, (h // 2) * (w // 2)
    return yuv[:h], flat[n : n + q].reshape(h // 2, w // 2), flat[n + q : n + 2 * q].reshape(h // 2, w // 2)


class FrameMark(Protocol):
    """A video watermark applied as frames are encoded, through the luma plane of a ``yuv420p`` frame
    or on the RGB frame where there is none (:class:`masquerade.provenance.stamp.VideoMarker`)."""

    def __call__(self, rgb: np.ndarray, inplace: bool = False) -> np.ndarray: ...

    def mark_luma(self, y: np.ndarray) -> bool: ...


def encoder_frame(
    rgb: np.ndarray,
    pix_fmt: str,
    width: int | None = None,
    height: int | None = None,
    mark: FrameMark | None = None,
    rotation: int = 0,
):
    """An ``av.VideoFrame`` of ``rgb`` (stored orientation) in the encoder's pixel format (and size, if
    given), marked by ``mark`` as it would be seen upright (``rotation``: the stream's display rotation).

    For the usual case (``yuv420p``, same even size) OpenCV's BT.601 limited-range conversion is used:
    the same matrix and range as libswscale's default, equal to it within one grey level (59 dB on
    the test clips), and about 5× cheaper than ``VideoFrame.reformat`` on a 720p frame; the mark then
    goes into the Y plane alone."""
    import av

    h, w = rgb.shape[:2]
    same = width in (None, w) and height in (None, h)
    if pix_fmt == "yuv420p" and same and h % 2 == 0 and w % 2 == 0:
        yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
        if mark is not None:
            mark.mark_luma(upright_view(yuv[:h], rotation))
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    if mark is not None:
        rgb = stored(mark(upright(rgb, rotation), inplace=True), rotation)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    size = {} if same else {"width": width, "height": height}
    return frame.reformat(format=pix_fmt, **size)


def video_stream(
    out, opts: EncodeOptions, width: int, height: int, rate: Fraction, tb: Fraction, rotation: int
):
    stream = out.add_stream(opts.codec, rate=rate)
    stream.time_base = tb
    configure_encoder(stream.codec_context, opts, width, height, tb)
    if rotation:
        stream.set_display_rotation(rotation)
    return stream

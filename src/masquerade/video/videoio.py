"""Streaming video I/O with PyAV: decode → (caller's frame function) → encode, one frame at a time.

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
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}
INPUT_VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".flv"}
)
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"},
    "mov": {"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "ac3"},
    "matroska": None,  # accepts any
}


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in INPUT_VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    width: int  # as stored (before rotation)
    height: int
    fps: float
    frames: int  # container's count (0 when unknown)
    duration: float  # seconds (0 when unknown)
    rotation: int  # degrees, from the first frame's display matrix
    has_audio: bool
    codec: str


def _open_input(path: Path):
    import av

    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({exc.__class__.__name__})") from None


def _video_stream_in(c, p: Path):
    """The first video stream; InputError when there is none or its codec is unknown to FFmpeg."""
    if not c.streams.video:
        raise InputError(f"{p}: has no video stream")
    v = c.streams.video[0]
    if v.codec_context is None:
        raise InputError(f"{p}: the video stream's codec is unknown or unsupported")
    return v


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    p = Path(path)
    with _open_input(p) as c:
        v = _video_stream_in(c, p)
        rate = v.average_rate or v.guessed_rate or v.base_rate or Fraction(25)
        rotation = 0
        with contextlib.suppress(Exception):
            for frame in c.decode(v):
                rotation = int(round(frame.rotation or 0)) % 360
                break
        dur = float(c.duration / 1_000_000) if c.duration else 0.0
        audio = any(a.codec_context is not None for a in c.streams.audio)
        return VideoInfo(
            width=v.codec_context.width, height=v.codec_context.height, fps=float(rate),
            frames=int(v.frames or 0), duration=dur, rotation=rotation, has_audio=audio,
            codec=v.codec_context.name,
        )  # fmt: skip


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, as FFmpeg reports it) to stored pixels."""
    k = {0: 0, 90: 1, 180: 2, 270: 3}.get(rotation % 360, 0)
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    k = {0: 0, 90: 1, 180: 2, 270: 3}.get(rotation % 360, 0)
    return np.ascontiguousarray(np.rot90(rgb, -k)) if k else rgb


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


FrameFn = Callable[
    [np.ndarray, float], "np.ndarray | Future[np.ndarray]"
]  # (upright RGB frame, seconds since start) → frame


def transcode(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    fn: FrameFn,
    options: EncodeOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
    before_commit: Callable[[], None] | None = None,
    finalize: Callable[[Path], None] | None = None,
) -> TranscodeStats:
    """Decode ``src``, call ``fn(upright_rgb, seconds)`` on every video frame, encode to ``dst``.

    ``progress(frames_done, seconds_of_media_done)`` is called after each frame; ``before_commit()``
    runs before the finished file is moved into place and may raise to discard it; ``finalize(path)``
    then may rewrite the finished temporary file in place (e.g. to sign it) before it is moved.
    """
    import av

    opts = options or EncodeOptions()
    srcp, dstp = Path(src), Path(dst)
    stats = TranscodeStats()
    tmp, fmt = _temp_output(dstp)
    with _discard_on_error(tmp, srcp, dstp):
        with _open_input(srcp) as inp:
            vin = _video_stream_in(inp, srcp)
            vin.thread_type = "AUTO"
            ain = next((a for a in inp.streams.audio if a.codec_context is not None), None)
            tb, rate = stream_timing(vin)
            start_pts = int(opts.start / tb) if opts.start else None
            end_pts = int(opts.end / tb) if opts.end else None
            with av.open(str(tmp), mode="w", format=fmt) as out:
                for key, value in opts.metadata:
                    out.metadata[key] = value
                aout, resampler = _audio_stream(out, ain, fmt, stats)
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
                                for item in _audio_out(packet, t, opts, resampler):
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
                                rot = int(round(frame.rotation or 0)) % 360
                                rgb = _upright(frame.to_ndarray(format="rgb24"), rot)
                                _put(to_fn, ("v", rgb, pts, rot), stop)
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
                                    _mux_audio(out, aout, item[1], resampler is None, stats)
                                continue
                            _, res, pts, rot = item
                            if isinstance(res, Future):
                                res = res.result()
                            if vout is None:
                                h, w = _stored(res, rot).shape[:2]
                                vout = _video_stream(out, opts, w, h, rate, tb, rot)
                                for a in pending:
                                    _mux_audio(out, aout, a, resampler is None, stats)
                                pending.clear()
                            of = av.VideoFrame.from_ndarray(_stored(res, rot), format="rgb24")
                            size = {}
                            if (of.width, of.height) != (vout.width, vout.height):
                                # the stream changed size mid-way: keep the first frame's size
                                size = {"width": vout.width, "height": vout.height}
                                stats.frames_resized += 1
                            of.pts = pts - t0_pts
                            of.time_base = tb
                            for p in vout.encode(of.reformat(format=vout.pix_fmt, **size)):
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
                            _, rgb, pts, rot = item
                            t_sec = float((pts - t0_pts) * tb)
                            item = ("v", fn(rgb, t_sec), pts, rot)
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
        _commit(tmp, dstp, before_commit, finalize)
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


PART_MAGIC = b"MQPART1\n"
_PART_RECORD = struct.Struct("<qqBI")  # pts, dts, keyframe, size; then the packet's bytes


def encode_part(
    path: str | os.PathLike[str], options: EncodeOptions, width: int, height: int, rate: Fraction,
    tb: Fraction,
) -> Callable[[np.ndarray | None, int], None]:  # fmt: skip
    """An encoder for one part of a video that :func:`concat_parts` will join by stream copy: frames
    (stored orientation, RGB) are scaled to ``width``×``height`` and encoded with the settings
    ``transcode`` uses, with the given pts (in ``tb``, counted from the output's start; made
    increasing). The packets go to ``path`` as they are (no container: none keeps every time base and
    negative decode timestamps exactly); each keyframe carries its own parameter sets. Call with
    ``None`` to finish."""
    import av

    cc = av.CodecContext.create(options.codec, "w")
    cc.framerate = rate
    _configure_encoder(cc, options, width, height, tb)
    fh = open(path, "wb")  # noqa: SIM115 - closed by the final call
    fh.write(PART_MAGIC)
    last = [-(1 << 62)]

    def save(packets: list) -> None:  # type: ignore[type-arg]
        for p in packets:
            data = bytes(p)
            dts = p.dts if p.dts is not None else p.pts
            fh.write(_PART_RECORD.pack(p.pts, dts, 1 if p.is_keyframe else 0, len(data)))
            fh.write(data)

    def put(rgb: np.ndarray | None, pts: int) -> None:
        if rgb is None:
            try:
                if cc.is_open:
                    save(cc.encode(None))
            finally:
                fh.close()
            return
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = max(pts, last[0] + 1), tb
        last[0] = frame.pts
        save(cc.encode(frame.reformat(format=cc.pix_fmt, width=width, height=height)))

    return put


def _part_packets(path: Path, tb: Fraction) -> Iterator:  # type: ignore[type-arg]
    import av

    with open(path, "rb") as fh:
        if fh.read(len(PART_MAGIC)) != PART_MAGIC:
            raise OutputError(f"{path}: not a masquerade video part")
        while head := fh.read(_PART_RECORD.size):
            pts, dts, key, size = _PART_RECORD.unpack(head)
            packet = av.Packet(fh.read(size))
            packet.pts, packet.dts, packet.time_base = pts, dts, tb
            packet.is_keyframe = bool(key)
            yield packet


def concat_parts(
    src: str | os.PathLike[str],
    parts: Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
    width: int,
    height: int,
    options: EncodeOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
    before_commit: Callable[[], None] | None = None,
    finalize: Callable[[Path], None] | None = None,
    rotation: int = 0,
    expect_frames: int | None = None,
) -> TranscodeStats:
    """``dst`` from the encoded video ``parts`` (made by :func:`encode_part`, in order), joined by stream
    copy, and ``src``'s audio, trimmed and copied (or re-encoded) exactly as :func:`transcode` does,
    with the display ``rotation`` (the input's, as the parts hold stored frames) and
    ``options.metadata``; with ``expect_frames`` a different number of frames is an error (nothing is
    written). Nothing is decoded or encoded but audio that the container cannot take as it is.
    Atomic, like :func:`transcode`."""
    import av

    opts = options or EncodeOptions()
    srcp, dstp = Path(src), Path(dst)
    stats = TranscodeStats()
    tmp, fmt = _temp_output(dstp)
    with _discard_on_error(tmp, srcp, dstp):
        with _open_input(srcp) as inp, av.open(str(tmp), mode="w", format=fmt) as out:
            ain = next((a for a in inp.streams.audio if a.codec_context is not None), None)
            for key, value in opts.metadata:
                out.metadata[key] = value
            vin = _video_stream_in(inp, srcp)
            tb, rate = stream_timing(vin)
            # the same stream transcode makes (its encoder opened only for the codec parameters);
            # the parts' packets go in unchanged
            vout = _video_stream(out, opts, width, height, rate, tb, rotation)
            aout, resampler = _audio_stream(out, ain, fmt, stats)

            def video():  # type: ignore[no-untyped-def]
                for part in parts:
                    for packet in _part_packets(Path(part), tb):
                        yield float(packet.dts * tb), packet

            def audio():  # type: ignore[no-untyped-def]
                if aout is None:
                    return
                for packet in inp.demux(ain):
                    if packet.pts is None:
                        continue
                    t = float(packet.pts * packet.time_base)
                    for item in _audio_out(packet, t, opts, resampler):
                        yield t - (opts.start or 0.0), item

            vit, ait = video(), audio()
            nv, na = next(vit, None), next(ait, None)
            while nv is not None or na is not None:
                if na is None or (nv is not None and nv[0] <= na[0]):
                    packet = nv[1]
                    packet.stream = vout
                    out.mux(packet)
                    if packet.size:
                        stats.frames_out += 1
                        if progress is not None:
                            progress(stats.frames_out, nv[0])
                    nv = next(vit, None)
                else:
                    _mux_audio(out, aout, na[1], resampler is None, stats)
                    na = next(ait, None)
            stats.frames_in = stats.frames_out
            if aout is not None and resampler is not None:
                for p in aout.encode(None):
                    out.mux(p)
        if expect_frames is not None and stats.frames_out != expect_frames:
            raise OutputError(f"the joined parts hold {stats.frames_out} frames, not {expect_frames}")
        _commit(tmp, dstp, before_commit, finalize)
        if stats.audio_dropped:
            log.warning("%s: dropped %d damaged audio packets", srcp, stats.audio_dropped)
    return stats


def _temp_output(dstp: Path) -> tuple[Path, str]:
    """A temporary file beside the video ``dstp`` (moved into place by :func:`_commit`) and its format."""
    fmt = VIDEO_EXTENSIONS.get(dstp.suffix.lower())
    if fmt is None:
        raise OutputError(f"{dstp}: unsupported video extension (use {', '.join(sorted(VIDEO_EXTENSIONS))})")
    parent = dstp.parent if str(dstp.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dstp.name}.", suffix=".part" + dstp.suffix, dir=parent)
    os.close(fd)
    return Path(tmp_name), fmt


@contextlib.contextmanager
def _discard_on_error(tmp: Path, srcp: Path, dstp: Path) -> Iterator[None]:
    """Removes ``tmp`` on any error; the muxer or encoder refusing what the input's streams hold
    (invalid codec parameters …) becomes a one-line error."""
    import av

    try:
        yield
    except (av.error.InvalidDataError, av.error.ArgumentError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        why = _ffmpeg_reason(exc)
        raise InputError(f"{srcp}: its streams cannot be written to {dstp.suffix} ({why})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _commit(
    tmp: Path, dstp: Path, before_commit: Callable[[], None] | None, finalize: Callable[[Path], None] | None
) -> None:
    """``before_commit()`` (may raise to discard), ``finalize(tmp)``, then ``tmp`` moved to ``dstp``."""
    if before_commit is not None:
        before_commit()
    if finalize is not None:
        finalize(tmp)
    os.replace(tmp, dstp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(dstp, 0o666 & ~umask)


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


def _audio_stream(out, ain, fmt: str, stats: TranscodeStats):
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


def _mux_audio(out, aout, item, copy: bool, stats: TranscodeStats) -> None:
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


def stream_timing(stream) -> tuple[Fraction, Fraction]:  # type: ignore[no-untyped-def]
    """(time base, frame rate) of an input video stream as the encoders use them, with fallbacks."""
    return stream.time_base or Fraction(1, 90000), stream.average_rate or stream.guessed_rate or Fraction(25)


def _configure_encoder(cc, opts: EncodeOptions, width: int, height: int, tb: Fraction) -> None:  # type: ignore[no-untyped-def]
    """The output encoder's settings, the same for a whole output and for an encoded part of one."""
    cc.width, cc.height = width, height
    # 4:2:0 needs even dimensions; odd-sized video keeps its size in 4:4:4
    cc.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
    cc.time_base = tb
    if opts.codec in ("libx264", "libx265"):
        cc.options = {"crf": str(opts.crf), "preset": opts.preset}


def _audio_out(packet, t: float, opts: EncodeOptions, resampler) -> list:  # type: ignore[no-untyped-def,type-arg]
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


def _video_stream(
    out, opts: EncodeOptions, width: int, height: int, rate: Fraction, tb: Fraction, rotation: int
):
    stream = out.add_stream(opts.codec, rate=rate)
    stream.time_base = tb
    _configure_encoder(stream.codec_context, opts, width, height, tb)
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


class VideoWriter:
    """Frame-by-frame encoder for live output: ``write(rgb, seconds)``; ``close()`` moves the finished
    file into place (``abort()`` discards it)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        options: EncodeOptions | None = None,
        finalize: Callable[[Path], None] | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        fmt = VIDEO_EXTENSIONS.get(self.path.suffix.lower())
        if fmt is None:
            exts = ", ".join(sorted(VIDEO_EXTENSIONS))
            raise OutputError(f"{self.path}: unsupported video extension (use {exts})")
        self.options = options or EncodeOptions()
        self.tb = Fraction(1, 1000)
        self.rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".part" + self.path.suffix, dir=parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        self._out = av.open(str(self._tmp), mode="w", format=fmt)
        for key, value in self.options.metadata:
            self._out.metadata[key] = value
        self._finalize = finalize
        self._stream = None
        self._last_pts = -1
        self.frames = 0

    def write(self, rgb: np.ndarray, seconds: float) -> None:
        import av

        if self._stream is None:
            h, w = rgb.shape[:2]
            self._stream = _video_stream(self._out, self.options, w, h, self.rate, self.tb, 0)
        pts = max(int(round(seconds / self.tb)), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, self.tb
        for p in self._stream.encode(frame.reformat(format=self._stream.pix_fmt)):
            self._out.mux(p)
        self.frames += 1

    def close(self) -> None:
        try:
            if self._stream is not None:
                for p in self._stream.encode(None):
                    self._out.mux(p)
            self._out.close()
        except BaseException:
            self.abort()
            raise
        if self.frames == 0:
            self.abort()
            raise InputError("no frame was written")
        try:
            if self._finalize is not None:
                self._finalize(self._tmp)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[np.ndarray, float]]:
    """Upright RGB frames with their timestamps in seconds (stops quietly at a decode error)."""
    import av

    p = Path(path)
    with _open_input(p) as c:
        v = _video_stream_in(c, p)
        v.thread_type = "AUTO"
        try:
            for frame in c.decode(v):
                rot = int(round(frame.rotation or 0)) % 360
                t = float(frame.pts * v.time_base) if frame.pts is not None else 0.0
                yield _upright(frame.to_ndarray(format="rgb24"), rot), t
        except av.error.FFmpegError as exc:
            log.warning("%s: decoding stopped early (%s)", p, exc)

"""Reading videos: what a file holds (:func:`probe`), opening it with one-line errors, its frames upright
(:func:`iter_frames`), and the timing and display rotation the encoders reuse.

The display rotation is read from each frame (FFmpeg's display matrix); frames reach the caller upright
(:func:`upright`) and go back to their stored orientation for encoding (:func:`stored`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, LimitError
from ..files import check_input_file
from ..imageio import over_pixel_limit

log = logging.getLogger(__name__)

INPUT_VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".flv"}
)


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


def open_input(path: Path):
    """The video file opened for reading with PyAV; InputError for a missing, empty or unreadable file,
    and for one that is not a regular file (a FIFO, a device: refused before it is opened)."""
    import av

    if check_input_file(path, "a video").st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({exc.__class__.__name__})") from None


def video_stream_in(c, p: Path):
    """The first video stream; InputError when there is none or its codec is unknown to FFmpeg."""
    if not c.streams.video:
        raise InputError(f"{p}: has no video stream")
    v = c.streams.video[0]
    if v.codec_context is None:
        raise InputError(f"{p}: the video stream's codec is unknown or unsupported")
    return v


def frame_rotation(frame) -> int:
    """A decoded frame's display rotation in degrees (0, 90, 180 or 270)."""
    return int(round(frame.rotation or 0)) % 360


def check_frame_size(p: Path, width: int, height: int, max_pixels: int | None) -> None:
    """InputError when frames of ``width`` x ``height`` are over ``max_pixels`` (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        over = over_pixel_limit(width, height, max_pixels)
        raise LimitError(f"{p}: video frames are {over} (raise it with --max-pixels)")


def probe(path: str | os.PathLike[str], max_pixels: int | None = None) -> VideoInfo:
    """What the video file holds. With ``max_pixels``, frames larger than that (as the stream declares
    them) are refused before any is decoded."""
    p = Path(path)
    with open_input(p) as c:
        v = video_stream_in(c, p)
        check_frame_size(p, v.codec_context.width or 0, v.codec_context.height or 0, max_pixels)
        rate = v.average_rate or v.guessed_rate or v.base_rate or Fraction(25)
        rotation = 0
        with contextlib.suppress(Exception):
            for frame in c.decode(v):
                rotation = frame_rotation(frame)
                break
        dur = float(c.duration / 1_000_000) if c.duration else 0.0
        audio = any(a.codec_context is not None for a in c.streams.audio)
        return VideoInfo(
            width=v.codec_context.width, height=v.codec_context.height, fps=float(rate),
            frames=int(v.frames or 0), duration=dur, rotation=rotation, has_audio=audio,
            codec=v.codec_context.name,
        )  # fmt: skip


def short_read_note(p: Path, declared: int, read: int) -> str | None:
    """The warning for a video with fewer frames than its container declares: "clip.mp4 declares 78
    frames but only 35 could be read"; None when all were read (or the container gives no count)."""
    if declared > 0 and read < declared:
        return f"{p} declares {declared} frames but only {read} could be read"
    return None


def stream_timing(stream) -> tuple[Fraction, Fraction]:
    """(time base, frame rate) of an input video stream as the encoders use them, with fallbacks."""
    return stream.time_base or Fraction(1, 90000), stream.average_rate or stream.guessed_rate or Fraction(25)


def decoded_pixels(frame) -> tuple[np.ndarray | None, np.ndarray]:
    """A decoded frame's pixels: its I420 planes (``yuv420p`` frames of even size, else None) and RGB.

    The RGB of an I420 frame is OpenCV's BT.601 limited-range conversion, the exact inverse (within
    rounding) of the one :func:`~masquerade.video.transcode.encoder_frame` uses on the way back, so a
    region converted there and back keeps its colours."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        yuv = frame.to_ndarray(format="yuv420p")
        return yuv, cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    return None, frame.to_ndarray(format="rgb24")


def frame_rgb(frame) -> np.ndarray:
    """A decoded frame's RGB pixels (stored orientation), as every reader of masquerade converts them."""
    return decoded_pixels(frame)[1]


def upright_view(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """Stored pixels seen upright (a view: writing to it writes the stored pixels)."""
    k = {0: 0, 90: 1, 180: 2, 270: 3}.get(rotation % 360, 0)
    return np.rot90(pixels, k) if k else pixels


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, as FFmpeg reports it) to stored pixels."""
    return np.ascontiguousarray(upright_view(rgb, rotation))


def stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`upright`: upright pixels back in the stored orientation, for encoding."""
    k = {0: 0, 90: 1, 180: 2, 270: 3}.get(rotation % 360, 0)
    return np.ascontiguousarray(np.rot90(rgb, -k)) if k else rgb


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[np.ndarray, float]]:
    """Upright RGB frames with their timestamps in seconds (stops quietly at a decode error)."""
    import av

    p = Path(path)
    with open_input(p) as c:
        v = video_stream_in(c, p)
        v.thread_type = "AUTO"
        try:
            for frame in c.decode(v):
                t = float(frame.pts * v.time_base) if frame.pts is not None else 0.0
                yield upright(frame_rgb(frame), frame_rotation(frame)), t
        except av.error.FFmpegError as exc:
            log.warning("%s: decoding stopped early (%s)", p, exc)


def frame_at(
    path: str | os.PathLike[str], seconds: float, max_pixels: int | None = None
) -> tuple[np.ndarray, float]:
    """The upright RGB frame at ``seconds`` and its own time: the first frame whose timestamp is at or
    after it (the frame ``--start`` begins with; the last frame for a time within the last frame's
    duration). The reader seeks to the keyframe before and decodes forward from there. One-line
    :class:`InputError` for a time before 0 or past the end of the video; with ``max_pixels``, frames
    larger than that are refused before any is decoded."""
    with FrameReader(path, max_pixels) as reader:
        return reader.at(seconds)


class FrameReader:
    """Frames of one video by time (:meth:`at`: the frame :func:`frame_at` gives), the file kept open
    between calls: a time a little after the last frame read is decoded on to from there instead of
    seeking back to the keyframe before it (a scrubber moving forward through a video whose keyframes
    are far apart). Not thread-safe."""

    AHEAD = 3.0  # seconds: a later time up to this far past the last frame read is decoded on to

    def __init__(self, path: str | os.PathLike[str], max_pixels: int | None = None) -> None:
        self.path = Path(path)
        self._c = open_input(self.path)
        try:
            self._v = video_stream_in(self._c, self.path)
            ctx = self._v.codec_context
            check_frame_size(self.path, ctx.width or 0, ctx.height or 0, max_pixels)
            self._v.thread_type = "AUTO"
            self.duration = float(self._c.duration / 1_000_000) if self._c.duration else 0.0
            self._tb, _ = stream_timing(self._v)
        except BaseException:
            self._c.close()
            raise
        self._frames: Iterator[Any] | None = None  # the decoder, where it stopped
        self._prev: Any = None  # the last frame it gave

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._frames = self._prev = None
        self._c.close()

    def at(self, seconds: float) -> tuple[np.ndarray, float]:
        """The upright RGB frame at ``seconds`` and its own time (see :func:`frame_at`)."""
        import av

        p = self.path
        if not seconds >= 0:  # NaN too
            raise InputError(f"time {seconds} s: it must be 0 or more")
        past = f"time {seconds:g} s is past the end of the video ({self.duration:.2f} s)"
        if self.duration and seconds > self.duration:
            raise InputError(past)
        target = int(seconds / self._tb)
        prev = self._prev
        if prev is not None and prev.pts == target:  # the frame read last
            return upright(frame_rgb(prev), frame_rotation(prev)), float(prev.pts * self._tb)
        if not (
            self._frames is not None
            and prev is not None
            and prev.pts < target <= prev.pts + self.AHEAD / self._tb
        ):
            with contextlib.suppress(av.error.FFmpegError):  # not seekable: decoded from the start
                self._c.seek(target, stream=self._v, backward=True, any_frame=False)
            self._frames, prev = self._c.decode(self._v), None
        last = prev
        try:
            for frame in self._frames:
                if frame.pts is None:
                    continue
                last = frame
                if frame.pts >= target:
                    break
            else:
                self._frames = None  # the end: the last frame stands for a time within its duration
                if last is None or not self.duration:
                    raise InputError(past if last is not None else f"{p}: no frame could be decoded")
        except av.error.FFmpegError as exc:
            self._frames = None
            if last is None:
                raise InputError(f"{p}: no frame could be decoded at {seconds:g} s ({exc})") from None
            log.warning("%s: decoding stopped early (%s)", p, exc)
        self._prev = last
        return upright(frame_rgb(last), frame_rotation(last)), float(last.pts * self._tb)

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

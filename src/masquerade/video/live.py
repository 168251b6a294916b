"""Live mode: swap faces in a video stream (a camera index, a URL or a file) at the stream's pace.

Frames are read as they arrive; a file is paced to its timestamps as if it were a live stream. When
processing falls behind real time, frames are dropped (never queued up), so latency stays bounded.
Processed frames can be written to a file with their arrival times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .probe import frame_rgb, iter_frames

log = logging.getLogger(__name__)


@dataclass
class LiveStats:
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    seconds: float = 0.0
    mean_latency_ms: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0


def open_stream(spec: str) -> Iterator[tuple[np.ndarray, float]]:
    """Upright RGB frames with their stream time in seconds, from a camera index or a path/URL."""
    if spec.isdigit():
        cap = cv2.VideoCapture(int(spec))
        if not cap.isOpened():
            raise InputError(f"camera {spec} could not be opened")
        t0 = time.perf_counter()
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.perf_counter() - t0
        finally:
            cap.release()
    elif "://" in spec:
        yield from _url_frames(spec)
    else:
        yield from iter_frames(Path(spec))


def _url_frames(url: str) -> Iterator[tuple[np.ndarray, float]]:
    import av

    try:
        container = av.open(url, timeout=10)
    except av.error.FFmpegError as exc:
        raise InputError(f"{url}: cannot open stream ({exc})") from None
    with container:
        v = container.streams.video[0]
        for frame in container.decode(v):
            t = float(frame.pts * v.time_base) if frame.pts is not None else 0.0
            yield frame_rgb(frame), t


def run_live(
    frames: Iterator[tuple[np.ndarray, float]],
    process: Callable[[np.ndarray, float], np.ndarray],
    sink: Callable[[np.ndarray, float], None] | None = None,
    pace: bool = True,
    max_seconds: float | None = None,
) -> LiveStats:
    """Pull frames, process the newest one each time, hand results to ``sink(rgb, seconds)``.

    With ``pace`` the stream's timestamps are honoured against the wall clock (a file plays like a live
    stream); a frame whose time has already passed when the previous one finished is dropped.
    """
    st = LiveStats()
    start = time.perf_counter()
    t_first: float | None = None
    latency = 0.0
    for rgb, t in frames:
        st.frames_read += 1
        if t_first is None:
            t_first = t
        rel = t - t_first
        now = time.perf_counter() - start
        if max_seconds is not None and rel > max_seconds:
            break
        if pace:
            if now > rel + 0.1:  # more than ~3 frames late: skip to catch up with the stream
                st.frames_dropped += 1
                continue
            if rel > now:
                time.sleep(rel - now)
        out = process(rgb, rel)
        done = time.perf_counter() - start
        latency += max(0.0, done - rel)
        st.frames_processed += 1
        if sink is not None:
            sink(out, rel)
    st.seconds = time.perf_counter() - start
    st.mean_latency_ms = 1000 * latency / max(1, st.frames_processed)
    return st

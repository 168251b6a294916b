"""Live output: :class:`VideoWriter` encodes frames one at a time as they come (a webcam, a stream), with
the encoder settings of :func:`~masquerade.video.transcode.transcode`, into a temporary file that
:meth:`VideoWriter.close` moves into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .transcode import EncodeOptions, commit_output, encoder_frame, temp_output, video_stream


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
        self._tmp, fmt = temp_output(self.path)
        self.options = options or EncodeOptions()
        self.tb = Fraction(1, 1000)
        self.rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        self._out = av.open(str(self._tmp), mode="w", format=fmt)
        for key, value in self.options.metadata:
            self._out.metadata[key] = value
        self._finalize = finalize
        self._stream = None
        self._last_pts = -1
        self.frames = 0

    def write(self, rgb: np.ndarray, seconds: float) -> None:
        if self._stream is None:
            h, w = rgb.shape[:2]
            self._stream = video_stream(self._out, self.options, w, h, self.rate, self.tb, 0)
        pts = max(int(round(seconds / self.tb)), self._last_pts + 1)
        self._last_pts = pts
        assert self._stream is not None
        frame = encoder_frame(rgb, self._stream.pix_fmt)
        frame.pts, frame.time_base = pts, self.tb
        for p in self._stream.encode(frame):
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
            commit_output(self._tmp, self.path, None, self._finalize)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

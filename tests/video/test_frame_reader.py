"""Frames by time (:func:`masquerade.video.probe.frame_at`, :class:`~masquerade.video.probe.FrameReader`)
on a real clip with keyframes far apart (the astronaut photo moving, one keyframe every 4 s): each time
gives the first frame at or after it — the frame ``--start`` begins with — whether the reader seeks or
decodes on from where it stopped, forwards, backwards, repeated and at the very end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from masquerade import load_image, sample_path
from masquerade.errors import InputError
from masquerade.video.probe import FrameReader, frame_at, iter_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    import av

    path = tmp_path_factory.mktemp("reader") / "sparse.mp4"
    astro = load_image(sample_path("astronaut")).rgb
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        s.options = {"g": "40", "keyint_min": "40", "sc_threshold": "0"}
        for k in range(60):
            frame = np.ascontiguousarray(np.roll(astro[::2, ::2], 3 * k, axis=1))
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_every_time_gives_the_first_frame_at_or_after_it(clip) -> None:
    frames = list(iter_frames(clip))
    assert len(frames) == 60

    def expected(t: float) -> tuple[np.ndarray, float]:
        return next(((f, ft) for f, ft in frames if ft >= t - 1e-9), frames[-1])

    times = [0.0, 0.25, 0.3, 0.3, 1.0, 3.95, 4.0, 5.5, 5.95, 5.99, 2.0, 0.0, 0.05, 3.0]
    with FrameReader(clip) as reader:
        for t in times:
            rgb, got = reader.at(t)
            want, want_t = expected(t)
            assert got == pytest.approx(want_t) and np.array_equal(rgb, want), t
            one, one_t = frame_at(clip, t)
            assert one_t == got and np.array_equal(one, rgb), t
        with pytest.raises(InputError, match=r"^time 7 s is past the end of the video"):
            reader.at(7.0)
        with pytest.raises(InputError, match="must be 0 or more"):
            reader.at(-1.0)
        rgb, got = reader.at(0.4)  # usable after an error
        assert got == pytest.approx(0.4) and np.array_equal(rgb, expected(0.4)[0])

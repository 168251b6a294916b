"""The transcoder's pixel path: decoded I420 carried to the encoder, only changed boxes converted back."""

from __future__ import annotations

import cv2
import numpy as np

from masquerade.video.probe import decoded_pixels
from masquerade.video.transcode import i420_planes, patched_frame


class _Frame:
    """The few attributes of an ``av.VideoFrame`` that :func:`decoded_pixels` reads."""

    def __init__(self, yuv: np.ndarray, h: int, w: int) -> None:
        self._yuv, self.height, self.width = yuv, h, w
        self.format = type("F", (), {"name": "yuv420p"})()

    def to_ndarray(self, format: str) -> np.ndarray:
        assert format == "yuv420p"
        return self._yuv.copy()


def test_only_changed_boxes_are_converted_back(astronaut: np.ndarray) -> None:
    h, w = 300, 402
    src = np.ascontiguousarray(cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA))
    yuv0 = cv2.cvtColor(src, cv2.COLOR_RGB2YUV_I420)
    yuv, rgb = decoded_pixels(_Frame(yuv0, h, w))
    assert yuv is not None
    # decode and encode conversions are inverses: an untouched frame converted back is nearly exact
    back = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    assert np.abs(back.astype(int) - yuv0).mean() < 0.05
    out = rgb.copy()
    out[51:149, 77:201] = (255, 0, 0)  # an odd-edged box: widened to even coordinates
    frame = patched_frame(yuv, out, ((77, 51, 201, 149),), mark=None)
    got = frame.to_ndarray(format="yuv420p")
    y, u, v = i420_planes(got, h, w)
    y0, u0, v0 = i420_planes(yuv0, h, w)
    inside = np.zeros((h, w), bool)
    inside[50:150, 76:202] = True
    assert np.array_equal(y[~inside], y0[~inside])  # outside the box: exactly as decoded
    half = inside[::2, ::2]
    assert np.array_equal(u[~half], u0[~half]) and np.array_equal(v[~half], v0[~half])
    red = cv2.cvtColor(got, cv2.COLOR_YUV2RGB_I420)[60:140, 90:190].reshape(-1, 3).mean(0)
    assert red[0] > 230 and red[1] < 25 and red[2] < 25
    # nothing changed: the frame goes to the encoder as decoded
    same = patched_frame(yuv0.copy(), rgb, (), mark=None).to_ndarray(format="yuv420p")
    assert np.array_equal(same, yuv0)

"""Hands in front of a face, from mediapipe's hand landmarker (in the same mediapipe wheel).

The occlusion segmenter, trained on synthetic occluders, misses most real hands: a real hand has the
face's own skin tone and lighting (on the 33 hand-drawn real occluders of ``celeba_occlusion_v1`` it
finds a fifth of what covers the faces). mediapipe's hand landmarker finds most of them. A found hand
becomes a silhouette drawn from its 21 landmarks — the palm polygon and each finger as a thick line, as
wide as the spacing of the knuckles (fingers lie side by side) — which :class:`~.handling.Occlusion`
adds to the segmenter's mask inside the face oval.

Where it looks: a square crop around the face (2.4 × its box, 192 px; the detector's cost does not
depend on the input size, about 10 ms for its palm detector plus 5 ms per hand found on a 2-core CPU).
In video, :meth:`HandOccluders.crop_mask` with a per-person ``state`` looks on every frame while a hand
is near the face and on every ``every``-th (10th) frame otherwise, so a video without hands pays a tenth;
and a hand is used from the second frame in a row it is found on: the landmarker now and then finds a
"hand" on a face for one frame (on the shared portrait clip: once in 32 looks, on the nose and mouth),
and keeping the target's pixels there for one frame was the largest part of the clip's colour flicker.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..analysis.hands import HandDetector
from ..analysis.landmarks import crop_padded, square_crop_box
from ..face import Face

# mediapipe's 21 hand landmarks: 0 wrist; thumb 1-4; index 5-8; middle 9-12; ring 13-16; little 17-20
FINGERS = ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
PALM = (0, 1, 5, 9, 13, 17)
KNUCKLES = (5, 9, 13, 17)
# a hand in front of a face is at least as near the camera as the face, and an adult's palm (wrist to
# middle knuckle, ~10 cm) is longer than the eyes are apart (~6.3 cm): a "hand" whose palm is shorter than
# half the inter-ocular distance is something else (on the held-out CelebA photos: a medal, 0.2-0.4)
MIN_PALM = 0.5
_SHIFT = 4  # sub-pixel bits for OpenCV's drawing


def palm_in_front(points: np.ndarray, iod: float) -> bool:
    """Whether the palm of a hand of 21 landmarks is as long as a hand in front of a face whose eyes are
    ``iod`` apart would show it (:data:`MIN_PALM`)."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(p[9] - p[0])) >= MIN_PALM * iod


def hand_silhouette(points: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """size×size uint8 (0/1): the hand of 21 landmarks (image pixels) drawn through the 2×3 ``matrix``."""
    p = np.asarray(points, np.float64)[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    width = float(np.linalg.norm(np.diff(p[list(KNUCKLES)], axis=0), axis=1).mean())
    thick = max(1, int(round(width)))
    q = np.round(p * (1 << _SHIFT)).astype(np.int32)
    out = np.zeros((size, size), np.uint8)
    cv2.fillPoly(out, [q[list(PALM)]], 1, cv2.LINE_8, _SHIFT)
    cv2.polylines(out, [q[list(PALM)]], True, 1, thick, cv2.LINE_8, _SHIFT)
    cv2.polylines(out, [q[list(f)] for f in FINGERS], False, 1, thick, cv2.LINE_8, _SHIFT)
    return out


class HandOccluders:
    """Hands near a face and their silhouettes (see the module docstring). ``close()`` frees the model."""

    def __init__(
        self,
        every: int = 10,
        crop_scale: float = 2.4,
        crop_size: int = 192,
        detector: HandDetector | None = None,
    ) -> None:
        if every < 1:
            raise ValueError("every must be ≥ 1")
        self.every = every
        self.crop_scale = crop_scale
        self.crop_size = crop_size
        self._detector = detector or HandDetector(max_hands=2, lite=True)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._detector.close()

    def find(self, rgb: np.ndarray, face: Face) -> list[np.ndarray]:
        """The hands found in a crop around ``face`` (large enough to be in front of it, :data:`MIN_PALM`):
        each 21×2 landmarks in image pixels."""
        x, y, side = square_crop_box(face.box, self.crop_scale, rgb.shape)
        size = self.crop_size
        crop = crop_padded(rgb, x, y, side)
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (size, size), interpolation=interp)
        iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0]))
        hands = [h * (side / size) + (x, y) for h in self._detector.get(crop)]
        return [h for h in hands if palm_in_front(h, iod)]

    def crop_mask(
        self, rgb: np.ndarray, face: Face, matrix: np.ndarray, size: int, state: dict[str, Any] | None = None
    ) -> np.ndarray | None:
        """The silhouettes of the hands near ``face`` drawn through ``matrix`` (size×size float32), or None
        when there are none. ``state`` (one dict per person in a video): look again only on every
        ``every``-th frame while no hand was near, and use hands found on two frames in a row only."""
        if state is not None:
            wait = state.get("hands_wait", 0)
            if wait > 0:
                state["hands_wait"] = wait - 1
                return None
        hands = self.find(rgb, face)
        if state is not None:
            state["hands_wait"] = 0 if hands else self.every - 1
            before, state["hands_seen"] = state.get("hands_seen", False), bool(hands)
            if not before:  # a first find: used if the next frame's look confirms it
                return None
        if not hands:
            return None
        out = np.zeros((size, size), np.uint8)
        for h in hands:
            out |= hand_silhouette(h, matrix, size)
        return out.astype(np.float32)

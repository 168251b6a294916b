"""Real hands as synthetic occluders: hands cut out of photos, pasted in front of other faces.

The drawn hands of :mod:`.synthetic` (``hand``, ``palm``) are flat-shaded shapes; a real hand in front
of a face has knuckles, nails, creases and the photo's own light, and the occlusion segmenter trained on
drawn ones misses most real hands at a chin or a cheek. Photos of people have many real hands: on the
3,086 photos of ``../shared/data/celeba`` mediapipe's hand landmarker (``HandDetector(max_hands=2)`` on
each whole photo, 2026-12-06) found 1,106, nearly all of them hands in a sample of 48 looked at. Each
becomes a cut-out (:func:`cut_out_hand`): a square crop around the hand, its silhouette from the 21 landmarks
(:func:`~.hands.hand_silhouette`) refined by GrabCut (the silhouette's core is surely hand, its rim
probably, a ring round it probably not, the rest not), kept when GrabCut's hand agrees with the
silhouette, and then cut back to a narrow rim round the silhouette (the cheek or arm a hand rests
on is often its colour, and would be pasted as hand). :func:`real_hand_layer` pastes one in front of
a face as an :class:`~.synthetic.OccluderLayer`: scaled to the face (palm length against the eyes'
distance), turned, mirrored at random and moved part of the way to the face's skin tone, at the places
the drawn ``palm`` goes (chin, mouth, cheeks, temples, forehead, jaw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .hands import FINGERS, PALM, hand_silhouette, palm_in_front

if TYPE_CHECKING:
    from .synthetic import _Frame

CUT_SIZE = 128  # px: a cut-out's square
CUT_SCALE = 1.5  # the crop's side, times the hand's larger extent
MIN_HAND_PX = 40.0  # px: smaller hands (wrist to the tip of the middle finger) are too coarse to cut out
MIN_AGREEMENT = 0.6  # IoU of GrabCut's hand with the landmarks' silhouette, else the cut-out is dropped
_GRABCUT_ITERATIONS = 3


@dataclass(frozen=True)
class HandCutouts:
    """Hands cut out of photos: ``rgba`` N×S×S×4 uint8 (alpha: the hand), ``landmarks`` N×21×2 float32
    in the cut-out's pixels."""

    rgba: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.rgba)

    @staticmethod
    def empty(size: int = CUT_SIZE) -> HandCutouts:
        return HandCutouts(np.zeros((0, size, size, 4), np.uint8), np.zeros((0, 21, 2), np.float32))

    @staticmethod
    def concat(parts: list[HandCutouts]) -> HandCutouts:
        if not parts:
            return HandCutouts.empty()
        return HandCutouts(
            np.concatenate([p.rgba for p in parts]), np.concatenate([p.landmarks for p in parts])
        )


def hand_in_front(points: np.ndarray, iod: float) -> bool:
    """Whether a hand of 21 landmarks is as large as a hand in front of a face whose eyes are ``iod``
    apart would be (:func:`~.hands.palm_in_front`), and large enough to cut out."""
    p = np.asarray(points, np.float64)
    return palm_in_front(p, iod) and float(np.linalg.norm(p[12] - p[0])) >= MIN_HAND_PX


def cutout_matrix(points: np.ndarray, size: int = CUT_SIZE) -> np.ndarray:
    """The 2×3 matrix from the image to the cut-out square of a hand of 21 landmarks: centred on their
    box, its side :data:`CUT_SCALE` times their larger extent."""
    p = np.asarray(points, np.float64)[:, :2]
    centre = (p.min(0) + p.max(0)) / 2
    k = size / max(float(np.ptp(p, axis=0).max()) * CUT_SCALE, 1e-6)
    return np.array([[k, 0, size / 2 - k * centre[0]], [0, k, size / 2 - k * centre[1]]])


def cut_out_hand(rgb: np.ndarray, points: np.ndarray, size: int = CUT_SIZE) -> HandCutouts | None:
    """The hand of 21 landmarks (image pixels) in ``rgb`` as a one-entry :class:`HandCutouts`, or None
    when GrabCut's hand and the landmarks' silhouette disagree (a hand half out of the photo, one in
    front of something of its own colour, a false find)."""
    p = np.asarray(points, np.float64)[:, :2]
    if float(np.ptp(p, axis=0).max()) * CUT_SCALE < 8:
        return None
    m = cutout_matrix(p, size)
    pc = p @ m[:, :2].T + m[:, 2]  # the landmarks in the cut-out
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(
        np.full(rgb.shape[:2], 255, np.uint8), m, (size, size), flags=cv2.INTER_NEAREST
    )  # the photo's own pixels (a hand at its edge is cut off there)
    sil = hand_silhouette(p, m, size)
    if sil.sum() < 16:
        return None
    knuckle = float(np.linalg.norm(np.diff(pc[[5, 9, 13, 17]], axis=0), axis=1).mean())
    r = max(1, int(round(knuckle * 0.5)))
    core = np.zeros_like(sil)  # surely hand: the palm's inside and the fingers' middle lines
    q = np.round(pc).astype(np.int32)
    cv2.fillPoly(core, [q[list(PALM)]], 1)
    core = cv2.erode(core, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    cv2.polylines(core, [q[list(f)] for f in FINGERS], False, 1, max(1, r // 2))
    ring = cv2.dilate(sil, np.ones((4 * r + 1, 4 * r + 1), np.uint8))
    gc = np.full((size, size), cv2.GC_BGD, np.uint8)
    gc[ring > 0] = cv2.GC_PR_BGD
    gc[sil > 0] = cv2.GC_PR_FGD
    gc[core > 0] = cv2.GC_FGD
    gc[inside == 0] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        bgr = np.ascontiguousarray(crop[:, :, ::-1])
        cv2.grabCut(bgr, gc, None, bgd, fgd, _GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    hand = _largest(((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8))
    inter, union = float((hand & sil).sum()), float((hand | sil).sum())
    if union == 0 or inter / union < MIN_AGREEMENT:
        return None
    # then no further than half a knuckle's spacing outside the landmarks' silhouette: skin beside a
    # hand (the cheek it rests on, an arm) is often its colour, and would be pasted as hand
    hand = _largest(hand & cv2.dilate(sil, np.ones((2 * r + 1, 2 * r + 1), np.uint8)))
    alpha = cv2.GaussianBlur(hand.astype(np.float32), (0, 0), 0.7) * (inside > 0)
    rgba = np.dstack([crop, np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    return HandCutouts(rgba[None], pc.astype(np.float32)[None])


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected piece of a 0/1 uint8 mask (all zero when there is none)."""
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return np.zeros_like(mask)
    return (lbl == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)


# where a pasted hand's palm goes, in the face's frame (eye distances right of and below the eyes'
# midpoint): the drawn palm's places (chin, mouth, cheeks, temples, forehead, jaw)
ANCHORS = ((0.0, 1.9), (0.0, 1.5), (-0.75, 1.3), (0.75, 1.3), (-0.4, 1.8), (0.4, 1.8), (-1.05, -0.2),
           (1.05, -0.2), (0.0, -1.1), (-1.1, 0.9), (1.1, 0.9))  # fmt: skip


def real_hand_layer(
    cutouts: HandCutouts, f: _Frame, shape: tuple[int, ...], rng: np.random.Generator,
    skin: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A random cut-out of ``cutouts`` in front of the face of frame ``f`` (:func:`~.synthetic.face_frame`)
    in an image of ``shape``: (H×W×3 uint8 colour, H×W float32 alpha). ``skin`` (the face's RGB): the
    hand's colour is moved part of the way to it."""
    i = int(rng.integers(len(cutouts)))
    rgba = cutouts.rgba[i]
    lm = cutouts.landmarks[i].astype(np.float64)
    size = rgba.shape[0]
    if rng.random() < 0.5:  # a left hand for a right one
        rgba = rgba[:, ::-1]
        lm = lm * [-1, 1] + [size - 1, 0]
    palm_c = lm[list(PALM)].mean(0)
    up_src = lm[9] - lm[0]
    palm_len = float(np.linalg.norm(up_src)) or 1.0
    u, v = ANCHORS[int(rng.integers(len(ANCHORS)))]
    dest = f.at(u + rng.normal(0, 0.15), v + rng.normal(0, 0.12))
    ang = rng.uniform(-1.7, 1.7)  # the fingers' direction from the face's "up", any way but down
    up = -(np.cos(ang) * f.down + np.sin(ang) * f.right)
    scale = f.iod * rng.uniform(0.9, 1.5) / palm_len
    # the similarity mapping the cut-out's palm centre to ``dest`` and its wrist → knuckle to ``up``
    rot = np.arctan2(up[1], up[0]) - np.arctan2(up_src[1], up_src[0])
    c, s = np.cos(rot) * scale, np.sin(rot) * scale
    a = np.array([[c, -s], [s, c]])
    m = np.hstack([a, (dest - a @ palm_c)[:, None]])
    h, w = shape[:2]
    colour = rgba[:, :, :3].astype(np.float32)
    alpha_src = rgba[:, :, 3].astype(np.float32) / 255.0
    if skin is not None:  # part of the way to the face's tone (the light of this photo, not the hand's)
        hand_px = colour[alpha_src > 0.5]
        if len(hand_px):
            shift = (np.asarray(skin, np.float32) - hand_px.mean(0)) * rng.uniform(0.0, 0.7)
            colour = np.clip(colour + shift, 0, 255)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rgb = cv2.warpAffine(colour, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(alpha_src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), np.clip(alpha, 0, 1)

"""Sunglasses over the eyes, found by their darkness: the occlusion segmenter, trained on synthetic
occluders, marks parts of real sunglasses' lenses and misses their rims and frames (on the 8 photos
with sunglasses among the 33 hand-drawn real occluders of ``celeba_occlusion_v1``), and a swap then
shows the source's eyes and skin around the target's lenses.

Per face, in the segmenter's crop: sunglasses are there when both the eyes (the mesh's eye contours)
and a ring around them are darker than :data:`DARK` of the visible skin's median grey level (open eyes
in a bare face: the ring stays above 0.4 on the 33 photos). The lenses are then the pixels darker than
halfway between the lenses' and the skin's grey, from a little above the eyebrows down to the nose
tip, in regions that reach the eyes; each side's convex hull fills their highlights and reflections,
and they grow by :data:`FRAME` of the face's height to take the frames' edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..analysis.regions import BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT, EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, idx
from ..face import Face
from .segmenter import oval_mask

DARK = 0.3  # eyes and the ring around them darker than this share of the skin's grey level: sunglasses
RING = 0.06  # the ring around the eyes, as a share of the face's height
TOP = 0.03  # the lenses are looked for from this share of the face's height above the eyebrows …
FRAME = 0.02  # … and grown by this share of it for the frames
REACH = 0.15  # lenses reach no further than this share of the face's height from the eyes
HALFWAY = 0.5  # lens pixels are darker than this share of the way from the lenses' grey to the skin's
SKIN_BELOW = 0.3  # pixels with an occlusion probability under this count as visible skin
BETWEEN_EYES = 168  # mediapipe mesh: the bridge of the nose between the eyes
NOSE_TIP = 4


def eye_area(face: Face, m: np.ndarray, r: int) -> np.ndarray:
    """r×r bool: ``face``'s eyes (the mesh's eye contours) in the crop of ``m``."""
    eyes = np.zeros((r, r), np.uint8)
    if face.mesh is not None:
        for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
            pts = face.mesh[idx(loop), :2] @ m[:, :2].T + m[:, 2]
            cv2.fillPoly(eyes, [np.round(pts).astype(np.int32)], 1)
    return eyes > 0


def sunglasses_mask(crop: np.ndarray, face: Face, matrix: np.ndarray, prob: np.ndarray) -> np.ndarray | None:
    """R×R float32 (0/1): sunglasses over ``face``'s eyes in ``crop`` (the segmenter's R×R crop, which
    ``matrix`` maps the image to), inside the face oval grown by 3 % of the crop; None when the eyes are
    not hidden by something dark (or there is no mesh). ``prob``: the occlusion probability found so
    far (what is in front of the face is not taken for skin)."""
    if face.mesh is None:
        return None
    r = crop.shape[0]
    eyes = eye_area(face, matrix, r)
    pts = face.mesh[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    oval = oval_mask(face.mesh, matrix, r) > 0.5
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    skin = oval & ~eyes & (prob < SKIN_BELOW)
    if int(eyes.sum()) < 4 or int(skin.sum()) < 20:
        return None
    skin_g, lens_g = float(np.median(grey[skin])), float(np.median(grey[eyes]))
    if lens_g >= DARK * max(1.0, skin_g):  # open eyes (most faces): no need to look around them
        return None
    height = float(np.ptp(pts[:468, 1]))
    ring = _grown(eyes, RING * height) & ~eyes & oval
    if not ring.any() or float(np.median(grey[ring])) >= DARK * max(1.0, skin_g):
        return None
    grown = oval_mask(face.mesh, matrix, r, grow=0.03) > 0.5
    dark = (grey < lens_g + HALFWAY * (skin_g - lens_g)) & grown & _grown(eyes, REACH * height)
    top = pts[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].min() - TOP * height
    dark[: max(0, int(top))] = False
    dark[max(0, int(pts[NOSE_TIP, 1])) :] = False
    dark8 = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, labels = cv2.connectedComponents(dark8)
    reach = np.unique(labels[eyes & (dark8 > 0)])
    lenses = np.isin(labels, reach[reach > 0])
    if not lenses.any():
        return None
    hulls = lenses.astype(np.uint8)
    left = np.arange(r)[None, :] < pts[BETWEEN_EYES, 0]
    for side in (lenses & left, lenses & ~left):
        ys, xs = np.nonzero(side)
        if len(xs) >= 5:
            cv2.fillConvexPoly(hulls, cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32)), 1)
    return (_grown(hulls > 0, FRAME * height) & grown).astype(np.float32)


def _grown(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` (bool) grown by a disc of ``radius`` px (at least 1)."""
    g = max(1, int(round(radius)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))
    return cv2.dilate(mask.astype(np.uint8), disc) > 0

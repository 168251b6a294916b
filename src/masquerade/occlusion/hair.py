"""Hair and hat brims over the forehead (bangs), and locks of hair down the sides of the face, found by
colour: the occlusion segmenter, trained on synthetic occluders, misses them (0 of the 8 photos with bangs
among the 33 hand-drawn real occluders of ``celeba_occlusion_v1``), and a swap then ghosts the target's
bangs.

Per face, in the segmenter's crop: the skin's colour is the median of five patches on the cheeks, the
jaw and the nose; the hair's, of five patches just above the top of the face mesh's oval. A forehead
pixel (inside the oval, above the eyebrows) is hair when it is nearer the hair's colour than the
skin's and far from the skin's (more than three times the skin patches' own spread, at least 12), with
lightness counted at a quarter of chroma so that shine and shadow on a bare forehead do not pass for
hair. Only regions that reach the top edge of the oval are kept (bangs fall from the hairline), and
nothing is found when hair and skin are too alike in colour to tell apart (blond on fair skin). Below
the eyebrows' top (the mesh places the eyebrows under a fringe, often above its end), such pixels are
hair down to a little above the eyes where, column by column, they hang on without a gap from the hair
kept above (a fringe reaching the eyebrows or over them; eyebrows under a bare forehead stay face).

Down the sides (temples and cheeks, from the eyebrows' top to the mouth's corners, within
:data:`SIDE_BAND` of the face's width from the oval's edge, eyes and eyebrows left out), a pixel is hair
when it is much nearer the hair's colour than the skin's (:data:`SIDE_RATIO`) and far from the skin's, in
regions that reach the oval's edge and go on outside it: a lock of hair falling over a temple or a
cheek does, a shadow on the cheek has background or skin beside it. A source's locks are then painted
over instead of copied onto the target's cheeks, and a target's stay in front of the swapped face.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    idx,
)
from ..face import Face

SKIN_POINTS = (50, 280, 205, 425, 4)  # mediapipe mesh: cheeks, lower cheeks, nose tip
HAIRLINE_POINTS = (10, 338, 109, 67, 297)  # the top of the oval
LAB_WEIGHT = np.array([0.25, 1.0, 1.0], np.float32)  # L, a, b
MIN_DISTANCE = 12.0  # weighted Lab: a pixel nearer the skin than this is skin
MIN_CONTRAST = 15.0  # weighted Lab between the hair's and the skin's colour, else nothing is found
MIN_AREA = 0.002  # of the crop: smaller regions are noise
SIDE_BAND = 0.15  # of the face's width: side strands are looked for this far in from the oval's edge
SIDE_RATIO = 0.6  # side strands: a pixel this much nearer the hair's colour than the skin's
SIDE_OUTSIDE = 0.5  # … in a region whose surroundings just outside the oval are this much hair as well
SIDE_RING = 1 / 32  # of the crop (4 px of the segmenter's 128): how far "just outside" the oval reaches
MOUTH_CORNERS = (61, 291)  # mediapipe mesh: side strands are looked for down to these
EYE_MARGIN = 0.04  # of the face's height: hair hanging below the eyebrows' top stops this far above the eyes


def hair_mask(
    rgb: np.ndarray, face: Face, matrix: np.ndarray, size: int, crop: np.ndarray | None = None
) -> np.ndarray | None:
    """size×size float32 (0/1): hair over ``face``'s forehead in the crop ``matrix`` maps the image to,
    or None (no mesh, or nothing found). ``crop``: that crop, when already made (the segmenter's)."""
    if face.mesh is None:
        return None
    if crop is None:
        crop = cv2.warpAffine(
            rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )
    pts = face.mesh[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32) * LAB_WEIGHT
    height = float(np.ptp(pts[:468, 1]))
    radius = max(1, int(round(0.04 * height)))

    def patches(centres: np.ndarray) -> np.ndarray:
        m = np.zeros((size, size), np.uint8)
        for x, y in np.round(centres).astype(int):
            cv2.circle(m, (int(x), int(y)), radius, 1, -1)
        return lab[m > 0]

    skin = patches(pts[list(SKIN_POINTS)])
    above = pts[list(HAIRLINE_POINTS)] - (0.0, 0.08 * height)
    hair = patches(above)
    if len(skin) < 8 or len(hair) < 8:
        return None
    skin_c, hair_c = np.median(skin, 0), np.median(hair, 0)
    if float(np.linalg.norm(hair_c - skin_c)) < MIN_CONTRAST:
        return None
    spread = float(np.median(np.linalg.norm(skin - skin_c, axis=1)))
    d_skin = np.linalg.norm(lab - skin_c, axis=2)
    d_hair = np.linalg.norm(lab - hair_c, axis=2)
    oval = np.zeros((size, size), np.uint8)
    cv2.fillPoly(oval, [np.round(pts[idx(FACE_OVAL)]).astype(np.int32)], 1)
    found = (d_hair < d_skin) & (d_skin > max(MIN_DISTANCE, 3.0 * spread)) & (oval > 0)
    brows = max(0, int(pts[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].min() - 0.02 * height))
    eyes = max(brows, int(pts[list(EYE_IMAGE_LEFT) + list(EYE_IMAGE_RIGHT), 1].min() - EYE_MARGIN * height))
    below = found[brows:eyes].copy()
    edge = (oval > 0) & (cv2.erode(oval, np.ones((5, 5), np.uint8)) == 0)
    strict = (d_hair < SIDE_RATIO * d_skin) & (d_skin > max(MIN_DISTANCE, 3.0 * spread))
    side = _side_strands(strict, oval, edge, pts, brows, size)
    found[brows:] = False
    found8 = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(found8)
    keep = np.zeros(n, bool)
    touching = np.unique(labels[edge & (found8 > 0)])
    keep[touching] = True
    keep[0] = False
    keep &= stats[:, cv2.CC_STAT_AREA] > MIN_AREA * size * size
    if not keep.any() and side is None:
        return None
    out = keep[labels]
    if brows > 0 and eyes > brows:  # a fringe hangs on down to the eyes, column by column, without a gap
        out[brows:eyes] = np.logical_and.accumulate(below, axis=0) & out[brows - 1]
    if side is not None:
        out |= side
    return out.astype(np.float32)


def _side_strands(
    found: np.ndarray, oval: np.ndarray, edge: np.ndarray, pts: np.ndarray, brows: int, size: int
) -> np.ndarray | None:
    """Hair hanging down the sides of the face (temples, cheeks) below the eyebrows' top, down to the
    mouth's corners: pixels of ``found`` within :data:`SIDE_BAND` of the face's width from the oval's edge,
    away from the eyes and eyebrows, in regions that reach the oval's ``edge`` and go on outside it (at least
    :data:`SIDE_OUTSIDE` of the pixels just outside the oval beside them are ``found`` too: a lock of hair
    does, a shadow on the cheek has background or skin there); None when there are none."""
    width = float(np.ptp(pts[idx(FACE_OVAL), 0]))
    low = int(pts[list(MOUTH_CORNERS), 1].max())
    if low <= brows:
        return None
    inner = cv2.distanceTransform(oval, cv2.DIST_L2, 3)
    band = (oval > 0) & (inner < SIDE_BAND * width)
    band[:brows] = False
    band[low:] = False
    features = np.zeros((size, size), np.uint8)
    grow = max(1, int(round(0.03 * width)))
    for part in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT):
        hull = cv2.convexHull(np.round(pts[list(part)]).astype(np.int32))
        cv2.fillConvexPoly(features, hull, 1)
    features = cv2.dilate(features, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    cand = (found & band & (features == 0)).astype(np.uint8)
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand)
    if n <= 1:
        return None
    keep = np.zeros(n, bool)
    keep[np.unique(labels[edge & (cand > 0)])] = True
    keep[0] = False
    keep &= stats[:, cv2.CC_STAT_AREA] > MIN_AREA * size * size
    ring = max(2, int(round(SIDE_RING * size)))
    beside = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    outer = (cv2.dilate(oval, beside) > 0) & (oval == 0)
    for k in np.flatnonzero(keep):
        near = outer & (cv2.dilate((labels == k).astype(np.uint8), beside) > 0)
        keep[k] = (found & near).sum() > SIDE_OUTSIDE * max(1, near.sum())
    return keep[labels] if keep.any() else None

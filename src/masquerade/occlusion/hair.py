"""Hair and hat brims over the forehead (bangs), found by colour: the occlusion segmenter, trained on
synthetic occluders, misses them (0 of the 8 photos with bangs among the 33 hand-drawn real occluders
of ``celeba_occlusion_v1``), and a swap then ghosts the target's bangs.

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
    found[brows:] = False
    found8 = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    edge = (oval > 0) & (cv2.erode(oval, np.ones((5, 5), np.uint8)) == 0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(found8)
    keep = np.zeros(n, bool)
    touching = np.unique(labels[edge & (found8 > 0)])
    keep[touching] = True
    keep[0] = False
    keep &= stats[:, cv2.CC_STAT_AREA] > MIN_AREA * size * size
    if not keep.any():
        return None
    out = keep[labels]
    if brows > 0 and eyes > brows:  # a fringe hangs on down to the eyes, column by column, without a gap
        out[brows:eyes] = np.logical_and.accumulate(below, axis=0) & out[brows - 1]
    return out.astype(np.float32)

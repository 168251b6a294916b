"""The frames of clear glasses, found as thin dark lines where frames run: the occlusion segmenter,
trained on synthetic occluders, misses real frames, and the sunglasses finder (:mod:`.glasses`) looks
for dark lenses only. So a target's glasses were painted over by the swapped face, left as a faint
ghost of their frames.

Per face, in a crop of :data:`CROP` px (the segmenter's crop, scaled): thin dark structures are the
black-hat of the grey image (its closing minus itself, with a disc :data:`LINE` of the crop wide),
the eyes and eyebrows left out, against a threshold of :data:`CONTRAST` of the skin's grey level.
Glasses are there when such a line runs across the bridge of the nose between the eyes (one row at
least :data:`BRIDGE` of the way across) and under both eyes (:data:`RIMS` of the way). A face's own
lines seldom run so in both places: on 300 random LFW and 298 CelebA faces (``benchmarks/
bench_frames.py``) the finder fired on 17 and 12, all wearing glasses but one old man's creases (the
mask then holds those lines, a thin keep of the target's own skin); a lower contrast threshold also took
the creases under dark-skinned eyes. The frames are then those lines around the eyes (not within
:data:`CLEAR_OF_EYES` of them: lids and lashes kept from the target would put its eyes into the swapped
face), across the bridge and out to the temples.

On the target side they keep the target's pixels like any occluder. A source's glasses are left as they
are: painted over (OpenCV's inpainting), the eyes between the frames smeared with them, and painted over
only away from the eyes, what was left of the glasses looked broken (Grace Hopper, Hans Blix and Woody
Allen onto other faces).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..analysis.regions import BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT, idx
from ..face import Face
from .glasses import eye_area
from .segmenter import face_crop, oval_mask

CROP = 192  # px: the frames are looked for in a crop this size (a frame is one or two pixels wide)
LINE = 0.035  # the black-hat's disc, as a share of the crop: lines thinner than this are found
CONTRAST = 0.1  # a line is darker than its surroundings by this share of the skin's grey level …
MIN_CONTRAST = 12.0  # … and by at least this many grey levels (creases under dark-skinned eyes pass 6)
BRIDGE = 0.5  # share of the way across the bridge of the nose one line must run
RIMS = 0.35  # share of the way under each eye one line must run
CLEAR_OF_EYES = 0.25  # share of an eye's width around it where no frame is kept
SKIN_POINTS = (50, 280, 4)  # mediapipe mesh: cheeks, nose tip
OUTER = {"left": 33, "right": 263}  # eye corners, top and bottom of the lids (image left / right eye)
INNER = {"left": 133, "right": 362}
TOP = {"left": 159, "right": 386}
BOTTOM = {"left": 145, "right": 374}


def frames_mask(rgb: np.ndarray, face: Face, size: int, known: bool = False) -> np.ndarray | None:
    """size×size float32 (0/1): the frames of clear glasses on ``face`` in the segmenter's crop of that
    size (:func:`~.segmenter.face_crop`), or None (no glasses found, or no mesh). ``known``: the face is
    known to wear glasses (video: found in an earlier frame of the person), so the lines are taken
    without the test across the nose and under the eyes, which thin frames pass in some frames only."""
    if face.mesh is None:
        return None
    crop, m = face_crop(rgb, face, CROP)
    pts = face.mesh[:, :2] @ m[:, :2].T + m[:, 2]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    k = max(3, int(round(LINE * CROP)) | 1)
    lines = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    eyes_only = eye_area(face, m, CROP).astype(np.uint8)
    features = eyes_only.copy()
    for loop in (BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT):
        cv2.fillPoly(features, [np.round(pts[idx(loop)]).astype(np.int32)], 1)
    features = cv2.dilate(features, np.ones((3, 3), np.uint8))
    at = np.clip(np.round(pts[list(SKIN_POINTS)]).astype(int), 0, CROP - 1)
    skin = float(np.median(grey[at[:, 1], at[:, 0]]))
    dark = (lines > max(MIN_CONTRAST, CONTRAST * skin)) & (features == 0)
    marks = (("o", OUTER), ("i", INNER), ("t", TOP), ("b", BOTTOM))
    eyes = {side: {name: pts[at_side[side]] for name, at_side in marks} for side in OUTER}
    left, right = eyes["left"], eyes["right"]
    width = 0.5 * sum(float(np.linalg.norm(e["o"] - e["i"])) for e in eyes.values())
    top = min(left["t"][1], right["t"][1])
    middle = 0.25 * (left["t"][1] + left["b"][1] + right["t"][1] + right["b"][1])
    nose = (left["i"][0], top - 0.6 * width, right["i"][0], middle + 0.1 * width)
    bridge = _across(dark, nose[0] + 0.15 * width, nose[1], nose[2] - 0.15 * width, nose[3])
    rims = []
    for e in eyes.values():
        x0, x1 = sorted((float(e["o"][0]), float(e["i"][0])))
        y = float(e["b"][1])
        rims.append(_across(dark, x0 + 0.15 * width, y + 0.12 * width, x1 - 0.15 * width, y + 0.9 * width))
    if not known and (bridge < BRIDGE or min(rims) < RIMS):
        return None
    where = np.zeros((CROP, CROP), np.uint8)
    for e, side in ((left, -1.0), (right, 1.0)):
        c = 0.5 * (e["o"] + e["i"]) + (0.0, 0.1 * width)
        cv2.ellipse(where, _pt(c), (int(0.95 * width), int(0.85 * width)), 0, 0, 360, 1, -1)
        edge = float(e["o"][0] + side * 1.6 * width)  # the temple arm, out to the side of the head
        x0, x1 = sorted((float(e["o"][0]), edge))
        cv2.rectangle(where, _pt((x0, e["t"][1] - 0.45 * width)), _pt((x1, e["b"][1] + 0.1 * width)), 1, -1)
    cv2.rectangle(where, _pt(nose[:2]), _pt((nose[2], nose[3] + 0.1 * width)), 1, -1)
    # nothing kept next to the eyes: the target's lids, lashes and lines would put its eyes into the swap
    g = max(1, int(round(CLEAR_OF_EYES * width)))
    where[cv2.dilate(eyes_only, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))) > 0] = 0
    oval = oval_mask(face.mesh, m, CROP, grow=0.02) > 0.5
    found = cv2.dilate((dark & (where > 0) & oval).astype(np.uint8), np.ones((3, 3), np.uint8))
    small = cv2.resize(found.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (small > 0.3).astype(np.float32)


def _across(mask: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> float:
    """The largest share of the box's width that one line of ``mask`` (two rows, so a line may step a
    row) covers inside the box (0 for an empty box)."""
    h, w = mask.shape
    xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
    ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
    box = mask[ya:yb, xa:xb]
    if box.shape[0] < 2 or box.shape[1] < 1:
        return 0.0
    return float((box[:-1] | box[1:]).mean(1).max())


def _pt(p: tuple[float, ...] | np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))

"""Named vertex sets of the mediapipe face mesh (shared by masks and the mesh swapper)."""

from __future__ import annotations

import numpy as np

# Ordered closed loops (polygons).
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# eye on the image's left (subject's right) and right, as lid contours
EYE_IMAGE_LEFT: tuple[int, ...] = (
    33,
    246,
    161,
    160,
    159,
    158,
    157,
    173,
    133,
    155,
    154,
    153,
    145,
    144,
    163,
    7,
)
EYE_IMAGE_RIGHT: tuple[int, ...] = (
    263,
    466,
    388,
    387,
    386,
    385,
    384,
    398,
    362,
    382,
    381,
    380,
    374,
    373,
    390,
    249,
)
INNER_MOUTH: tuple[int, ...] = (
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
)
OUTER_LIPS: tuple[int, ...] = (
    61,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    291,
    375,
    321,
    405,
    314,
    17,
    84,
    181,
    91,
    146,
)
BROW_IMAGE_LEFT: tuple[int, ...] = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
BROW_IMAGE_RIGHT: tuple[int, ...] = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
IRIS_IMAGE_LEFT: tuple[int, ...] = (468, 469, 470, 471, 472)
IRIS_IMAGE_RIGHT: tuple[int, ...] = (473, 474, 475, 476, 477)
LIPS: tuple[int, ...] = tuple(sorted(set(INNER_MOUTH) | set(OUTER_LIPS)))


def idx(loop: tuple[int, ...]) -> np.ndarray:
    return np.asarray(loop, dtype=np.int64)

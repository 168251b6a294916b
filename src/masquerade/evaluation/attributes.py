"""Attributes of a benchmark photo's face that define the evaluation subsets: pose, open mouth, face size
and occlusion, computed with the analyzer (mediapipe mesh, hands) when a benchmark file is built.

Occlusion is a heuristic, not a segmenter: the share of the inner face (face oval without brows, eyes,
lips and nostrils, eroded) whose chroma is far from the face's median skin chroma (hair, sunglasses,
microphones, most objects; shadows change lightness more than chroma, so lightness is weighted
down), or a detected hand overlapping the face oval (hands have skin chroma). Beards and strong
coloured light count too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    OUTER_LIPS,
    idx,
)
from ..compose.composite import MOUTH_OPEN_TEETH
from ..face import Face

LARGE_YAW = 25.0  # degrees
SMALL_IOD = 40.0  # pixels between the eye centres
OCCLUDED_SHARE = 0.12  # share of the inner face with non-skin chroma
HAND_SHARE = 0.03  # share of the face oval under a detected hand
CHROMA_DISTANCE = 22.0  # Lab distance (lightness weighted 0.05, chroma 1.5) from the median skin colour

SUBSETS: dict[str, str] = {
    "large_pose": f"source or target |yaw| > {LARGE_YAW:g}°",
    "open_mouth": "source or target mouth open (inner-lip gap > "
    f"{MOUTH_OPEN_TEETH:g} inter-ocular distances)",
    "small_face": f"source or target face small (inter-ocular distance < {SMALL_IOD:g} px)",
    "source_occluded": "source face occluded (heuristic: non-skin share of the inner face ≥ "
    f"{OCCLUDED_SHARE:g} or a hand over ≥ {HAND_SHARE:g} of it)",
    "target_occluded": "target face occluded (same heuristic)",
}


@dataclass(frozen=True)
class DerivedSubset:
    """A subset derived from a pair's stored tags when a report is made (not stored in benchmark files)."""

    description: str
    member: Callable[[Collection[str]], bool]  # the pair's tags → in the subset


DERIVED_SUBSETS: dict[str, DerivedSubset] = {
    "unoccluded": DerivedSubset(
        "neither face occluded (not source_occluded, not target_occluded): where occlusion handling should "
        "change nothing",
        lambda tags: "source_occluded" not in tags and "target_occluded" not in tags,
    ),
}
REPORT_SUBSETS: dict[str, str] = {**SUBSETS, **{k: d.description for k, d in DERIVED_SUBSETS.items()}}


def in_subset(tag: str, tags: Collection[str]) -> bool:
    """Whether a pair with ``tags`` is in the subset ``tag`` (of :data:`REPORT_SUBSETS`)."""
    derived = DERIVED_SUBSETS.get(tag)
    return derived.member(tags) if derived is not None else tag in tags


@dataclass(frozen=True)
class FaceAttributes:
    yaw: float
    mouth_open: bool
    iod: float
    non_skin: float  # share of the inner face
    hand: float  # share of the face oval under a hand

    @property
    def occluded(self) -> bool:
        return self.non_skin >= OCCLUDED_SHARE or self.hand >= HAND_SHARE


def _fill(mask: np.ndarray, pts: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(np.asarray(pts) * 16).astype(np.int32)], 255, cv2.LINE_8, 4)


def inner_face_mask(shape: tuple[int, ...], face: Face) -> np.ndarray:
    """The face oval without brows, eyes, lips and nostrils, eroded (bool, image size)."""
    assert face.mesh is not None
    h, w = shape[:2]
    mesh = face.mesh
    iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0])) or 1.0
    oval = np.zeros((h, w), np.uint8)
    _fill(oval, mesh[idx(FACE_OVAL), :2])
    cut = np.zeros((h, w), np.uint8)
    for loop in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, OUTER_LIPS):
        _fill(cut, mesh[idx(loop), :2])
    for brow in (BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT):
        _fill(cut, cv2.convexHull(mesh[idx(brow), :2].astype(np.float32))[:, 0])
    for k in (98, 327, 2):  # nostrils and the base of the nose
        cv2.circle(cut, tuple(int(v) for v in np.round(mesh[k, :2])), max(1, int(iod * 0.12)), 255, -1)
    g, e = max(1, int(iod * 0.08)), max(1, int(iod * 0.05))
    cut = cv2.dilate(cut, np.ones((2 * g + 1, 2 * g + 1), np.uint8))
    oval = cv2.erode(oval, np.ones((2 * e + 1, 2 * e + 1), np.uint8))
    return (oval > 0) & (cut == 0)


def non_skin_share(rgb: np.ndarray, face: Face) -> float:
    """Share of the inner face whose colour is far from the face's median skin colour (see the module)."""
    region = inner_face_mask(rgb.shape, face)
    px = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)[region]
    if len(px) < 50:
        return 0.0
    d = px - np.median(px, 0)
    dist = np.sqrt(0.05 * d[:, 0] ** 2 + 1.5 * d[:, 1] ** 2 + 1.5 * d[:, 2] ** 2)
    return float((dist > CHROMA_DISTANCE).mean())


def hand_share(shape: tuple[int, ...], face: Face, hands: Sequence[np.ndarray]) -> float:
    """The largest share of the face oval covered by one hand's landmark hull."""
    if not hands or face.mesh is None:
        return 0.0
    h, w = shape[:2]
    oval = np.zeros((h, w), np.uint8)
    _fill(oval, face.mesh[idx(FACE_OVAL), :2])
    area = max(1, int((oval > 0).sum()))
    best = 0.0
    for pts in hands:
        hm = np.zeros((h, w), np.uint8)
        _fill(hm, cv2.convexHull(np.asarray(pts, np.float32))[:, 0])
        best = max(best, float(((hm > 0) & (oval > 0)).sum()) / area)
    return best


def face_attributes(rgb: np.ndarray, face: Face, hands: Sequence[np.ndarray] = ()) -> FaceAttributes:
    """The subset attributes of one analysed face (mediapipe mesh needed); ``hands`` from
    :class:`~masquerade.analysis.hands.HandDetector`."""
    iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0]))
    return FaceAttributes(
        yaw=float(face.pose.yaw) if face.pose is not None else 0.0,
        mouth_open=face.expression.get("mouth_open", 0.0) > MOUTH_OPEN_TEETH,
        iod=iod,
        non_skin=non_skin_share(rgb, face) if face.mesh is not None else 0.0,
        hand=hand_share(rgb.shape, face, hands),
    )


def pair_tags(source: FaceAttributes, target: FaceAttributes) -> tuple[str, ...]:
    """The subsets a (source, target) pair belongs to, in :data:`SUBSETS` order."""
    tags = {
        "large_pose": max(abs(source.yaw), abs(target.yaw)) > LARGE_YAW,
        "open_mouth": source.mouth_open or target.mouth_open,
        "small_face": min(source.iod, target.iod) < SMALL_IOD,
        "source_occluded": source.occluded,
        "target_occluded": target.occluded,
    }
    return tuple(k for k in SUBSETS if tags[k])

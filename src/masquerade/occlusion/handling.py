"""Occlusion-aware swapping (``--occlusion on``, the default): the segmenter's masks, with the hands
mediapipe finds near the face (:mod:`.hands`), the hair over its forehead and sides (:mod:`.hair`), dark
sunglasses (:mod:`.glasses`) and the frames of clear glasses (:mod:`.frames`) added, where the swap
uses them.

* **Target side** (:meth:`Occlusion.target_mask`): what is in front of the target's face keeps the target's
  pixels — the composite's mask times one minus this (soft-edged) mask. In video the mask is averaged
  over time per person (in the face's own coordinates), so it does not flicker.
* **Source side** (:meth:`Occlusion.clean_source`): what covers the source's face is painted over in the
  source photo before anything is taken from it (OpenCV's Telea inpainting from the face around it), so a
  hand, hair strands or sunglasses are not warped onto the target as if they were skin, and learned
  swappers embed the face rather than the object. A swapper that warps the source photo itself (mesh3d,
  refined: ``SwapperInfo.source_holes``) also leaves those texels out of its patch, so the target's own
  face shows there instead of the painted-over guess (:func:`swap_face`). When more than
  :data:`WARN_HIDDEN` of the source's face is out of view — covered, or turned away from the camera (a
  strong turn: :meth:`Occlusion.shares`) — or its eyes are hidden (:data:`WARN_EYES`: sunglasses), one
  warning says which and suggests another photo; so does a source face too small to give the swap its
  detail (:data:`TINY_IOD`), and one in clear glasses: their frames are swapped with the face (a
  target's are kept in front of the swapped face: see :mod:`.frames`). When what hides the eyes is dark
  (:data:`DARK_EYES`:
  sunglasses' lenses) the holes grow more (:data:`GROW_EYES`), so the edges of the frames, which the
  segmenter misses, are left out too. With ``forehead`` (``--occlusion-forehead on``; off by default),
  when most of the source's forehead is hidden (a fringe over the eyebrows: :data:`FOREHEAD_HIDDEN`), all
  of it is left out, eyebrows included (:func:`whole_forehead`): the patches of forehead and brow between
  the holes swap as a patchwork with seams, the target's own forehead and brows, whole, do not — at a
  cost in likeness to the source (see BENCHMARKS). Without it, a source so hidden whose eyebrows are
  hidden too (:data:`WARN_BROWS`) gets one warning that names the option.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..analysis.geometry import CanonicalMesh
from ..analysis.regions import BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT, FACE_OVAL, idx
from ..face import Face
from .frames import frames_mask
from .glasses import eye_area, sunglasses_mask
from .hair import hair_mask
from .hands import HandOccluders
from .segmenter import OcclusionSegmenter, crop_matrix, face_crop, oval_mask

if TYPE_CHECKING:
    from ..compose.composite import BlendMask
    from ..pipeline import SwapOptions
    from ..swappers.base import SwapPatch, Swapper

log = logging.getLogger(__name__)

WARN_HIDDEN = 0.35  # share of the source's face out of view (turned away or covered) above which it warns
TINY_IOD = 16.0  # px between a source face's eyes below which the swap warns that it is too small
WARN_EYES = 0.5  # share of the source's eyes hidden above which it warns (sunglasses)
GROW = 0.06  # a source's holes grow by this share of the distance between its eyes …
GROW_EYES = 0.15  # … and by this when its eyes are hidden by something dark (sunglasses' frames)
DARK_EYES = 0.2  # eyes darker than this share of the skin's brightness: sunglasses (open eyes: 0.34-0.83)
FOREHEAD_HIDDEN = 0.4  # share of a source's forehead (brows included) hidden above which it all is left out
WARN_BROWS = 0.25  # … and with this share of its eyebrows hidden too, a swap without that option warns
KEEP_LOW, KEEP_HIGH = 0.3, 0.7  # the target keeps nothing below, everything above this probability
VIDEO_SMOOTHING = 0.5  # video: weight of a frame's mask against the running one
VIDEO_EVERY = 2  # video: the segmenter and the hair finder look at every second frame of a person
GLASSES_SEEN = "glasses_seen"  # video: a person's state key, set once the glasses finder found frames


class Occlusion:
    """The occlusion segmenter, the hand landmarker, the hair finder and the glasses finders applied to
    swaps (see the module docstring). ``hands``: True (default) adds the hands found near a face, ``hair``
    (default True) the hair over its forehead and sides, ``glasses`` (default True) dark sunglasses over
    its eyes and the frames of clear glasses; False leaves them to the segmenter. ``forehead`` (default
    False): a source's forehead mostly hidden is left out whole, brows included (:func:`whole_forehead`)."""

    def __init__(
        self,
        segmenter: OcclusionSegmenter | None = None,
        hands: bool | HandOccluders = True,
        hair: bool = True,
        glasses: bool = True,
        forehead: bool = False,
    ) -> None:
        self.segmenter = segmenter or OcclusionSegmenter()
        self.hands = HandOccluders() if hands is True else hands or None
        self.hair = hair
        self.glasses = glasses
        self.forehead = forehead
        self._cleaned: list[tuple[np.ndarray, Face, np.ndarray, np.ndarray | None]] = []
        self._canonical: CanonicalMesh | None = None

    @classmethod
    def of(
        cls,
        model: str | None,
        hands: bool = True,
        hair: bool = True,
        glasses: bool = True,
        forehead: bool = False,
    ) -> Occlusion:
        """With the segmenter in ``model`` (a ``masquerade train segmenter`` run folder or a copy of its
        ``segmenter.onnx`` + ``model.json``; None: the one in the package)."""
        return cls(OcclusionSegmenter(model), hands, hair, glasses, forehead)

    @classmethod
    def for_options(cls, options: SwapOptions) -> Occlusion:
        """As a swap's options ask (``occlusion_model``, ``occlusion_hands``, ``occlusion_hair``,
        ``occlusion_glasses``, ``occlusion_forehead``)."""
        o = options
        return cls.of(
            o.occlusion_model, o.occlusion_hands, o.occlusion_hair, o.occlusion_glasses, o.occlusion_forehead
        )

    def close(self) -> None:
        if self.hands is not None:
            self.hands.close()

    def crop_mask(
        self, rgb: np.ndarray, face: Face, state: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(R×R float32 probability that something is in front of ``face``, image → crop matrix): the
        segmenter's, and 1 inside the face oval where a hand, hair, sunglasses or the frames of glasses
        are (``state``: see :meth:`HandOccluders.crop_mask`)."""
        prob, frames, m = self._crop_parts(rgb, face, state)
        return (prob if frames is None else np.maximum(prob, frames)), m

    def _crop_parts(
        self, rgb: np.ndarray, face: Face, state: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """:meth:`crop_mask` in two parts: the probability without the frames of clear glasses, the frames
        (None: none found, or glasses off), and the image → crop matrix."""
        crop, m = face_crop(rgb, face, self.segmenter.resolution)
        prob = self.segmenter.crop_prob(crop, face, m)
        r = prob.shape[0]
        if self.hair:
            hair = hair_mask(rgb, face, m, r, crop)  # inside the oval already
            if hair is not None:
                prob = np.maximum(prob, hair)
        frames = None
        if self.glasses:
            lenses = sunglasses_mask(crop, face, m, prob)
            if lenses is not None:
                prob = np.maximum(prob, lenses)
            else:  # dark lenses' frames are the sunglasses finder's
                # video: a person's glasses, once found, are looked for in every later look (thin
                # frames pass the finder's test in some frames only, and would come and go)
                known = state is not None and bool(state.get(GLASSES_SEEN))
                frames = frames_mask(rgb, face, r, known=known)
                if state is not None and frames is not None:
                    state[GLASSES_SEEN] = True
        return self._add_hands(prob, rgb, face, m, state), frames, m

    def _add_hands(
        self, prob: np.ndarray, rgb: np.ndarray, face: Face, m: np.ndarray, state: dict[str, Any] | None
    ) -> np.ndarray:
        if self.hands is None:
            return prob
        r = prob.shape[0]
        hand = self.hands.crop_mask(rgb, face, m, r, state)
        if hand is None:
            return prob
        if face.mesh is not None:
            hand *= oval_mask(face.mesh, m, r, grow=0.03)
        return np.maximum(prob, hand)

    def visible_share(self, rgb: np.ndarray, face: Face) -> float:
        """The share of ``face`` in view: facing the camera and nothing in front of it (1: in full view;
        :meth:`shares`)."""
        return self.shares(rgb, face, self.crop_mask(rgb, face)[0])[1]

    def shares(self, rgb: np.ndarray, face: Face, prob: np.ndarray) -> tuple[float, float]:
        """(seen, visible): the share of ``face`` the photo shows — not turned edge-on or away from the
        camera (:meth:`CanonicalMesh.seen_share`, by the frontal area of its mesh's triangles; 1 without
        a mesh) — and the share it shows with nothing in front: seen × the share of its oval in the photo
        that ``prob`` (the occlusion probability in the segmenter's crop) leaves uncovered."""
        uncovered = self.segmenter.visible_share(rgb, face, prob)
        if face.mesh is None:
            return 1.0, uncovered
        if self._canonical is None:
            self._canonical = CanonicalMesh()
        seen = self._canonical.seen_share(face.mesh)
        return seen, seen * uncovered

    def target_mask(self, rgb: np.ndarray, face: Face, state: dict[str, Any] | None = None) -> BlendMask:
        """What the target keeps in front of ``face`` (0..1, over the box of the image around the face).

        ``state`` (video: one dict per tracked person, kept between frames): the mask is averaged over
        time in the face's own coordinates (:data:`VIDEO_SMOOTHING`), and the segmenter and the hair
        finder look at every :data:`VIDEO_EVERY`-th frame only — in between, the running mask follows
        the face, with the hands of this frame added (they have their own pace, see
        :meth:`HandOccluders.crop_mask`)."""
        if state is None:
            prob, m = self.crop_mask(rgb, face)
        else:
            n = int(state.get("frame", 0))
            state["frame"] = n + 1
            if "occlusion" in state and n % VIDEO_EVERY:
                m = crop_matrix(face.landmarks_5, self.segmenter.resolution)
                prob = self._add_hands(state["occlusion"], rgb, face, m, state)
            else:
                prob, m = self.crop_mask(rgb, face, state)
                if "occlusion" in state:
                    prob = VIDEO_SMOOTHING * prob + (1 - VIDEO_SMOOTHING) * state["occlusion"]
                state["occlusion"] = prob
        keep = np.clip((prob - KEEP_LOW) / (KEEP_HIGH - KEEP_LOW), 0.0, 1.0).astype(np.float32)
        return self.segmenter.region_mask(rgb, face, cv2.GaussianBlur(keep, (0, 0), 1.0), m)

    def clean_source(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """``rgb`` with what covers ``face`` painted over (computed once per source photo and face)."""
        for img, f, out, _ in self._cleaned:
            if img is rgb and f is face:
                return out
        # the frames of clear glasses stay: painted over, the eyes between them smear with them, and
        # painted over only away from the eyes, what is left of the glasses looks broken
        prob, frames, m = self._crop_parts(rgb, face)
        seen, visible = self.shares(rgb, face, prob)
        hidden, turned = 1.0 - visible, 1.0 - seen
        eyes = _eyes_hidden(face, prob, m)
        iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0])) or 1.0
        if hidden > WARN_HIDDEN and turned >= hidden - turned:
            log.warning(
                "%.0f %% of the source face is out of view (turned away from the camera%s); a photo of the "
                "face turned towards the camera swaps better",
                100 * hidden, ", and partly covered" if hidden - turned >= 0.1 else "",
            )  # fmt: skip
        elif hidden > WARN_HIDDEN:
            log.warning(
                "%.0f %% of the source face is hidden (hands, hair, sunglasses or an object in front of it); "
                "a photo with the face in full view swaps better",
                100 * hidden,
            )
        elif eyes > WARN_EYES:
            log.warning(
                "the source's eyes are hidden (sunglasses or something in front of them); a photo with the "
                "eyes in view swaps better"
            )
        if frames is not None:
            log.warning(
                "the source wears glasses: their frames go onto the swapped face with it; a photo without "
                "glasses swaps cleaner"
            )
        if iod < TINY_IOD:
            log.warning(
                "the source face is %.0f px between the eyes, too small to give the swapped face its detail; "
                "a larger photo of the face swaps sharper",
                iod,
            )
        hole = self.segmenter.image_mask(rgb, face, prob) > 0.5
        if self.forehead:
            hole = whole_forehead(hole, face)
        elif (
            eyes <= WARN_EYES
            and forehead_hidden(hole, face)[0] > FOREHEAD_HIDDEN
            and _brows_hidden(hole, face) > WARN_BROWS
        ):
            log.warning(  # (sunglasses, whose holes take the brows too, have their own advice above)
                "most of the source's forehead is hidden (a fringe or a hat over the eyebrows): the swap "
                "shows the target's forehead in patches between the source's; leaving all of it to the "
                "target (--occlusion-forehead on, occlusion_forehead=True) looks cleaner, a little less like "
                "the source"
            )
        out, holes = rgb, None
        if hole.any():
            dark = eyes > WARN_EYES and _eye_brightness(rgb, face, prob, m) < DARK_EYES
            g = max(1, int(round(iod * (GROW_EYES if dark else GROW))))
            hole = cv2.dilate(hole.astype(np.uint8), np.ones((2 * g + 1, 2 * g + 1), np.uint8))
            ys, xs = np.nonzero(hole)
            pad = int(iod)
            y0, y1 = max(0, ys.min() - pad), min(rgb.shape[0], ys.max() + pad + 1)
            x0, x1 = max(0, xs.min() - pad), min(rgb.shape[1], xs.max() + pad + 1)
            out = rgb.copy()
            out[y0:y1, x0:x1] = cv2.inpaint(
                np.ascontiguousarray(rgb[y0:y1, x0:x1]), hole[y0:y1, x0:x1], max(3, g), cv2.INPAINT_TELEA
            )
            holes = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), max(1.0, g / 2))
        self._cleaned = [(rgb, face, out, holes), *self._cleaned[:3]]
        return out

    def source_holes(self, rgb: np.ndarray, face: Face) -> np.ndarray | None:
        """The soft mask (float32, photo size) of what :meth:`clean_source` painted over in the source photo
        ``rgb`` (the original or the cleaned one); None when nothing covers the face."""
        for img, f, out, holes in self._cleaned:
            if (img is rgb or out is rgb) and f is face:
                return holes
        self.clean_source(rgb, face)
        return self._cleaned[0][3]


@contextmanager
def source_warnings_off() -> Iterator[None]:
    """Within it, the warnings about hidden source faces are not logged (training and evaluation swap
    occluded sources on purpose; the advice to take another photo is for a user's own swap)."""
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def forehead_hidden(hole: np.ndarray, face: Face) -> tuple[float, np.ndarray | None]:
    """The share of the source ``face``'s forehead — the face oval above the eyebrows' lowest point (and a
    little below it) — that ``hole`` (bool, photo size: what covers the face) hides, and the forehead's
    mask (None, with share 0, when nothing is hidden or the face has no mesh)."""
    if face.mesh is None or not hole.any():
        return 0.0, None
    mesh = face.mesh
    oval = np.zeros(hole.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    line = float(mesh[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].max()) + 0.02 * float(
        np.ptp(mesh[:468, 1])
    )
    forehead = (oval > 0) & (np.arange(hole.shape[0])[:, None] < line)
    area = int(forehead.sum())
    return (int((hole & forehead).sum()) / area if area else 0.0), forehead


def whole_forehead(hole: np.ndarray, face: Face) -> np.ndarray:
    """``hole`` with the whole forehead added (:func:`forehead_hidden`) when more than
    :data:`FOREHEAD_HIDDEN` of it is hidden already."""
    share, forehead = forehead_hidden(hole, face)
    return hole | forehead if share > FOREHEAD_HIDDEN and forehead is not None else hole


def _brows_hidden(hole: np.ndarray, face: Face) -> float:
    """The share of the source ``face``'s eyebrows (their outlines' convex hulls) that ``hole`` hides."""
    if face.mesh is None:
        return 0.0
    brows = np.zeros(hole.shape, np.uint8)
    for part in (BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT):
        cv2.fillConvexPoly(brows, cv2.convexHull(np.round(face.mesh[list(part), :2]).astype(np.int32)), 1)
    area = int(brows.sum())
    return float((hole & (brows > 0)).sum()) / area if area else 0.0


def _eyes_hidden(face: Face, prob: np.ndarray, m: np.ndarray) -> float:
    """The mean occlusion probability over ``face``'s eyes in the crop of ``m``."""
    inside = eye_area(face, m, prob.shape[0])
    return float(prob[inside].mean()) if inside.any() else 0.0


def _eye_brightness(rgb: np.ndarray, face: Face, prob: np.ndarray, m: np.ndarray) -> float:
    """The eyes' mean grey level over the median of the visible skin's (the face oval with nothing in
    front of it, eyes left out), in the crop of ``m``: open eyes 0.34-0.83 on photos of CelebA and the
    samples, dark sunglasses 0.02."""
    r = prob.shape[0]
    eyes = eye_area(face, m, r)
    if face.mesh is None or not eyes.any():
        return 1.0
    crop, _ = face_crop(rgb, face, r)  # what the segmenter looked at (``m`` is its matrix)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    skin = (oval_mask(face.mesh, m, r) > 0.5) & ~eyes & (prob < KEEP_LOW)
    if int(skin.sum()) < 20:
        return 1.0
    return float(grey[eyes].mean()) / max(1.0, float(np.median(grey[skin])))


def swap_face(
    swapper: Swapper, occlusion: Occlusion | None, source_rgb: np.ndarray | None, source: Face | None,
    target_rgb: np.ndarray, target: Face, state: dict[str, Any] | None = None,
) -> SwapPatch:  # fmt: skip
    """``swapper.swap`` of one face, given the source's holes when occlusion handling is on and the
    swapper leaves them out (``SwapperInfo.source_holes``), and video's ``state`` for this tracked person
    when the swapper keeps one (``SwapperInfo.swap_state``)."""
    extra: dict[str, Any] = {}
    if state is not None and swapper.info.swap_state:
        extra["state"] = state
    if occlusion is not None and source_rgb is not None and source is not None and swapper.info.source_holes:
        holes = occlusion.source_holes(source_rgb, source)
        if holes is not None:
            extra["holes"] = holes
    return swapper.swap(source_rgb, source, target_rgb, target, **extra)

"""One swapped face into the image: the swapper's patch, masked, colour-corrected and blended."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..face import Face
from ..swappers.base import SwapPatch
from .blending import blend
from .colour import correct_colour
from .masks import MouthKeep, eye_mask, face_size, region_mask

if TYPE_CHECKING:
    from ..pipeline import SwapOptions

# Inner-lip gap (in inter-ocular distances) above which the target's own mouth interior is kept.
MOUTH_OPEN_TEETH = 0.06
# How much of their own hue and saturation the eyes keep through the colour correction: all of it kept
# the source photo's white balance in the whites (cold blue on a warm photo); none turned blue irises
# green on a warmer-skinned target and the whites the target's skin colour.
EYE_CHROMA_KEPT = 0.5


@dataclass(frozen=True)
class BlendMask:
    """Where a composite changed the image: ``mask`` (float32 0..1) over pixels ``[y0:+h, x0:+w]``."""

    mask: np.ndarray
    x0: int
    y0: int

    def full(self, shape: tuple[int, ...]) -> np.ndarray:
        """The mask over a whole image of ``shape``."""
        return self.over(0, 0, *shape[:2])

    def over(self, x0: int, y0: int, h: int, w: int) -> np.ndarray:
        """The mask over the h×w box at (``x0``, ``y0``) of the image (zero where it does not reach)."""
        out = np.zeros((h, w), np.float32)
        mh, mw = self.mask.shape
        ax, ay = max(x0, self.x0), max(y0, self.y0)
        bx, by = min(x0 + w, self.x0 + mw), min(y0 + h, self.y0 + mh)
        if bx > ax and by > ay:
            out[ay - y0 : by - y0, ax - x0 : bx - x0] = self.mask[
                ay - self.y0 : by - self.y0, ax - self.x0 : bx - self.x0
            ]
        return out


def hidden_mask(patch: SwapPatch) -> BlendMask | None:
    """Where ``patch``'s source texels were hidden (its ``hidden``) as a mask over the image; None if none."""
    return None if patch.hidden is None else BlendMask(patch.hidden, patch.x0, patch.y0)


def mouth_policy(source: Face | None, target: Face) -> MouthKeep:
    """Which part of the target's mouth to keep: its open interior, its lips, or neither. Without a
    source face (a built-in identity) the swapped face has the target's expression, mouth included."""
    t_open = target.expression.get("mouth_open", 0.0) > MOUTH_OPEN_TEETH
    s_open = t_open if source is None else source.expression.get("mouth_open", 0.0) > MOUTH_OPEN_TEETH
    if t_open:
        return "inner"
    return "lips" if s_open else None


def composite(
    target_rgb: np.ndarray, patch: SwapPatch, target_face: Face, options: SwapOptions,
    keep_mouth: MouthKeep = None, stats_filter: Callable[[np.ndarray], np.ndarray] | None = None,
    inplace: bool = False, keep: BlendMask | None = None,
) -> tuple[np.ndarray, BlendMask]:  # fmt: skip
    """Mask, colour-correct and blend one patch into ``target_rgb``; returns (image, the mask it used).

    The mask is the swapped face's region (``options.mask``, eroded and feathered), with a hole for the
    part of the target's mouth ``keep_mouth`` names, limited to what the swapper covered.
    ``stats_filter`` smooths the colour statistics over time (video). ``inplace`` (video frames nobody
    else holds) writes into ``target_rgb``. ``keep`` (0..1, over a box of the image) is what the target keeps
    whatever the mask says: things in front of its face (:meth:`Occlusion.target_mask`)."""
    h, w = patch.image.shape[:2]
    x0, y0 = patch.x0, patch.y0
    roi = target_rgb[y0 : y0 + h, x0 : x0 + w]
    mask = region_mask(
        (h, w), patch.mesh, options.mask, hole_mesh=target_face.mesh,
        erode=options.mask_erode, blur=options.mask_blur, offset=(x0, y0), keep_mouth=keep_mouth,
    )  # fmt: skip
    mask = np.minimum(mask, patch.coverage)
    if keep is not None:
        mask = mask * (1.0 - keep.over(x0, y0, h, w))
    eyes = None if options.colour == "none" else EYE_CHROMA_KEPT * eye_mask((h, w), patch.mesh, (x0, y0))
    fg = correct_colour(
        patch.image, roi, mask, options.colour, face_px=face_size(patch.mesh), stats_filter=stats_filter,
        keep_chroma=eyes,
    )  # fmt: skip
    out = target_rgb if inplace else target_rgb.copy()
    out[y0 : y0 + h, x0 : x0 + w] = blend(roi, fg, mask, options.blend)
    return out, BlendMask(mask, x0, y0)

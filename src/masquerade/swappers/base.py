"""The swapper interface: a swapper turns (source face, target face) into a patch + geometry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..face import Face


@dataclass(frozen=True)
class SwapPatch:
    """A swapped face rendered over a region of the target image.

    ``image`` covers target pixels ``[y0:y0+h, x0:x0+w]``; ``coverage`` (float32 in 0..1) marks the pixels
    the swapper produced; ``mesh`` is the swapped face's geometry in target-image pixels (used for masks).
    """

    image: np.ndarray
    coverage: np.ndarray
    x0: int
    y0: int
    mesh: np.ndarray

    @property
    def roi(self) -> tuple[slice, slice]:
        h, w = self.image.shape[:2]
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


class Swapper(Protocol):
    """``needs_source``: False for swappers whose identity is built in (a trained model): ``swap`` then
    gets ``None`` for ``source_rgb`` and ``source`` and the pipeline looks for no source face."""

    name: str
    needs_source: bool

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face
    ) -> SwapPatch: ...

"""Choosing which faces to use: the largest, every face, or those matching a reference identity."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import NoFaceError
from ..face import Face
from ..identity.encoder import SAME_PERSON_DISTANCE, euclidean_distance

SelectMode = Literal["largest", "all", "reference"]
SELECT_MODES: tuple[str, ...] = ("largest", "all", "reference")


def select_faces(
    faces: list[Face],
    mode: SelectMode | str = "largest",
    reference: np.ndarray | None = None,
    threshold: float = SAME_PERSON_DISTANCE,
    what: str = "target",
) -> list[Face]:
    """Pick faces; raises :class:`NoFaceError` when nothing qualifies."""
    if not faces:
        raise NoFaceError(f"no face found in the {what}")
    if mode == "largest":
        return [max(faces, key=lambda f: f.area)]
    if mode == "all":
        return sorted(faces, key=lambda f: f.box[0])
    if mode == "reference":
        if reference is None:
            raise ValueError("reference selection needs a reference embedding")
        scored = [(euclidean_distance(f.embedding, reference), f) for f in faces if f.embedding is not None]
        matches = [f for d, f in sorted(scored, key=lambda p: p[0]) if d <= threshold]
        if not matches:
            best = min((d for d, _ in scored), default=float("nan"))
            raise NoFaceError(
                f"no face in the {what} matches the reference (closest distance {best:.2f} > {threshold:.2f})"
            )
        return matches
    raise ValueError(f"unknown selection {mode!r}; choose from {', '.join(SELECT_MODES)}")

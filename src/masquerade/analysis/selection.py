"""Which faces to swap, and which source each gets — one module for photos and video.

Modes: ``largest`` (one face), ``all`` (every face, the one source), ``reference`` (the faces matching
one reference identity), ``many`` (several people: each face gets the source at the position of the
reference it matches, or without references the k-th face — from the left in a photo, in order of
appearance in a video — gets source k). A face "matches" a reference within
:data:`~masquerade.identity.encoder.SAME_PERSON_DISTANCE` of dlib's embedding, unless it is nearer to
one of the ``others``: identities of people *not* to swap (the other people of a video or a group
photo), which tell apart people who look alike where one threshold cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import InputError, NoFaceError
from ..face import Face
from ..identity.encoder import SAME_PERSON_DISTANCE, euclidean_distance

if TYPE_CHECKING:
    from ..video.tracking import Track

SelectMode = Literal["largest", "all", "reference", "many"]
SELECT_MODES: tuple[str, ...] = ("largest", "all", "reference", "many")


def match_reference(
    embedding: np.ndarray | None,
    references: Sequence[np.ndarray],
    threshold: float = SAME_PERSON_DISTANCE,
    others: Sequence[np.ndarray] = (),
) -> int | None:
    """The index of the nearest reference within ``threshold`` of ``embedding``; None when none is, or
    when one of ``others`` (people not to swap) is as near or nearer."""
    if embedding is None or not len(references):
        return None
    d = [euclidean_distance(embedding, r) for r in references]
    k = int(np.argmin(d))
    if d[k] > threshold:
        return None
    if len(others) and min(euclidean_distance(embedding, o) for o in others) <= d[k]:
        return None
    return k


def check_selection(mode: str, references: Sequence[object], sources: int) -> None:
    """A mode and its references fit together (one-line :class:`InputError` otherwise)."""
    if mode not in SELECT_MODES:
        raise InputError(f"unknown face selection {mode!r}; choose from {', '.join(SELECT_MODES)}")
    if mode == "reference" and len(references) != 1:
        raise InputError("--faces reference needs exactly one --reference PHOTO")
    if mode == "many" and references and len(references) != sources:
        raise InputError(
            f"--faces many: give one --reference per --source ({sources} sources, "
            f"{len(references)} references)"
        )
    if mode in ("largest", "all") and len(references):
        raise InputError("--reference is used with --faces reference or --faces many")


def select_faces(
    faces: list[Face],
    mode: SelectMode | str = "largest",
    references: Sequence[np.ndarray] = (),
    sources: int = 1,
    threshold: float = SAME_PERSON_DISTANCE,
    what: str = "target",
    others: Sequence[np.ndarray] = (),
) -> list[tuple[Face, int]]:
    """The faces of one photo to swap, each with the index of its source (with references, a face
    nearer to one of ``others`` than to its reference is left alone); raises :class:`NoFaceError` when
    nothing qualifies."""
    if not faces:
        raise NoFaceError(f"no face found in the {what}")
    if mode == "largest":
        return [(max(faces, key=lambda f: f.area), 0)]
    if mode == "all":
        return [(f, 0) for f in sorted(faces, key=lambda f: f.box[0])]
    if mode == "reference":
        if len(references) != 1:
            raise InputError("reference selection needs one reference embedding")
        scored = [
            (euclidean_distance(f.embedding, references[0]), f) for f in faces if f.embedding is not None
        ]
        matches = [
            (f, 0)
            for d, f in sorted(scored, key=lambda p: p[0])
            if match_reference(f.embedding, references, threshold, others) == 0
        ]
        if not matches:
            best = min((d for d, _ in scored), default=float("nan"))
            if best <= threshold:
                raise NoFaceError(f"no face in the {what} matches the reference better than the other people")
            raise NoFaceError(
                f"no face in the {what} matches the reference (closest distance {best:.2f} > {threshold:.2f})"
            )
        return matches
    if mode == "many":
        if len(references):
            picked = [(f, match_reference(f.embedding, references, threshold, others)) for f in faces]
            chosen = [(f, k) for f, k in picked if k is not None]
        else:
            ordered = sorted(faces, key=lambda f: f.box[0])
            chosen = list(zip(ordered, range(sources), strict=False))
        if not chosen:
            raise NoFaceError(f"no face in the {what} matches any of the reference photos")
        return chosen
    raise InputError(f"unknown face selection {mode!r}; choose from {', '.join(SELECT_MODES)}")


class TrackSelector:
    """The same choice over the tracked faces of a video, kept stable from frame to frame: ``largest``
    stays on the track it chose until that track ends; in ``many`` a track keeps the source it was
    given (without references, the k-th person to appear gets source k). A track nearer to one of
    ``others`` than to its reference is not swapped."""

    def __init__(
        self, mode: str, references: Sequence[np.ndarray] = (), sources: int = 1,
        threshold: float = SAME_PERSON_DISTANCE, others: Sequence[np.ndarray] = (),
    ) -> None:  # fmt: skip
        self.mode, self.references, self.sources, self.threshold = mode, list(references), sources, threshold
        self.others = list(others)
        self._chosen: int | None = None  # track id for "largest"
        self._order = 0  # next source index for "many" by order

    @property
    def needs_identity(self) -> bool:
        # "many" always: a person who drops out and comes back must get the same source again
        return self.mode in ("reference", "many")

    def reset(self) -> None:
        """A scene cut: choose the largest face anew."""
        self._chosen = None

    def select(self, tracked: list[tuple[Track, Face]]) -> list[tuple[Track, Face]]:
        """The tracked faces to swap this frame, each track's ``source_index`` set."""
        if not tracked:
            return []
        if self.mode == "all":
            for tr, _ in tracked:
                tr.source_index = 0
            return tracked
        if self.mode == "largest":
            ids = {tr.id for tr, _ in tracked}
            if self._chosen not in ids:
                self._chosen = max(tracked, key=lambda p: p[1].area)[0].id
            chosen = [(tr, f) for tr, f in tracked if tr.id == self._chosen]
            for tr, _ in chosen:
                tr.source_index = 0
            return chosen
        if self.mode == "reference":
            sel = [
                (tr, f)
                for tr, f in tracked
                if match_reference(tr.embedding, self.references, self.threshold, self.others) == 0
            ]
            for tr, _ in sel:
                tr.source_index = 0
            return sel
        out = []  # many
        for tr, f in sorted(tracked, key=lambda p: (p[0].first_seen, p[0].id)):
            if tr.source_index is None:
                tr.source_index = self._assign(tr)
            if tr.source_index is not None and tr.source_index >= 0:
                out.append((tr, f))
        return out

    def _assign(self, tr: Track) -> int:
        if self.references:
            k = match_reference(tr.embedding, self.references, self.threshold, self.others)
            return -1 if k is None else k
        if self._order < self.sources:
            self._order += 1
            return self._order - 1
        return -1

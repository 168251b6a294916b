"""Image face swap: analysis → selection → swapper patch → mask → colour → blend."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .analysis.analyzer import FaceAnalyzer
from .analysis.selection import SelectMode, select_faces
from .compose.blending import BlendMode, blend
from .compose.colour import ColourMode, correct_colour
from .compose.masks import MaskKind, MouthKeep, face_size, region_mask
from .errors import InputError, NoFaceError
from .face import Face
from .identity.encoder import SAME_PERSON_DISTANCE, euclidean_distance
from .swappers import SWAPPERS, DiffusionOptions, Swapper, create_swapper

log = logging.getLogger(__name__)


# Inner-lip gap (in inter-ocular distances) above which the target's own mouth interior is kept.
MOUTH_OPEN_TEETH = 0.06


@dataclass(frozen=True)
class SwapOptions:
    swapper: str = "mesh3d"
    target_faces: SelectMode = "largest"
    source_face: SelectMode = "largest"
    reference: np.ndarray | None = None  # identity embedding for "reference" target selection
    source_reference: np.ndarray | None = None
    mask: MaskKind = "face"
    mask_erode: float = 0.03
    mask_blur: float = 0.06
    colour: ColourMode = "shading"
    blend: BlendMode = "feather"
    model: str | None = None  # model folder or card, for swappers that need one (autoencoder, onnx)
    sampling: DiffusionOptions | None = None  # the diffusion swapper's steps, guidance, seed


@dataclass
class SwapReport:
    """What a swap did: the faces used and the combined mask of changed pixels (``source`` is None for
    swappers with a built-in identity)."""

    source: Face | None
    targets: list[Face] = field(default_factory=list)
    mask: np.ndarray | None = None


def mouth_policy(source: Face | None, target: Face) -> MouthKeep:
    """Which part of the target's mouth to keep: its open interior, its lips, or neither. Without a
    source face (a built-in identity) the swapped face has the target's expression, mouth included."""
    t_open = target.expression.get("mouth_open", 0.0) > MOUTH_OPEN_TEETH
    s_open = t_open if source is None else source.expression.get("mouth_open", 0.0) > MOUTH_OPEN_TEETH
    if t_open:
        return "inner"
    return "lips" if s_open else None


def composite(
    target_rgb: np.ndarray, patch_rgb: np.ndarray, patch_mesh: np.ndarray, coverage: np.ndarray,
    x0: int, y0: int, target_face: Face, options: SwapOptions, keep_mouth: MouthKeep = None,
    stats_filter: Callable[[np.ndarray], np.ndarray] | None = None, inplace: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Mask, colour-correct and blend one patch into ``target_rgb``; returns (image, full-size mask).

    ``inplace`` (video frames nobody else holds) writes into ``target_rgb`` and skips the full-size
    mask (None)."""
    h, w = patch_rgb.shape[:2]
    roi = target_rgb[y0 : y0 + h, x0 : x0 + w]
    mask = region_mask(
        (h, w), patch_mesh, options.mask, hole_mesh=target_face.mesh,
        erode=options.mask_erode, blur=options.mask_blur, offset=(x0, y0), keep_mouth=keep_mouth,
    )  # fmt: skip
    mask = np.minimum(mask, coverage)
    fg = correct_colour(
        patch_rgb, roi, mask, options.colour, face_px=face_size(patch_mesh), stats_filter=stats_filter
    )
    out = target_rgb if inplace else target_rgb.copy()
    out[y0 : y0 + h, x0 : x0 + w] = blend(roi, fg, mask, options.blend)
    if inplace:
        return out, None
    full = np.zeros(target_rgb.shape[:2], np.float32)
    full[y0 : y0 + h, x0 : x0 + w] = mask
    return out, full


def make_swapper(options: SwapOptions) -> Swapper:
    """The swapper ``options`` name, with its model folder when it needs one (and, for the diffusion
    swapper, its sampling options)."""
    takes_options = getattr(SWAPPERS.get(options.swapper), "options_type", None) is not None
    if options.sampling is not None and not takes_options:
        raise InputError(f"sampling options (steps, guidance, seed) do not apply to {options.swapper}")
    if takes_options:
        return create_swapper(options.swapper, model=options.model, options=options.sampling)
    return create_swapper(options.swapper, model=options.model)


class FaceSwapper:
    """Reusable image swapper: holds the analyzer and the swapper model between calls.

    Swappers with a built-in identity (``swapper.needs_source`` False, e.g. ``autoencoder``) need no
    source: pass ``None`` as the source image (a given one is not used)."""

    def __init__(self, options: SwapOptions | None = None, analyzer: FaceAnalyzer | None = None) -> None:
        self.options = options or SwapOptions()
        self.swapper: Swapper = make_swapper(self.options)
        self.analyzer = analyzer or FaceAnalyzer(identity=False)

    @property
    def needs_source(self) -> bool:
        return getattr(self.swapper, "needs_source", True)

    def close(self) -> None:
        self.analyzer.close()

    def __enter__(self) -> FaceSwapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def source_face(self, source_rgb: np.ndarray) -> Face:
        o = self.options
        need_id = o.source_face == "reference"
        faces = self.analyzer.get(source_rgb, identity=need_id, small_faces=o.source_face != "largest")
        return select_faces(faces, o.source_face, o.source_reference, what="source")[0]

    def swap(
        self, source_rgb: np.ndarray | None, target_rgb: np.ndarray, source: Face | None = None
    ) -> tuple[np.ndarray, SwapReport]:
        o = self.options
        if not self.needs_source:
            source_rgb, src = None, None
        elif source_rgb is None:
            raise ValueError(f"the {self.swapper.name} swapper needs a source image")
        else:
            src = source or self.source_face(source_rgb)
        faces = self.analyzer.get(
            target_rgb, identity=o.target_faces == "reference", small_faces=o.target_faces != "largest"
        )
        targets = select_faces(faces, o.target_faces, o.reference, what="target")
        return self._apply(target_rgb, [(source_rgb, src, t) for t in targets], src)

    def swap_many(
        self,
        sources: list[tuple[np.ndarray, Face]],
        target_rgb: np.ndarray,
        references: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, SwapReport]:
        """Several people at once: each target face gets the source whose reference photo it matches,
        or without references the k-th face from the left gets source k."""
        if not sources:
            raise ValueError("at least one source is needed")
        if not self.needs_source:
            raise ValueError(f"the {self.swapper.name} swapper has one built-in identity: use swap()")
        faces = self.analyzer.get(target_rgb, identity=bool(references), small_faces=True)
        if not faces:
            raise NoFaceError("no face found in the target")
        pairs: list[tuple[np.ndarray, Face, Face]] = []
        if references:
            for f in faces:
                d = [euclidean_distance(f.embedding, r) for r in references]
                k = int(np.argmin(d))
                if d[k] <= SAME_PERSON_DISTANCE:
                    pairs.append((sources[k][0], sources[k][1], f))
        else:
            ordered = sorted(faces, key=lambda f: f.box[0])
            pairs = [(s_rgb, s_face, f) for (s_rgb, s_face), f in zip(sources, ordered, strict=False)]
        if not pairs:
            raise NoFaceError("no face in the target matches any of the reference photos")
        return self._apply(target_rgb, pairs, sources[0][1])

    def _apply(
        self, target_rgb: np.ndarray, pairs: list[tuple[np.ndarray | None, Face | None, Face]],
        report_source: Face | None,
    ) -> tuple[np.ndarray, SwapReport]:  # fmt: skip
        out = target_rgb
        total = np.zeros(target_rgb.shape[:2], np.float32)
        done: list[Face] = []
        for s_rgb, s_face, tf in pairs:
            try:
                p = self.swapper.swap(s_rgb, s_face, out, tf)
            except ValueError as exc:
                log.warning("face at %s not swapped: %s", np.round(tf.box).tolist(), exc)
                continue
            out, m = composite(
                out, p.image, p.mesh, p.coverage, p.x0, p.y0, tf, self.options, mouth_policy(s_face, tf)
            )
            total = np.maximum(total, m)
            done.append(tf)
        if not done:
            raise NoFaceError("no target face could be swapped")
        return out, SwapReport(source=report_source, targets=done, mask=total)


def swap_image(
    source_rgb: np.ndarray | None, target_rgb: np.ndarray, options: SwapOptions | None = None
) -> np.ndarray:
    """One-call image swap with default models (loads them each call; reuse :class:`FaceSwapper`)."""
    with FaceSwapper(options) as fs:
        return fs.swap(source_rgb, target_rgb)[0]

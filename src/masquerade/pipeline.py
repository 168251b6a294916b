"""Image face swap: analysis → selection → swapper patch → mask → colour → blend."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .analysis.analyzer import FaceAnalyzer
from .analysis.selection import SelectMode, select_faces
from .compose.blending import BlendMode
from .compose.colour import ColourMode
from .compose.composite import composite, hidden_mask, mouth_policy
from .compose.masks import MaskKind
from .errors import InputError, NoFaceError, SkipFace
from .face import Face
from .occlusion.handling import Occlusion, swap_face
from .swappers import Swapper, create_swapper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwapOptions:
    """How to swap: the swapper (its model and its own options), which faces, and how to composite.

    ``target_faces``: ``largest``, ``all``, ``reference`` (those matching ``references[0]``) or
    ``many`` (several people: the face matching ``references[k]`` — or without references the k-th
    from the left — gets source k); ``references`` are identity embeddings; ``others``: those of people
    not to swap (a face nearer one of them than to its reference is left alone). ``swapper_options``: the
    swapper's options dataclass (``Mesh3DOptions``, ``DiffusionOptions``; None: its defaults)."""

    swapper: str = "mesh3d"
    target_faces: SelectMode = "largest"
    source_face: SelectMode = "largest"
    references: tuple[np.ndarray, ...] = ()  # identity embeddings for "reference" / "many"
    others: tuple[np.ndarray, ...] = ()  # identities not to swap, with references
    source_reference: np.ndarray | None = None
    mask: MaskKind = "face"
    mask_erode: float = 0.03
    mask_blur: float = 0.06
    colour: ColourMode = "shading"
    blend: BlendMode = "feather"
    model: str | None = None  # model folder or card, for swappers that need one (autoencoder, onnx)
    swapper_options: Any = None  # the swapper's own options (e.g. DiffusionOptions), None: defaults
    occlusion: bool = True  # keep what is in front of the target face; leave out what covers the source
    occlusion_model: str | None = None  # the occlusion segmenter's folder (None: the one in the package)
    occlusion_hands: bool = True  # with occlusion: add the hands mediapipe's hand landmarker finds
    occlusion_hair: bool = True  # with occlusion: add hair over the forehead (bangs, hat brims) and sides
    occlusion_glasses: bool = True  # with occlusion: add dark sunglasses and clear glasses' frames
    occlusion_forehead: bool = False  # with occlusion: a source's forehead mostly hidden is left out whole


@dataclass
class SwapReport:
    """What a swap did: the faces used and the combined mask of changed pixels (``source`` is None for
    swappers with a built-in identity)."""

    source: Face | None
    targets: list[Face] = field(default_factory=list)
    mask: np.ndarray | None = None


def make_swapper(options: SwapOptions) -> Swapper:
    """The swapper ``options`` name, with its model when it needs one and its own options."""
    return create_swapper(options.swapper, model=options.model, options=options.swapper_options)


def source_face(analyzer: FaceAnalyzer, rgb: np.ndarray, options: SwapOptions) -> Face:
    """The face of a source photo to take the identity from (the largest, or the one matching
    ``options.source_reference``)."""
    mode = options.source_face
    faces = analyzer.get(rgb, identity=mode == "reference", small_faces=mode != "largest")
    refs = () if options.source_reference is None else (options.source_reference,)
    return select_faces(faces, mode, refs, what="source")[0][0]


class FaceSwapper:
    """Reusable image swapper: holds the analyzer and the swapper model between calls.

    Swappers with a built-in identity (``swapper.info.needs_source`` False, e.g. ``autoencoder``) need
    no source: pass ``None`` as the source image (a given one is not used)."""

    def __init__(self, options: SwapOptions | None = None, analyzer: FaceAnalyzer | None = None) -> None:
        self.options = options or SwapOptions()
        self.swapper: Swapper = make_swapper(self.options)
        self.analyzer = analyzer or FaceAnalyzer(identity=False)
        self.occlusion = Occlusion.for_options(self.options) if self.options.occlusion else None

    @property
    def needs_source(self) -> bool:
        return self.swapper.info.needs_source

    def close(self) -> None:
        self.analyzer.close()
        if self.occlusion is not None:
            self.occlusion.close()

    def __enter__(self) -> FaceSwapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def source_face(self, source_rgb: np.ndarray) -> Face:
        return source_face(self.analyzer, source_rgb, self.options)

    def clean_source(self, source_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The source photo with what covers its face painted over (``occlusion``; else as it is)."""
        return source_rgb if self.occlusion is None else self.occlusion.clean_source(source_rgb, face)

    def swap(
        self, source_rgb: np.ndarray | None, target_rgb: np.ndarray, source: Face | None = None
    ) -> tuple[np.ndarray, SwapReport]:
        """One source (or none, for a built-in identity) onto the selected target faces."""
        if not self.needs_source:
            return self.run([], target_rgb)
        if source_rgb is None:
            raise InputError(f"the {self.swapper.info.name} swapper needs a source image")
        return self.run([(source_rgb, source or self.source_face(source_rgb))], target_rgb)

    def swap_many(
        self,
        sources: list[tuple[np.ndarray, Face]],
        target_rgb: np.ndarray,
        references: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, SwapReport]:
        """Several people at once (``target_faces="many"``): each target face gets the source whose
        reference it matches (``references``, default ``options.references``), or without references
        the k-th face from the left gets source k."""
        if not sources:
            raise InputError("at least one source is needed")
        refs = self.options.references if references is None else tuple(references)
        return self._apply(target_rgb, sources, "many", refs)

    def run(
        self, sources: list[tuple[np.ndarray, Face]], target_rgb: np.ndarray
    ) -> tuple[np.ndarray, SwapReport]:
        """The photo as ``options`` say: ``sources`` are (rgb, face) pairs (empty for a built-in identity,
        several with ``target_faces="many"``)."""
        o = self.options
        if not self.needs_source:
            if o.target_faces == "many":
                raise InputError(f"the {self.swapper.info.name} swapper has one built-in identity: no 'many'")
            sources = []
        elif not sources:
            raise InputError(f"the {self.swapper.info.name} swapper needs a source image")
        elif len(sources) > 1 and o.target_faces != "many":
            raise InputError("several sources need target_faces 'many'")
        return self._apply(target_rgb, sources, o.target_faces, o.references)

    def _apply(
        self, target_rgb: np.ndarray, sources: list[tuple[np.ndarray, Face]], mode: str,
        references: tuple[np.ndarray, ...],
    ) -> tuple[np.ndarray, SwapReport]:  # fmt: skip
        faces = self.analyzer.get(
            target_rgb, identity=mode == "reference" or (mode == "many" and bool(references)),
            small_faces=mode != "largest",
        )  # fmt: skip
        others = self.options.others if references else ()
        chosen = select_faces(faces, mode, references, sources=max(1, len(sources)), others=others)
        if self.occlusion is not None:
            sources = [(self.occlusion.clean_source(rgb, face), face) for rgb, face in sources]
        out = target_rgb
        total = np.zeros(target_rgb.shape[:2], np.float32)
        done: list[Face] = []
        for tf, k in chosen:
            s_rgb, s_face = sources[k] if sources else (None, None)
            try:
                p = swap_face(self.swapper, self.occlusion, s_rgb, s_face, out, tf)
            except SkipFace as exc:
                log.warning("face at %s not swapped: %s", np.round(tf.box).tolist(), exc)
                continue
            keep = None if self.occlusion is None else self.occlusion.target_mask(target_rgb, tf)
            out, m = composite(out, p, tf, self.options, mouth_policy(s_face, tf), keep=keep)
            total = np.maximum(total, m.full(out.shape))
            if self.swapper.info.refines:
                changed = self.swapper.refine(  # type: ignore[attr-defined]
                    out, s_rgb, s_face, tf, m, hidden=hidden_mask(p), original=target_rgb, keep=keep
                )
                if changed is not None:
                    total = np.maximum(total, changed.full(out.shape))
            done.append(tf)
        if not done:
            raise NoFaceError("no target face could be swapped")
        return out, SwapReport(source=sources[0][1] if sources else None, targets=done, mask=total)


def swap_image(
    source_rgb: np.ndarray | None, target_rgb: np.ndarray, options: SwapOptions | None = None
) -> np.ndarray:
    """One-call image swap with default models (loads them each call; reuse :class:`FaceSwapper`)."""
    with FaceSwapper(options) as fs:
        return fs.swap(source_rgb, target_rgb)[0]

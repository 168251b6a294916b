"""One swap job for every entry point: what to put on which faces, how, and how to write it.

A :class:`SwapRequest` says what a user asked for, in the terms of the command line and the HTTP API
(photo paths or identity embeddings, the swapper's name and its options as plain values).
:func:`prepare_job` checks it as a whole — every combination, with the same one-line messages
wherever it comes from — analyses the source photos and returns a :class:`SwapJob`: the analysed
sources and the validated options, which the image pipeline, the video swapper, batches, Ray workers
and the web server's jobs all take as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from .analysis.analyzer import FaceAnalyzer
from .analysis.selection import check_selection
from .compose.blending import BlendMode
from .compose.colour import ColourMode
from .compose.masks import MaskKind
from .errors import InputError, NoFaceError
from .face import Face
from .imageio import DEFAULT_MAX_PIXELS, load_image
from .pipeline import FaceSwapper, SwapOptions, source_face
from .provenance.stamp import OutputStamp, ProvenanceOptions
from .swappers import SWAPPERS, SwapperInfo, model_users, swapper_info, swapper_options
from .video.smoothing import OneEuroParams
from .video.swap import VideoOptions
from .video.transcode import EncodeOptions

Source = tuple[np.ndarray, Face]
Photo = str | os.PathLike[str]
Codec = Literal["libx264", "mpeg4"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]

# the choices of --mask, --colour, --blend, --codec and --preset: the command line's, the HTTP API's
# (:class:`~masquerade.server.requests.JobRequest`) and :func:`check_request`'s, from one declaration each
MASKS: tuple[str, ...] = get_args(MaskKind)
COLOURS: tuple[str, ...] = get_args(ColourMode)
BLENDS: tuple[str, ...] = get_args(BlendMode)
CODECS: tuple[str, ...] = get_args(Codec)
PRESETS: tuple[str, ...] = get_args(Preset)


@dataclass(frozen=True)
class SwapJob:
    """Everything a swap needs besides the models: the analysed sources (rgb, face) — empty for a
    swapper with a built-in identity, several with ``target_faces="many"`` —, the swap options (swapper,
    its model and options, face selection with its reference embeddings, mask/colour/blend), the video
    options, the provenance, and how images are written and read."""

    options: SwapOptions = field(default_factory=SwapOptions)
    sources: tuple[Source, ...] = ()
    video: VideoOptions = field(default_factory=VideoOptions)
    provenance: ProvenanceOptions = field(default_factory=ProvenanceOptions)
    quality: int = 95  # JPEG/WebP
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))

    def stamp(self) -> OutputStamp:
        """A new provenance stamp for one output of this job."""
        return OutputStamp(self.options.swapper, self.provenance)


@dataclass(frozen=True)
class SwapRequest:
    """A swap as asked for: photos by path (or, for references, identity embeddings already computed,
    as the web server has them), the swapper and its options by name."""

    swapper: str = "mesh3d"
    model: str | None = None
    swapper_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"steps": 10}
    sources: tuple[Photo, ...] = ()
    faces: str = "largest"  # largest, all, reference, many
    references: tuple[Photo | np.ndarray, ...] = ()
    others: tuple[Photo | np.ndarray, ...] = ()  # people not to swap (photos or embeddings), with references
    source_face: str = "largest"  # largest, reference
    source_reference: Photo | np.ndarray | None = None
    mask: str = "face"
    mask_erode: float = 0.03
    mask_blur: float = 0.06
    colour: str = "shading"
    blend: str = "feather"
    occlusion: bool = True
    occlusion_model: str | None = None  # the occlusion segmenter's folder (None: the one in the package)
    occlusion_hands: bool = True  # with occlusion: add the hands mediapipe's hand landmarker finds
    occlusion_hair: bool = True  # with occlusion: add hair over the forehead (bangs, hat brims) and sides
    occlusion_glasses: bool = True  # with occlusion: add dark sunglasses and clear glasses' frames
    occlusion_forehead: bool = False  # with occlusion: a source's forehead mostly hidden is left out whole
    video: VideoOptions = field(default_factory=VideoOptions)
    provenance: ProvenanceOptions = field(default_factory=ProvenanceOptions)
    quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS


def video_options(
    detect_every: int = 10, smooth: bool = True, codec: str = "libx264", crf: int = 18,
    preset: str = "superfast", start: float | None = None, end: float | None = None,
) -> VideoOptions:  # fmt: skip
    """The video options from plain values (checked; ``start``/``end`` against a video are checked by
    the caller, who knows its duration)."""
    if start is not None and end is not None and end <= start:
        raise InputError("--end must be after --start")
    if detect_every < 1:
        raise InputError("--detect-every must be at least 1")
    if not 0 <= crf <= 51:
        raise InputError("--crf must be 0 to 51")
    smoothing = OneEuroParams() if smooth else OneEuroParams(min_cutoff=1e6, beta=0.0)
    enc = EncodeOptions(codec=codec, crf=crf, preset=preset, start=start, end=end)
    return VideoOptions(
        detect_every=detect_every, smoothing=smoothing, colour_tau=0.3 if smooth else 1e-6, encode=enc
    )


def check_swapper(name: str, model: str | os.PathLike[str] | None) -> SwapperInfo:
    """The swapper's record, with its model given if it needs one and not otherwise."""
    info = swapper_info(name)
    if info.needs_model and model is None:
        raise InputError(f"--swapper {name} needs --model {info.model_help}")
    if not info.takes_a_model and model is not None:
        users = " or ".join(f"--swapper {n}" for n in model_users())
        raise InputError(f"--model goes with {users}, not --swapper {name}")
    return info


def check_request(request: SwapRequest) -> None:
    """--swapper, --model, --source, the swapper's options and the face selection go together: a source
    for mesh3d, a model (and no source) for autoencoder, a model card and a source for onnx … Checked
    before any work is done; one-line :class:`InputError` otherwise."""
    r = request
    info = check_swapper(r.swapper, r.model)
    swapper_options(r.swapper, dict(r.swapper_options))  # their values and their swapper
    if info.needs_source:
        if not r.sources:
            raise InputError(
                f"--swapper {r.swapper} needs -s/--source PHOTO (the identity to put on the target)"
            )
    else:
        if r.sources:
            raise InputError(f"--swapper {r.swapper} takes its identity from --model; leave out -s/--source")
        if r.faces == "many":
            raise InputError(
                f"--faces many needs a --source per person; --swapper {r.swapper} has one identity"
            )
        if r.source_face != "largest" or r.source_reference is not None:
            raise InputError(
                f"--source-face/--source-reference pick a source face; --swapper {r.swapper} uses none"
            )
    if r.faces != "many" and len(r.sources) > 1:
        raise InputError("several --source photos need --faces many")
    check_selection(r.faces, r.references, len(r.sources))
    if r.others and not r.references:
        raise InputError("--not-reference goes with --faces reference, or --faces many with --reference")
    if r.source_face not in ("largest", "reference"):
        raise InputError(f"unknown source face selection {r.source_face!r}; choose from largest, reference")
    if r.source_face == "reference" and r.source_reference is None:
        raise InputError("--source-face reference needs --source-reference PHOTO")
    for name, value, choices in (
        ("mask", r.mask, MASKS),
        ("colour", r.colour, COLOURS),
        ("blend", r.blend, BLENDS),
        ("codec", r.video.encode.codec, CODECS),
        ("preset", r.video.encode.preset, PRESETS),
    ):
        if value not in choices:
            raise InputError(f"unknown --{name} {value!r}; choose from {', '.join(choices)}")
    for flag, amount in (("mask-erode", r.mask_erode), ("mask-blur", r.mask_blur)):
        if not 0.0 <= amount <= 0.3:
            raise InputError(f"--{flag} must be between 0 and 0.3")
    if not 1 <= r.quality <= 100:
        raise InputError("--quality must be between 1 and 100")


def reference_embedding(analyzer: FaceAnalyzer, photo: Photo | np.ndarray, max_pixels: int) -> np.ndarray:
    """The identity embedding of a reference: given as one, or of the first face in a photo."""
    if isinstance(photo, np.ndarray):
        emb = np.asarray(photo, np.float64).reshape(-1)
        if emb.size != 128:
            raise InputError(f"a reference embedding has 128 values, not {emb.size}")
        return emb
    img = load_image(photo, max_pixels=max_pixels)
    found = analyzer.get(img.rgb, identity=True)
    if not found:
        raise NoFaceError(f"no face found in the reference photo {photo}")
    assert found[0].embedding is not None
    return found[0].embedding


def prepare_job(
    request: SwapRequest, analyzer: FaceAnalyzer, load: bool = True
) -> tuple[SwapJob, FaceSwapper | None]:
    """Check ``request``, compute its reference embeddings, load and analyse its sources: the job, and
    with ``load`` a :class:`~masquerade.pipeline.FaceSwapper` for it (the swapper's model loaded once,
    sharing ``analyzer``) for the caller to reuse for every output."""
    check_request(request)
    r = request
    refs = tuple(reference_embedding(analyzer, p, r.max_pixels) for p in r.references)
    others = tuple(reference_embedding(analyzer, p, r.max_pixels) for p in r.others)
    sref = (
        reference_embedding(analyzer, r.source_reference, r.max_pixels)
        if r.source_reference is not None
        else None
    )
    options = SwapOptions(
        swapper=r.swapper, target_faces=r.faces, source_face=r.source_face,  # type: ignore[arg-type]
        references=refs, others=others, source_reference=sref, mask=r.mask, mask_erode=r.mask_erode,  # type: ignore[arg-type]
        mask_blur=r.mask_blur, colour=r.colour, blend=r.blend, occlusion=r.occlusion,  # type: ignore[arg-type]
        occlusion_model=r.occlusion_model, occlusion_hands=r.occlusion_hands, occlusion_hair=r.occlusion_hair,
        occlusion_glasses=r.occlusion_glasses, occlusion_forehead=r.occlusion_forehead,
        model=str(r.model) if r.model is not None else None,
        swapper_options=swapper_options(r.swapper, dict(r.swapper_options)),
    )  # fmt: skip
    fs = FaceSwapper(options, analyzer=analyzer) if load else None
    sources = []
    for p in r.sources:
        rgb = load_image(p, max_pixels=r.max_pixels).rgb
        sources.append((rgb, source_face(analyzer, rgb, options)))
    job = SwapJob(options, tuple(sources), r.video, r.provenance, r.quality, r.max_pixels)
    return job, fs


def swapper_choices() -> list[dict[str, Any]]:
    """Every registered swapper's record as plain data (the CLI's help, ``GET /api/swappers``)."""
    return [
        {
            "name": n, "summary": c.info.summary, "needs_source": c.info.needs_source,
            "needs_model": c.info.needs_model,
            "options": c.info.option_records(),
        }
        for n, c in SWAPPERS.items()
    ]  # fmt: skip


__all__ = [
    "BLENDS",
    "CODECS",
    "COLOURS",
    "MASKS",
    "PRESETS",
    "Codec",
    "Preset",
    "SwapJob",
    "SwapRequest",
    "check_request",
    "check_swapper",
    "prepare_job",
    "reference_embedding",
    "swapper_choices",
    "video_options",
]

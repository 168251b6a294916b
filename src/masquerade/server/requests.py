"""A job's body (``POST /api/jobs``) as a :class:`~masquerade.job.SwapRequest`: every option of
``masquerade swap`` in the terms of the API — uploads by id, faces by their index in an upload.

The same translation serves the API (checked when the job is created, so a bad combination is a 422
with the CLI's one-line message) and the worker that runs the job (which builds the job from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from ..compose.blending import BlendMode
from ..compose.colour import ColourMode
from ..compose.masks import MaskKind
from ..errors import InputError
from ..job import Codec, Preset, SwapRequest, check_request, video_options
from ..provenance.credentials import SigningConfig
from ..provenance.stamp import ProvenanceOptions
from ..swappers import SWAPPERS
from .store import JobStore, Upload

OptionValue = StrictInt | StrictFloat | StrictStr  # a swapper option's value: a number or a word

IMAGE_ONLY: dict[str, Any] = {"applies": "image"}  # a field only photo targets use (GET /api/options)
VIDEO_ONLY: dict[str, Any] = {"applies": "video"}  # a field only video targets use
# the compositing and output fields GET /api/options describes, in the page's order
COMMON_OPTIONS = (
    "mask", "mask_erode", "mask_blur", "colour", "blend", "occlusion", "quality",
    "codec", "crf", "preset", "detect_every", "smooth",
)  # fmt: skip


class JobRequest(BaseModel):
    """What ``POST /api/jobs`` takes: ``masquerade swap``'s options, with uploads for its photos."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, description="upload id of the source photo (the identity)")
    sources: list[str] = Field(
        default_factory=list,
        description="with target_faces 'many': one source photo per person (upload ids), in the order of "
        "reference_faces/references (or of the target's faces from the left)",
    )
    target: str = Field(description="upload id of the target photo or video")
    source_face: int | None = Field(None, ge=0, description="face of the source to use (default the largest)")
    target_faces: Literal["largest", "all", "one", "reference", "many"] = Field(
        "largest",
        description="largest; all; one (target_face); reference (the faces matching references); many "
        "(several people: source k onto the target face reference_faces[k], or the one matching "
        "references[k], or without either the k-th face from the left)",
    )
    target_face: int | None = Field(None, ge=0, description="with target_faces 'one': the face index")
    reference_faces: list[int] = Field(
        default_factory=list, description="with target_faces 'many': the target face for each source"
    )
    references: list[str] = Field(
        default_factory=list, description="upload ids of photos of the target people (their first face)"
    )
    swapper: str = Field("mesh3d", description="a swapper or a model name from GET /api/swappers")
    options: dict[str, OptionValue] = Field(
        default_factory=dict,
        description="the swapper's own options (GET /api/swappers), e.g. "
        '{"steps": 20} or {"gaze": "source"}',
    )
    mask: MaskKind = Field(
        "face", description="face: the whole face is replaced; skin: the target's eyes and mouth are kept"
    )
    mask_erode: float = Field(0.03, ge=0.0, le=0.3, description="mask erosion, a fraction of the face size")
    mask_blur: float = Field(0.06, ge=0.0, le=0.3, description="mask feathering, a fraction of the face size")
    colour: ColourMode = Field(
        "shading",
        description="colour correction: none; reinhard (LAB statistics); shading (reinhard plus the "
        "target's lighting)",
    )
    blend: BlendMode = Field(
        "feather", description="how the face is blended in: feather, poisson or multiband"
    )
    occlusion: bool = Field(
        True,
        description="keep what is in front of the target's face (fingers, hair, a microphone) and paint "
        "over what covers the source's",
    )
    quality: int = Field(
        95, ge=1, le=100, description="JPEG/WebP quality of a photo result", json_schema_extra=IMAGE_ONLY
    )
    # video
    codec: Codec = Field("libx264", description="video codec (libx264: H.264)", json_schema_extra=VIDEO_ONLY)
    crf: int = Field(
        18, ge=0, le=51, description="H.264 quality, lower is better", json_schema_extra=VIDEO_ONLY
    )
    preset: Preset = Field(
        "superfast",
        description="H.264 speed/size trade-off (superfast: real time at 720p on 2 cores)",
        json_schema_extra=VIDEO_ONLY,
    )
    start: float | None = Field(None, ge=0, description="start time in seconds (a video target)")
    end: float | None = Field(None, ge=0, description="end time in seconds (a video target)")
    detect_every: int = Field(
        10, ge=1, description="frames between face detector runs", json_schema_extra=VIDEO_ONLY
    )
    smooth: bool = Field(
        True,
        description="temporal smoothing of the face's landmarks and colour",
        json_schema_extra=VIDEO_ONLY,
    )
    provenance: bool = Field(
        True, description="false: no watermark or C2PA manifest (only where the server allows it)"
    )


class PreviewRequest(JobRequest):
    """What ``POST /api/preview`` takes: a job's body, the time of the video frame to swap and the size
    of the picture returned."""

    time: float | None = Field(
        None, ge=0, description="seconds into a video target (default: start, else 0); a photo has none"
    )
    max_side: int = Field(960, ge=16, le=8192, description="the picture's longest side at most, in pixels")


def _option_type(annotation: Any) -> tuple[str, list[Any] | None]:
    """("str"|"int"|"float"|"bool", the choices of a Literal) of a field's type."""
    if get_origin(annotation) is Literal:
        choices = list(get_args(annotation))
        return type(choices[0]).__name__, choices
    return annotation.__name__, None


def describe_options(allow_no_provenance: bool) -> dict[str, Any]:
    """``GET /api/options``: the compositing and output fields of :class:`JobRequest` (type, default,
    choices, bounds, help, and whether they apply to photos, videos or both), and whether a job may
    turn provenance off on this server."""
    common = []
    for name in COMMON_OPTIONS:
        f = JobRequest.model_fields[name]
        kind, choices = _option_type(f.annotation)
        bounds = {"minimum": None, "maximum": None}
        for m in f.metadata:
            for attr, key in (("ge", "minimum"), ("le", "maximum")):
                if getattr(m, attr, None) is not None:
                    bounds[key] = getattr(m, attr)
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        common.append(
            {"name": name, "type": kind, "default": f.default, "choices": choices, **bounds,
             "help": f.description or "", "applies": extra.get("applies", "all")}
        )  # fmt: skip
    return {"common": common, "provenance_optional": allow_no_provenance}


@dataclass(frozen=True)
class JobSettings:
    """What the server's operator decides for every job (``masquerade serve``'s options): the models it
    offers (name → folder), whether a job may turn provenance off, the pixel limit, the C2PA signing
    certificate and key (None: ``$MASQUERADE_C2PA_CERT``/``_KEY`` or the local key)."""

    models: dict[str, str] = field(default_factory=dict)
    allow_no_provenance: bool = False
    max_pixels: int | None = None
    c2pa_cert: str | None = None
    c2pa_key: str | None = None

    def signing(self) -> SigningConfig | None:
        if self.c2pa_cert is None or self.c2pa_key is None:
            return None
        return SigningConfig(Path(self.c2pa_cert), Path(self.c2pa_key))


def offered_swappers(models: Mapping[str, str]) -> dict[str, str]:
    """The swappers a server offers: name → the registered swapper behind it (built-in ones that need
    no model, and the server's models by their names)."""
    from ..swappers.aligned import folder_kind

    offered = {n: n for n, c in SWAPPERS.items() if not c.info.needs_model}
    for name, folder in models.items():
        kind = folder_kind(folder)
        if kind is not None:
            offered[name] = kind
    return offered


def describe_swappers(models: Mapping[str, str]) -> dict[str, Any]:
    """``GET /api/swappers``: the names offered, and each one's swapper, summary and options."""
    offered = offered_swappers(models)
    details = []
    for name, kind in offered.items():
        info = SWAPPERS[kind].info
        details.append(
            {
                "name": name, "swapper": kind, "summary": info.summary, "needs_source": info.needs_source,
                "options": info.option_records(),
            }
        )  # fmt: skip
    return {"swappers": list(offered), "default": "mesh3d", "details": details}


def _face_embeddings(store: JobStore, up: Upload) -> np.ndarray:
    """The identity embeddings of an upload's faces (a video's people), in its ``faces`` order."""
    return np.load(store.upload_dir(up.id) / "faces.npy")


def _face_embedding(store: JobStore, up: Upload, index: int, what: str) -> np.ndarray:
    faces = up.meta.get("faces", [])
    if not 0 <= index < len(faces):
        raise InputError(f"{what} {index}: the {up.kind} has {len(faces)} face(s)")
    return _face_embeddings(store, up)[int(index)]


def _picked_faces(
    store: JobStore, up: Upload, picked: list[int], what: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(the embeddings of the target's faces ``picked`` by index, those of the others: the people not to
    swap, so that a face is swapped only when it is more like a picked one than like any of them)."""
    n = len(up.meta.get("faces", []))
    for k in picked:
        if not 0 <= k < n:
            raise InputError(f"{what} {k}: the {up.kind} has {n} face(s)")
    every = _face_embeddings(store, up)
    return [every[k] for k in picked], [every[k] for k in range(len(every)) if k not in picked]


def swap_request(store: JobStore, req: JobRequest, settings: JobSettings) -> tuple[SwapRequest, Upload]:
    """The checked request and the target upload; :class:`LookupError` for an unknown upload (404),
    one-line :class:`InputError` for a bad option or combination (422)."""

    def upload(upload_id: str, what: str) -> Upload:
        up = store.upload(upload_id)
        if up is None:
            raise LookupError(f"no upload {upload_id[:40]!r}")
        if what != "target" and up.kind != "image":
            raise InputError(f"the {what} must be a photo")
        return up

    def photo(up: Upload) -> Path:
        return store.upload_path(up)

    target = upload(req.target, "target")
    ids = ([req.source] if req.source is not None else []) + list(req.sources)
    sources = [upload(i, "source") for i in ids]
    refs_up = [upload(i, "reference") for i in req.references]
    models = settings.models
    offered = offered_swappers(models)
    if req.swapper not in offered:
        raise InputError(f"unknown swapper {req.swapper!r}; this server offers {', '.join(offered)}")
    kind = offered[req.swapper]
    model = models.get(req.swapper)

    faces: str = req.target_faces
    references: list[Path | np.ndarray] = []
    others: list[np.ndarray] = []
    if req.target_faces == "one":
        if req.target_face is None:
            raise InputError("target_faces 'one' needs target_face")
        faces = "reference"
        picked, others = _picked_faces(store, target, [req.target_face], "target_face")
        references = list(picked)
    elif req.target_face is not None:
        raise InputError("target_face goes with target_faces 'one'")
    if req.reference_faces:
        if req.target_faces != "many":
            raise InputError("reference_faces go with target_faces 'many'")
        if req.references:
            raise InputError("give reference_faces or references, not both")
        picked, others = _picked_faces(store, target, list(req.reference_faces), "reference_faces")
        references = list(picked)
    if req.references:
        if req.target_faces not in ("reference", "many"):
            raise InputError("references go with target_faces 'reference' or 'many'")
        references = [photo(up) for up in refs_up]
    source_reference = None
    if req.source_face is not None:
        if len(sources) != 1:
            raise InputError("source_face picks the face of one source photo")
        source_reference = _face_embedding(store, sources[0], req.source_face, "source_face")
    if not req.provenance and not settings.allow_no_provenance:
        raise InputError("this server marks every output (watermark and C2PA); provenance cannot be off")
    vopts = video_options(req.detect_every, req.smooth, req.codec, req.crf, req.preset, req.start, req.end)
    if target.kind == "video":
        duration = float(target.meta.get("duration") or 0.0)
        for name, value in (("start", req.start), ("end", req.end)):
            if value is not None and duration and value > duration:
                raise InputError(f"{name} {value} is outside the video (0 to {duration:.2f} s)")
    elif req.start is not None or req.end is not None:
        raise InputError("start/end go with a video target")
    extra: dict[str, Any] = {} if settings.max_pixels is None else {"max_pixels": settings.max_pixels}
    request = SwapRequest(
        swapper=kind, model=model, swapper_options=dict(req.options),
        sources=tuple(photo(up) for up in sources), faces=faces, references=tuple(references),
        others=tuple(others),
        source_face="reference" if source_reference is not None else "largest",
        source_reference=source_reference, mask=req.mask, mask_erode=req.mask_erode,
        mask_blur=req.mask_blur, colour=req.colour, blend=req.blend, occlusion=req.occlusion, video=vopts,
        provenance=ProvenanceOptions(enabled=req.provenance, signing=settings.signing()),
        quality=req.quality, **extra,
    )  # fmt: skip
    check_request(request)
    return request, target

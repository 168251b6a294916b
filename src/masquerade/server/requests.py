"""A job's body (``POST /api/jobs``) as a :class:`~masquerade.job.SwapRequest`: every option of
``masquerade swap`` in the terms of the API — uploads by id, faces by their index in an upload.

The same translation serves the API (checked when the job is created, so a bad combination is a 422
with the CLI's one-line message) and the worker that runs the job (which builds the job from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..job import SwapRequest, check_request, video_options
from ..provenance.credentials import SigningConfig
from ..provenance.stamp import ProvenanceOptions
from ..swappers import SWAPPERS
from .store import JobStore, Upload

Number = int | float


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
    options: dict[str, Number] = Field(
        default_factory=dict, description='the swapper\'s own options, e.g. {"steps": 20}'
    )
    mask: str = "face"
    mask_erode: float = 0.03
    mask_blur: float = 0.06
    colour: str = "shading"
    blend: str = "feather"
    occlusion: bool = False
    quality: int = 95
    # video
    codec: Literal["libx264", "mpeg4"] = "libx264"
    crf: int = 18
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "superfast"
    start: float | None = Field(None, ge=0)
    end: float | None = Field(None, ge=0)
    detect_every: int = 10
    smooth: bool = True
    provenance: bool = Field(
        True, description="false: no watermark or C2PA manifest (only where the server allows it)"
    )


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
                "options": [{"name": o.name, "type": o.kind.__name__, "help": o.help} for o in info.options],
            }
        )  # fmt: skip
    return {"swappers": list(offered), "default": "mesh3d", "details": details}


def _face_embedding(store: JobStore, up: Upload, index: int, what: str) -> np.ndarray:
    faces = up.meta.get("faces", [])
    if not 0 <= index < len(faces):
        raise InputError(f"{what} {index}: the {up.kind} has {len(faces)} face(s)")
    return np.load(store.upload_dir(up.id) / "faces.npy")[int(index)]


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
    if req.target_faces == "one":
        if req.target_face is None:
            raise InputError("target_faces 'one' needs target_face")
        faces = "reference"
        references = [_face_embedding(store, target, req.target_face, "target_face")]
    elif req.target_face is not None:
        raise InputError("target_face goes with target_faces 'one'")
    if req.reference_faces:
        if req.target_faces != "many":
            raise InputError("reference_faces go with target_faces 'many'")
        if req.references:
            raise InputError("give reference_faces or references, not both")
        references = [_face_embedding(store, target, k, "reference_faces") for k in req.reference_faces]
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
    extra = {} if settings.max_pixels is None else {"max_pixels": settings.max_pixels}
    request = SwapRequest(
        swapper=kind, model=model, swapper_options=dict(req.options),
        sources=tuple(photo(up) for up in sources), faces=faces, references=tuple(references),
        source_face="reference" if source_reference is not None else "largest",
        source_reference=source_reference, mask=req.mask, mask_erode=req.mask_erode,
        mask_blur=req.mask_blur, colour=req.colour, blend=req.blend, occlusion=req.occlusion, video=vopts,
        provenance=ProvenanceOptions(enabled=req.provenance, signing=settings.signing()),
        quality=req.quality, **extra,
    )  # fmt: skip
    check_request(request)
    return request, target

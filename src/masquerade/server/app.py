"""The web app and REST API of ``masquerade serve`` (FastAPI).

REST API (JSON; the OpenAPI description is served at ``/openapi.json``):

* ``POST /api/uploads`` (multipart field ``file``) → 201 ``{id, kind: image|video, name, width, height,
  duration?, frames?, faces: [{index, box, score, thumbnail}]}``: the file is checked by its content
  (not its name) against the size, pixel and duration limits, and its faces are found (for a video,
  in its first frame) with a thumbnail and an identity embedding each. 400 unreadable or unsupported
  file, 413 over a limit (the size while the body streams in, see :mod:`.uploads`), 415 not a
  multipart form, 422 a photo without a face.
* ``GET /api/uploads/{id}``, ``GET /api/uploads/{id}/faces/{k}.jpg``.
* ``POST /api/jobs`` — every option of ``masquerade swap`` (see :class:`.requests.JobRequest`):
  ``{source | sources: [...], target, source_face?, target_faces: largest|all|one|reference|many,
  target_face?, reference_faces?, references?, swapper, options: {…}, mask, mask_erode, mask_blur,
  colour, blend, quality, codec, crf, preset, start?, end?, detect_every, smooth}`` → 202 the job;
  404 unknown upload, 422 bad option or combination (the CLI's one-line message), 429 queue full.
* ``GET /api/swappers`` → the swappers offered, each with its summary and its own options.
* ``GET /api/health`` → ``{status, version, running, queued, workers: {starting, idle, busy}, limits}``.
* ``GET /api/jobs/{id}`` → ``{id, status, progress, message, error?, result_url?, …}``; 404 unknown.
* ``GET /api/jobs/{id}/result`` → the output file (409 while not done); ``POST /api/jobs/{id}/cancel``.

The browser page (``GET /``) uses exactly this API; it remembers the jobs it started in the browser's
local storage (its gallery), since the server lists no jobs: a result is reachable only through its id.

Every request needs the server's access token, and requests from other sites are refused: see
:mod:`.security` (401 and 403 answers).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response

from .. import __version__
from ..errors import InputError, LimitError, MasqueradeError
from .requests import JobRequest, JobSettings, describe_swappers, swap_request
from .runner import RunLimits, Scheduler, result_media_type
from .security import (
    AccessPolicy,
    Guard,
    check_host_name,
    check_token,
    is_loopback,
    load_or_create_token,
    page_csp,
)
from .store import JobStore, Upload, new_id, valid_id
from .uploads import receive_file

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
NONCE = "{{nonce}}"  # in the page: replaced by each answer's CSP nonce
UPLOAD_SCHEMA = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        }
    },
}


@dataclass(frozen=True)
class ServerConfig:
    data: Path  # the store's folder
    max_upload_mb: float = 200.0
    max_pixels: int = 50_000_000
    max_video_seconds: float = 300.0
    concurrency: int = 1
    queue_size: int = 16
    job_time_limit: float = 900.0
    worker_memory_mb: float = 2048.0  # a worker process using more after a job is replaced (0: no limit)
    models: dict[str, str] = field(default_factory=dict)  # name shown → model folder (learned swappers)
    allow_no_provenance: bool = False  # whether a job may ask for outputs without watermark and C2PA
    c2pa_cert: Path | None = None  # signing certificate chain and key (None: the environment's or local)
    c2pa_key: Path | None = None
    token: str | None = None  # the access token (None: the one kept in data/access-token, made if missing)
    no_token: bool = False  # no access token at all (serve --no-token): only for a loopback host
    host: str = "127.0.0.1"  # the address listened on: a name the Host header may carry
    allowed_hosts: tuple[str, ...] = ()  # more names it may carry (a reverse proxy's, --allowed-host)

    def access_policy(self) -> AccessPolicy:
        """Who may use the server (see :mod:`.security`); a one-line InputError for a token that is not
        usable, or no token on an address other machines can reach."""
        if self.no_token:
            if not is_loopback(self.host):
                raise InputError(
                    f"--no-token is only allowed on a loopback address (127.0.0.1, ::1), not {self.host}"
                )
            token = None
        elif self.token is not None:
            token = check_token(self.token)
        else:
            token, _ = load_or_create_token(self.data)
        hosts = tuple(check_host_name(h) for h in self.allowed_hosts)
        return AccessPolicy(token, self.host, hosts)

    def job_settings(self) -> JobSettings:
        """What every job of this server is held to (stored with the job, read by its process)."""
        return JobSettings(
            dict(self.models), self.allow_no_provenance, self.max_pixels,
            None if self.c2pa_cert is None else str(self.c2pa_cert),
            None if self.c2pa_key is None else str(self.c2pa_key),
        )  # fmt: skip


class _Analyzer:
    """One face analyzer (with identity) for the uploads, used by one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fa: Any = None

    def faces(self, rgb: np.ndarray) -> list[Any]:
        with self._lock:
            if self._fa is None:
                from ..analysis.analyzer import FaceAnalyzer

                self._fa = FaceAnalyzer(identity=True)
            return self._fa.get(rgb)

    def close(self) -> None:
        with self._lock:  # after an upload still being examined (a shutdown cut its request short)
            if self._fa is not None:
                self._fa.close()
                self._fa = None


def _error(status: int, detail: str) -> HTTPException:
    return HTTPException(
        status_code=status, detail=detail.strip().splitlines()[0] if detail.strip() else detail
    )


def _thumbnail(rgb: np.ndarray, box: np.ndarray, size: int = 128) -> bytes:
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.65 * max(x1 - x0, y1 - y0)
    h, w = rgb.shape[:2]
    a, b = int(max(0, cx - half)), int(max(0, cy - half))
    c, d = int(min(w, cx + half)), int(min(h, cy + half))
    crop = rgb[b:d, a:c] if d > b and c > a else rgb
    scale = size / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def _sniff(path: Path, cfg: ServerConfig) -> tuple[str, str, np.ndarray, dict[str, Any]]:
    """(kind, extension, the picture to find faces in, metadata) of an uploaded file, by its content."""
    from PIL import Image, UnidentifiedImageError

    fmt = None
    bad = (UnidentifiedImageError, OSError, ValueError)
    try:
        with contextlib.suppress(*bad), Image.open(path) as im:
            fmt = im.format
    except Image.DecompressionBombError:  # Pillow refuses to open it: far over any pixel limit
        from ..imageio import limit_phrase

        raise _error(413, f"the image is over {limit_phrase(cfg.max_pixels)} of this server") from None
    if fmt is not None:
        if fmt not in IMAGE_FORMATS:
            raise _error(400, f"{fmt} images are not supported (JPEG, PNG, WebP, BMP or TIFF)")
        from ..imageio import load_image

        try:
            rgb = load_image(path, max_pixels=cfg.max_pixels).rgb
        except MasqueradeError as exc:
            status = 413 if isinstance(exc, LimitError) else 400
            raise _error(status, str(exc).replace(str(path), "the image")) from None
        return "image", IMAGE_FORMATS[fmt], rgb, {"width": rgb.shape[1], "height": rgb.shape[0]}
    import av

    try:
        with av.open(str(path)) as c:
            container = c.format.name
            if container in ("gif", "image2", "webp") or container.endswith("_pipe") or not c.streams.video:
                raise _error(400, "not an image or a video masquerade can read")
    except HTTPException:
        raise
    except Exception:
        raise _error(400, "not an image or a video masquerade can read") from None
    from ..video.probe import iter_frames, probe

    try:
        info = probe(path)
    except MasqueradeError as exc:
        raise _error(400, str(exc).replace(str(path), "the video")) from None
    if info.duration > cfg.max_video_seconds:
        raise _error(
            413,
            f"the video is {info.duration:.0f} s long; this server takes at most {cfg.max_video_seconds:g} s",
        )
    if info.width * info.height > cfg.max_pixels:
        raise _error(
            413, f"the video is {info.width}×{info.height}; this server takes at most {cfg.max_pixels} pixels"
        )
    frame = next((f for f, _ in iter_frames(path)), None)
    if frame is None:
        raise _error(400, "the video has no decodable frame")
    ext = (
        ".mp4" if "mp4" in container or "mov" in container else ".mkv" if "matroska" in container else ".avi"
    )
    meta = {"width": frame.shape[1], "height": frame.shape[0], "duration": round(info.duration, 3),
            "frames": info.frames, "fps": round(info.fps, 3)}  # fmt: skip
    return "video", ext, frame, meta


def create_app(cfg: ServerConfig) -> FastAPI:
    """The app: its store in ``cfg.data`` (jobs left unfinished by a stopped server are marked
    interrupted, and the temporaries it left removed), guarded by ``cfg``'s access policy (the token
    made in ``cfg.data`` on the first start unless given; :mod:`.security`), its scheduler started and
    stopped with it."""
    store = JobStore(cfg.data)
    policy = cfg.access_policy()
    recovered = store.recover()
    if recovered:
        log.warning("%d job(s) were interrupted by the last shutdown", recovered)
    stale = store.clean_stale()
    if stale:
        log.info("removed %d temporary file(s) left by the last run", stale)
    limits = RunLimits(cfg.concurrency, cfg.job_time_limit, worker_memory_mb=cfg.worker_memory_mb)
    scheduler = Scheduler(store, limits)
    analyzer = _Analyzer()
    max_bytes = int(cfg.max_upload_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()
            analyzer.close()

    app = FastAPI(
        title="masquerade",
        version=__version__,
        description="Local face-swap service: upload a source photo and a target photo or video, start a "
        "job, poll it, fetch the result. Outputs carry an invisible watermark and a signed C2PA manifest.",
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads its scripts from a CDN; /openapi.json is served
        redoc_url=None,
    )
    app.state.store, app.state.scheduler, app.state.config = store, scheduler, cfg
    app.add_middleware(Guard, policy=policy)
    page = resources.files("masquerade.server").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(page.replace(NONCE, nonce), headers={"Content-Security-Policy": page_csp(nonce)})

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "running": scheduler.running,
            "workers": scheduler.workers(),
            "queued": store.count("queued"),
            "limits": {
                "max_upload_mb": cfg.max_upload_mb,
                "max_pixels": cfg.max_pixels,
                "max_video_seconds": cfg.max_video_seconds,
                "concurrency": cfg.concurrency,
                "queue_size": cfg.queue_size,
                "job_time_limit": cfg.job_time_limit,
                "worker_memory_mb": cfg.worker_memory_mb,
            },
        }

    @app.get("/api/swappers")
    def swappers() -> dict[str, Any]:
        return describe_swappers(cfg.models)

    @app.post("/api/uploads", status_code=201, openapi_extra={"requestBody": UPLOAD_SCHEMA})
    async def upload(request: Request) -> dict[str, Any]:
        upload_id = new_id()
        folder = store.upload_dir(upload_id)
        folder.mkdir(parents=True)
        try:
            raw = folder / "upload.part"
            filename, size = await receive_file(request, raw, max_bytes, f"{cfg.max_upload_mb:g} MB")
            if size == 0:
                raise _error(400, "the file is empty")
            rec = await run_in_threadpool(_examine, upload_id, raw, Path(filename or "upload").name[:200])
            store.add_upload(rec)  # no await after the thread: a cancelled request leaves no record
            return rec.describe()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _examine(upload_id: str, raw: Path, name: str) -> Upload:
        """An uploaded file's record: checked by content, kept as input.<ext>, its faces found."""
        folder = raw.parent
        kind, ext, picture, meta = _sniff(raw, cfg)
        raw.rename(folder / f"input{ext}")
        faces = analyzer.faces(picture)
        if kind == "image" and not faces:
            raise _error(422, "no face found in this photo")
        described = []
        for k, f in enumerate(faces):
            (folder / f"face-{k}.jpg").write_bytes(_thumbnail(picture, f.box))
            described.append(
                {
                    "index": k,
                    "box": [round(float(v), 1) for v in f.box[:4]],
                    "score": round(float(f.score), 3),
                    "thumbnail": f"/api/uploads/{upload_id}/faces/{k}.jpg",
                }
            )
        if faces:
            np.save(folder / "faces.npy", np.stack([np.asarray(f.embedding, np.float32) for f in faces]))
        return Upload(upload_id, time.time(), kind, name, ext, {**meta, "faces": described})

    def _upload_or_404(upload_id: str) -> Upload:
        up = store.upload(upload_id)
        if up is None:
            raise _error(404, f"no upload {upload_id[:40]!r}")
        return up

    @app.get("/api/uploads/{upload_id}")
    def get_upload(upload_id: str) -> dict[str, Any]:
        return _upload_or_404(upload_id).describe()

    @app.get("/api/uploads/{upload_id}/faces/{index}.jpg", response_class=Response)
    def face_thumbnail(upload_id: str, index: int) -> Response:
        up = _upload_or_404(upload_id)
        if not 0 <= index < len(up.meta.get("faces", [])):
            raise _error(404, f"no face {index}")
        return Response((store.upload_dir(up.id) / f"face-{index}.jpg").read_bytes(), media_type="image/jpeg")

    @app.post("/api/jobs", status_code=202)
    def create_job(req: JobRequest) -> dict[str, Any]:
        try:
            _, target = swap_request(store, req, cfg.job_settings())
        except LookupError as exc:
            raise _error(404, str(exc)) from None
        except MasqueradeError as exc:
            raise _error(422, str(exc)) from None
        if store.count("queued") >= cfg.queue_size:
            raise _error(429, f"the queue is full ({cfg.queue_size} jobs waiting); try again later")
        spec = {
            "kind": target.kind,
            "target": target.id,
            "public": req.model_dump(),
            "settings": asdict(cfg.job_settings()),
            "result_name": "result.mp4" if target.kind == "video" else "result.png",
        }
        job = store.add_job(spec)
        scheduler.wake()
        return job.describe()

    def _job_or_404(job_id: str) -> Any:
        job = store.job(job_id) if valid_id(job_id) else None
        if job is None:
            raise _error(404, f"no job {job_id[:40]!r}")
        return job

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return _job_or_404(job_id).describe()

    @app.get("/api/jobs/{job_id}/result", response_class=FileResponse)
    def job_result(job_id: str) -> FileResponse:
        job = _job_or_404(job_id)
        if job.status != "done" or not job.result:
            raise _error(409, f"the job is {job.status}, there is no result")
        path = store.job_dir(job.id) / Path(job.result).name
        if not path.is_file():
            raise _error(410, "the result file is gone")
        return FileResponse(
            path, media_type=result_media_type(path), filename=f"masquerade-{job.id[:8]}{path.suffix}"
        )

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job = _job_or_404(job_id)
        if not job.final:
            job = store.request_cancel(job.id) or job
            scheduler.wake()
        return job.describe()

    return app

"""The web app and REST API of ``masquerade serve`` (FastAPI).

REST API (JSON; the OpenAPI description is served at ``/openapi.json``):

* ``POST /api/uploads`` (multipart field ``file``) → 201 ``{id, kind: image|video, name, width, height,
  duration?, frames?, faces: [{index, box, score, thumbnail}]}``: the file is checked by its content
  (not its name) against the size, pixel and duration limits, and its faces are found with a
  thumbnail and an identity embedding each. A video's faces are its people (:mod:`.people`: frames
  sampled across it, faces grouped by identity), each also with ``time`` (of the frame its box and
  thumbnail come from), ``seconds`` (on screen, estimated), ``first_seen`` and ``appearances``, most
  seen first; with ``sampled_frames``. 400 unreadable or unsupported
  file, 413 over a limit (the size while the body streams in, see :mod:`.uploads`), 415 not a
  multipart form, 422 a photo without a face.
* ``GET /api/uploads/{id}``, ``GET /api/uploads/{id}/faces/{k}.jpg``.
* ``POST /api/jobs`` — every option of ``masquerade swap`` (see :class:`.requests.JobRequest`):
  ``{source | sources: [...], target, source_face?, target_faces: largest|all|one|reference|many,
  target_face?, reference_faces?, references?, swapper, options: {…}, mask, mask_erode, mask_blur,
  colour, blend, quality, codec, crf, preset, start?, end?, detect_every, smooth}`` → 202 the job;
  404 unknown upload, 422 bad option or combination (the CLI's one-line message), 429 queue full.
* ``GET /api/swappers`` → the swappers offered, each with its summary and its own options (each with
  its ``default``, null where the model decides, and ``choices``, null for a number).
* ``GET /api/options`` → ``{common: [{name, type, default, choices, minimum, maximum, help, applies:
  all|image|video}], provenance_optional}``: the compositing and output fields of a job's body, from
  :class:`.requests.JobRequest` itself.
* ``POST /api/preview`` — a job's body plus ``time`` (seconds into a video target; default its
  ``start``, else 0) and ``max_side`` (default 960) → ``image/jpeg``: the target photo, or the video
  frame at ``time``, swapped in memory with those options (watermarked when provenance is on; no
  C2PA), its longest side at most ``max_side``; headers ``X-Preview-Ms`` (its own server time),
  ``X-Preview-Wait-Ms`` (its wait for the previews before it) and ``X-Faces-Swapped``. 404 unknown
  upload, 409 a newer preview of the same target was asked for while it waited (it is skipped), 422
  bad option or combination (as ``POST /api/jobs``) or a time past the end of the video. See
  :mod:`.preview`.
* ``GET /api/uploads/{id}/frame.jpg?time=&max_side=`` → the upload's photo, or its video frame at
  ``time`` (default 0), unswapped and scaled like a preview (the "before" picture).
* ``GET /api/health`` → ``{status, version, running, queued, workers: {starting, idle, busy}, limits}``.
* ``GET /api/jobs/{id}`` → ``{id, status, progress, message, error?, result_url?, kind, target_name,
  frames_done, frames_total, eta, …}``; 404 unknown. ``target_name``: the target upload's file name.
  A done job's ``message`` is "done", or the warnings its swap gave, "; "-joined (the advice about a
  source photo: a face turned away, covered or too small, glasses).
  A video job's ``frames_total`` is the frames of its trimmed range (``start``/``end``; estimated from
  the frame rate, exact once done), ``frames_done`` those swapped so far, ``eta`` the seconds left
  estimated from its rate since its first frames (null until a second of them, and when not running;
  0 once done); all three are null for a photo job.
* ``GET /api/jobs/{id}/result`` → the output file (409 while not done); ``POST /api/jobs/{id}/cancel``.
* ``GET /api/jobs/{id}/verify`` → what ``masquerade verify --json`` reports for the result — ``{file,
  watermark, c2pa, note, pixels, findings, verdict, exit_code}`` with ``file`` the result's download
  name (no server path) — plus ``code`` (= ``exit_code``: 0 provenance intact, 3 none, 4 broken); 409
  while the job is not done, 410 result gone. Made once, then kept in the job's folder.
* ``GET /api/results.zip?jobs=ID,ID,…`` → a zip (stored, not deflated) of the results of those jobs
  that are done, each named ``<target name stem>-swapped<ext>`` (``-2``, ``-3``, … where names clash);
  the jobs not done (or whose result is gone) are skipped and their ids listed, comma-separated, in the
  ``X-Skipped`` header. 422 malformed list or more than 100 ids, 404 an unknown id, 409 none done.

The browser page (``GET /``) uses exactly this API; it remembers the jobs it started in the browser's
local storage (its gallery), since the server lists no jobs: a result is reachable only through its id.

Every request needs the server's access token, and requests from other sites are refused: see
:mod:`.security` (401 and 403 answers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from .. import __version__
from ..errors import InputError, LimitError, MasqueradeError
from .people import find_people, thumbnail
from .preview import Previewer, Superseded
from .requests import (
    JobRequest,
    JobSettings,
    PreviewRequest,
    describe_options,
    describe_swappers,
    swap_request,
)
from .runner import RunLimits, Scheduler, result_media_type, trimmed_frames
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

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
NONCE = "{{nonce}}"  # in the page: replaced by each answer's CSP nonce
MAX_ZIP_JOBS = 100  # jobs in one GET /api/results.zip
JPEG_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}}
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
        with self.held() as fa:
            return list(fa.get(rgb))

    @contextlib.contextmanager
    def held(self) -> Iterator[Any]:
        """The analyzer (made on first use) for the caller alone while the block runs (previews)."""
        with self._lock:
            if self._fa is None:
                from ..analysis.analyzer import FaceAnalyzer

                self._fa = FaceAnalyzer(identity=True)
            yield self._fa

    def close(self) -> None:
        with self._lock:  # after an upload still being examined (a shutdown cut its request short)
            if self._fa is not None:
                self._fa.close()
                self._fa = None


class _TempFileResponse(FileResponse):
    """A temporary file, sent and then removed — also when the client goes away part-way."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _validation_message(exc: RequestValidationError) -> str:
    """A request's validation errors as one line: the first one's field and message (and how many
    more there are)."""
    errors = list(exc.errors())
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    text = " ".join(str(first.get("msg", "invalid value")).split())
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{'.'.join(loc)}: {text}{more}" if loc else f"{text}{more}"


def _error(status: int, detail: str) -> HTTPException:
    return HTTPException(
        status_code=status, detail=detail.strip().splitlines()[0] if detail.strip() else detail
    )


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
    previewer = Previewer(store, analyzer, cfg.job_settings())
    max_bytes = int(cfg.max_upload_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.close()
            previewer.close()
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

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

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

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        return describe_options(cfg.allow_no_provenance)

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
        if kind == "video":
            return _examine_video(upload_id, folder / f"input{ext}", name, ext, meta)
        faces = analyzer.faces(picture)
        if kind == "image" and not faces:
            raise _error(422, "no face found in this photo")
        described = []
        for k, f in enumerate(faces):
            (folder / f"face-{k}.jpg").write_bytes(thumbnail(picture, f.box))
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

    def _examine_video(upload_id: str, path: Path, name: str, ext: str, meta: dict[str, Any]) -> Upload:
        """A video's record: its faces are its people (see :mod:`.people`), most seen first."""
        try:
            found = find_people(path, analyzer.faces, max_pixels=cfg.max_pixels)
        except MasqueradeError as exc:
            status = 413 if isinstance(exc, LimitError) else 400
            raise _error(status, str(exc).replace(str(path), "the video")) from None
        described = []
        for k, person in enumerate(found.people):
            (path.parent / f"face-{k}.jpg").write_bytes(person.thumbnail)
            described.append(person.describe(k, f"/api/uploads/{upload_id}/faces/{k}.jpg"))
        if found.people:
            np.save(path.parent / "faces.npy", np.stack([p.embedding for p in found.people]))
        meta = {**meta, "faces": described, "sampled_frames": found.sampled_frames}
        return Upload(upload_id, time.time(), "video", name, ext, meta)

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

    @app.get("/api/uploads/{upload_id}/frame.jpg", response_class=Response, responses=JPEG_ANSWER)
    async def upload_frame(
        upload_id: str,
        at: float | None = Query(None, alias="time", ge=0, description="seconds into a video (default 0)"),
        max_side: int = Query(960, ge=16, le=8192, description="the picture's longest side at most"),
    ) -> Response:
        try:
            data = await run_in_threadpool(previewer.frame, upload_id, at, max_side)
        except LookupError as exc:
            raise _error(404, str(exc)) from None
        except MasqueradeError as exc:
            raise _error(422, str(exc)) from None
        return Response(data, media_type="image/jpeg")

    @app.post("/api/preview", response_class=Response, responses=JPEG_ANSWER)
    async def preview(req: PreviewRequest) -> Response:
        try:
            out = await run_in_threadpool(previewer.preview, req)
        except LookupError as exc:
            raise _error(404, str(exc)) from None
        except Superseded as exc:
            raise _error(409, str(exc)) from None
        except MasqueradeError as exc:
            raise _error(422, str(exc)) from None
        headers = {
            "X-Preview-Ms": f"{out.millis:.0f}", "X-Preview-Wait-Ms": f"{out.waited:.0f}",
            "X-Faces-Swapped": str(out.faces),
        }  # fmt: skip
        return Response(out.jpeg, media_type="image/jpeg", headers=headers)

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
        video = target.kind == "video"
        spec = {
            "kind": target.kind,
            "target": target.id,
            "public": req.model_dump(),
            "settings": asdict(cfg.job_settings()),
            "result_name": "result.mp4" if target.kind == "video" else "result.png",
            "target_name": target.name,
            "frames_total": trimmed_frames(target.meta, req.start, req.end) if video else None,
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
        return FileResponse(path, media_type=result_media_type(path), filename=job.download_name)

    @app.get("/api/jobs/{job_id}/verify")
    def verify_job(job_id: str) -> dict[str, Any]:
        job = _job_or_404(job_id)
        if job.status != "done" or not job.result:
            raise _error(409, f"the job is {job.status}, there is no result to verify")
        try:
            return store.verification(job)  # a sync endpoint: run in the threadpool
        except KeyError:
            raise _error(410, "the result file is gone") from None
        except MasqueradeError as exc:
            raise _error(500, f"the result cannot be verified: {exc}".replace(str(store.root), "…")) from None

    @app.get("/api/results.zip", response_class=FileResponse)
    def results_zip(jobs: str = Query(description="job ids, separated by commas")) -> FileResponse:
        ids = jobs.split(",")
        if len(ids) > MAX_ZIP_JOBS:
            raise _error(422, f"at most {MAX_ZIP_JOBS} jobs in one zip, not {len(ids)}")
        if not all(valid_id(i) for i in ids):
            raise _error(422, "jobs: job ids (32 hexadecimal digits) separated by commas")
        found = [_job_or_404(i) for i in dict.fromkeys(ids)]
        done = {j.id: store.result_path(j) is not None for j in found}
        ready = [j for j in found if done[j.id]]
        skipped = [j.id for j in found if not done[j.id]]
        if not ready:
            raise _error(409, "none of these jobs is done")
        path, _ = store.zip_results(ready)
        headers = {"X-Skipped": ",".join(skipped)} if skipped else None
        return _TempFileResponse(
            path, media_type="application/zip", filename="masquerade-results.zip", headers=headers
        )

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job = _job_or_404(job_id)
        if not job.final:
            job = store.request_cancel(job.id) or job
            scheduler.wake()
        return job.describe()

    return app

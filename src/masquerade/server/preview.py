"""Previews of ``masquerade serve`` (``POST /api/preview``, ``GET /api/uploads/{id}/frame.jpg``): a job's
swap of one picture — the target photo, or one frame of a target video — done in the server's own
process, in memory, in about the time of one swap.

A preview is checked exactly as a job is (:func:`.requests.swap_request`, the same one-line messages),
swapped by :meth:`~masquerade.pipeline.FaceSwapper.run` with the job's options, marked with the job's
watermark when provenance is on (no C2PA manifest: a preview is not a deliverable), scaled down and
sent as a JPEG. The :class:`Previewer` shares the face analyzer of the uploads (one model set in the
server process) and keeps warm, under that analyzer's lock (one preview or upload examination at a
time): the swapper of the last options, the faces found in the last pictures analysed (the sources',
the target's: a change of compositing options analyses nothing again), and the last pictures decoded
(photos, and video frames by upload and time). Pictures are read under a lock of their own (the
"before" picture of ``frame.jpg`` never waits for a swap), with the last videos kept open: a
scrubber moving forward decodes on from the last frame read (:class:`~masquerade.video.probe.FrameReader`).

A page asks for a new preview at every change and drops the answer it no longer wants; the server
cannot see that in time, so it skips the stale ones itself: a preview that is still waiting for the
analyzer when a newer preview of the same target is asked for is not computed (:class:`Superseded`,
answered 409). ``millis`` is the time of the preview's own work; ``waited`` the time it waited for
the previews before it.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import cv2
import numpy as np

from ..errors import MasqueradeError, NoFaceError
from .requests import JobSettings, PreviewRequest, swap_request
from .store import JobStore, Upload

if TYPE_CHECKING:
    from ..analysis.analyzer import FaceAnalyzer
    from ..face import Face
    from ..pipeline import FaceSwapper, SwapOptions
    from ..provenance.watermark import Watermarker
    from ..video.probe import FrameReader

log = logging.getLogger(__name__)

JPEG_QUALITY = 88
VIDEOS_OPEN = 2  # videos kept open for reading frames
_V = TypeVar("_V")


class Superseded(MasqueradeError):
    """A newer preview of the same target was asked for while this one waited: not computed."""


class AnalyzerLease(Protocol):
    """The server's face analyzer, lent to one caller at a time (see ``app._Analyzer``)."""

    def held(self) -> AbstractContextManager[FaceAnalyzer]: ...


class _LRU(Generic[_V]):
    """A small least-recently-used cache (no lock of its own: used under the previewer's)."""

    def __init__(
        self, items: int, max_bytes: int = 0, size: Callable[[_V], int] = lambda _: 0,
        drop: Callable[[_V], None] = lambda _: None,
    ) -> None:  # fmt: skip
        self._items, self._max_bytes, self._size, self._drop = items, max_bytes, size, drop
        self._data: OrderedDict[Hashable, _V] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], _V]) -> _V:
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = make()
        self._data[key] = value
        while len(self._data) > 1 and (
            len(self._data) > self._items
            or (self._max_bytes and sum(map(self._size, self._data.values())) > self._max_bytes)
        ):
            self._drop(self._data.popitem(last=False)[1])
        return value

    def clear(self) -> None:
        while self._data:
            self._drop(self._data.popitem(last=False)[1])


@dataclass(frozen=True)
class Picture:
    """A target's picture: the photo, or the video frame at ``time`` (its own time, in seconds). Its
    pixels are read-only: it is kept for the next previews."""

    rgb: np.ndarray
    time: float | None = None

    def __post_init__(self) -> None:
        self.rgb.flags.writeable = False


@dataclass(frozen=True)
class Preview:
    """A preview: the JPEG, the number of faces swapped, the time of its own work and the time it
    waited for the previews before it (ms)."""

    jpeg: bytes
    faces: int
    millis: float
    waited: float = 0.0


class _RememberingAnalyzer:
    """The server's analyzer, remembering the faces it found in the last pictures (by their content):
    a preview that changes only compositing options finds the faces of its source and target in
    memory. Only ``get`` is remembered (all that :func:`~masquerade.job.prepare_job` and
    :meth:`~masquerade.pipeline.FaceSwapper.run` use); anything else goes to the analyzer itself."""

    def __init__(self, analyzer: FaceAnalyzer, faces: _LRU[list[Face]]) -> None:
        self._analyzer, self._faces = analyzer, faces

    def get(self, rgb: np.ndarray, identity: bool | None = None, small_faces: bool = True) -> list[Face]:
        want_id = self._analyzer.options.identity if identity is None else identity
        pixels = np.ascontiguousarray(rgb)
        key = (hashlib.blake2b(pixels.data, digest_size=16).digest(), pixels.shape, want_id, small_faces)
        return list(self._faces.get(key, lambda: self._analyzer.get(rgb, want_id, small_faces)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._analyzer, name)


def scaled(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` scaled down (area averaging) so that its longest side is at most ``max_side``."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    k = max_side / max(h, w)
    size = (max(1, min(max_side, round(w * k))), max(1, min(max_side, round(h * k))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


class Previewer:
    """Swaps one picture of a job in the server's process (see the module docstring). Thread-safe: every
    call runs under the analyzer's lock."""

    def __init__(
        self, store: JobStore, analyzer: AnalyzerLease, settings: JobSettings, pictures: int = 4,
        picture_mb: float = 512.0, faces: int = 16,
    ) -> None:  # fmt: skip
        self.store, self.analyzer, self.settings = store, analyzer, settings
        self._pictures: _LRU[Picture] = _LRU(pictures, int(picture_mb * 2**20), lambda p: p.rgb.nbytes)
        self._videos: _LRU[FrameReader] = _LRU(VIDEOS_OPEN, drop=lambda r: r.close())
        self._reading = threading.Lock()  # the pictures and the open videos
        self._faces: _LRU[list[Face]] = _LRU(faces)
        self._swapper: tuple[tuple[Any, ...], FaceSwapper] | None = None
        self._watermarker: Watermarker | None = None
        self._asked = itertools.count(1)
        self._latest: OrderedDict[str, int] = OrderedDict()  # target upload → its newest preview's number
        self._latest_lock = threading.Lock()

    def preview(self, req: PreviewRequest) -> Preview:
        """The swapped picture of ``req``'s target as a JPEG; :class:`LookupError` for an unknown upload,
        one-line :class:`~masquerade.errors.MasqueradeError` for a bad option or combination (as
        ``POST /api/jobs``) or a time past the end of the video."""
        from ..job import prepare_job

        start = time.perf_counter()
        number = self._ask(req.target)
        request, target = swap_request(self.store, req, self.settings)
        picture = self._picture(target, self._time(req, target), request.max_pixels)
        asked = time.perf_counter()
        with self.analyzer.held() as fa:
            t0 = time.perf_counter()
            if self._superseded(req.target, number):
                raise Superseded("a newer preview of this target was asked for")
            remembering = cast("FaceAnalyzer", _RememberingAnalyzer(fa, self._faces))
            job, _ = prepare_job(request, remembering, load=False)
            fs = self._face_swapper(job.options, remembering)
            try:
                out, report = fs.run(list(job.sources), picture.rgb)
                faces = len(report.targets)
            except NoFaceError:
                if target.kind != "video":
                    raise
                out, faces = picture.rgb, 0  # as a video job leaves a frame without the faces asked for
            out = scaled(out, req.max_side)
            if faces and job.provenance.enabled:
                stamp = job.stamp()
                stamp.watermarker = self._marker(job.provenance.watermark_strength)
                out = stamp.mark(out)
        data = jpeg(out)
        waited = t0 - asked
        return Preview(data, faces, (time.perf_counter() - start - waited) * 1000, waited * 1000)

    def _ask(self, target: str) -> int:
        """Number a preview of ``target``: the newest one asked for (at most 256 targets remembered)."""
        with self._latest_lock:
            number = next(self._asked)
            self._latest[target] = number
            self._latest.move_to_end(target)
            while len(self._latest) > 256:
                self._latest.popitem(last=False)
            return number

    def _superseded(self, target: str, number: int) -> bool:
        with self._latest_lock:
            return self._latest.get(target, number) != number

    def frame(self, upload_id: str, at: float | None, max_side: int) -> bytes:
        """The upload's picture unswapped (the photo, or the video frame at ``at``, default 0) as a JPEG
        scaled like a preview; :class:`LookupError` for an unknown upload."""
        up = self.store.upload(upload_id)
        if up is None:
            raise LookupError(f"no upload {upload_id[:40]!r}")
        picture = self._picture(up, at or 0.0, self.settings.max_pixels)
        return jpeg(scaled(picture.rgb, max_side))

    @staticmethod
    def _time(req: PreviewRequest, target: Upload) -> float:
        if target.kind != "video":
            return 0.0
        return req.time if req.time is not None else req.start or 0.0

    def _picture(self, up: Upload, at: float, max_pixels: int | None) -> Picture:
        """The photo, or the video frame at ``at`` seconds (decoded once for a few previews; the video
        kept open to read the next frames asked for)."""
        path = self.store.upload_path(up)
        with self._reading:
            if up.kind == "video":
                from ..video.probe import FrameReader

                def frame() -> Picture:
                    reader = self._videos.get((up.id, max_pixels), lambda: FrameReader(path, max_pixels))
                    rgb, t = reader.at(at)
                    return Picture(rgb, t)

                return self._pictures.get((up.id, float(at)), frame)
            from ..imageio import DEFAULT_MAX_PIXELS, load_image

            limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
            return self._pictures.get((up.id, None), lambda: Picture(load_image(path, max_pixels=limit).rgb))

    def _face_swapper(self, options: SwapOptions, analyzer: FaceAnalyzer) -> FaceSwapper:
        """The swapper of the last preview when it was made the same way (its model loaded once), with
        this preview's face selection and compositing."""
        from ..pipeline import FaceSwapper

        key = (options.swapper, options.model, options.swapper_options, options.occlusion,
               options.occlusion_model, options.occlusion_hands, options.occlusion_hair,
               options.occlusion_glasses, options.occlusion_forehead)  # fmt: skip
        if self._swapper is None or self._swapper[0] != key:
            self._swapper = None  # the old one goes before the new one loads
            self._swapper = (key, FaceSwapper(options, analyzer=analyzer))
        fs = self._swapper[1]
        fs.options, fs.analyzer = options, analyzer
        return fs

    def _marker(self, strength: float) -> Watermarker:
        from ..provenance.watermark import Watermarker

        if self._watermarker is None or self._watermarker.strength != strength:
            self._watermarker = Watermarker(strength=strength)
        return self._watermarker

    def close(self) -> None:
        """Let go of the swapper and what is remembered (the analyzer is its owner's to close). Not
        under the lock, which would make the analyzer again: a preview still running keeps its own."""
        self._swapper = None
        self._watermarker = None
        with self._reading:
            self._videos.clear()
            self._pictures.clear()
        self._faces = _LRU(1)

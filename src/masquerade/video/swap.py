"""Video face swap: streaming decode → track → smooth → swap → encode.

Per frame: a scene-cut check (clears tracks and filters), detection every ``detect_every`` frames (or
when a track was missed), the face mesh on each tracked face's last box, a One-Euro filter on each
track's mesh, target selection per track (largest / all / reference / many), the common swapper +
mask + colour + blend path with per-track smoothed colour statistics. Frames without a selected face
pass through unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..analysis.detection import iou
from ..analysis.landmarks import MESH_TO_68, MeshLandmarker
from ..analysis.selection import TrackSelector
from ..compose.composite import BlendMask, composite, hidden_mask, mouth_policy
from ..compose.masks import face_size
from ..errors import InputError, NoFaceError, SkipFace
from ..face import Face
from ..occlusion.handling import swap_face
from ..pipeline import make_swapper
from ..provenance.stamp import OutputStamp, ProvenanceRecord
from ..swappers import Swapper
from .smoothing import OneEuroParams
from .tracking import SceneCutDetector, Track, Tracker, carry_box
from .transcode import EncodeOptions, Rendered, TranscodeStats, transcode

if TYPE_CHECKING:
    from ..job import SwapJob

log = logging.getLogger(__name__)

VideoSelect = Literal["largest", "all", "reference", "many"]

# frames a lost face is looked for with every crop scale where it was; after that (until the detector
# renews its box) one quick look per frame. On the 1080p group clip: the same faces found (305 of 306
# in 60 frames), a fifth less CPU (failed looks were over half of the face-mesh time).
THOROUGH_MISSES = 3


@dataclass(frozen=True)
class VideoOptions:
    detect_every: int = 10  # frames between detector runs while every track is found
    smoothing: OneEuroParams = field(default_factory=OneEuroParams)
    colour_tau: float = 0.3  # seconds: time constant of the colour-statistics average
    scene_cut: float = 0.7  # histogram correlation under which a frame starts a new scene
    max_missed: int = 15  # frames a track survives without its face
    tracking_meshes: int = 4  # tracks that get their own video-mode face mesh (the rest: per-frame mode)
    encode: EncodeOptions = field(default_factory=EncodeOptions)


@dataclass
class VideoReport:
    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    tracks: int = 0
    scene_cuts: int = 0
    transcode: TranscodeStats | None = None
    provenance: ProvenanceRecord | None = None  # what swap_video put on the output


class VideoFaceSwapper:
    """Stateful per-frame swapper for one video and one :class:`~masquerade.job.SwapJob`: its sources are
    (rgb, face) pairs; with ``target_faces="many"`` track k gets the source whose reference it matches,
    or without references the k-th person to appear gets source k (:class:`TrackSelector`). Swappers
    with a built-in identity take no sources. ``swapper`` reuses a swapper already made from the
    job's options."""

    def __init__(
        self,
        job: SwapJob,
        analyzer: FaceAnalyzer | None = None,
        post: Callable[[np.ndarray], np.ndarray] | None = None,
        swapper: Swapper | None = None,
    ) -> None:
        options = job.options
        self.swapper = swapper or make_swapper(options)
        sources = list(job.sources)
        if self.swapper.info.needs_source:
            if not sources:
                raise InputError("at least one source face is needed")
        else:
            if options.target_faces == "many":
                raise InputError(f"the {self.swapper.info.name} swapper has one built-in identity: no 'many'")
            sources = []
        self.occlusion = None
        if options.occlusion:
            from ..occlusion.handling import Occlusion

            self.occlusion = Occlusion.for_options(options)
        # painted over (occlusion handling) when the first face is swapped (:meth:`_source`), so its
        # advice (a hidden, turned or tiny face, glasses) is given only to a video with a face to swap
        self.sources = sources
        self._cleaned = self.occlusion is None
        self.options = options
        self.video = job.video
        self.analyzer = analyzer or FaceAnalyzer(identity=False)
        self.post = post  # applied to every rendered frame (e.g. the provenance watermark)
        self.mode: str = options.target_faces
        self.selector = TrackSelector(self.mode, options.references, len(sources), others=options.others)
        self.landmarker = self.analyzer.mesh_landmarker
        self.tracker = Tracker(max_missed=self.video.max_missed, smoothing=self.video.smoothing)
        self.cuts = SceneCutDetector(self.video.scene_cut)
        self.report = VideoReport()
        self._frame = 0
        self._retry_at = 0  # frame from which a missed track may trigger a detection
        self._backoff = 1
        self._pool: ThreadPoolExecutor | None = None
        self._meshes: dict[int, MeshLandmarker] = {}  # track id → its video-mode face mesh
        # meshes of ended tracks, reused as they are: re-creating (or resetting) mediapipe graphs at
        # every scene cut makes the process grow. A reused mesh starts from its last face's region in
        # crop coordinates, which is near the new face's (every crop is centred on its face), and
        # mediapipe re-detects by itself when its tracking confidence drops.
        self._spare: list[MeshLandmarker] = []

    def close(self) -> None:
        """Stop the render worker and the per-track meshes (the shared models belong to the analyzer)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._drop_meshes(keep=set())
        for lm in self._spare:
            lm.close()
        self._spare.clear()
        if self.occlusion is not None:
            self.occlusion.close()

    def _drop_meshes(self, keep: set[int]) -> None:
        for tid in [t for t in self._meshes if t not in keep]:
            self._spare.append(self._meshes.pop(tid))

    def _mesh(self, rgb: np.ndarray, tr: Track, box: np.ndarray, thorough: bool) -> np.ndarray | None:
        """The track's face mesh: its own video-mode landmarker while there are few tracks (cheaper and
        steadier), the shared per-frame one otherwise or when tracking loses the face. Not
        ``thorough`` (a face lost for a while, its box not renewed by the detector): one quick look,
        not the per-frame landmarker's three crops."""
        lm = self._meshes.get(tr.id)
        if lm is None and len(self._meshes) < self.video.tracking_meshes:
            lm = self._spare.pop() if self._spare else MeshLandmarker(tracking=True)
            self._meshes[tr.id] = lm
        mesh = lm.get(rgb, box) if lm is not None else None
        if mesh is not None or (lm is not None and not thorough):
            return mesh
        return self.landmarker.get(rgb, box, thorough=thorough)

    @property
    def needs_identity(self) -> bool:
        return self.selector.needs_identity

    def __call__(self, rgb: np.ndarray, t: float) -> np.ndarray:
        """Track and render one frame."""
        return self.render(rgb, t, self.plan(rgb, t))

    def submit(self, rgb: np.ndarray, t: float) -> Future[Rendered]:
        """Track this frame now; render it on the worker thread (frames render in order).

        Tracking needs the previous frame's result, rendering does not: overlapping the two lets the
        OpenCV/numpy work of rendering run beside the next frame's landmark model.
        """
        selected = self.plan(rgb, t)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masquerade-render")
        return self._pool.submit(self.render_changed, rgb, t, selected, True)

    def plan(self, rgb: np.ndarray, t: float) -> list[tuple[Track, Face]]:
        """Scene-cut check, tracking and selection: which faces of this frame get which source."""
        self.report.frames += 1
        if self.cuts(rgb):
            self.report.scene_cuts += 1
            self.tracker.reset()
            self._drop_meshes(keep=set())
            self.selector.reset()
            log.info("scene cut at %.2f s", t)
        selected = self.selector.select(self._track(rgb, t))
        self._frame += 1
        return [(tr, face) for tr, face in selected]

    def render(self, rgb: np.ndarray, t: float, selected: list[tuple[Track, Face]]) -> np.ndarray:
        """Swap, mask, colour-correct and blend the planned faces into the frame."""
        return self.render_changed(rgb, t, selected).rgb

    def render_changed(
        self, rgb: np.ndarray, t: float, selected: list[tuple[Track, Face]], inplace: bool = False
    ) -> Rendered:
        """:meth:`render`, and the boxes it changed (so the encoder converts only those back to YUV).
        ``inplace``: the faces may be blended into ``rgb`` itself (a frame nothing else reads any more)."""
        # faces are blended into one frame in place: a copy of ``rgb``, unless it may be changed (the
        # occlusion masks of a second face must still see the frame as it was)
        # (and a refiner that sees the target's own shading looks at the frame as it was)
        keep_input = (
            not inplace
            or (self.occlusion is not None and len(selected) > 1)
            or bool(getattr(self.swapper, "takes_target", False))
        )
        out = rgb.copy() if selected and keep_input else rgb
        boxes: list[tuple[int, int, int, int]] = []
        n = 0
        for tr, face in selected:
            src_rgb, src_face = self._source(tr.source_index or 0) if self.sources else (None, None)
            try:
                p = swap_face(
                    self.swapper, self.occlusion, src_rgb, src_face, out, face, state=tr.swapper_state
                )
            except SkipFace as exc:
                log.debug("frame %d: face not swapped: %s", self._frame, exc)
                continue
            keep = None
            if self.occlusion is not None:
                keep = self.occlusion.target_mask(rgb, face, state=tr.occlusion_state)
            out, m = composite(
                out, p, face, self.options, mouth_policy(src_face, face),
                stats_filter=partial(tr.colour_filter, t=t), inplace=True, keep=keep,
            )  # fmt: skip
            boxes.append(_box(m))
            if self.swapper.info.refines:
                r = self.swapper.refine(  # type: ignore[attr-defined]
                    out, src_rgb, src_face, face, m, state=tr.swapper_state, hidden=hidden_mask(p),
                    original=rgb, keep=keep,
                )  # fmt: skip
                if r is not None:
                    boxes.append(_box(r))
            n += 1
        if n:
            self.report.frames_swapped += 1
            self.report.faces_swapped += n
        if self.post is not None:  # may change anything
            out = self.post(out)
            h, w = out.shape[:2]
            boxes = [(0, 0, w, h)]
        return Rendered(out, tuple(boxes))

    def _source(self, k: int) -> tuple[np.ndarray, Face]:
        """Source ``k``, what covers its face painted over (:meth:`Occlusion.clean_source`, done for every
        source on the first call: frames render one at a time, on one thread)."""
        if not self._cleaned:
            assert self.occlusion is not None
            self.sources = [(self.occlusion.clean_source(rgb, face), face) for rgb, face in self.sources]
            self._cleaned = True
        return self.sources[k]

    def _track(self, rgb: np.ndarray, t: float) -> list[tuple[Track, Face]]:
        tr_ = self.tracker
        missed = any(x.missed for x in tr_.tracks)
        detect = (
            not tr_.tracks
            or self._frame % self.video.detect_every == 0
            or (missed and self._frame >= self._retry_at)
        )
        if detect:
            boxes = [d.box for d in self.analyzer.detector.detect(rgb, small_faces=self.mode != "largest")]
            assoc = tr_.update(boxes, t)
        else:
            assoc = [(x, x.box) for x in tr_.tracks]
        found: list[tuple[Track, Face]] = []
        self._drop_meshes(keep={x.id for x in tr_.tracks})
        for tr, box in assoc:
            mesh = self._mesh(rgb, tr, box, thorough=detect or tr.missed <= THOROUGH_MISSES)
            if mesh is None:
                tr_.miss(tr)
                continue
            raw_box = np.concatenate([mesh[:468, :2].min(0), mesh[:468, :2].max(0)])
            if any(iou(raw_box, f.box) > 0.5 for _, f in found):
                if tr in tr_.tracks and tr.hits == 0:  # a duplicate of a face already tracked
                    tr_.tracks.remove(tr)
                continue
            tr.missed = 0
            tr.hits += 1
            if detect:
                tr.anchor = (np.asarray(box, np.float64), raw_box)
                tr.box = np.asarray(box, np.float64)
            elif tr.anchor is not None:
                tr.box = carry_box(tr.anchor, raw_box)
            if self.needs_identity and tr.embedding is None:
                tr.embedding = self.analyzer.identity.embed(rgb, mesh[list(MESH_TO_68), :2])
                tr = tr_.reattach(tr)
            smooth = tr.mesh_filter(mesh, t, face_size(mesh))
            tr.colour_filter.tau = self.video.colour_tau
            found.append((tr, self.analyzer.face_from_mesh(smooth, raw_box, 1.0)))
        # a lost face is looked for again at once, then after 2, 4, 8 … frames while it stays lost (up
        # to detect_every): one person out of shot must not make a crowd's every frame a full detection
        if not any(x.missed for x in tr_.tracks):
            self._backoff = 1
        elif detect:
            self._retry_at = self._frame + self._backoff
            self._backoff = min(2 * self._backoff, self.video.detect_every)
        self.report.tracks = max(self.report.tracks, max((x.id + 1 for x in tr_.tracks), default=0))
        return found


def _box(m: BlendMask) -> tuple[int, int, int, int]:
    h, w = m.mask.shape[:2]
    return (m.x0, m.y0, m.x0 + w, m.y0 + h)


def stamped_options(job: SwapJob, stamp: OutputStamp | None = None) -> tuple[OutputStamp, VideoOptions]:
    """The output's provenance stamp (``stamp``, or a new one for the job) and the job's video options
    with its container metadata added."""
    stamp = stamp or job.stamp()
    vopts = job.video
    encode = dataclasses.replace(vopts.encode, metadata=(*vopts.encode.metadata, *stamp.video_metadata()))
    return stamp, dataclasses.replace(vopts, encode=encode)


def swap_video(
    job: SwapJob,
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    analyzer: FaceAnalyzer | None = None,
    progress: Callable[[int, float], None] | None = None,
    post: Callable[[np.ndarray], np.ndarray] | None = None,
    finalize: Callable[[Path], None] | None = None,
    stamp: OutputStamp | None = None,
    swapper: Swapper | None = None,
) -> VideoReport:
    """Swap the job's faces through a whole video file; raises :class:`NoFaceError` (and writes
    nothing) when no frame had a face to swap. ``post`` runs on every output frame, ``finalize`` on the
    finished temporary file before it is moved into place.

    Provenance: every output is watermarked frame by frame and carries a signed C2PA manifest (or a
    ``.c2pa`` sidecar for MKV/WebM) unless the job's ``ProvenanceOptions(enabled=False)``, which records
    in the container's comment that it was turned off. An :class:`OutputStamp` (``stamp``) gives control
    of the content id and reports what was done (``report.provenance``). ``swapper`` reuses a swapper
    already made for the job's options (its model is not loaded again)."""
    stamp, vopts = stamped_options(job, stamp)
    mark = stamp.video_marker()  # applied by the encoder thread, to the Y plane of each frame
    finalize = stamp.video_finalizer(output, finalize)
    own = analyzer is None
    fa = analyzer or FaceAnalyzer(identity=False)
    vs = VideoFaceSwapper(dataclasses.replace(job, video=vopts), fa, post=post, swapper=swapper)
    vs.report.provenance = stamp.record

    def check() -> None:
        if vs.report.frames and not vs.report.frames_swapped:
            raise NoFaceError(
                f"no face to swap in any of the {vs.report.frames} frames of {Path(target).name}"
            )

    try:
        vs.report.transcode = transcode(
            target, output, vs.submit, vopts.encode, progress, before_commit=check, finalize=finalize,
            mark=mark, max_pixels=job.max_pixels,
        )  # fmt: skip
    finally:
        vs.close()
        if own:
            fa.close()
    return vs.report

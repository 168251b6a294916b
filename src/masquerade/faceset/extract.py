"""Facesets: aligned face crops extracted from videos and photos, for training (DeepFaceLab style).

Extraction (``masquerade extract``, :func:`extract_faceset`) runs the usual face analysis on every
``every_n``-th video frame or every image, aligns each kept face to the FFHQ-style template with
:func:`masquerade.analysis.alignment.align_face` and draws its face mask from the 478-point mesh with
:func:`masquerade.compose.masks.region_mask`. Faces are dropped, in this order, when

* ``too_small``: ``face_px`` (the geometric mean of the face box's width and height in the original
  image) is under ``min_face``;
* ``other_person``: a reference embedding is given and the face is farther from it than
  ``identity_threshold`` (dlib distance, default :data:`masquerade.identity.encoder.SAME_PERSON_DISTANCE`);
* ``blurry``: the variance of the Laplacian of the crop's gray, inside the face mask and measured on the
  crop resized to 256 px (so the threshold does not depend on ``size``), is under ``blur_threshold``;
* ``duplicate``: the crop's 32×32 gray thumbnail differs from one of the last 8 faces kept from the same
  input by less than ``dedup_threshold`` grey levels (mean absolute difference, 0..255). Aligned crops
  ignore where the head is in the frame, so a still face is a duplicate, a changed expression, pose or
  lighting is not.

``no_face`` counts frames and images without any face; the other reasons count faces. With
``faces="largest"`` one face per frame is considered: the largest, or with a reference the closest match.

Defaults, from measurements on the clips in ``../shared/data/videos`` (12–13 frames each):

* ``blur_threshold=10`` drops heavily blurred faces only. Sharp talking-head and portrait faces (250–420
  px) score 31–964 (10th percentile ≥ 62); the same frames blurred with a σ = 3 px Gaussian 4–12 (a
  420-px face 24–36), with σ = 1.5 px 13–43; soft 1987 music-video faces 5–68 (median 20); the 80–140 px
  faces of a 1080p crowd 8–17. The measure depends on the face's texture as much as on focus (Grace
  Hopper's wrinkled face scores 1209, the smooth astronaut's 119), so raise it (e.g. to 30) for sharp
  footage rather than expecting one value to fit all.
* ``dedup_threshold=3``: consecutive frames of the talking heads differ by 0.1–1.7 grey levels (median
  0.5–1.3), frames five apart by 1–18 (median 2–9); a still face is kept once, the two talking heads
  one frame in 2.6 (``talking_512_d6``, first 5 s: 57 of 150) and in 5.6 (``talking_512_d0``: 14 of 78).
* ``min_face=64``: below that the 256-px crop is an upscale by 4 or more.

The folder it writes is described in :mod:`masquerade.faceset.format`, which also reads it back.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from ..analysis.alignment import align_face
from ..compose.masks import region_mask
from ..errors import InputError, NoFaceError, OutputError
from ..face import Face
from ..files import check_output_folder, commit_folder, removed_on_error, temp_beside
from ..identity.encoder import SAME_PERSON_DISTANCE, euclidean_distance
from ..imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, load_image
from ..video.probe import check_frame_size, is_video_path, iter_frames, probe
from .format import FORMAT, REJECT_REASONS, TEMPLATE, VERSION, dump_index

log = logging.getLogger(__name__)

BLUR_SIZE = 256  # the blur measure is taken at this crop size
THUMB_SIZE = 32  # de-duplication thumbnail side
DEDUP_WINDOW = 8  # kept faces per input that a new face is compared with
MASK_BLUR = 0.01  # mask feathering, fraction of the face size (about 1.5 px on a 256-px crop)

FacesMode = Literal["largest", "all"]
ProgressFn = Callable[[int, "int | None", int], None]  # (frames/images done, total or None, faces kept)


@dataclass(frozen=True)
class ExtractOptions:
    """Extraction settings (see the module docstring for what each filter measures)."""

    size: int = 256  # crop side in pixels
    min_face: float = 64.0  # face_px below this is too small
    blur_threshold: float = 10.0  # Laplacian variance (face, 256-px crop) below this is blurry; 0 = off
    dedup_threshold: float = 3.0  # thumbnail mean abs difference (grey levels) below this is a duplicate
    every_n: int = 1  # analyse every n-th video frame
    max_faces: int | None = None  # stop after this many kept faces
    faces: FacesMode = "largest"  # one face per frame, or all of them
    reference: np.ndarray | None = field(default=None, compare=False, repr=False)  # 128-d embedding
    reference_label: str | None = None  # where the reference came from (recorded in the settings)
    identity_threshold: float = SAME_PERSON_DISTANCE
    start: float | None = None  # video: seconds to skip at the start
    end: float | None = None  # video: stop at this time (seconds)
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        checks = [
            (16 <= self.size <= 2048, f"size must be between 16 and 2048 (got {self.size})"),
            (self.min_face >= 0, "min_face must not be negative"),
            (self.blur_threshold >= 0, "blur threshold must not be negative"),
            (self.dedup_threshold >= 0, "dedup threshold must not be negative"),
            (self.every_n >= 1, "every must be at least 1"),
            (self.max_faces is None or self.max_faces >= 1, "max faces must be at least 1"),
            (self.faces in ("largest", "all"), f"faces must be 'largest' or 'all' (got {self.faces!r})"),
            (self.identity_threshold > 0, "identity threshold must be positive"),
            (self.start is None or self.start >= 0, "start must not be negative"),
            (
                self.end is None or self.end > (self.start or 0.0),
                "end must be after start",
            ),
            (self.max_pixels > 0, "max pixels must be positive"),
        ]
        for ok, why in checks:
            if not ok:
                raise InputError(why)
        if self.reference is not None and np.asarray(self.reference).size != 128:
            raise InputError("the reference must be a 128-d identity embedding")

    def settings(self) -> dict[str, Any]:
        """The options as JSON-ready values (the reference as its label)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("reference", "reference_label")}
        d["reference"] = self.reference_label if self.reference is not None else None
        d["template"] = TEMPLATE
        d["mask_blur"] = MASK_BLUR
        d["dedup_window"] = DEDUP_WINDOW
        return d


@dataclass
class ExtractReport:
    """What :func:`extract_faceset` did."""

    out_dir: Path
    kept: int
    rejected: dict[str, int]
    frames: int  # video frames analysed
    images: int  # image files analysed
    unreadable: int  # image files in folders that could not be read (skipped)
    summary: dict[str, Any]
    seconds: float

    def line(self) -> str:
        """One human-readable line: counts, rejections and the pose range."""
        rej = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.rejected.items() if n) or "none"
        s = self.summary
        pose = ""
        if s.get("yaw") and s.get("pitch"):
            pose = (
                f"; yaw {s['yaw']['min']:+.0f}..{s['yaw']['max']:+.0f}°, "
                f"pitch {s['pitch']['min']:+.0f}..{s['pitch']['max']:+.0f}°"
            )
        unread = ""
        if self.unreadable:
            unread = f", {self.unreadable} unreadable file{'s' if self.unreadable != 1 else ''} skipped"
        what = f"{self.frames} frame{'s' if self.frames != 1 else ''}" if self.frames else ""
        if self.images:
            what = (what + " and " if what else "") + f"{self.images} image{'s' if self.images != 1 else ''}"
        return (
            f"kept {self.kept} face{'s' if self.kept != 1 else ''} from {what or 'no frames'} "
            f"(rejected: {rej}{unread}){pose}"
        )


@dataclass(frozen=True)
class _Input:
    path: Path  # as given
    kind: Literal["video", "folder", "image"]
    files: tuple[Path, ...] = ()  # folder: its images, sorted
    total: int | None = None  # frames or images to analyse (estimate)


@dataclass
class _State:
    """Counters and per-input de-duplication memory of one extraction run."""

    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    records: list[dict[str, Any]] = field(default_factory=list)
    recent: dict[str, deque[np.ndarray]] = field(default_factory=dict)
    per_input: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    images: int = 0
    unreadable: int = 0
    done: int = 0


def _image_files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda q: q.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    return [q for q in entries if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file()]


def plan_inputs(inputs: Sequence[str | os.PathLike[str]], options: ExtractOptions) -> list[_Input]:
    """Check every input before any work: a video, a folder holding images, or an image file."""
    if not inputs:
        raise InputError("no input given")
    plans: list[_Input] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_dir():
            files = _image_files(p)
            if not files:
                exts = " ".join(sorted(IMAGE_EXTENSIONS))
                raise InputError(f"{p}: folder holds no images ({exts})")
            plans.append(_Input(p, "folder", tuple(files), len(files)))
        elif is_video_path(p):
            info = probe(p)
            n = info.frames or (round(info.duration * info.fps) if info.duration else 0)
            if n and (options.start or options.end):
                t1 = min(options.end or info.duration or 0.0, info.duration or 0.0)
                n = max(0, round((t1 - (options.start or 0.0)) * info.fps))
            total = -(-n // options.every_n) if n else None
            plans.append(_Input(p, "video", (), total))
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            plans.append(_Input(p, "image", (p,), 1))
        else:
            raise InputError(f"{p}: not a video, an image or a folder (unknown extension {p.suffix!r})")
    return plans


def _iter_input(
    inp: _Input, options: ExtractOptions, state: _State
) -> Iterator[tuple[np.ndarray, str, int | None, float | None]]:
    """(RGB, source file, frame index or None, seconds or None) for each frame/image to analyse."""
    if inp.kind == "video":
        checked = False
        for i, (rgb, t) in enumerate(iter_frames(inp.path)):
            if not checked:
                h, w = rgb.shape[:2]
                check_frame_size(inp.path, w, h, options.max_pixels)
                checked = True
            if options.end is not None and t >= options.end:
                return
            if (options.start is not None and t < options.start) or i % options.every_n:
                continue
            state.frames += 1
            yield rgb, str(inp.path), i, t
        return
    for f in inp.files:
        try:
            rgb = load_image(f, max_pixels=options.max_pixels).rgb
        except InputError as exc:
            if inp.kind == "image":
                raise
            log.warning("skipped %s", exc)
            state.unreadable += 1
            state.done += 1
            continue
        state.images += 1
        yield rgb, str(f), None, None


def _crop_space(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    return points[:, :2] @ m[:, :2].T + m[:, 2]


def crop_face_mask(face: Face, m: np.ndarray, size: int) -> np.ndarray:
    """uint8 face mask in crop space: the mesh outline (or the 68-point hull without a mesh)."""
    if face.mesh is not None:
        mesh = face.mesh.astype(np.float64).copy()
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        mesh[:, :2] = _crop_space(mesh, m)
        if mesh.shape[1] > 2:
            mesh[:, 2] *= scale
        mask = region_mask((size, size), mesh, "face", erode=0.0, blur=MASK_BLUR)
        return np.clip(np.rint(mask * 255.0), 0, 255).astype(np.uint8)
    out = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(_crop_space(face.landmarks_68, m) * 16).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return out


def blur_measure(crop: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of a crop's gray (inside ``mask`` when given, same size)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1)
    sel = lap if mask is None else lap[mask > 127]
    if sel.size < 64:
        sel = lap
    return float(sel.var())


def face_sharpness(rgb: np.ndarray, face: Face, crop: np.ndarray, mask: np.ndarray) -> float:
    """:func:`blur_measure` of the face as a 256-px aligned crop of ``rgb`` inside its mask, whatever
    the faceset's size (``crop`` and ``mask`` are reused when they are 256 px)."""
    if crop.shape[0] != BLUR_SIZE:
        crop, _ = align_face(rgb, face.landmarks_5, BLUR_SIZE, TEMPLATE)
        mask = cv2.resize(mask, (BLUR_SIZE, BLUR_SIZE), interpolation=cv2.INTER_NEAREST)
    return blur_measure(crop, mask)


def thumbnail(crop: np.ndarray) -> np.ndarray:
    """The de-duplication thumbnail: 32×32 gray, float32 grey levels."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return cv2.resize(gray, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)


def thumb_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


def face_px(face: Face) -> float:
    """Face size in image pixels: geometric mean of the face box's width and height."""
    x1, y1, x2, y2 = face.box
    return float(np.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0)))


def _write_png(path: Path, img: np.ndarray) -> None:
    arr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OutputError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def _candidates(
    faces: list[Face], rgb: np.ndarray, options: ExtractOptions, analyzer: Any, state: _State
) -> list[tuple[Face, float | None]]:
    """Faces of one frame that pass the size and identity filters, with their reference distance."""
    ref = options.reference
    if options.faces == "largest" and ref is None:
        faces = faces[:1]
    out: list[tuple[Face, float | None]] = []
    big = [f for f in faces if face_px(f) >= options.min_face]
    if options.faces == "all":
        state.rejected["too_small"] += len(faces) - len(big)
    elif not big:
        state.rejected["too_small"] += 1
        return []
    for f in big:
        dist = None
        if ref is not None:
            emb = f.embedding if f.embedding is not None else analyzer.embed(rgb, f).embedding
            dist = euclidean_distance(emb, ref)
        out.append((f, dist))
    if ref is None:
        return out
    match = [(f, d) for f, d in out if d is not None and d <= options.identity_threshold]
    if options.faces == "largest":
        if not match:
            state.rejected["other_person"] += 1
            return []
        return [min(match, key=lambda fd: fd[1])]  # type: ignore[arg-type,return-value]
    state.rejected["other_person"] += len(out) - len(match)
    return match


def _process_frame(
    rgb: np.ndarray,
    source: str,
    frame: int | None,
    t: float | None,
    key: str,
    options: ExtractOptions,
    analyzer: Any,
    state: _State,
    faces_dir: Path,
) -> None:
    small = options.faces == "all" or options.reference is not None
    faces = analyzer.get(rgb, identity=False, small_faces=small)
    if not faces:
        state.rejected["no_face"] += 1
        return
    recent = state.recent.setdefault(key, deque(maxlen=DEDUP_WINDOW))
    for face, dist in _candidates(faces, rgb, options, analyzer, state):
        if options.max_faces is not None and len(state.records) >= options.max_faces:
            return
        crop, m = align_face(rgb, face.landmarks_5, options.size, TEMPLATE)
        mask = crop_face_mask(face, m, options.size)
        blur = face_sharpness(rgb, face, crop, mask)
        if blur < options.blur_threshold:
            state.rejected["blurry"] += 1
            continue
        thumb = thumbnail(crop)
        if recent and min(thumb_distance(thumb, r) for r in recent) < options.dedup_threshold:
            state.rejected["duplicate"] += 1
            continue
        recent.append(thumb)
        fid = f"{len(state.records):06d}"
        _write_png(faces_dir / f"{fid}.png", crop)
        _write_png(faces_dir / f"{fid}_mask.png", mask)
        pose = None
        if face.pose is not None:
            pose = {k: round(float(v), 2) for k, v in vars(face.pose).items()}
        state.records.append(
            {
                "id": fid, "image": f"faces/{fid}.png", "mask": f"faces/{fid}_mask.png",
                "source": source, "frame": frame, "time": None if t is None else round(float(t), 4),
                "matrix": np.round(m, 6).tolist(), "box": [round(float(v), 1) for v in face.box],
                "landmarks_5": np.round(_crop_space(face.landmarks_5, m), 2).tolist(),
                "landmarks_68": np.round(_crop_space(face.landmarks_68, m), 2).tolist(),
                "pose": pose, "blur": round(blur, 1), "face_px": round(face_px(face), 1),
                "identity_distance": None if dist is None else round(float(dist), 4),
            }
        )  # fmt: skip
        state.per_input[key] = state.per_input.get(key, 0) + 1


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, np.float64)
    return {
        "min": round(float(a.min()), 2), "max": round(float(a.max()), 2), "mean": round(float(a.mean()), 2),
        "median": round(float(np.median(a)), 2), "std": round(float(a.std()), 2),
    }  # fmt: skip


YAW_BINS: tuple[float, ...] = (-90, -60, -45, -30, -15, 0, 15, 30, 45, 60, 90)


def summarize(records: list[dict[str, Any]], per_input: dict[str, int]) -> dict[str, Any]:
    """The ``summary`` block: count, per-input counts, pose spread, face size and sharpness."""
    poses = [r["pose"] for r in records if r.get("pose")]
    yaw = [p["yaw"] for p in poses]
    hist, _ = np.histogram(np.clip(yaw, -90, 90), bins=YAW_BINS) if yaw else (np.zeros(10, int), None)
    return {
        "count": len(records),
        "per_input": dict(per_input),
        "yaw": _stats(yaw),
        "pitch": _stats([p["pitch"] for p in poses]),
        "roll": _stats([p["roll"] for p in poses]),
        "face_px": _stats([r["face_px"] for r in records]),
        "blur": _stats([r["blur"] for r in records]),
        "yaw_histogram": {"edges": list(YAW_BINS), "counts": [int(c) for c in hist]},
    }


def _summary_text(doc: dict[str, Any], report_line: str) -> str:
    s = doc["summary"]
    lines = [
        f"masquerade faceset (format {FORMAT} v{VERSION}), {doc['created']}, {doc['tool']}",
        f"{s['count']} faces, {doc['size']}x{doc['size']} px, template {doc['template']}",
        report_line,
        "",
        "inputs:",
        *[f"  {src}: {n} faces" for src, n in s["per_input"].items()],
        "",
        "rejected:",
        *[f"  {k.replace('_', ' ')}: {n}" for k, n in doc["rejected"].items()],
        "",
    ]
    for name, unit in (("yaw", "°"), ("pitch", "°"), ("roll", "°"), ("face_px", " px"), ("blur", "")):
        st = s.get(name)
        if st:
            lines.append(
                f"{name:8s} min {st['min']:8.1f}{unit}  median {st['median']:8.1f}{unit}  "
                f"max {st['max']:8.1f}{unit}  std {st['std']:6.1f}"
            )
    yh = s["yaw_histogram"]
    lines += ["", "yaw histogram:"]
    edges = yh["edges"]
    for i, c in enumerate(yh["counts"]):
        lines.append(f"  {edges[i]:+4.0f}..{edges[i + 1]:+4.0f}° {c:6d} {'#' * min(60, c)}")
    lines += ["", "settings:", *[f"  {k}: {v}" for k, v in doc["settings"].items()]]
    return "\n".join(lines) + "\n"


def _pose_plot(records: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    poses = [r["pose"] for r in records if r.get("pose")]
    yaw = [p["yaw"] for p in poses]
    pitch = [p["pitch"] for p in poses]
    ax.scatter(yaw, pitch, s=8, alpha=0.5, color="tab:blue", edgecolors="none")
    lim_x = max(45.0, *(abs(v) + 5 for v in yaw)) if yaw else 45.0
    lim_y = max(30.0, *(abs(v) + 5 for v in pitch)) if pitch else 30.0
    ax.set_xlim(-lim_x, lim_x)
    ax.set_ylim(-lim_y, lim_y)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel("yaw (°, > 0: turned to the image's right)")
    ax.set_ylabel("pitch (°, > 0: looking up)")
    ax.set_title(f"faceset pose spread ({len(records)} faces)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.write_bytes(buf.getvalue())


def reference_embedding(analyzer: Any, path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS):
    """The identity embedding of the largest face in a reference photo (NoFaceError without one)."""
    img = load_image(path, max_pixels=max_pixels)
    found = analyzer.get(img.rgb, identity=True)
    if not found:
        raise NoFaceError(f"no face found in the reference photo {path}")
    return found[0].embedding


def extract_faceset(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: ExtractOptions | None = None,
    analyzer: Any = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> ExtractReport:
    """Extract a faceset from videos, image folders and images into the new folder ``out_dir``.

    The folder is built beside ``out_dir`` under a temporary name and renamed into place at the end,
    so a failure or an interrupt leaves nothing; an existing non-empty ``out_dir`` is refused unless
    ``force`` (then it is replaced). No usable face at all raises :class:`NoFaceError` and writes
    nothing. ``analyzer`` defaults to a new mediapipe :class:`~masquerade.analysis.analyzer.FaceAnalyzer`;
    ``progress(done, total_or_None, kept)`` is called after each frame or image.
    """
    opts = options or ExtractOptions()
    t0 = time.perf_counter()
    plans = plan_inputs(inputs, opts)
    out = check_output_folder(out_dir, [p.path for p in plans], force)
    own = analyzer is None
    if own:
        from ..analysis.analyzer import FaceAnalyzer

        analyzer = FaceAnalyzer(identity=False)
    totals = [p.total for p in plans]
    total = sum(t for t in totals if t) if all(totals) else None
    state = _State()
    tmp = temp_beside(out, folder=True)
    try:
        with removed_on_error(tmp):
            faces_dir = tmp / "faces"
            faces_dir.mkdir()
            for plan in plans:
                key = str(plan.path)
                state.per_input.setdefault(key, 0)
                for rgb, source, frame, t in _iter_input(plan, opts, state):
                    _process_frame(rgb, source, frame, t, key, opts, analyzer, state, faces_dir)
                    state.done += 1
                    if progress is not None:
                        progress(state.done, total, len(state.records))
                    if opts.max_faces is not None and len(state.records) >= opts.max_faces:
                        break
                if opts.max_faces is not None and len(state.records) >= opts.max_faces:
                    break
            if not state.records:
                rej = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in state.rejected.items() if n)
                names = ", ".join(str(p.path) for p in plans)
                raise NoFaceError(f"no usable face in {names}" + (f" ({rej})" if rej else ""))
            from .. import __version__

            summary = summarize(state.records, state.per_input)
            summary["frames"] = state.frames
            summary["images"] = state.images
            summary["unreadable"] = state.unreadable
            summary["seconds"] = round(time.perf_counter() - t0, 2)
            report = ExtractReport(
                out_dir=out, kept=len(state.records), rejected=dict(state.rejected), frames=state.frames,
                images=state.images, unreadable=state.unreadable, summary=summary,
                seconds=time.perf_counter() - t0,
            )  # fmt: skip
            doc = {
                "format": FORMAT,
                "version": VERSION,
                "size": opts.size,
                "template": TEMPLATE,
                "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "tool": f"masquerade {__version__}",
                "settings": opts.settings(),
                "sources": [str(p.path) for p in plans],
                "faces": state.records,
                "summary": summary,
                "rejected": dict(state.rejected),
            }
            (tmp / "faceset.json").write_text(dump_index(doc), "utf-8")
            (tmp / "summary.txt").write_text(_summary_text(doc, report.line()), "utf-8")
            _pose_plot(state.records, tmp / "pose.png")
            commit_folder(tmp, out)
    finally:
        if own:
            analyzer.close()
    report.seconds = time.perf_counter() - t0
    log.info("%s → %s", report.line(), out)
    return report

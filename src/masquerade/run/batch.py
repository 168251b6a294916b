"""Batch swapping: every photo and video of a folder, the same source(s) put on each, one output per
input in an output folder, and a report of what became of every file.

* :func:`plan_batch` lists the inputs (photos and videos by extension; ``recursive`` walks
  subfolders, mirrored in the output folder) and names their outputs: the same name, a video in a
  container masquerade cannot write (``.avi`` …) becomes ``.mp4``. Inputs whose output (or C2PA
  sidecar) already exists are ``skipped`` unless ``force`` — a stopped batch run again carries on.
* :class:`BatchWorker` holds the face models and the swapper (loaded once) and swaps one file at a
  time; whatever goes wrong with one file (unreadable, no face, …) becomes that file's ``failed``
  result with a one-line reason, and the worker goes on with the next. A file swapped only in part
  (an animation's first frame, a video with fewer frames than it declares) is ``done`` with a one-line
  ``warning``. A FIFO or a device named like a photo or video is listed too, and fails (it is never
  opened).
* :func:`swap_batch` runs the plan through a ``runner`` (default: this process, one file after the
  other; :func:`masquerade.run.ray_backend.ray_batch_runner` spreads the files over Ray workers) and
  writes the report (JSON) atomically.

Each output is written atomically with provenance as ``masquerade swap`` writes it (watermark and a
signed C2PA manifest, unless turned off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import InputError, MasqueradeError, OutputError
from ..files import atomic_write_bytes
from ..imageio import IMAGE_EXTENSIONS, frames_note, load_image
from ..job import SwapJob
from ..pipeline import FaceSwapper
from ..video.probe import INPUT_VIDEO_EXTENSIONS
from ..video.transcode import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

Kind = Literal["image", "video"]
Status = Literal["done", "failed", "skipped"]
REPORT_VERSION = 1


@dataclass(frozen=True)
class BatchItem:
    index: int
    input: Path
    output: Path
    kind: Kind


@dataclass
class BatchResult:
    """What became of one input."""

    input: str
    output: str
    kind: Kind
    status: Status
    error: str | None = None  # one line, for failed and skipped files
    warning: str | None = None  # one line, for a file swapped only in part (first frame, truncated video)
    faces: int = 0  # faces swapped (photos: in the photo; videos: over all frames)
    frames: int = 0  # videos: frames written
    frames_swapped: int = 0  # videos: frames in which a face was swapped
    seconds: float = 0.0
    content_id: str | None = None  # provenance content id of the output
    worker: str | None = None  # where it ran (host:pid)


@dataclass
class BatchReport:
    target: str
    output: str
    results: list[BatchResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files in the folder that are not photos or videos
    seconds: float = 0.0
    report_path: str | None = None

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def warned(self) -> list[BatchResult]:
        return [r for r in self.results if r.warning]

    @property
    def failed(self) -> list[BatchResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        n = len(self.results)
        parts = [f"{self.count('done')} of {n} file{'s' if n != 1 else ''} swapped"]
        if self.count("failed"):
            parts.append(f"{self.count('failed')} failed")
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} skipped (output exists)")
        if self.warned:
            parts.append(f"{len(self.warned)} with a warning")
        if self.ignored:
            parts.append(f"{len(self.ignored)} other file{'s' if len(self.ignored) != 1 else ''} ignored")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"

    def to_json(self) -> str:
        d = {"version": REPORT_VERSION, **asdict(self)}
        d["done"], d["failed"], d["skipped"] = self.count("done"), self.count("failed"), self.count("skipped")
        d["warnings"] = len(self.warned)
        return json.dumps(d, indent=2) + "\n"


def _kind(p: Path) -> Kind | None:
    ext = p.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in INPUT_VIDEO_EXTENSIONS:
        return "video"
    return None


def _walk(folder: Path, recursive: bool, skip: Path | None) -> list[Path]:
    """Files under ``folder`` in a stable order (hidden files and folders and ``skip`` left out)."""
    out: list[Path] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda q: q.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    for q in entries:
        if q.name.startswith("."):
            continue
        if q.is_dir():
            if recursive and (skip is None or q.resolve() != skip):
                out.extend(_walk(q, recursive, skip))
        elif q.exists():  # a regular file, or a FIFO or a device: listed, and refused if it is media
            out.append(q)
    return out


def check_batch_folders(target: Path, output: Path, recursive: bool) -> None:
    """One-line errors for a target folder / output folder pair that cannot work."""
    if not target.is_dir():
        raise InputError(f"{target}: no such folder")
    if output.suffix.lower() in IMAGE_EXTENSIONS or output.suffix.lower() in VIDEO_EXTENSIONS:
        raise OutputError(
            f"{target} is a directory (a batch), so -o/--output must be a folder, not the file {output}"
        )
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: is a file; with a folder as --target, -o/--output is a folder")
    t, o = target.resolve(), output.resolve()
    if o == t:
        raise OutputError(f"{output}: the output folder is the input folder; choose another one")
    if recursive and t in o.parents:
        raise OutputError(f"{output}: with --recursive the output folder cannot be inside the input folder")


Plan = tuple[list[BatchItem], list[BatchResult], list[str]]


def plan_batch(
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    recursive: bool = False,
    force: bool = False,
    protect: Sequence[Path] = (),
    sidecar_for: Callable[[Path], Path | None] | None = None,
) -> Plan:
    """(items to swap, skipped results, ignored files). ``protect``: inputs never to be written over
    (the source photos); ``sidecar_for(output)``: the C2PA sidecar an output would get, checked too."""
    tdir, odir = Path(target), Path(output)
    check_batch_folders(tdir, odir, recursive)
    files = _walk(tdir, recursive, odir.resolve() if odir.exists() else None)
    items: list[BatchItem] = []
    skipped: list[BatchResult] = []
    protected = {p.resolve() for p in protect}
    media = [(f, k) for f in files if (k := _kind(f)) is not None]
    ignored = [str(f) for f in files if _kind(f) is None]
    taken = {(odir / f.relative_to(tdir)).resolve() for f, _ in media}  # names kept as they are
    for f, kind in media:
        dest = odir / f.relative_to(tdir)
        if kind == "video" and dest.suffix.lower() not in VIDEO_EXTENSIONS:
            dest = dest.with_suffix(".mp4")  # a container masquerade cannot write
            if dest.resolve() in taken:  # clip.avi beside clip.mp4 → clip.avi.mp4
                dest = dest.with_name(f"{f.name}.mp4")
            taken.add(dest.resolve())
        if dest.resolve() in protected or dest.resolve() == f.resolve():
            raise OutputError(f"{dest}: output would overwrite the input; choose another output folder")
        side = sidecar_for(dest) if sidecar_for is not None else None
        existing = [p for p in (dest, side) if p is not None and p.exists()]
        if existing and not force:
            skipped.append(
                BatchResult(str(f), str(dest), kind, "skipped", f"{existing[0]} exists (--force replaces it)")
            )
            continue
        if dest.is_dir():
            raise OutputError(f"{dest}: is a folder")
        items.append(BatchItem(len(items), f, dest, kind))
    if not items and not skipped:
        exts = " ".join(sorted({*IMAGE_EXTENSIONS, *INPUT_VIDEO_EXTENSIONS}))
        where = " or its subfolders" if recursive else ""
        raise InputError(f"{tdir}: no photo or video in the folder{where} ({exts})")
    return items, skipped, ignored


def with_signing(job: SwapJob) -> SwapJob:
    """``job`` with the signing credentials resolved here (the environment's, else the local key, made
    now if needed), so that every worker signs with the same ones and none makes a key."""
    if not job.provenance.enabled or job.provenance.signing is not None:
        return job
    from ..provenance.credentials import resolve_signing_config

    prov = dataclasses.replace(job.provenance, signing=resolve_signing_config(None))
    return dataclasses.replace(job, provenance=prov)


class BatchWorker:
    """Swaps batch items one at a time with models loaded once; never raises for a bad file."""

    def __init__(
        self,
        job: SwapJob,
        face_swapper: FaceSwapper | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        """``face_swapper``: a :class:`~masquerade.pipeline.FaceSwapper` for the job's options to use
        (its analyzer and model are not loaded again, nor closed here). ``on_frame()`` is called after
        each frame of a video and may raise to stop it (its temporary file is removed; the file is
        then failed)."""
        from ..analysis.analyzer import FaceAnalyzer

        self.job, self.on_frame = job, on_frame
        self._own = face_swapper is None
        self.swapper = face_swapper or FaceSwapper(job.options, analyzer=FaceAnalyzer(identity=False))
        self.analyzer = self.swapper.analyzer
        self.name = f"{os.uname().nodename}:{os.getpid()}"

    def close(self) -> None:
        if self._own:
            self.analyzer.close()

    def __call__(self, item: BatchItem) -> BatchResult:
        res = BatchResult(str(item.input), str(item.output), item.kind, "done", worker=self.name)
        t0 = time.perf_counter()
        s = self.job
        stamp = s.stamp()
        try:
            item.output.parent.mkdir(parents=True, exist_ok=True)
            if item.kind == "image":
                img = load_image(item.input, max_pixels=s.max_pixels)
                out, report = self.swapper.run(list(s.sources), img.rgb)
                stamp.write_image(item.output, out, alpha=img.alpha, quality=s.quality)
                res.faces = len(report.targets)
                res.warning = frames_note(img)
            else:
                from ..video.probe import short_read_note
                from ..video.swap import swap_video

                # frames over s.max_pixels are refused by the transcoder before any is decoded
                check = self.on_frame
                vr = swap_video(
                    s, item.input, item.output, self.analyzer, stamp=stamp, swapper=self.swapper.swapper,
                    progress=(lambda _n, _t: check()) if check is not None else None,
                )  # fmt: skip
                res.faces, res.frames_swapped = vr.faces_swapped, vr.frames_swapped
                res.frames = vr.transcode.frames_out if vr.transcode else vr.frames
                declared = vr.transcode.frames_declared if vr.transcode else 0
                res.warning = short_read_note(item.input, declared, vr.frames)
            res.content_id = stamp.record.content_id
        except MasqueradeError as exc:
            res.status, res.error = "failed", _one_line(str(exc))
        except Exception as exc:  # a bad file must not stop the batch; say what happened in one line
            log.debug("unexpected error on %s", item.input, exc_info=True)
            res.status, res.error = "failed", _one_line(f"unexpected {type(exc).__name__}: {exc}")
        res.seconds = round(time.perf_counter() - t0, 3)
        log.info("%s: %s%s", item.input, res.status, f" ({res.error})" if res.error else "")
        return res


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"


Progress = Callable[[BatchResult], None]
BatchRunner = Callable[[list[BatchItem], Progress], list[BatchResult]]


def local_batch_runner(job: SwapJob, face_swapper: FaceSwapper | None = None) -> BatchRunner:
    """A :data:`BatchRunner` that swaps the files in this process, one after the other (with
    ``face_swapper``, a FaceSwapper already made for the options, if given)."""

    def run(items: list[BatchItem], progress: Progress) -> list[BatchResult]:
        worker = BatchWorker(job, face_swapper)
        out = []
        try:
            for item in items:
                r = worker(item)
                progress(r)
                out.append(r)
        finally:
            worker.close()
        return out

    return run


def _missing_folders(folders: Iterable[Path]) -> list[Path]:
    """The folders among ``folders`` and their parents that do not exist yet, deepest first."""
    missing: set[Path] = set()
    for folder in folders:
        for d in (folder, *folder.parents):
            if d in missing or d.exists() or d.is_symlink():
                break
            missing.add(d)
    return sorted(missing, key=lambda d: len(d.parts), reverse=True)


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove those of ``folders`` (deepest first) that are empty."""
    for d in folders:
        with contextlib.suppress(OSError):
            d.rmdir()


def write_batch_report(report: BatchReport, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    report.report_path = str(p)
    atomic_write_bytes(p, report.to_json().encode())
    return p


def swap_batch(
    job: SwapJob,
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    recursive: bool = False,
    force: bool = False,
    runner: BatchRunner | None = None,
    progress: Progress | None = None,
    report_path: str | os.PathLike[str] | None = None,
    protect: Sequence[Path] = (),
    plan: Plan | None = None,
) -> BatchReport:
    """Swap every photo and video in the folder ``target`` into the folder ``output`` (created), each
    as the :class:`~masquerade.job.SwapJob` says. Returns the report, also written as JSON to
    ``report_path`` (default ``output/batch-report.json``); failed files are in it, with their
    reasons, and do not stop the batch. ``progress(result)`` is called as each file finishes (skipped
    ones first). ``plan``: what :func:`plan_batch` returned for these folders and options, when the
    caller has it already."""
    st = with_signing(job)
    t0 = time.perf_counter()
    if plan is None:
        plan = plan_batch(target, output, recursive, force, protect, st.stamp().sidecar_for)
    items, skipped, ignored = plan
    odir = Path(output)  # made by the first output (or the report): nothing if the runner cannot start
    rpath = Path(report_path) if report_path is not None else odir / "batch-report.json"
    report = BatchReport(str(target), str(odir), ignored=ignored)
    for r in skipped:
        if progress is not None:
            progress(r)
    run = runner or local_batch_runner(st)
    made = _missing_folders(item.output.parent for item in items)
    try:
        done = run(items, progress or (lambda _r: None)) if items else []
    except BaseException:  # stopped (or broken) mid-way: the finished outputs stay, no empty folder
        _remove_empty(made)
        raise
    report.results = sorted([*done, *skipped], key=lambda r: r.input)
    report.seconds = round(time.perf_counter() - t0, 3)
    write_batch_report(report, rpath)
    return report

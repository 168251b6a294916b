"""Persistent uploads and jobs of ``masquerade serve``: one SQLite file and one folder per item.

Layout of the data folder::

    DATA/masquerade.sqlite3        the tables ``uploads`` and ``jobs``
    DATA/uploads/<id>/input.<ext>  an uploaded file (the name the client gave is only metadata)
    DATA/uploads/<id>/face-<k>.jpg face thumbnails, faces.npy their identity embeddings
    DATA/jobs/<id>/result.<ext>    a finished job's output
    DATA/jobs/<id>/verify.json     what ``masquerade verify`` says of it (made when first asked for)
    DATA/access-token              the server's access token (mode 0600, see .security)

Ids are 128-bit random hex strings: a result is reachable only by whoever holds its job id. Every
path is built from an id checked against :data:`ID_PATTERN`, never from a client's file name.

Job states: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; ``interrupted`` marks
jobs that were queued or running when the server stopped (set when it starts again,
:meth:`JobStore.recover`). A running job records the worker process it was handed to (``worker``, its
pid): only that worker may write the job's progress and outcome. Several processes use the file at once
(the server and its workers): WAL mode, a short busy timeout, one connection per operation.

A video job's worker records how many frames it has swapped (``frames``, a JSON column: the count, the
frames to do, and when it counted them and its first count): :meth:`Job.describe` shows them and an
estimate of the seconds left (``eta``) from the rate since its first frames.

A folder holds finished files only: a job stopped by the server (cancelled, over its time limit, its
worker ended, the server shutting down) has its folder emptied of what its worker was writing
(:meth:`JobStore.clear_job`), and a server starting removes what a killed one left
(:meth:`JobStore.clean_stale`): temporaries, uploads cut short, outputs of jobs that did not finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
FINAL_STATES = ("done", "failed", "cancelled", "interrupted")
STATES = ("queued", "running", *FINAL_STATES)
VERIFY_FILE = "verify.json"  # a done job's cached ``masquerade verify`` document, kept with its result
ETA_AFTER = 1.0  # seconds of frames counted before a job's time left is estimated
_ADDED_COLUMNS = (("worker", "INTEGER"), ("frames", "TEXT"))  # missing in the stores of older versions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    ext TEXT NOT NULL, meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, status TEXT NOT NULL, progress REAL NOT NULL,
    message TEXT NOT NULL, spec TEXT NOT NULL, result TEXT, error TEXT, started REAL, finished REAL,
    cancel INTEGER NOT NULL DEFAULT 0, worker INTEGER, frames TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
"""


def new_id() -> str:
    return secrets.token_hex(16)


def valid_id(text: str) -> bool:
    return bool(ID_PATTERN.match(text))


@dataclass(frozen=True)
class Upload:
    id: str
    created: float
    kind: str  # image | video
    name: str  # the client's file name (metadata only)
    ext: str  # ".jpg", ".mp4", … (from the content, not the name)
    meta: dict[str, Any]  # width, height, duration, faces: [{index, box, score}]

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, **self.meta}


@dataclass(frozen=True)
class Job:
    id: str
    created: float
    status: str
    progress: float  # 0 … 1
    message: str
    spec: dict[str, Any]
    result: str | None  # file name in the job's folder
    error: str | None
    started: float | None
    finished: float | None
    cancel: bool
    worker: int | None = None  # pid of the worker process it was handed to (not shown by the API)
    frames: dict[str, Any] | None = None  # a video job's frame count: {done, total, at, t0, n0}

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def download_name(self) -> str:
        """The name its result is downloaded under."""
        return f"masquerade-{self.id[:8]}{Path(self.result or '').suffix}"

    @property
    def swapped_name(self) -> str:
        """``<target name stem>-swapped<ext>``: its result named after the uploaded target (only
        letters, digits, ``._-`` and spaces kept), for the results' zip."""
        stem = re.sub(r"[^\w.\- ]+", "_", Path(str(self.spec.get("target_name") or "")).stem)
        stem = stem.strip(" ._")[:100] or f"masquerade-{self.id[:8]}"
        return f"{stem}-swapped{Path(self.result or '').suffix}"

    def frame_counts(self, now: float | None = None) -> tuple[int | None, int | None, float | None]:
        """(frames done, frames to do, seconds left) of a video job; Nones for a photo. The frames to do
        are those of its trimmed range (an estimate from the target's frame rate until it is done, then
        the frames it swapped). Seconds left: estimated from the rate since its first frames were
        counted — None until :data:`ETA_AFTER` seconds of them, or when it is not running (0 done)."""
        if self.spec.get("kind") != "video":
            return None, None, None
        f = self.frames or {}
        done = int(f.get("done", 0))
        total = f.get("total", self.spec.get("frames_total"))
        total = None if total is None else int(total)
        if self.status == "done":
            return (done if f else total), total, 0.0
        if self.status != "running" or total is None or "at" not in f:
            return done, total, None
        at, t0, n0 = float(f["at"]), float(f.get("t0", f["at"])), int(f.get("n0", 0))
        if at - t0 < ETA_AFTER or done <= n0:
            return done, total, None
        now = time.time() if now is None else now
        left = (total - done) * (at - t0) / (done - n0) - max(0.0, now - at)
        return done, total, round(max(0.0, left), 1)

    def describe(self, now: float | None = None) -> dict[str, Any]:
        frames_done, frames_total, eta = self.frame_counts(now)
        d: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "kind": self.spec.get("kind"),
            "target_name": self.spec.get("target_name"),
            "frames_done": frames_done,
            "frames_total": frames_total,
            "eta": eta,
            "options": self.spec.get("public", {}),
        }
        if self.error:
            d["error"] = self.error
        if self.status == "done" and self.result:
            d["result_url"] = f"/api/jobs/{self.id}/result"
        return d


class JobStore:
    """The SQLite file and the item folders under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.db = self.root / "masquerade.sqlite3"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "uploads").mkdir(exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        with self._conn() as c:
            c.executescript(_SCHEMA)
            have = {row[1] for row in c.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:  # a store of an older version
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it meanwhile
                        c.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        c = sqlite3.connect(self.db, timeout=30.0, isolation_level=None)
        try:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA busy_timeout=30000")
            yield c
        finally:
            c.close()

    # -- folders ----------------------------------------------------------------------------------
    def upload_dir(self, upload_id: str) -> Path:
        if not valid_id(upload_id):
            raise KeyError(upload_id)
        return self.root / "uploads" / upload_id

    def job_dir(self, job_id: str) -> Path:
        if not valid_id(job_id):
            raise KeyError(job_id)
        return self.root / "jobs" / job_id

    # -- uploads ----------------------------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        with self._conn() as c:
            c.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                (upload.id, upload.created, upload.kind, upload.name, upload.ext, json.dumps(upload.meta)),
            )

    def upload(self, upload_id: str) -> Upload | None:
        if not valid_id(upload_id):
            return None
        with self._conn() as c:
            row = c.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            return None
        return Upload(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))

    def upload_path(self, upload: Upload) -> Path:
        return self.upload_dir(upload.id) / f"input{upload.ext}"

    # -- jobs -------------------------------------------------------------------------------------
    def add_job(self, spec: dict[str, Any]) -> Job:
        job_id = new_id()
        now = time.time()
        with self._conn() as c:
            c.execute(
                "INSERT INTO jobs (id, created, status, progress, message, spec) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, now, "queued", 0.0, "queued", json.dumps(spec)),
            )
        self.job_dir(job_id).mkdir(parents=True, exist_ok=True)
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, job_id: str) -> Job | None:
        if not valid_id(job_id):
            return None
        with self._conn() as c:
            row = c.execute(
                "SELECT id, created, status, progress, message, spec, result, error, started, finished, "
                "cancel, worker, frames FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return Job(
            row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7], row[8], row[9],
            bool(row[10]), row[11], None if row[12] is None else json.loads(row[12]),
        )  # fmt: skip

    def queued(self) -> list[str]:
        """Ids of the queued jobs, oldest first."""
        with self._conn() as c:
            rows = c.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created").fetchall()
        return [r[0] for r in rows]

    def count(self, *states: str) -> int:
        marks = ", ".join("?" for _ in states)
        with self._conn() as c:
            return int(
                c.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", states).fetchone()[0]
            )

    def start(self, job_id: str, worker: int | None = None) -> bool:
        """queued → running, handed to the process ``worker`` (a pid); False when the job is no longer
        queued (e.g. cancelled meanwhile)."""
        with self._conn() as c:
            cur = c.execute(
                "UPDATE jobs SET status = 'running', started = ?, message = 'starting', worker = ? "
                "WHERE id = ? AND status = 'queued'",
                (time.time(), worker, job_id),
            )
            return cur.rowcount == 1

    def progress(
        self, job_id: str, fraction: float, message: str, *, worker: int | None = None,
        frames: tuple[int, int] | None = None,
    ) -> None:  # fmt: skip
        """A running job's progress (with ``worker``: only while the job is that worker's); ``frames``:
        a video job's (frames done, frames to do), counted now (the first count's time and number are
        kept: the rate the time left is estimated from)."""
        fraction = max(0.0, min(1.0, float(fraction)))
        with self._conn() as c:
            if frames is None:
                c.execute(
                    "UPDATE jobs SET progress = ?, message = ? WHERE id = ? AND status = 'running' "
                    "AND (? IS NULL OR worker = ?)",
                    (fraction, message, job_id, worker, worker),
                )
                return
            row = c.execute("SELECT frames FROM jobs WHERE id = ?", (job_id,)).fetchone()
            now, (done, total) = time.time(), frames  # only this job's worker writes its frames
            first = json.loads(row[0]) if row is not None and row[0] is not None else {}
            counts = {"done": int(done), "total": int(total), "at": now, "t0": first.get("t0", now),
                      "n0": first.get("n0", int(done))}  # fmt: skip
            c.execute(
                "UPDATE jobs SET progress = ?, message = ?, frames = ? WHERE id = ? AND status = 'running' "
                "AND (? IS NULL OR worker = ?)",
                (fraction, message, json.dumps(counts), job_id, worker, worker),
            )

    def finish(
        self, job_id: str, status: str, *, result: str | None = None, error: str | None = None,
        worker: int | None = None, note: str | None = None,
    ) -> None:  # fmt: skip
        """Move a queued or running job to a final state (a final job is left as it is; with ``worker``,
        only a running job of that worker). ``note``: its message instead of the state's name (a done
        job's warnings)."""
        assert status in FINAL_STATES
        message = {"done": "done", "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted"}
        if note:
            message = {**message, status: note}
        with self._conn() as c:
            c.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished = ?, message = ?, "
                "progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END "
                "WHERE id = ? AND status IN ('queued', 'running') "
                "AND (? IS NULL OR (status = 'running' AND worker = ?))",
                (status, result, error, time.time(), message[status], status, job_id, worker, worker),
            )

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel: a queued job at once, a running one by the scheduler (which stops its process)."""
        with self._conn() as c:
            c.execute(
                "UPDATE jobs SET cancel = 1 WHERE id = ? AND status IN ('queued', 'running')", (job_id,)
            )
        job = self.job(job_id)
        if job is not None and job.status == "queued":
            self.finish(job_id, "cancelled", error="cancelled before it started")
            job = self.job(job_id)
        return job

    def recover(self) -> int:
        """Mark the jobs left queued or running by a stopped server as ``interrupted``; their count."""
        with self._conn() as c:
            cur = c.execute(
                "UPDATE jobs SET status = 'interrupted', finished = ?, message = 'interrupted', "
                "error = 'the server stopped before this job finished; submit it again' "
                "WHERE status IN ('queued', 'running')",
                (time.time(),),
            )
            return cur.rowcount

    # -- clean-up ---------------------------------------------------------------------------------
    def clear_job(self, job_id: str) -> int:
        """Empty the folder of a job that was stopped: everything but the result of a done job (its
        worker's temporaries, an output it had not recorded); how many entries were removed."""
        job = self.job(job_id)
        keep = (job.result, VERIFY_FILE) if job is not None and job.status == "done" else ()
        return _remove_all(self.job_dir(job_id), keep)

    def result_path(self, job: Job) -> Path | None:
        """A done job's result file; None when it is not done or the file is gone."""
        if job.status != "done" or not job.result:
            return None
        path = self.job_dir(job.id) / Path(job.result).name
        return path if path.is_file() else None

    def verification(self, job: Job) -> dict[str, Any]:
        """What ``masquerade verify --json`` says of a done job's result (plus ``code``, its exit
        status), the file named by its download name; cached in the job's folder (a result does not
        change), so made once. KeyError when there is no result file; a one-line
        :class:`~masquerade.errors.InputError` when it cannot be read at all."""
        from ..files import atomic_write_bytes
        from ..provenance.findings import inspect_file

        path = self.result_path(job)
        if path is None:
            raise KeyError(job.id)
        cached = self.job_dir(job.id) / VERIFY_FILE
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(cached.read_text(encoding="utf-8"))
            if isinstance(doc, dict):
                return doc
        found = inspect_file(path)
        doc = {**found.to_dict(shown_as=job.download_name), "code": found.code}
        with contextlib.suppress(OSError):  # not cached: made again next time
            atomic_write_bytes(cached, json.dumps(doc).encode())
        return doc

    def zip_results(self, jobs: Sequence[Job]) -> tuple[Path, list[str]]:
        """A zip (stored, not deflated: results are compressed already) of the done jobs' results,
        each named :attr:`Job.swapped_name`, made unique (``-2``, ``-3``, … before the extension; case
        aside); written to a temporary file in the data folder (which the caller removes, as does the
        next start: :meth:`clean_stale`), read and written a block at a time. Its path and the names."""
        fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".zip.part", dir=self.root)
        path, names, taken = Path(tmp), [], set()
        try:
            with (
                os.fdopen(fd, "wb") as fh,
                zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
            ):
                for job in jobs:
                    src = self.result_path(job)
                    if src is None:
                        continue
                    stem, ext = os.path.splitext(job.swapped_name)
                    name, k = stem + ext, 1
                    while name.casefold() in taken:
                        k += 1
                        name = f"{stem}-{k}{ext}"
                    taken.add(name.casefold())
                    zf.write(src, name)
                    names.append(name)
        except BaseException:
            _remove(path)
            raise
        return path, names

    def clean_stale(self) -> int:
        """What a server stopped outright (SIGKILL, a crash) left, removed when the next one starts
        (after :meth:`recover`): temporaries in the data folder, uploads without a record (cut short)
        and temporaries of recorded ones, and in each job's folder all but a done job's result. Only
        entries named by an id of ours are looked at; how many were removed."""
        removed = 0
        for entry in _entries(self.root):
            if entry.name.startswith(".") and ".part" in entry.name:
                removed += _remove(entry)
        with self._conn() as c:
            recorded = {row[0] for row in c.execute("SELECT id FROM uploads")}
            states = dict(c.execute("SELECT id, status FROM jobs").fetchall())
            results = {
                job_id: (result, VERIFY_FILE)
                for job_id, result in c.execute("SELECT id, result FROM jobs WHERE status = 'done'")
            }
        for folder in _entries(self.root / "uploads"):
            if not valid_id(folder.name) or not folder.is_dir() or folder.is_symlink():
                continue
            if folder.name not in recorded:
                removed += _remove(folder)
                continue
            for entry in _entries(folder):
                if entry.name.startswith(".") or entry.name.endswith(".part"):
                    removed += _remove(entry)
        for folder in _entries(self.root / "jobs"):
            if not valid_id(folder.name) or not folder.is_dir() or folder.is_symlink():
                continue
            if folder.name not in states:
                removed += _remove(folder)
            elif states[folder.name] not in ("queued", "running"):
                removed += _remove_all(folder, results.get(folder.name, ()))
        return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _remove(path: Path) -> int:
    """Remove a file, link or folder (its contents too); 1 if it is gone, 0 if it could not be."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:  # gone already, or not ours to remove
        return 0
    return 1


def _remove_all(folder: Path, keep: Sequence[str | None]) -> int:
    return sum(_remove(e) for e in _entries(folder) if e.name not in keep)

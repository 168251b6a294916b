"""Running the jobs of ``masquerade serve``: a scheduler thread and one process per job.

Each job runs in its own process (``spawn``), so it can be stopped at any moment — cancelled by its
client or past the per-job time limit — without leaving the server in a half state, and a crash in a
native library fails one job, not the server. At most ``concurrency`` jobs run at once; the others
wait in the queue (its length is bounded by the API, see :mod:`.app`). The job process writes its
progress and outcome to the store itself; the scheduler only starts, watches and stops processes.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store import JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLimits:
    concurrency: int = 1  # jobs running at once
    time_limit: float = 900.0  # seconds a job may run
    poll: float = 0.2  # seconds between scheduler passes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_job(root: str, job_id: str) -> None:
    """The body of a job process: swap, write the result, record the outcome in the store."""
    logging.basicConfig(level=logging.WARNING)
    store = JobStore(root)
    job = store.job(job_id)
    if job is None:
        return
    try:
        _swap(store, job_id, job.spec)
    except Exception as exc:  # every failure becomes the job's one-line error
        from ..errors import MasqueradeError

        if isinstance(exc, MasqueradeError):
            store.finish(job_id, "failed", error=_first_line(exc))
        else:
            log.exception("job %s failed", job_id)
            store.finish(
                job_id, "failed", error=f"unexpected error: {type(exc).__name__}: {_first_line(exc)}"
            )


def _swap(store: JobStore, job_id: str, spec: dict[str, Any]) -> None:
    from ..analysis.analyzer import FaceAnalyzer
    from ..imageio import load_image
    from ..job import prepare_job
    from .requests import JobRequest, JobSettings, swap_request

    try:
        settings = JobSettings(**spec.get("settings", {}))
        request, target = swap_request(store, JobRequest(**spec["public"]), settings)
    except LookupError:
        store.finish(job_id, "failed", error="an uploaded file of this job is gone")
        return
    out = store.job_dir(job_id) / spec["result_name"]
    store.progress(job_id, 0.02, "loading models")
    with FaceAnalyzer(identity=False) as fa:
        job, fs = prepare_job(request, fa)
        assert fs is not None
        if spec["kind"] == "image":
            store.progress(job_id, 0.3, "swapping")
            tgt = load_image(store.upload_path(target), max_pixels=job.max_pixels)
            img, _ = fs.run(list(job.sources), tgt.rgb)
            store.progress(job_id, 0.9, "writing")
            job.stamp().write_image(out, img, alpha=tgt.alpha, quality=job.quality)
        else:
            from ..video.swap import swap_video

            total = max(1, int(target.meta.get("frames") or 0))
            last = [0.0]

            def progress(done: int, _t: float) -> None:
                now = time.monotonic()
                if now - last[0] >= 0.5:
                    last[0] = now
                    store.progress(job_id, 0.05 + 0.9 * min(1.0, done / total), f"frame {done} of {total}")

            swap_video(job, store.upload_path(target), out, fa, progress=progress, swapper=fs.swapper)
    store.finish(job_id, "done", result=out.name)


@dataclass
class _Running:
    process: Any
    started: float


@dataclass
class Scheduler:
    """Starts queued jobs (oldest first) up to ``limits.concurrency``, stops cancelled and overdue ones."""

    store: JobStore
    limits: RunLimits = field(default_factory=RunLimits)

    def __post_init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="masquerade-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (a job was added or cancelled)."""
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception:  # the scheduler must outlive any one bad pass
                log.exception("scheduler pass failed")
            self._wake.wait(self.limits.poll)
            self._wake.clear()

    def _pass(self) -> None:
        now = time.monotonic()
        for job_id, run in list(self._running.items()):
            job = self.store.job(job_id)
            p = run.process
            if not p.is_alive():
                p.join()
                if job is not None and not job.final:
                    self.store.finish(
                        job_id,
                        "failed",
                        error=f"the job's process ended unexpectedly (exit code {p.exitcode})",
                    )
                del self._running[job_id]
            elif job is not None and job.cancel:
                self._kill(p)
                self.store.finish(job_id, "cancelled", error="cancelled while running")
                del self._running[job_id]
            elif now - run.started > self.limits.time_limit:
                self._kill(p)
                self.store.finish(
                    job_id, "failed", error=f"stopped at the time limit of {self.limits.time_limit:g} s"
                )
                del self._running[job_id]
        while len(self._running) < self.limits.concurrency:
            queued = self.store.queued()
            if not queued:
                break
            job_id = queued[0]
            if not self.store.start(job_id):
                continue
            p = self._ctx.Process(target=run_job, args=(str(self.store.root), job_id), daemon=True)
            p.start()
            self._running[job_id] = _Running(p, time.monotonic())

    @staticmethod
    def _kill(p: Any) -> None:
        p.kill()
        p.join(timeout=10)

    def close(self) -> None:
        """Stop the scheduler; running jobs are stopped and marked interrupted."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for job_id, run in list(self._running.items()):
            self._kill(run.process)
            self.store.finish(job_id, "interrupted", error="the server stopped before this job finished")
        self._running.clear()


def result_media_type(path: Path) -> str:
    return {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".webp": "image/webp",
        ".mp4": "video/mp4",
    }.get(path.suffix.lower(), "application/octet-stream")

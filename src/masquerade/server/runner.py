"""Running the jobs of ``masquerade serve``: a scheduler thread and a pool of warm worker processes.

``concurrency`` worker processes (``spawn``) each load what every job needs once — the face analyzer
and the default swapper, warmed up by one small swap of the bundled samples — and then run jobs one at
a time, handed to them by id over a pipe: a photo job's latency is its swap, not a process start. A
job can still be stopped at any moment — cancelled by its client or past the per-job time limit — by
killing its worker, and a crash in a native library fails one job, not the server. A worker that is
killed or ends is replaced by a new one, which warms up in the background; so is one whose resident
memory is above ``worker_memory_mb`` after a job, or that has run ``worker_jobs`` jobs (it exits
between two jobs). Workers end with the server: :meth:`Scheduler.close` stops them, and on Linux the
kernel kills them when the server dies (parent-death signal). Queued jobs (the queue's length is
bounded by the API, see :mod:`.app`) wait for an idle warm worker, oldest first. The worker writes its
job's progress and outcome to the store itself, and only while the store records the job as running
on it; the scheduler hands jobs out and watches, stops and replaces workers. A job stopped by the
scheduler — cancelled, over the time limit, its worker ended, the server shutting down — has its folder
emptied of what the worker was writing (:meth:`.JobStore.clear_job`). Workers ignore SIGINT and SIGHUP
(a terminal's Ctrl-C or hang-up reaches the whole process group): the server stops them itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store import JobStore

if TYPE_CHECKING:
    from ..pipeline import FaceSwapper, SwapOptions

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
RETIRE_GRACE = 10.0  # seconds a worker asked to exit has before it is killed


@dataclass(frozen=True)
class RunLimits:
    concurrency: int = 1  # jobs running at once: the number of worker processes
    time_limit: float = 900.0  # seconds a job may run
    poll: float = 0.2  # longest wait between scheduler passes (a new job or a worker's message wakes it)
    worker_memory_mb: float = 2048.0  # a worker using more after a job is replaced (0: no limit)
    worker_jobs: int = 200  # a worker is replaced after this many jobs (0: no limit)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def resident_mb(pid: int) -> float | None:
    """A process's resident memory in MB (``VmRSS`` of ``/proc/<pid>/status``); None where unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ------------------------------------------------------------------------------------------ worker side


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the server's thread that started it ends (Linux's
    parent-death signal; elsewhere :meth:`Scheduler.close` and the pipe's end stop it)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0):
                log.warning("worker %d: no parent-death signal (errno %d)", os.getpid(), ctypes.get_errno())
        except (OSError, AttributeError):
            log.warning("worker %d: no parent-death signal (prctl unavailable)", os.getpid())
    if os.getppid() != parent:  # the server was gone before the signal was set
        os._exit(0)


class _Models:
    """What a worker keeps loaded between jobs: its face analyzer (detector and mesh; the identity
    encoder too once a job needed it) and the :class:`~masquerade.pipeline.FaceSwapper` of the last
    model-free mesh3d swapper it used (the default). Swappers with a model are made per job, as the
    command line makes them."""

    def __init__(self) -> None:
        from ..analysis.analyzer import FaceAnalyzer

        self.analyzer = FaceAnalyzer(identity=False)
        self._kept: tuple[tuple[Any, ...], FaceSwapper] | None = None

    def face_swapper(self, options: SwapOptions) -> FaceSwapper:
        from ..pipeline import FaceSwapper

        if options.swapper != "mesh3d" or options.model is not None:
            return FaceSwapper(options, analyzer=self.analyzer)
        key = (options.swapper, options.swapper_options, options.occlusion)  # what FaceSwapper() makes
        if self._kept is None or self._kept[0] != key:
            self._kept = (key, FaceSwapper(options, analyzer=self.analyzer))
        fs = self._kept[1]
        fs.options = options  # the same swapper; this job's face selection and compositing
        return fs

    def warm_up(self) -> None:
        """Load the models and swap the bundled samples once in memory (each model's first inference,
        the modules a photo job uses; nothing is written or signed)."""
        from ..imageio import encode_image, load_image
        from ..job import SwapRequest, prepare_job
        from ..samples import sample_path

        self.analyzer.prepare()
        job, _ = prepare_job(SwapRequest(sources=(sample_path("grace_hopper"),)), self.analyzer, load=False)
        fs = self.face_swapper(job.options)
        img, _ = fs.run(list(job.sources), load_image(sample_path("astronaut")).rgb)
        encode_image(job.stamp().mark(img), ".png")

    def close(self) -> None:
        self.analyzer.close()


def worker_main(root: str, conn: Connection, parent: int) -> None:
    """The body of a worker process: load the models, say ``("ready", pid)``, then run each job id
    received and say ``("done", id)``, until told to stop (``None``) or the server is gone."""
    _die_with_parent(parent)
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:  # the server's to handle: it stops its workers and cleans their jobs' folders
            signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    pid = os.getpid()
    store = JobStore(root)
    models = _Models()
    try:
        models.warm_up()
    except Exception:  # then each job loads what it needs, and fails with its own one-line error
        log.exception("worker %d: warming up failed", pid)
    try:
        conn.send(("ready", pid))
        while isinstance(job_id := conn.recv(), str):
            run_job(store, job_id, models, pid)
            conn.send(("done", job_id))
    except (EOFError, OSError):  # the server is gone
        pass
    finally:
        models.close()


def run_job(store: JobStore, job_id: str, models: _Models, worker: int) -> None:
    """One job in worker ``worker`` (its pid): swap, write the result, record the outcome in the store —
    only while the store says the job is running on this worker."""
    job = store.job(job_id)
    if job is None or job.status != "running" or job.worker != worker:
        log.warning("worker %d: job %s is not running on it; left alone", worker, job_id)
        return
    try:
        with _warnings() as said:
            result = _swap(store, job_id, job.spec, models, worker)
        if result is not None:  # its warnings (advice about the source photo …) are the done job's message
            store.finish(job_id, "done", result=result, worker=worker, note="; ".join(said) or None)
    except Exception as exc:  # every failure becomes the job's one-line error
        from ..errors import MasqueradeError

        if isinstance(exc, MasqueradeError):
            store.finish(job_id, "failed", error=_first_line(exc), worker=worker)
        else:
            log.exception("job %s failed", job_id)
            store.finish(
                job_id, "failed", worker=worker,
                error=f"unexpected error: {type(exc).__name__}: {_first_line(exc)}",
            )  # fmt: skip


@contextlib.contextmanager
def _warnings() -> Iterator[list[str]]:
    """The distinct warnings masquerade's modules log within it (in this worker process), in order."""
    said: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = " ".join(record.getMessage().split())
            if text not in said:
                said.append(text)

    handler = Collect(logging.WARNING)
    root = logging.getLogger("masquerade")
    root.addHandler(handler)
    try:
        yield said
    finally:
        root.removeHandler(handler)


def _swap(store: JobStore, job_id: str, spec: dict[str, Any], models: _Models, worker: int) -> str | None:
    """Swap a job's target; the result's file name (None: the job was finished as failed here)."""
    from ..imageio import load_image
    from ..job import prepare_job
    from .requests import JobRequest, JobSettings, swap_request

    try:
        settings = JobSettings(**spec.get("settings", {}))
        request, target = swap_request(store, JobRequest(**spec["public"]), settings)
    except LookupError:
        store.finish(job_id, "failed", error="an uploaded file of this job is gone", worker=worker)
        return None
    out = store.job_dir(job_id) / spec["result_name"]
    store.progress(job_id, 0.02, "preparing", worker=worker)
    fa = models.analyzer
    job, _ = prepare_job(request, fa, load=False)
    fs = models.face_swapper(job.options)
    if spec["kind"] == "image":
        store.progress(job_id, 0.3, "swapping", worker=worker)
        tgt = load_image(store.upload_path(target), max_pixels=job.max_pixels)
        img, _ = fs.run(list(job.sources), tgt.rgb)
        store.progress(job_id, 0.9, "writing", worker=worker)
        job.stamp().write_image(out, img, alpha=tgt.alpha, quality=job.quality)
    else:
        from ..video.swap import swap_video

        trim = (spec["public"].get("start"), spec["public"].get("end"))
        total = max(1, int(spec.get("frames_total") or trimmed_frames(target.meta, *trim)))
        last, count = [0.0], [0]

        def progress(done: int, _t: float) -> None:
            now = time.monotonic()
            count[0] = done
            if now - last[0] >= 0.5:
                last[0] = now
                fraction = 0.05 + 0.9 * min(1.0, done / total)
                store.progress(
                    job_id, fraction, f"frame {done} of {total}", worker=worker, frames=(done, total)
                )  # fmt: skip

        swap_video(job, store.upload_path(target), out, fa, progress=progress, swapper=fs.swapper)
        n = count[0]  # the frames of its range, counted: what "frames to do" was an estimate of
        store.progress(job_id, 0.99, f"frame {n} of {n}", worker=worker, frames=(n, n))
    return out.name


def trimmed_frames(meta: dict[str, Any], start: float | None, end: float | None) -> int:
    """The frames of a video upload (its ``meta``: frames, fps, duration) between ``start`` and
    ``end`` seconds (either None: its start or end) — those a job with that range swaps: the frames
    whose time t has start ≤ t < end (an estimate from the frame rate, as the decoder decides)."""
    frames = int(meta.get("frames") or 0)
    fps, duration = float(meta.get("fps") or 0.0), float(meta.get("duration") or 0.0)
    if fps <= 0:
        return max(1, frames)
    if frames <= 0:
        frames = max(1, round(duration * fps))
    if start is None and end is None:
        return frames

    def index(t: float | None, default: int) -> int:  # the first frame at or after t
        return default if t is None else min(frames, max(0, math.ceil(t * fps - 1e-6)))

    return max(0, index(end, frames) - index(start, 0))


# --------------------------------------------------------------------------------------- server side


@dataclass(eq=False)
class _Worker:
    """The scheduler's view of one worker process."""

    process: BaseProcess
    conn: Connection  # the scheduler's end of the worker's pipe
    ready: bool = False  # warmed up (it has said so)
    job: str | None = None  # the job it runs
    since: float = 0.0  # when it was handed that job (time.monotonic())
    served: int = 0  # jobs it has finished
    gone: bool = False  # its pipe is closed: it has ended or is ending
    deadline: float = 0.0  # once asked to exit: killed if still there then (time.monotonic())

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=10)
        self.conn.close()


@dataclass
class Scheduler:
    """Keeps ``limits.concurrency`` warm workers, hands them queued jobs (oldest first), stops
    cancelled and overdue jobs with their workers, and replaces workers that end or wear out."""

    store: JobStore
    limits: RunLimits = field(default_factory=RunLimits)

    def __post_init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []  # the pool: starting, idle or busy
        self._retiring: list[_Worker] = []  # asked to exit after their last job
        self._stop = threading.Event()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._wake_lock = threading.Lock()
        self._woken = False
        self._thread: threading.Thread | None = None
        self._failures = 0  # workers in a row that ended before they were ready
        self._closed = False
        self._start_after = 0.0  # no new worker before then (time.monotonic()): backing off

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="masquerade-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (a job was added or cancelled)."""
        with self._wake_lock:
            if not self._woken:
                self._woken = True
                with contextlib.suppress(OSError):  # closed: the scheduler has stopped
                    self._wake_w.send_bytes(b"!")

    @property
    def running(self) -> int:
        return sum(w.job is not None for w in list(self._workers))

    def workers(self) -> dict[str, int]:
        """How many workers are starting (warming up), idle and busy."""
        pool = list(self._workers)
        starting = sum(not w.ready for w in pool)
        busy = sum(w.ready and w.job is not None for w in pool)
        return {"starting": starting, "idle": len(pool) - starting - busy, "busy": busy}

    @property
    def pids(self) -> list[int]:
        """The process ids of the pool's workers (for tests and diagnostics)."""
        return [w.pid for w in list(self._workers)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception:  # the scheduler must outlive any one bad pass
                log.exception("scheduler pass failed")
                self._stop.wait(self.limits.poll)  # not at once again (a message left unread)
            self._sleep()

    def _sleep(self) -> None:
        """Until woken, a worker's message or end, or ``limits.poll`` seconds."""
        waiting: list[Any] = [self._wake_r, *(w.conn for w in self._workers if not w.gone)]
        wait(waiting, timeout=self.limits.poll)
        with self._wake_lock:
            if self._woken:
                self._woken = False
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()

    def _pass(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            self._receive(w)
            if w in self._workers:
                self._watch(w, now)
        self._reap(now)
        self._fill(now)
        self._dispatch()

    def _receive(self, w: _Worker) -> None:
        """The worker's messages: ready, or done with its job."""
        while not w.gone and w in self._workers:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.gone = True
                return
            if msg[0] == "ready":
                w.ready, self._failures = True, 0
            elif msg[0] == "done" and msg[1] == w.job:
                w.job = None
                w.served += 1
                worn = self._worn(w)
                if worn:
                    log.info("worker %d %s; replacing it", w.pid, worn)
                    self._retire(w)

    def _worn(self, w: _Worker) -> str | None:
        """Why an idle worker should be replaced, if it should."""
        lim = self.limits
        if lim.worker_jobs and w.served >= lim.worker_jobs:
            return f"has run {w.served} jobs"
        if lim.worker_memory_mb:
            rss = resident_mb(w.pid)
            if rss is not None and rss > lim.worker_memory_mb:
                return f"uses {rss:.0f} MB (more than {lim.worker_memory_mb:g} MB)"
        return None

    def _retire(self, w: _Worker) -> None:
        """Out of the pool (a replacement starts at once); it exits when it reads the stop."""
        self._workers.remove(w)
        with contextlib.suppress(OSError):
            w.conn.send(None)
        w.deadline = time.monotonic() + RETIRE_GRACE
        self._retiring.append(w)

    def _watch(self, w: _Worker, now: float) -> None:
        """A worker that ended, and the job of a busy one: cancelled, or past the time limit."""
        p = w.process
        if not p.is_alive():
            p.join()
            w.conn.close()
            self._workers.remove(w)
            if w.job is not None:
                job = self.store.job(w.job)
                self.store.clear_job(w.job)  # first: once the job shows as final, its folder is clean
                if job is not None and not job.final:
                    error = f"the job's process ended unexpectedly (exit code {p.exitcode})"
                    self.store.finish(w.job, "failed", error=error)
                log.warning("worker %d ended during job %s (exit code %s)", w.pid, w.job, p.exitcode)
            elif not w.ready:
                self._failures += 1
                self._start_after = now + min(60.0, 0.5 * 2**self._failures)
                log.warning("worker %d ended while warming up (exit code %s)", w.pid, p.exitcode)
            else:
                log.warning("idle worker %d ended (exit code %s)", w.pid, p.exitcode)
            return
        if w.job is None:
            return
        job = self.store.job(w.job)
        if job is not None and job.cancel and not job.final:
            self._workers.remove(w)
            w.kill()
            self.store.clear_job(w.job)
            self.store.finish(w.job, "cancelled", error="cancelled while running")
        elif now - w.since > self.limits.time_limit:
            self._workers.remove(w)
            w.kill()
            self.store.clear_job(w.job)
            self.store.finish(
                w.job, "failed", error=f"stopped at the time limit of {self.limits.time_limit:g} s"
            )

    def _reap(self, now: float) -> None:
        """Retired workers that have exited, or are past their grace period (killed)."""
        for w in list(self._retiring):
            if w.process.is_alive() and now < w.deadline:
                continue
            if w.process.is_alive():
                log.warning("worker %d did not exit when asked; killed", w.pid)
            w.kill()
            self._retiring.remove(w)

    def _fill(self, now: float) -> None:
        """Start workers up to ``limits.concurrency`` (backing off after failed starts)."""
        while len(self._workers) < self.limits.concurrency and now >= self._start_after:
            ours, theirs = self._ctx.Pipe()
            p = self._ctx.Process(
                target=worker_main, args=(str(self.store.root), theirs, os.getpid()),
                name="masquerade-worker", daemon=True,
            )  # fmt: skip
            try:
                p.start()
            except Exception:  # e.g. out of processes or memory: try again later
                ours.close()
                self._failures += 1
                self._start_after = now + min(60.0, 0.5 * 2**self._failures)
                log.exception("could not start a worker")
                return
            finally:
                theirs.close()  # the worker has its own copy; its end closing is how its end shows
            self._workers.append(_Worker(p, ours))

    def _dispatch(self) -> None:
        """Queued jobs (oldest first) to idle warm workers."""
        idle = [w for w in self._workers if w.ready and w.job is None and not w.gone]
        queued = self.store.queued() if idle else []
        for w in idle:
            if not w.process.is_alive():
                continue  # the next pass replaces it
            while queued:
                job_id = queued.pop(0)
                if self.store.start(job_id, worker=w.pid):  # not if cancelled meanwhile
                    w.job, w.since = job_id, time.monotonic()
                    try:
                        w.conn.send(job_id)
                    except OSError:  # it has just ended: the next pass fails the job as such
                        w.gone = True
                    break
            if not queued:
                return

    def close(self) -> None:
        """Stop the scheduler and its workers; running jobs are stopped, marked interrupted and their
        folders emptied. Once only: later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for w in self._workers:
            if w.job is not None:
                w.process.kill()
            else:
                with contextlib.suppress(OSError):
                    w.conn.send(None)
        deadline = time.monotonic() + 5.0
        for w in self._workers + self._retiring:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            w.kill()
            if w.job is not None:
                self.store.clear_job(w.job)
                self.store.finish(w.job, "interrupted", error="the server stopped before this job finished")
        self._workers.clear()
        self._retiring.clear()
        with self._wake_lock:
            self._wake_r.close()
            self._wake_w.close()


def result_media_type(path: Path) -> str:
    return {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".webp": "image/webp",
        ".mp4": "video/mp4",
    }.get(path.suffix.lower(), "application/octet-stream")

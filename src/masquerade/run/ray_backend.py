"""Run the segments of a video swap (:mod:`masquerade.video.segments`) or the files of a batch
(:mod:`masquerade.run.batch`) on Ray.

Each Ray worker is an actor that loads the face models and the swapper once and then swaps the
segments (or files) it is given, the next one as soon as it is free. A worker that dies mid-way (a
killed process, a lost node) is restarted by Ray and its segment or file run again (``retries``
times); beyond that a segment fails the video, while a file is reported as failed and the batch goes
on with a fresh worker. Without ``address`` a local Ray instance with ``workers`` CPUs is started for
the call and stopped after it; with ``address`` an existing cluster is used (and left running). The
paths handed to the workers (the video, the segment ``work_dir``, a batch's input and output
folders) must be readable and writable on every node (on a cluster: a shared filesystem); the join
of a segmented video runs in the calling process.

Ray's own output stays out of a run that works: the token-authentication notice of ``ray.init`` is
not shown, and no actor is built from object-store arguments (Ray logs an error line for every such
actor that may restart): each actor is made empty and builds its worker from the arguments its first
item brings (by reference, so a restarted actor builds it again from the next item's). Errors are
still shown. The caller's SIGTERM handler, if it has one, is kept: ``ray.init`` would replace it with
Ray's own (which exits with status 1) and a native one that prints a stack dump. When the run ends
early (an error, a stop signal in the caller), the items being swapped are cancelled and given
:data:`STOP_GRACE_S` seconds to clean up after themselves (a batch file's or a segment's temporary
files) before their workers are killed.

Fault injection for tests: ``MASQUERADE_RAY_CRASH_ONCE=INDEX:MARKER`` makes the worker that first
takes segment (or batch file) INDEX exit abruptly, once (it creates the file MARKER so the retry runs
normally); ``INDEX:always`` makes it exit every time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError, OutputError
from ..job import SwapJob
from ..video.segments import Segment, SegmentResult, SegmentRunner, swap_segment
from .batch import BatchItem, BatchResult, BatchRunner, BatchWorker

log = logging.getLogger(__name__)

CRASH_ENV = "MASQUERADE_RAY_CRASH_ONCE"
STOP_GRACE_S = 10.0  # how long cancelled items may take to stop before their workers are killed
# Ray's notices of a run that works: silenced while ray.init runs
_QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup",)
T = TypeVar("T")
R = TypeVar("R")


def _maybe_crash(index: int) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    want, _, marker = spec.partition(":")
    if not (want.isdigit() and int(want) == index and marker):
        return
    if marker == "always":
        os._exit(17)
    if not Path(marker).exists():
        Path(marker).write_text("crashed once\n")
        os._exit(17)  # an abrupt worker death, as a killed process


class _Cancelled(Exception):
    """Raised in a worker between two frames once its item has been cancelled (``ray.cancel``)."""


def _cancel_check() -> Callable[[], None]:
    """A function for the worker to call between frames: raises :class:`_Cancelled` once the item it
    runs has been cancelled (nothing on a Ray without ``RuntimeContext.is_canceled``)."""
    import ray

    is_canceled = getattr(ray.get_runtime_context(), "is_canceled", None)

    def check() -> None:
        if is_canceled is not None and is_canceled():
            raise _Cancelled("cancelled")

    return check


class _Worker:
    """The actor body for segments: the analyzer and swapper live as long as the worker."""

    def __init__(
        self, job: SwapJob, target: str, work_dir: str, on_frame: Callable[[], None] | None = None
    ) -> None:
        from ..analysis.analyzer import FaceAnalyzer
        from ..pipeline import make_swapper

        self.job, self.target, self.work_dir, self.on_frame = job, target, work_dir, on_frame
        self.analyzer = FaceAnalyzer(identity=False)
        self.swapper = make_swapper(job.options)

    def swap(self, segment: Segment) -> SegmentResult:
        _maybe_crash(segment.index)
        return swap_segment(
            self.job, self.target, segment, self.work_dir, self.analyzer, self.swapper, on_frame=self.on_frame
        )


class _BatchActor(BatchWorker):
    """The actor body for batch files: a :class:`~masquerade.run.batch.BatchWorker` kept alive."""

    def swap(self, item: BatchItem) -> BatchResult:
        import ray

        _maybe_crash(item.index)
        result = self(item)
        result.worker = f"{ray.get_runtime_context().get_node_id()[:12]}:{os.getpid()}"  # node:process
        return result


class _Host:
    """The Ray actor: empty when made (its constructor takes only the body's class, so that no
    argument of it is in the object store), it builds ``body(*args, on_frame=…)`` from the arguments
    its first item brings and swaps every item with it."""

    def __init__(self, body: type) -> None:
        self.body: type = body
        self.worker: Any = None

    def swap(self, setup: list[Any], item: Any) -> Any:
        import ray

        if self.worker is None:
            self.worker = self.body(*ray.get(setup), on_frame=_cancel_check())
        return self.worker.swap(item)

    def pid(self) -> int:
        return os.getpid()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--backend ray needs Ray: pip install 'ray>=2.9'") from None
    return ray


def _check_runner(workers: int) -> None:
    """Ray importable and a worker count that makes sense, checked when a runner is made."""
    _import_ray()
    if workers < 1:
        raise InputError("--workers must be at least 1")


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A one-line error at once for a cluster address nothing answers at (Ray itself would wait for
    minutes). ``auto`` and other forms without a port are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(f"cannot reach the Ray cluster at {address} ({why})") from None


@contextlib.contextmanager
def ray_session(workers: int, address: str | None = None) -> Iterator[Any]:
    """Ray, initialised for the duration: a local instance with ``workers`` CPUs (stopped after), or
    the cluster at ``address`` (left running); an already initialised Ray is used as it is."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    main_thread = threading.current_thread() is threading.main_thread()
    caller_sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    if started_here:
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address is None:
            kwargs["num_cpus"] = workers
        else:
            _check_reachable(address)
            kwargs["address"] = address
        env = {CRASH_ENV: os.environ[CRASH_ENV]} if os.environ.get(CRASH_ENV) else {}
        try:
            with _quiet(_QUIET_LOGGERS):
                ray.init(runtime_env={"env_vars": env} if env else None, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise InputError(f"cannot start or reach {where}: {' '.join(str(exc).split())}") from None
        finally:
            # ray.init sets its own SIGTERM handlers (Python's: kill Ray, exit 1, no clean-up of ours;
            # the core worker's native one: a stack dump on stderr): the caller's stays in charge
            if callable(caller_sigterm):
                signal.signal(signal.SIGTERM, caller_sigterm)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


@contextlib.contextmanager
def _quiet(names: Sequence[str]) -> Iterator[None]:
    """The loggers ``names`` show errors only, for the duration."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def run_on_actors(
    ray: Any,
    body: type,
    args: Sequence[object],
    workers: int,
    items: Sequence[T],
    on_lost: Callable[[T, BaseException], R],
    on_result: Callable[[R], None] | None = None,
    retries: int = 2,
) -> list[R]:
    """Hand ``items`` one at a time to ``workers`` actors, each running a ``body`` (built from
    ``args`` and ``on_frame``, a check to call between frames; its ``swap(item)`` called), each the
    next item as soon as it is free; results in completion order. A worker that died more than
    ``retries`` times on an item is replaced by a new one and the item is given to
    ``on_lost(item, error)``, which returns its result or raises. If the run ends early (an error, an
    interrupt), the items still running are cancelled and given :data:`STOP_GRACE_S` seconds to stop
    before their actors are killed."""
    from ray.exceptions import RayActorError, RayTaskError

    actor = ray.remote(num_cpus=1, max_restarts=retries, max_task_retries=retries)(_Host)
    # the body's arguments go with every item, by reference (kept here for the whole run), so that a
    # restarted actor (after its worker died) builds its body again from them (ray-project/ray#53727)
    setup = [ray.put(x) for x in args]
    free = [actor.remote(body) for _ in range(min(workers, len(items)))]
    todo = list(reversed(items))
    running: dict[Any, tuple[Any, T]] = {}
    results: list[R] = []
    try:
        while todo or running:
            while free and todo:
                a, it = free.pop(), todo.pop()
                running[a.swap.remote(setup, it)] = (a, it)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            a, it = running.pop(ref)
            try:
                r = ray.get(ref)
            except RayTaskError as exc:  # the item itself raised: its own error, not Ray's wrapping
                cause = getattr(exc, "cause", None)
                raise cause if isinstance(cause, BaseException) else exc from None
            except RayActorError as exc:
                log.warning("a Ray worker died %d times on %s; replacing it", retries + 1, it)
                ray.kill(a)
                a = actor.remote(body)
                r = on_lost(it, exc)
            results.append(r)
            if on_result is not None:
                on_result(r)
            free.append(a)
    finally:
        if running:  # ended early: let the items being swapped remove their temporary files
            _cancel(ray, list(running))
        for a in [*free, *(a for a, _ in running.values())]:
            ray.kill(a)
    return results


def _cancel(ray: Any, refs: list[Any]) -> None:
    """Cancel the items ``refs`` and wait up to :data:`STOP_GRACE_S` seconds for them to end."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    with contextlib.suppress(Exception):
        ray.wait(refs, num_returns=len(refs), timeout=STOP_GRACE_S)


def ray_runner(
    job: SwapJob,
    target: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    workers: int = 2,
    address: str | None = None,
    retries: int = 2,
    on_segment: Callable[[SegmentResult], None] | None = None,
) -> SegmentRunner:
    """A :data:`~masquerade.video.segments.SegmentRunner` that swaps the segments on ``workers`` Ray actors;
    ``on_segment(result)`` is called as each segment is done (in the order they finish)."""
    _check_runner(workers)

    def lost(segment: Segment, exc: BaseException) -> SegmentResult:
        raise OutputError(
            f"segment {segment.index} ({segment.start:.2f} s on) failed: its Ray worker died {retries + 1} "
            "times"
        )

    def run(segments: list[Segment]) -> list[SegmentResult]:
        with ray_session(workers, address) as ray:
            args = (job, str(target), str(work_dir))
            results = run_on_actors(ray, _Worker, args, workers, segments, lost, on_segment, retries)
        return sorted(results, key=lambda r: r.segment.index)

    return run


def ray_batch_runner(
    job: SwapJob, workers: int = 2, address: str | None = None, retries: int = 2
) -> BatchRunner:
    """A :data:`~masquerade.run.batch.BatchRunner` that swaps the files on ``workers`` Ray actors (a video
    as one unit on one worker); a file whose worker keeps dying is reported failed, the rest go on."""
    _check_runner(workers)

    from .batch import with_signing

    job = with_signing(job)

    def lost(item: BatchItem, exc: BaseException) -> BatchResult:
        why = f"its Ray worker died {retries + 1} times while swapping it"
        return BatchResult(str(item.input), str(item.output), item.kind, "failed", why)

    def run(items: list[BatchItem], progress: Callable[[BatchResult], None]) -> list[BatchResult]:
        with ray_session(workers, address) as ray:
            return run_on_actors(ray, _BatchActor, (job,), workers, items, lost, progress, retries)

    return run

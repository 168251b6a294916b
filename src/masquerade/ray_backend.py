"""Run the segments of a video swap (:mod:`masquerade.segments`) on Ray.

Each Ray worker is an actor that loads the face models and the swapper once and then swaps the
segments it is given; :class:`ray.util.ActorPool` hands the segments out as workers become free. A
worker that dies mid-segment (a killed process, a lost node) is restarted by Ray and its segment run
again (``retries`` times). Without ``address`` a local Ray instance with ``workers`` CPUs is started
for the call and stopped after it; with ``address`` an existing cluster is used (and left running).
The segment files go to ``work_dir``, which every node must be able to read and write (on a cluster:
a shared filesystem); the join runs in the calling process.

Fault injection for tests: ``MASQUERADE_RAY_CRASH_ONCE=INDEX:MARKER`` makes the worker that first
takes segment INDEX exit abruptly, once (it creates the file MARKER so the retry runs normally).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .face import Face
from .pipeline import SwapOptions
from .segments import Segment, SegmentResult, SegmentRunner, swap_segment
from .video import VideoOptions

log = logging.getLogger(__name__)

CRASH_ENV = "MASQUERADE_RAY_CRASH_ONCE"


def _maybe_crash(segment: Segment) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    index, _, marker = spec.partition(":")
    if index.isdigit() and int(index) == segment.index and marker and not Path(marker).exists():
        Path(marker).write_text("crashed once\n")
        os._exit(17)  # an abrupt worker death, as a killed process


class _Worker:
    """The actor body: the analyzer and swapper live as long as the worker."""

    def __init__(
        self,
        sources: list[tuple[np.ndarray, Face]],
        options: SwapOptions,
        video: VideoOptions,
        references: list[np.ndarray] | None = None,
    ) -> None:
        from .analysis import FaceAnalyzer
        from .pipeline import make_swapper

        self.sources, self.options, self.video = sources, options, video
        self.references = references
        self.analyzer = FaceAnalyzer(identity=False)
        self.swapper = make_swapper(options)

    def swap(self, target: str, segment: Segment, work_dir: str) -> SegmentResult:
        _maybe_crash(segment)
        return swap_segment(
            self.sources, target, segment, work_dir, self.options, self.video, self.analyzer, self.swapper,
            self.references,
        )  # fmt: skip

    def pid(self) -> int:
        return os.getpid()


def ray_runner(
    sources: list[tuple[np.ndarray, Face]],
    target: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    options: SwapOptions | None = None,
    video: VideoOptions | None = None,
    workers: int = 2,
    address: str | None = None,
    retries: int = 2,
    references: list[np.ndarray] | None = None,
) -> SegmentRunner:
    """A :data:`~masquerade.segments.SegmentRunner` that swaps the segments on ``workers`` Ray actors."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        from .errors import InputError

        raise InputError("--backend ray needs Ray: pip install 'ray>=2.9'") from None
    if workers < 1:
        from .errors import InputError

        raise InputError("--workers must be at least 1")
    opts = options or SwapOptions()
    vopts = video or VideoOptions()

    def run(segments: list[Segment]) -> list[SegmentResult]:
        started_here = not ray.is_initialized()
        if started_here:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = workers
            else:
                kwargs["address"] = address
            env = {CRASH_ENV: os.environ[CRASH_ENV]} if os.environ.get(CRASH_ENV) else {}
            ray.init(runtime_env={"env_vars": env} if env else None, **kwargs)
        try:
            actor = ray.remote(num_cpus=1, max_restarts=retries, max_task_retries=retries)(_Worker)
            # the constructor's arguments stay referenced here for the whole run: a restarted actor
            # (after its worker died) is built again from them (ray-project/ray#53727)
            kept = [ray.put(x) for x in (sources, opts, vopts, references)]
            actors = [actor.remote(*kept) for _ in range(min(workers, len(segments)))]
            pool = ActorPool(actors)
            results = list(
                pool.map(lambda a, s: a.swap.remote(str(target), s, str(work_dir)), segments)  # type: ignore[attr-defined]
            )
            for a in actors:
                ray.kill(a)
            return sorted(results, key=lambda r: r.segment.index)
        finally:
            if started_here:
                ray.shutdown()

    return run

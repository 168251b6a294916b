"""The training loop shared by every masquerade trainer.

A :class:`TrainTask` supplies the model-specific parts (modules, optimisers, batches, one training
step, a preview image); :class:`Trainer` does the rest:

- device choice (``auto``/``cpu``/``cuda``), optional mixed precision on CUDA (bf16 where supported,
  else fp16 with a gradient scaler) through :class:`StepContext`;
- checkpoints ``OUT/checkpoints/step_0000100.pt`` and ``OUT/checkpoints/latest.pt``, written atomically
  (modules, optimisers, scaler, step, time, torch/numpy/python RNG states, config); loaded with
  ``torch.load(weights_only=True)``;
- automatic resume from ``latest.pt`` when the stored config matches, a one-line
  :class:`ConfigMismatchError` naming the differences when it does not (``force`` starts over);
- previews ``OUT/previews/step_0000100.png`` (+ ``OUT/preview.png``), the loss log ``OUT/loss.csv``
  and its plot ``OUT/loss.png``; ``OUT/train.json`` describes the run;
- a progress callback (library code never prints) with speed and ETA; stop after ``steps`` or on
  Ctrl-C (the running step finishes, a checkpoint is written; a second Ctrl-C aborts at once).

On CPU a run is deterministic given the seed, and resuming from a checkpoint continues exactly as an
uninterrupted run would (the task's batches must depend only on the step, see
:mod:`masquerade.training.data`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..files import atomic_write_bytes
from ..imageio import save_image
from .configs import TrainOptions

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "masquerade-checkpoint"
RUN_FORMAT = "masquerade-training"
RUN_FILES = ("train.json", "loss.csv", "loss.png", "preview.png")


class ConfigMismatchError(InputError):
    """The output folder holds a run with another configuration."""


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total: int
    start_step: int
    elapsed: float  # seconds in this session
    losses: dict[str, float]
    steps_per_second: float
    eta: float | None  # seconds to ``total``

    @property
    def done(self) -> int:
        return self.step - self.start_step


@dataclass(frozen=True)
class TrainResult:
    step: int
    seconds: float  # training time over all sessions
    start_step: int  # 0, or the step resumed from
    interrupted: bool
    losses: dict[str, float]
    checkpoint: Path | None
    device: str
    out_of_time: bool = False  # stopped by TrainOptions.time_limit before reaching the steps


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; asking for CUDA without it is a one-line error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA GPU is available to PyTorch (use --device cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {name!r} (use auto, cpu or cuda)")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _normalise(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def with_added_defaults(stored: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with each dotted key of ``added`` that it lacks set to its value (copies)."""
    out = _normalise(stored)
    for key, value in added.items():
        *parents, leaf = key.split(".")
        node = out
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        if isinstance(node, dict) and leaf not in node:
            node[leaf] = value
    return out


def config_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: stored → current`` for every leaf that differs."""
    a, b = _flatten(_normalise(stored)), _flatten(_normalise(current))
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [f"{k}: {a.get(k, '(absent)')} → {b.get(k, '(absent)')}" for k in keys]


class StepContext:
    """What a task's :meth:`TrainTask.train_step` uses: the device, autocast and optimiser steps."""

    def __init__(self, device: torch.device, amp: bool, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.device = device
        self.optimizers = optimizers
        self.step = 0  # the step being trained (1-based), set by the trainer before each train_step
        self.amp_dtype: torch.dtype | None = None
        if amp and device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: str = "main") -> None:
        """Zero the gradients, back-propagate ``loss`` and step optimiser ``optimizer``."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()


class TrainTask(ABC):
    """The model-specific half of a training run."""

    name: ClassVar[str]
    #: files the task writes into the output folder (removed when a run starts over)
    artifacts: ClassVar[tuple[str, ...]] = ()
    #: config keys that may change when a run resumes (e.g. the data's location)
    changeable: ClassVar[tuple[str, ...]] = ()
    #: settings added by a later version whose value here trains exactly as runs from before it did: a
    #: stored run without one of them is read as having this value (it resumes)
    added_defaults: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able description of what is trained; must match to resume a run."""

    @abstractmethod
    def build(self, device: torch.device) -> None:
        """Create the modules and optimisers on ``device`` (called after seeding)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]: ...

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    @abstractmethod
    def batch(self, step: int) -> Any:
        """CPU data for ``step`` (1-based); deterministic in ``step``, safe to call from another thread."""

    @abstractmethod
    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, float]:
        """One optimisation step; returns named losses (``total`` among them)."""

    @abstractmethod
    def preview(self, device: torch.device) -> np.ndarray:
        """An RGB uint8 preview image of the current model."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :class:`Trainer` (tensors and plain data only)."""
    p = Path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(f"{p}: checkpoint not found") from exc
    except Exception as exc:
        raise InputError(f"{p}: unreadable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{p}: not a masquerade checkpoint")
    return state


def read_run(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``OUT/train.json`` of a run folder that has a checkpoint, else None."""
    out = Path(out_dir)
    meta = out / "train.json"
    if not (out / "checkpoints" / "latest.pt").is_file() or not meta.is_file():
        return None
    try:
        run = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{meta}: unreadable ({exc})") from exc
    return run if isinstance(run, dict) and run.get("format") == RUN_FORMAT else None


def _atomic_torch_save(obj: Any, path: Path) -> None:
    from ..files import atomic_write

    atomic_write(path, lambda fh: torch.save(obj, fh))


def _link_or_copy(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` hold ``src``'s bytes (a hard link where possible)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    with contextlib.suppress(OSError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class _Interrupt:
    """First Ctrl-C sets a flag (the loop stops after the running step); a second one aborts."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclass
class _LossLog:
    path: Path
    columns: list[str] = field(default_factory=list)

    def truncate(self, step: int) -> None:
        """Keep rows up to ``step`` (a resumed run rewrites what came after its checkpoint)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        self.columns = rows[0][2:]
        kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        buf = io.StringIO()
        csv.writer(buf).writerows([rows[0], *kept])
        atomic_write_bytes(self.path, buf.getvalue().encode())

    def append(self, step: int, seconds: float, losses: dict[str, float]) -> None:
        new = not self.path.is_file() or not self.columns
        if new:
            self.columns = list(losses)
        with self.path.open("a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["step", "time", *self.columns])
            values = (f"{losses.get(c, float('nan')):.6g}" for c in self.columns)
            w.writerow([step, f"{seconds:.3f}", *values])

    def plot(self, dest: Path, title: str) -> None:
        if not self.path.is_file():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if len(rows) < 2:
            return
        data = np.array([[float(x) for x in r] for r in rows[1:] if len(r) == len(rows[0])], np.float64)
        if not len(data):
            return
        plot_losses(data[:, 0], {name: data[:, i + 2] for i, name in enumerate(rows[0][2:])}, dest, title)


def plot_losses(steps: np.ndarray, series: dict[str, np.ndarray], dest: Path, title: str) -> None:
    """Loss curves (raw, faint, and a moving average) as a PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    k = max(1, len(steps) // 50)
    for i, (name, y) in enumerate(series.items()):
        colour = f"C{i % 10}"
        ax.plot(steps, y, color=colour, alpha=0.25, linewidth=0.8)
        if len(y) >= k > 1:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, color=colour, linewidth=1.6, label=name)
        else:
            ax.plot(steps, y, color=colour, linewidth=1.6, label=name)
    positive = all(np.nanmin(y) > 0 for y in series.values() if len(y))
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(dest, buf.getvalue())


class Trainer:
    """Runs a :class:`TrainTask` in ``out_dir`` (see the module docstring)."""

    def __init__(
        self,
        task: TrainTask,
        out_dir: str | os.PathLike[str],
        options: TrainOptions | None = None,
        progress: Callable[[TrainProgress], None] | None = None,
    ) -> None:
        self.task = task
        self.out = Path(out_dir)
        self.options = options or TrainOptions()
        self.progress = progress
        self.ckpt_dir = self.out / "checkpoints"
        self.preview_dir = self.out / "previews"
        self.device: torch.device | None = None
        self.step = 0
        self._seconds_before = 0.0
        self._session_start = 0.0
        self._ctx: StepContext | None = None
        self._last_losses: dict[str, float] = {}
        self._prepared = False
        self._state: dict[str, Any] | None = None

    # -- run folder -------------------------------------------------------------------------------
    def run_config(self) -> dict[str, Any]:
        return _normalise({"trainer": self.task.name, "seed": self.options.seed, **self.task.config()})

    def _start_over(self) -> None:
        for name in (*RUN_FILES, *self.task.artifacts):
            with contextlib.suppress(FileNotFoundError):
                (self.out / name).unlink()
        for folder, pattern in ((self.ckpt_dir, "*.pt"), (self.preview_dir, "step_*.png")):
            if folder.is_dir():
                for f in folder.glob(pattern):
                    f.unlink()

    def _prepare_folder(self) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None for a fresh run (after clearing old run files)."""
        latest = self.ckpt_dir / "latest.pt"
        if latest.is_file():
            state = load_checkpoint(latest)
            diffs = (
                ["trainer: " + str(state.get("trainer")) + " → " + self.task.name]
                if state.get("trainer") != self.task.name
                else [
                    d
                    for d in config_differences(
                        with_added_defaults(state.get("config", {}), self.task.added_defaults),
                        self.run_config(),
                    )
                    if d.split(":", 1)[0] not in self.task.changeable
                ]
            )
            if not diffs:
                return state
            if not self.options.force:
                shown = "; ".join(diffs[:4]) + ("; …" if len(diffs) > 4 else "")
                older = any(": (absent) → " in d for d in diffs)  # a setting this version added
                raise ConfigMismatchError(
                    f"{self.out}: holds a run with another configuration ({shown})"
                    + ("; it was made by an earlier version of masquerade" if older else "")
                    + "; use the same options to resume, another folder, or --force to start over"
                )
            self._start_over()
            return None
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"{self.out}: exists and is not a folder")
        if self.out.is_dir():
            ours = (self.out / "train.json").is_file()
            others = [p for p in self.out.iterdir() if not p.name.startswith(".")]
            if others and not ours and not self.options.force:
                raise InputError(
                    f"{self.out}: folder is not empty and holds no training run (choose an empty or new "
                    "folder, or use --force)"
                )
            if ours:
                self._start_over()
        return None

    def _write_run_file(self) -> None:
        opts = asdict(self.options)
        opts.pop("force", None)
        run = {
            "format": RUN_FORMAT,
            "version": 1,
            "trainer": self.task.name,
            "config": self.run_config(),
            "options": opts,
            "device": str(self.device),
            "torch": str(torch.__version__),
        }
        atomic_write_bytes(self.out / "train.json", (json.dumps(run, indent=2) + "\n").encode())

    # -- checkpoints ------------------------------------------------------------------------------
    def seconds(self) -> float:
        return self._seconds_before + (time.perf_counter() - self._session_start)

    def save_checkpoint(self) -> Path:
        assert self._ctx is not None
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "trainer": self.task.name,
            "config": self.run_config(),
            "step": self.step,
            "seconds": self.seconds(),
            "device": str(self.device),
            "torch": str(torch.__version__),
            "modules": {k: m.state_dict() for k, m in self.task.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers().items()},
            "scaler": self._ctx.scaler.state_dict(),
            "rng": _rng_state(),
            "extra": self.task.extra_state(),
            "losses": dict(self._last_losses),
        }
        path = self.ckpt_dir / f"step_{self.step:07d}.pt"
        _atomic_torch_save(state, path)
        _link_or_copy(path, self.ckpt_dir / "latest.pt")
        keep = self.options.keep_checkpoints
        if keep > 0:
            for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-keep]:
                with contextlib.suppress(OSError):
                    old.unlink()
        log.info("checkpoint %s", path)
        return path

    def _load(self, state: dict[str, Any]) -> None:
        assert self._ctx is not None
        modules, optimizers = self.task.modules(), self.task.optimizers()
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        if state.get("scaler"):
            self._ctx.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.task.load_extra_state(state.get("extra", {}))
        self.step = int(state["step"])
        self._seconds_before = float(state.get("seconds", 0.0))
        self._last_losses = dict(state.get("losses", {}))

    # -- outputs ----------------------------------------------------------------------------------
    def write_preview(self, loss_log: _LossLog) -> Path:
        assert self.device is not None
        img = self.task.preview(self.device)
        path = save_image(self.preview_dir / f"step_{self.step:07d}.png", img)
        save_image(self.out / "preview.png", img)
        loss_log.plot(self.out / "loss.png", f"{self.task.name}: step {self.step}")
        return path

    # -- loop -------------------------------------------------------------------------------------
    def prepare(self) -> int:
        """Check the output folder and the device, read the checkpoint to resume from; returns the step
        training will start at. :meth:`run` calls it when it has not been called."""
        if self.options.steps < 0:
            raise InputError("steps must be ≥ 0")
        self._state = self._prepare_folder()
        self.device = resolve_device(self.options.device)
        self._prepared = True
        return int(self._state["step"]) if self._state is not None else 0

    def run(self) -> TrainResult:
        opts = self.options
        if not self._prepared:
            self.prepare()
        assert self.device is not None
        state, self._state = self._state, None
        self._prepared = False
        if opts.threads:
            torch.set_num_threads(int(opts.threads))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        seed_everything(opts.seed)
        self.task.build(self.device)
        self._ctx = StepContext(self.device, opts.amp, self.task.optimizers())
        if state is not None:
            self._load(state)
            log.info("resumed from step %d", self.step)
        del state
        start_step = self.step
        self.out.mkdir(parents=True, exist_ok=True)
        self._write_run_file()
        loss_log = _LossLog(self.out / "loss.csv")
        loss_log.truncate(self.step)
        self._session_start = time.perf_counter()
        interrupted = out_of_time = False
        last_saved = self.step if start_step else -1
        for m in self.task.modules().values():
            m.train()
        # batches depend only on their step, so several workers stay deterministic
        pool = ThreadPoolExecutor(opts.prefetch, thread_name_prefix="batches") if opts.prefetch > 0 else None
        futures: dict[int, Future[Any]] = {}

        def fetch(step: int) -> Any:
            if pool is None:
                return self.task.batch(step)
            for s in range(step, min(opts.steps, step + opts.prefetch) + 1):
                if s not in futures:
                    futures[s] = pool.submit(self.task.batch, s)
            return futures.pop(step).result()

        stop = _Interrupt()
        try:
            with stop.installed():
                while self.step < opts.steps and not stop.requested:
                    elapsed = time.perf_counter() - self._session_start
                    if opts.time_limit is not None and self.step > start_step and elapsed >= opts.time_limit:
                        out_of_time = True
                        break
                    batch = fetch(self.step + 1)
                    self._ctx.step = self.step + 1
                    losses = self.task.train_step(batch, self._ctx)
                    self.step += 1
                    self._last_losses = losses
                    loss_log.append(self.step, self.seconds(), losses)
                    if self.progress is not None:
                        elapsed = time.perf_counter() - self._session_start
                        done = self.step - start_step
                        rate = done / elapsed if elapsed > 0 else 0.0
                        eta = (opts.steps - self.step) / rate if rate > 0 else None
                        self.progress(
                            TrainProgress(self.step, opts.steps, start_step, elapsed, losses, rate, eta)
                        )
                    if opts.save_every > 0 and self.step % opts.save_every == 0:
                        self.save_checkpoint()
                        last_saved = self.step
                    if opts.preview_every > 0 and self.step % opts.preview_every == 0:
                        self.write_preview(loss_log)
                interrupted = stop.requested and self.step < opts.steps
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        checkpoint = self.ckpt_dir / "latest.pt"
        if self.step != last_saved:
            checkpoint = self.save_checkpoint()
        if self.step > start_step and (opts.preview_every <= 0 or self.step % opts.preview_every):
            self.write_preview(loss_log)
        return TrainResult(
            step=self.step,
            seconds=self.seconds(),
            start_step=start_step,
            interrupted=interrupted,
            losses=dict(self._last_losses),
            checkpoint=checkpoint if checkpoint.is_file() else None,
            device=str(self.device),
            out_of_time=out_of_time,
        )

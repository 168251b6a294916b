"""Native libraries: silencing their start-up chatter (mediapipe's C++ logging writes straight to fd 2)
and importing mediapipe without its plotting dependencies."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from functools import partial
from types import ModuleType


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Redirect file descriptor 2 to /dev/null for the duration (unless MASQUERADE_DEBUG is set)."""
    if os.environ.get("MASQUERADE_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def mediapipe_solutions() -> ModuleType:
    """``mediapipe.solutions``, imported without matplotlib and the solutions masquerade does not use.

    mediapipe's package ``__init__`` imports its drawing helpers, which import ``matplotlib.pyplot``,
    its newer ``tasks`` API and every legacy solution (pose, holistic, objectron, selfie segmentation …):
    about a second of every process start on a small machine with matplotlib, and 0.15 s of what is
    left without it, for plotting functions and models masquerade never calls (it uses face detection,
    the face mesh and hands). While mediapipe is first imported, placeholder modules stand in for them
    and are removed again, so a later import gets the real ones; ``mediapipe.solutions.pose`` and the
    like are imported on first access. Modules already imported are used as they are.
    """
    done = sys.modules.get("mediapipe")
    if done is not None:
        return done.solutions  # type: ignore[no-any-return]
    unused = [f"{_SOLUTIONS}.{n}" for n in _UNUSED_SOLUTIONS]
    stand_ins = [
        n
        for n in ("matplotlib", "matplotlib.pyplot", "mediapipe.tasks", "mediapipe.tasks.python", *unused)
        if n not in sys.modules
    ]
    for name in stand_ins:
        sys.modules[name] = ModuleType(name)
    try:
        import mediapipe as mp
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    solutions = sys.modules[_SOLUTIONS]
    if not hasattr(solutions, "__getattr__"):
        solutions.__getattr__ = partial(_submodule, _SOLUTIONS)  # type: ignore[attr-defined]
    return mp.solutions  # type: ignore[no-any-return]


_SOLUTIONS = "mediapipe.python.solutions"
_UNUSED_SOLUTIONS = (
    "drawing_styles", "drawing_utils", "holistic", "objectron", "pose", "selfie_segmentation",
)  # fmt: skip


def _submodule(package: str, name: str) -> ModuleType:
    """A package's ``__getattr__`` (PEP 562): its submodule ``name``, imported now."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

"""Native libraries: silencing their start-up chatter (mediapipe's C++ logging writes straight to fd 2)
and importing mediapipe without its plotting dependencies."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
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
    """``mediapipe.solutions``, imported without matplotlib.

    mediapipe's package ``__init__`` imports its drawing helpers, which import ``matplotlib.pyplot``,
    and its newer ``tasks`` API: about a second of every process start on a small machine, for
    plotting functions and an API masquerade never calls. While mediapipe is first imported,
    placeholder modules stand in for them (and are removed again, so a later import gets the real
    ones); modules already imported are used as they are.
    """
    done = sys.modules.get("mediapipe")
    if done is not None:
        return done.solutions  # type: ignore[no-any-return]
    stand_ins = [
        n
        for n in ("matplotlib", "matplotlib.pyplot", "mediapipe.tasks", "mediapipe.tasks.python")
        if n not in sys.modules
    ]
    for name in stand_ins:
        sys.modules[name] = ModuleType(name)
    try:
        import mediapipe as mp
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return mp.solutions  # type: ignore[no-any-return]

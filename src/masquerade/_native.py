"""Native libraries: silencing their start-up chatter (mediapipe's C++ logging writes straight to fd 2)
and importing mediapipe without its plotting dependencies."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from functools import partial
from types import ModuleType, SimpleNamespace
from typing import Any


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


def run_solution(
    solution: Any, image: Any, streams: tuple[str, ...] | None = None, serialised: tuple[str, ...] = ()
) -> SimpleNamespace:
    """One RGB image through a mediapipe legacy solution (face detection, face mesh, hands), as its
    ``process`` runs it, but without the new ``namedtuple`` class that ``SolutionBase.process`` builds on
    every call: about 0.7 ms of Python with the GIL held per call (a sixth of a face-mesh call on a
    256-px crop, half of the time the call holds the GIL), which in a video stalls the threads that
    render and encode. Returns the output streams as attributes; ``streams``: only these are read (the
    others are None); ``serialised``: these proto-list streams come as their messages' serialised bytes
    (not parsed into Python messages). A solution without the attributes this relies on (another
    mediapipe version) is run through its own ``process``."""
    try:
        graph = solution._graph
        ((name, kind),) = solution._input_stream_type_info.items()
        types = solution._output_stream_type_info
        outputs = solution._graph_outputs
        make_packet, content = solution._make_packet, solution._get_packet_content
        from mediapipe.python import packet_getter
    except (AttributeError, ValueError, TypeError, ImportError):
        res = solution.process(image)
        return SimpleNamespace(**{k: getattr(res, k) for k in res._fields})
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("Input image must contain three channel rgb data.")
    outputs.clear()
    solution._simulated_timestamp += 33333  # as process() does: a 30 fps stream
    packet = make_packet(kind, image).at(solution._simulated_timestamp)
    graph.add_packet_to_input_stream(stream=name, packet=packet)
    graph.wait_until_idle()
    found: dict[str, Any] = {}
    for stream, kind_out in types.items():
        packet = outputs.get(stream) if streams is None or stream in streams else None
        if packet is None or packet.is_empty():
            found[stream] = None
        elif stream in serialised:
            found[stream] = list(packet_getter._packet_getter._get_serialized_proto_list(packet))
        else:
            found[stream] = content(kind_out, packet)
    return SimpleNamespace(**found)

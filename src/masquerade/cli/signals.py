"""Stopping the command line cleanly on SIGTERM and SIGHUP, as Ctrl-C (SIGINT) does.

:class:`StopSignals` is entered by :func:`masquerade.cli.main.main` alone (the library installs no
handler): for its duration SIGTERM and SIGHUP raise :class:`Stopped` in the main thread, a
:class:`KeyboardInterrupt`, so that everything on the way out runs as for Ctrl-C (``try``/``finally``
blocks and context managers: temporary files and folders removed, Ray shut down; libraries that turn
an interrupt into their own, as Ray does, too). The command then prints ``stopped by SIGTERM`` and
exits with 128 + the signal's number (143, 129), as SIGINT exits 130. A second signal while the first
one unwinds is ignored, so that the clean-up itself is not cut short (SIGKILL still stops everything).
The previous handlers are put back on the way out.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) received by the command; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """While entered (in the main thread; elsewhere Python cannot set handlers and nothing is done),
    SIGTERM and SIGHUP raise :class:`Stopped`, the first one only; ``signum`` is the one received
    (None: none), which stays known where the interrupt was re-raised as a plain KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:  # already stopping: let the clean-up finish
            return
        self.signum = signum
        raise Stopped(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                num = getattr(signal, name, None)
                if num is not None:
                    self._previous[num] = signal.signal(num, self._handler)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for num, old in self._previous.items():
            signal.signal(num, old if old is not None else signal.SIG_DFL)  # type: ignore[arg-type]
        self._previous.clear()

"""The ``masquerade`` command line: the parser, the command table and the one-line error handling.
Library code logs; the commands print.

Every failure ends in one line on stderr and a non-zero exit status (2: bad input or usage,
3: no usable face, 1: unexpected); set ``MASQUERADE_DEBUG=1`` to see a traceback instead. Ctrl-C
(``interrupted``, 130), SIGTERM and SIGHUP (``stopped by SIGTERM``, 128 + the signal) stop a command
after its clean-up: no partial output or temporary file is left (:mod:`.signals`). Each command
is a module of this package with ``add_parser(sub)`` and ``run(args, out, err)``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from rich.console import Console

from ..errors import MasqueradeError
from . import analyze, demo, evaluate, live, models, swap, verify
from .common import INTENDED_USE, one_line
from .extract import add_extract_parser, cmd_extract
from .serve import add_serve_parser, cmd_serve
from .signals import StopSignals
from .train import add_train_parser, cmd_train

log = logging.getLogger(__name__)

# commands that composite faces soon after they start: OpenCV's colour tables are built beside their
# start-up (compose.colour.warm_up)
COMPOSITING = frozenset({"swap", "demo", "live"})

COMMANDS = {
    "analyze": analyze.run,
    "swap": swap.run,
    "live": live.run,
    "evaluate": evaluate.run,
    "demo": demo.run,
    "verify": verify.run,
    "models": models.run,
    "train": cmd_train,
    "extract": cmd_extract,
    "serve": cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="masquerade", description=f"Offline face swapping. {INTENDED_USE}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    analyze.add_parser(sub)
    swap.add_parser(sub)
    live.add_parser(sub)
    evaluate.add_parser(sub)
    add_extract_parser(sub)
    demo.add_parser(sub)
    verify.add_parser(sub)
    add_train_parser(sub)
    add_serve_parser(sub)
    models.add_parser(sub)
    return p


class CommandFormatter(logging.Formatter):
    """The library's warnings as the command's own lines: ``warning: …`` on one line, as the command
    prints its own; with ``--verbose``, the info lines name their module."""

    def format(self, record: logging.LogRecord) -> str:
        text = one_line(record.getMessage())
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return f"{record.levelname.lower()} {record.name}: {text}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit instead of tracebacks."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command in COMPOSITING:
        from ..compose.colour import warm_up

        warm_up()
    before = set(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command != "serve":  # (the server's log keeps its levels, names and tracebacks)
        for handler in set(logging.getLogger().handlers) - before:  # the one basicConfig made, if any
            handler.setFormatter(CommandFormatter())
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    debug = bool(os.environ.get("MASQUERADE_DEBUG"))
    stop = StopSignals()
    try:
        # SIGTERM, SIGHUP: cleaned up and stopped like Ctrl-C (the server has its own shutdown)
        with stop if args.command != "serve" else contextlib.nullcontext(stop):
            return COMMANDS[args.command](args, out, err)
    except KeyboardInterrupt:  # Ctrl-C, or a stop signal (Stopped, or what a library made of it)
        err.print(f"stopped by {stop.name}" if stop.signum else "interrupted", highlight=False)
        return stop.exit_code
    except Exception as exc:
        if stop.signum and not debug:  # an error on the way out of a stop (a library's, made of it)
            log.debug("stopping by %s: %r", stop.name, exc)
            err.print(f"stopped by {stop.name}", highlight=False)
            return stop.exit_code
        if debug:
            raise
        if isinstance(exc, MasqueradeError):
            err.print(f"error: {one_line(str(exc))}", highlight=False, markup=False, soft_wrap=True)
            return exc.exit_code
        why = one_line(str(exc))
        msg = f"error: unexpected {type(exc).__name__}: {why} (set MASQUERADE_DEBUG=1 for details)"
        err.print(msg, highlight=False, markup=False, soft_wrap=True)
        return 1


def entry() -> None:
    sys.exit(main())

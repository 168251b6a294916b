"""``masquerade demo``: swap the bundled sample photos (Grace Hopper onto the astronaut)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="swap the bundled sample photos (Grace Hopper onto the astronaut)")
    d.add_argument("-o", "--output", type=Path, default=Path("masquerade-demo.png"))
    d.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from . import swap
    from .main import build_parser

    ns = build_parser().parse_args(
        ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "-o", str(args.output)]
        + (["--force"] if args.force else [])
    )
    return swap.run(ns, out, err)

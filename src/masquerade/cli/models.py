"""``masquerade models``: the models used, their origin and licences."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..errors import MasqueradeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the models used, their origin and licences")
    m.add_argument("--verify", action="store_true", help="check every file's sha256")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..models import REGISTRY

    bad = 0
    for spec in REGISTRY:
        try:
            path = str(spec.path())
            state = "present"
            if args.verify and spec.sha256:
                ok = spec.verify()
                state = "sha256 ok" if ok else "SHA256 MISMATCH"
                bad += not ok
        except MasqueradeError as exc:
            path, state = "-", f"missing: {exc}"
            bad += 1
        out.print(f"[bold]{spec.name}[/] ({spec.kind}) {state}", highlight=False)
        out.print(f"  {spec.origin}\n  licence: {spec.licence}\n  {path}", highlight=False, markup=False)
    return 1 if bad else 0

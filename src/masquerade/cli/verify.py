"""``masquerade verify``: is this file marked as made by masquerade (watermark, C2PA, metadata)?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from ..errors import InputError
from .common import one_line


def add_parser(sub: argparse._SubParsersAction) -> None:
    vf = sub.add_parser(
        "verify",
        help="is this image or video marked as made by masquerade? (watermark, C2PA manifest, metadata)",
        description="Looks for masquerade's invisible watermark and checks the file's C2PA manifest "
        "(embedded or in a NAME.c2pa sidecar), and reports each with the metadata comment; the "
        "pixels are checked for the watermark even when the metadata is damaged. Exit status: 0 "
        "provenance found and intact; 3 none found (a metadata comment alone is not provenance); 4 a "
        "C2PA manifest is present but tampered with, unreadable or invalid (or disagrees with the "
        "watermark); 2 the file cannot be read at all.",
    )  # fmt: skip
    vf.add_argument("file", type=Path, help="image or video to check")
    vf.add_argument("--json", action="store_true", help="print the findings as JSON")
    vf.add_argument(
        "--max-frames", type=int, default=32, help="video frames sampled for the watermark (default 32)"
    )  # fmt: skip
    vf.add_argument(
        "--trust-anchors", type=Path, metavar="PEM",
        help="CA certificates to trust (default $MASQUERADE_C2PA_TRUST_ANCHORS)",
    )  # fmt: skip


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..provenance.findings import inspect_file

    p: Path = args.file
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if args.trust_anchors is not None and not args.trust_anchors.is_file():
        raise InputError(f"{args.trust_anchors}: no such file")
    found = inspect_file(p, max_frames=args.max_frames, trust_anchors=args.trust_anchors)
    if args.json:
        out.print_json(json.dumps(found.to_dict()))
        return found.code
    wm, c2, pixels, note = found.watermark, found.c2pa, found.pixels, found.note
    out.print(str(p), highlight=False, markup=False)
    if pixels is not None and (pixels.repair or pixels.rgb is None):
        out.print(f"  pixels: {pixels.repair or pixels.error}", highlight=False, markup=False)
    out.print(f"  {wm.summary()}", highlight=False, markup=False)
    out.print(f"  {c2.summary()}", highlight=False, markup=False)
    if c2.swapper and c2.present:
        state = "manifest" if c2.valid else "manifest (not to be trusted: it failed verification)"
        out.print(
            f"  {state}: {c2.swapper} swapper, {c2.timestamp}, content id {c2.content_id}",
            highlight=False, markup=False,
        )  # fmt: skip
    if note:
        out.print(f"  metadata: {one_line(note)}", highlight=False, markup=False)
    out.print(found.verdict.text, highlight=False, markup=False)
    return found.code

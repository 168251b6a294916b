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
        "(embedded or in a NAME.c2pa sidecar). Exit status: 0 provenance found and intact; 3 none "
        "found; 4 a C2PA manifest is present but invalid or tampered with (or disagrees with the "
        "watermark); 2 the file cannot be read.",
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
    from ..provenance.stamp import read_note
    from ..provenance.verification import verify_file
    from ..provenance.watermark import Watermarker

    p: Path = args.file
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if args.trust_anchors is not None and not args.trust_anchors.is_file():
        raise InputError(f"{args.trust_anchors}: no such file")
    wm = Watermarker().detect_file(p, max_frames=args.max_frames)
    c2 = verify_file(p, trust_anchors=args.trust_anchors)
    note = read_note(p)
    problems: list[str] = []
    if c2.present and (c2.tampered or not c2.valid):
        problems.append("the C2PA manifest is invalid or was tampered with")
    if wm.content_hex and c2.valid and c2.content_id and wm.content_hex != c2.content_id:
        problems.append(f"watermark content id {wm.content_hex} differs from the manifest's {c2.content_id}")
    if problems:
        code, verdict = 4, "PROVENANCE BROKEN: " + "; ".join(problems)
    elif wm.present or c2.valid:
        what = [w for w, ok in (("watermark", wm.present), ("valid C2PA manifest", c2.valid)) if ok]
        code, verdict = 0, f"made by masquerade (synthetic media): {' and '.join(what)}"
    else:
        code = 3
        verdict = "no masquerade provenance found"
        if note:
            verdict += " (its metadata says provenance was turned off)"
    if args.json:
        c2d = {
            "present": c2.present, "valid": c2.valid, "trusted": c2.trusted, "tampered": c2.tampered,
            "signer": c2.signer, "own_key": c2.own_key, "state": c2.state, "issues": list(c2.issues),
            "sidecar": str(c2.sidecar) if c2.sidecar else None, "swapper": c2.swapper,
            "content_id": c2.content_id, "timestamp": c2.timestamp,
        }  # fmt: skip
        doc = {"file": str(p), "watermark": wm.to_dict(), "c2pa": c2d, "note": note, "verdict": verdict}
        out.print_json(json.dumps({**doc, "exit_code": code}))
        return code
    out.print(str(p), highlight=False, markup=False)
    out.print(f"  {wm.summary()}", highlight=False, markup=False)
    out.print(f"  {c2.summary()}", highlight=False, markup=False)
    if c2.valid and c2.swapper:
        out.print(
            f"  manifest: {c2.swapper} swapper, {c2.timestamp}, content id {c2.content_id}", highlight=False
        )
    if note:
        out.print(f"  metadata: {one_line(note)}", highlight=False, markup=False)
    out.print(verdict, highlight=False, markup=False)
    return code

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
    from ..provenance.findings import judge, read_pixels
    from ..provenance.stamp import read_note
    from ..provenance.verification import verify_file
    from ..provenance.watermark import Watermarker, WatermarkResult
    from ..video.probe import is_video_path

    p: Path = args.file
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if args.max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if args.trust_anchors is not None and not args.trust_anchors.is_file():
        raise InputError(f"{args.trust_anchors}: no such file")
    pixels = None
    if is_video_path(p):
        wm = Watermarker().detect_file(p, max_frames=args.max_frames)
    else:
        pixels = read_pixels(p)  # decodes past damaged metadata: a broken manifest never hides the mark
        if pixels.rgb is not None:
            wm = Watermarker().detect(pixels.rgb)
        else:
            wm = WatermarkResult(False, 0.0, None, None, reason="the pixels do not decode")
    c2 = verify_file(p, trust_anchors=args.trust_anchors)
    note = read_note(p)
    if pixels is not None and pixels.rgb is None and not c2.present and note is None:
        raise InputError(pixels.error or f"{p}: not a readable image")  # nothing at all to report
    verdict = judge(wm, c2, note, pixels)
    if args.json:
        c2d = {
            "present": c2.present, "valid": c2.valid, "trusted": c2.trusted, "tampered": c2.tampered,
            "signer": c2.signer, "own_key": c2.own_key, "state": c2.state, "issues": list(c2.issues),
            "sidecar": str(c2.sidecar) if c2.sidecar else None, "swapper": c2.swapper,
            "content_id": c2.content_id, "timestamp": c2.timestamp,
        }  # fmt: skip
        doc = {
            "file": str(p), "watermark": wm.to_dict(), "c2pa": c2d, "note": note,
            "pixels": None if pixels is None else (pixels.repair or pixels.error),
            "findings": verdict.findings, "verdict": verdict.text,
        }  # fmt: skip
        out.print_json(json.dumps({**doc, "exit_code": verdict.code}))
        return verdict.code
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
    out.print(verdict.text, highlight=False, markup=False)
    return verdict.code

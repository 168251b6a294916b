"""What ``masquerade verify`` found in a file, and the verdict built from exactly that.

Three independent pieces of evidence are read and reported side by side:

* the **pixels** and the watermark in them: :func:`read_pixels` decodes the image even when its
  metadata is damaged (a PNG ancillary chunk — the C2PA ``caBX`` chunk, a text chunk — whose CRC no
  longer matches is set aside, and the decode says so), so a broken manifest never hides the watermark;
* the **C2PA manifest** (:class:`~masquerade.provenance.verification.C2paReport`): absent, valid,
  tampered with, unreadable or invalid;
* the **metadata comment** masquerade writes (:func:`parse_note`): what it claims — that provenance was
  turned off, or that the output carries a watermark and a manifest under a content id. A comment is
  unsigned text that anyone can copy or write, so it never counts as provenance; it is reported, and it
  is compared with what was actually found.

:func:`judge` turns them into an exit status and one line. Exit status (``masquerade verify``):
0 provenance found and intact (watermark present, or a valid manifest); 3 none found; 4 a manifest is
present but tampered with, unreadable or invalid, or it names another content id than the watermark;
2 the file cannot be read at all (pixels undecodable and neither manifest nor comment found).

:func:`inspect_file` does the whole inspection of one file — pixels, watermark, manifest, comment,
verdict — for ``masquerade verify`` and the web app's ``GET /api/jobs/{id}/verify`` alike; its
:meth:`Inspection.to_dict` is the JSON document ``masquerade verify --json`` prints.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InputError, LimitError
from .stamp import PNG_SIGNATURE, png_chunks, read_note
from .verification import C2paReport, verify_file
from .watermark import Watermarker, WatermarkResult

log = logging.getLogger(__name__)

FOUND, UNREADABLE, NONE_FOUND, BROKEN = 0, 2, 3, 4  # exit statuses of ``masquerade verify``


# ------------------------------------------------------------------------------------------- pixels


@dataclass(frozen=True)
class Pixels:
    """An image's pixels as :func:`read_pixels` decoded them.

    ``rgb`` is None when they do not decode (``error`` says why). ``repair`` says what had to be set
    aside to decode them (e.g. a PNG chunk whose CRC no longer matches), None when nothing was.
    """

    rgb: np.ndarray | None
    repair: str | None = None
    error: str | None = None


def _without_damaged_ancillary_chunks(data: bytes) -> tuple[bytes, list[str]]:
    """The PNG stream without its ancillary chunks (lower-case first letter: metadata, not pixels)
    whose CRC does not match, and the names of those set aside."""
    kept, dropped, pos = [data[: len(PNG_SIGNATURE)]], [], len(PNG_SIGNATURE)
    for kind, at, length, crc_ok in png_chunks(data):
        ancillary = bool(kind[:1]) and kind[0] & 0x20
        if not crc_ok and ancillary:
            dropped.append(kind.decode("latin-1"))
        else:
            kept.append(data[at : at + 12 + length])
        pos = at + 12 + length
    kept.append(data[pos:])
    return b"".join(kept), dropped


def read_pixels(path: str | os.PathLike[str]) -> Pixels:
    """The image's pixels for the watermark check, even when its metadata is damaged.

    :func:`masquerade.imageio.load_image` first; if it refuses a PNG, again without the ancillary
    chunks whose CRC does not match (metadata such as the C2PA manifest or a text comment: the pixels
    do not depend on them). Over-limit images still raise :class:`~masquerade.errors.LimitError`."""
    from ..imageio import load_image

    p = Path(path)
    try:
        return Pixels(load_image(p).rgb)
    except LimitError:
        raise
    except InputError as exc:
        error = str(exc)
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(PNG_SIGNATURE))
    except OSError as exc:
        return Pixels(None, None, f"{p}: {exc.strerror or exc}")
    if head != PNG_SIGNATURE:
        return Pixels(None, None, error)
    data = p.read_bytes()  # load_image has checked the file's size against its limit
    repaired, dropped = _without_damaged_ancillary_chunks(data)
    if not dropped:
        return Pixels(None, None, error)
    with tempfile.TemporaryDirectory(prefix="masquerade-verify-") as tmp:
        copy = Path(tmp) / "repaired.png"
        copy.write_bytes(repaired)
        try:
            rgb = load_image(copy).rgb
        except LimitError:
            raise
        except InputError as exc:
            log.debug("%s still does not decode without %s: %s", p, dropped, exc)
            return Pixels(None, None, error)
    names = ", ".join(dropped)
    what = "chunk" if len(dropped) == 1 else "chunks"
    return Pixels(rgb, f"decoded without the damaged PNG {what} {names} (CRC mismatch)")


# ------------------------------------------------------------------------------------------- comment

NoteKind = Literal["provenance_off", "claims_provenance", "other"]
_CONTENT_ID = re.compile(r"content id ([0-9a-f]{12})\b")


@dataclass(frozen=True)
class NoteClaim:
    """What a masquerade metadata comment says (it is unsigned: a claim, not evidence)."""

    text: str
    kind: NoteKind
    content_id: str | None = None


def parse_note(note: str | None) -> NoteClaim | None:
    """What a comment written by :class:`~masquerade.provenance.stamp.OutputStamp` claims: that
    provenance was turned off (``--no-provenance``), or that the output carries a watermark and C2PA
    credentials under a content id; ``other`` for any other masquerade comment."""
    if not note:
        return None
    if "turned off" in note:
        return NoteClaim(note, "provenance_off")
    m = _CONTENT_ID.search(note)
    if m and "watermark" in note:
        return NoteClaim(note, "claims_provenance", m.group(1))
    return NoteClaim(note, "other")


# ------------------------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    """``masquerade verify``'s exit status, its one-line verdict and the findings it rests on."""

    code: int
    text: str
    findings: dict[str, Any] = field(default_factory=dict)


def manifest_state(c2: C2paReport) -> str:
    """``absent``, ``trusted``, ``valid`` (intact, signer not on a trust list), ``tampered`` (content
    or manifest changed after signing), ``unreadable`` (present but does not parse) or ``invalid``."""
    if not c2.present:
        return "absent"
    if c2.valid:
        return "trusted" if c2.trusted else "valid"
    if c2.manifest is None and any(i.startswith("manifest unreadable") for i in c2.issues):
        return "unreadable"
    return "tampered" if c2.tampered else "invalid"


def _watermark_state(wm: WatermarkResult) -> str:
    if wm.present:
        return "present"
    return "not_measurable" if wm.reason else "absent"


def _watermark_words(wm: WatermarkResult) -> str:
    if wm.present:
        cid = f", content id {wm.content_hex}" if wm.content_hex else ", content id unreadable"
        return f"watermark present (z = {wm.confidence:.1f}{cid})"
    if wm.reason:
        return f"no watermark measurable ({wm.reason})"
    return f"no watermark (z = {wm.confidence:.1f})"


def judge(wm: WatermarkResult, c2: C2paReport, note: str | None, pixels: Pixels | None = None) -> Verdict:
    """The verdict built from what was found — never from what a comment claims alone."""
    manifest = manifest_state(c2)
    claim = parse_note(note)
    px = "decoded" if pixels is None or pixels.rgb is not None else "unreadable"
    findings: dict[str, Any] = {
        "pixels": "repaired" if pixels is not None and pixels.repair else px,
        "watermark": _watermark_state(wm),
        "manifest": manifest,
        "metadata": claim.kind if claim else "absent",
        "metadata_content_id": claim.content_id if claim else None,
    }  # fmt: skip
    wm_words = _watermark_words(wm)
    problems: list[str] = []
    if manifest in ("tampered", "unreadable", "invalid"):
        broken = [i for i in c2.issues if not i.startswith(("signingCredential.", "timeStamp."))]
        detail = f" ({'; '.join(broken[:2])})" if broken else ""
        words = {
            "tampered": "was tampered with (content or manifest changed after signing)",
            "unreadable": "is damaged and cannot be read",
            "invalid": "is invalid",
        }[manifest]
        problems.append(f"the C2PA manifest {words}{detail}")
    if wm.content_hex and c2.valid and c2.content_id and wm.content_hex != c2.content_id:
        problems.append(f"watermark content id {wm.content_hex} differs from the manifest's {c2.content_id}")
    if problems:
        tail = wm_words + (": the pixels still say masquerade made them" if wm.present else " either")
        return Verdict(BROKEN, f"PROVENANCE BROKEN: {'; '.join(problems)}; {tail}", findings)

    # what the comment claims, against what was found
    remark = ""
    found_id = (c2.content_id if c2.valid else None) or wm.content_hex
    if claim and claim.kind == "claims_provenance" and found_id and claim.content_id != found_id:
        remark = (
            f"; its metadata comment names another content id ({claim.content_id}): copied from another file?"
        )
    elif claim and claim.kind == "provenance_off" and (wm.present or c2.valid):
        remark = "; its metadata comment says provenance was turned off, which the marks found contradict"
    if wm.present or c2.valid:
        what = [w for w, ok in ((wm_words, wm.present), (f"{manifest} C2PA manifest", c2.valid)) if ok]
        return Verdict(FOUND, f"made by masquerade (synthetic media): {' and '.join(what)}{remark}", findings)

    text = f"no masquerade provenance found: {wm_words}, no C2PA manifest"
    if claim is None:
        pass
    elif claim.kind == "provenance_off":
        text += (
            "; its metadata comment says provenance was turned off when it was made "
            "(an unsigned comment: anyone can write or copy one)"
        )
    elif claim.kind == "claims_provenance":
        text += (
            f"; yet its metadata comment claims a masquerade output with a watermark and C2PA "
            f"credentials (content id {claim.content_id}): the picture was changed since (cropped, "
            "rotated, edited or re-encoded, which also drops the manifest) or the comment was copied "
            "from another file"
        )
    else:
        text += "; its metadata has a masquerade comment (unsigned, shown above)"
    return Verdict(NONE_FOUND, text, findings)


# ------------------------------------------------------------------------------------------- inspection


@dataclass(frozen=True)
class Inspection:
    """Everything :func:`inspect_file` found in one file, and the verdict built from it."""

    path: Path
    watermark: WatermarkResult
    c2pa: C2paReport
    note: str | None
    pixels: Pixels | None  # None for a video (its frames are sampled by the watermark check)
    verdict: Verdict

    @property
    def code(self) -> int:
        """``masquerade verify``'s exit status (:data:`FOUND`, :data:`NONE_FOUND` or :data:`BROKEN`)."""
        return self.verdict.code

    def to_dict(self, shown_as: str | None = None) -> dict[str, Any]:
        """The JSON document of ``masquerade verify --json``: ``{file, watermark, c2pa, note, pixels,
        findings, verdict, exit_code}``. With ``shown_as``, the file is named so (e.g. its download
        name) wherever its path would appear, and a sidecar by its name alone: no path of this machine
        is in the document."""
        c2 = self.c2pa
        sidecar = None if c2.sidecar is None else c2.sidecar.name if shown_as else str(c2.sidecar)
        c2d = {
            "present": c2.present, "valid": c2.valid, "trusted": c2.trusted, "tampered": c2.tampered,
            "signer": c2.signer, "own_key": c2.own_key, "state": c2.state, "issues": list(c2.issues),
            "sidecar": sidecar, "swapper": c2.swapper, "content_id": c2.content_id, "timestamp": c2.timestamp,
        }  # fmt: skip
        px = self.pixels
        doc: dict[str, Any] = {
            "file": str(self.path), "watermark": self.watermark.to_dict(), "c2pa": c2d, "note": self.note,
            "pixels": None if px is None else (px.repair or px.error),
            "findings": self.verdict.findings, "verdict": self.verdict.text, "exit_code": self.verdict.code,
        }  # fmt: skip
        if shown_as is None:
            return doc
        doc = _replace_text(doc, str(self.path), shown_as)
        doc["file"] = shown_as
        return doc


def _replace_text(value: Any, old: str, new: str) -> Any:
    """``value`` (JSON-like) with ``old`` replaced by ``new`` in every string of it."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replace_text(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_text(v, old, new) for v in value]
    return value


def inspect_file(
    path: str | os.PathLike[str], max_frames: int = 32, trust_anchors: str | os.PathLike[str] | None = None
) -> Inspection:
    """Look at one image or video for masquerade's provenance: the watermark in its pixels (a video:
    in up to ``max_frames`` frames sampled across it; an image: decoded past damaged metadata, see
    :func:`read_pixels`), its C2PA manifest (embedded or in a sidecar; ``trust_anchors``: CA
    certificates to trust, default ``$MASQUERADE_C2PA_TRUST_ANCHORS``) and its metadata comment, and
    :func:`judge` them. One-line :class:`~masquerade.errors.InputError` when the file is missing or
    not a file, or when there is nothing at all to report (pixels undecodable, no manifest, no
    comment); ValueError for ``max_frames`` < 1."""
    from ..video.probe import is_video_path

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    pixels = None
    if is_video_path(p):
        wm = Watermarker().detect_file(p, max_frames=max_frames)
    else:
        pixels = read_pixels(p)  # decodes past damaged metadata: a broken manifest never hides the mark
        if pixels.rgb is not None:
            wm = Watermarker().detect(pixels.rgb)
        else:
            wm = WatermarkResult(False, 0.0, None, None, reason="the pixels do not decode")
    c2 = verify_file(p, trust_anchors=trust_anchors)
    note = read_note(p)
    if pixels is not None and pixels.rgb is None and not c2.present and note is None:
        raise InputError(pixels.error or f"{p}: not a readable image")  # nothing at all to report
    return Inspection(p, wm, c2, note, pixels, judge(wm, c2, note, pixels))


__all__ = [
    "BROKEN",
    "FOUND",
    "NONE_FOUND",
    "UNREADABLE",
    "Inspection",
    "NoteClaim",
    "Pixels",
    "Verdict",
    "inspect_file",
    "judge",
    "manifest_state",
    "parse_note",
    "read_pixels",
]

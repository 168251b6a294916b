"""Provenance on every output: one content id, carried by an invisible watermark in the pixels and by
a signed C2PA manifest (embedded, or in a ``.c2pa`` sidecar where the format has no place for one).

:class:`OutputStamp` is made once per output file. For an image, :meth:`OutputStamp.write_image`
marks, encodes, signs and writes atomically. For a video, :meth:`OutputStamp.video_marker` marks each
frame as it is encoded (:meth:`OutputStamp.frame_post`: as it is rendered),
:meth:`OutputStamp.video_finalizer` signs the finished temporary file before it is moved into place,
and :meth:`OutputStamp.video_metadata` gives the container's comment tag.

Turning provenance off takes ``ProvenanceOptions(enabled=False)`` (the command line's
``--no-provenance``); the output then carries a plain-text note saying so (PNG/JPEG/TIFF comment,
video container comment), which :func:`read_note` (and ``masquerade verify``) finds.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..imageio import encode_image
from .credentials import SigningConfig
from .manifest import ProvenanceInfo
from .signing import (
    UnsupportedFormat,
    can_embed,
    mime_for_path,
    sidecar_path,
    sign_bytes,
    sign_file,
    sign_sidecar,
    write_sidecar,
)
from .watermark import FrameMarker, Watermarker, WatermarkPayload

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NOTE_PREFIX = "masquerade:"  # every note this module writes starts so; read_note() looks for it
_NO_COMMENT = frozenset({".bmp"})  # image formats encode_image stores no text in


@dataclass(frozen=True)
class ProvenanceOptions:
    """What to put on outputs. ``enabled=False`` writes neither watermark nor manifest, only a note that
    provenance was turned off. ``signing`` None signs with ``$MASQUERADE_C2PA_CERT``/``_KEY`` when set,
    else with the local key made on first use (see :mod:`masquerade.provenance.credentials`)."""

    enabled: bool = True
    signing: SigningConfig | None = None
    watermark_strength: float = 1.0


@dataclass
class ProvenanceRecord:
    """What was put on one output."""

    enabled: bool
    content_id: str | None = None
    watermarked: bool = False
    watermark_note: str | None = None  # why a frame/image was not marked (too small)
    c2pa: str = "none"  # embedded | sidecar | none
    sidecar: Path | None = None
    frames_marked: int = 0
    frames_unmarked: int = 0
    note_recorded: bool = False  # the plain-text note is in the output's metadata (not in BMP)

    def summary(self) -> str:
        if not self.enabled:
            where = (
                "the output's metadata says so" if self.note_recorded else "this format has no metadata slot"
            )
            return f"provenance turned off (--no-provenance); {where}"
        parts = []
        if self.watermarked:
            frames = f" in {self.frames_marked} frames" if self.frames_marked else ""
            parts.append(f"watermark{frames}")
        else:
            parts.append(f"no watermark ({self.watermark_note or 'not embedded'})")
        if self.c2pa == "embedded":
            parts.append("signed C2PA manifest")
        elif self.c2pa == "sidecar":
            parts.append(f"signed C2PA manifest in {self.sidecar.name if self.sidecar else 'a sidecar'}")
        return f"provenance: {' + '.join(parts)}, content id {self.content_id}"


class VideoMarker:
    """Marks the frames of one video in order — as RGB frames (``marker(rgb)``) or through the luma
    plane of the encoder's ``yuv420p`` frames (``marker.mark_luma(y)``) — and keeps the output's
    :class:`ProvenanceRecord` up to date. One thread, frame order."""

    def __init__(self, marker: FrameMarker, record: ProvenanceRecord) -> None:
        self.marker = marker
        self.record = record

    def __call__(self, rgb: np.ndarray, inplace: bool = False) -> np.ndarray:
        out = self.marker(rgb, inplace=inplace)
        self._update(rgb.shape[:2])
        return out

    def mark_luma(self, y: np.ndarray) -> bool:
        done = self.marker.mark_luma(y)
        self._update(y.shape[:2])
        return done

    def _update(self, shape: tuple[int, ...]) -> None:
        record, marker = self.record, self.marker
        record.frames_marked, record.frames_unmarked = marker.frames, marker.skipped
        record.watermarked = marker.frames > 0
        if marker.skipped and record.watermark_note is None:
            h, w = shape[:2]
            record.watermark_note = f"frames of {w}x{h} are below the watermark's minimum size"


@dataclass
class OutputStamp:
    """Provenance for one output file (see the module docstring)."""

    swapper: str
    options: ProvenanceOptions = field(default_factory=ProvenanceOptions)
    payload: WatermarkPayload = field(default_factory=WatermarkPayload.random)
    # share one across many outputs of the same thread to reuse its per-size tables (not thread-safe)
    watermarker: Watermarker | None = None

    def __post_init__(self) -> None:
        self.record = ProvenanceRecord(
            enabled=self.options.enabled, content_id=self.payload.hex if self.options.enabled else None
        )
        self.info = ProvenanceInfo(self.swapper, content_id=self.payload.hex)

    # ------------------------------------------------------------------------------------ shared

    @property
    def note(self) -> str:
        """The plain-text note stored in the output's metadata."""
        what = f"synthetic media: face swap by masquerade {self.info.tool_version} ({self.swapper} swapper)"
        if self.options.enabled:
            cid = self.payload.hex
            return f"{NOTE_PREFIX} {what}; watermark and C2PA content credentials, content id {cid}"
        return f"{NOTE_PREFIX} {what}; provenance (watermark, C2PA) turned off by the user (--no-provenance)"

    def sidecar_for(self, dest: str | os.PathLike[str]) -> Path | None:
        """The ``.c2pa`` file that will be written beside ``dest``, when its format cannot embed one."""
        if not self.options.enabled:
            return None
        mime = mime_for_path(dest)
        return None if mime and can_embed(mime) else sidecar_path(dest)

    def _wm(self) -> Watermarker:
        if self.watermarker is None:
            self.watermarker = Watermarker(strength=self.options.watermark_strength)
        return self.watermarker

    # ------------------------------------------------------------------------------------ images

    def mark(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` with the watermark (a new array); unchanged when provenance is off."""
        if not self.options.enabled:
            return rgb
        res = self._wm().embed_checked(rgb, self.payload)
        self.record.watermarked = res.embedded
        if not res.embedded:
            self.record.watermark_note = res.reason
            log.info("watermark not embedded: %s", res.reason)  # the record's summary says so
        return res.rgb

    def write_image(
        self,
        path: str | os.PathLike[str],
        rgb: np.ndarray,
        alpha: np.ndarray | None = None,
        quality: int = 95,
    ) -> Path:
        """Mark, encode (format from the extension), sign and atomically write one image. For formats
        without a manifest slot (BMP) the signed sidecar is written first, then the image."""
        p = Path(path)
        data = encode_image(self.mark(rgb), p.suffix, alpha=alpha, quality=quality, comment=self.note)
        self.record.note_recorded = p.suffix.lower() not in _NO_COMMENT
        if self.options.enabled:
            mime = mime_for_path(p) or "application/octet-stream"
            try:
                data = sign_bytes(data, mime, self.info, self.options.signing)
                self.record.c2pa = "embedded"
            except UnsupportedFormat:
                side = sidecar_path(p)
                atomic_write_bytes(side, sign_sidecar(data, self.info, self.options.signing, mime=mime))
                self.record.c2pa, self.record.sidecar = "sidecar", side
        atomic_write_bytes(p, data)
        return p

    # ------------------------------------------------------------------------------------ videos

    def video_marker(self) -> VideoMarker | None:
        """The watermark for one video's frames, in order, keeping this stamp's record (None when
        provenance is off)."""
        if not self.options.enabled:
            return None
        return VideoMarker(self._wm().frame_marker(self.payload), self.record)

    def frame_post(
        self, then: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> Callable[[np.ndarray], np.ndarray] | None:
        """A per-frame hook that applies ``then`` (if any), then the watermark. Call from one thread,
        in frame order (it keeps the mark steady from frame to frame)."""
        marker = self.video_marker()
        if marker is None:
            return then

        def post(rgb: np.ndarray) -> np.ndarray:
            return marker(then(rgb) if then is not None else rgb)

        return post

    def video_metadata(self) -> tuple[tuple[str, str], ...]:
        """Container tags for the output video (its comment: the note)."""
        self.record.note_recorded = True
        return (("comment", self.note),)

    def video_finalizer(
        self, final: str | os.PathLike[str], then: Callable[[Path], None] | None = None
    ) -> Callable[[Path], None] | None:
        """A hook for the finished temporary file (before it is moved to ``final``): runs ``then``, then
        signs the file in place (MP4, MOV, AVI) or writes ``final``'s sidecar (MKV, WebM)."""
        if not self.options.enabled:
            return then
        final_p = Path(final)
        mime = mime_for_path(final_p) or "application/octet-stream"

        def finalize(tmp: Path) -> None:
            if then is not None:
                then(tmp)
            try:
                sign_file(tmp, tmp, mime, self.info, self.options.signing)
                self.record.c2pa = "embedded"
            except UnsupportedFormat:
                side = write_sidecar(
                    tmp, self.info, self.options.signing, mime=mime, sidecar=sidecar_path(final_p)
                )
                self.record.c2pa, self.record.sidecar = "sidecar", side

        return finalize


def read_note(path: str | os.PathLike[str]) -> str | None:
    """The masquerade note in a file's metadata (image comment or video container comment), if any."""
    from ..video.probe import is_video_path

    p = Path(path)
    texts: list[str] = []
    try:
        if is_video_path(p):
            import av

            with av.open(str(p)) as c:
                texts += [str(v) for v in c.metadata.values()]
        else:
            from PIL import Image

            with Image.open(p) as img:
                for v in img.info.values():
                    texts.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                desc = img.getexif().get(270)  # TIFF / WebP ImageDescription
                if desc:
                    texts.append(str(desc))
    except Exception as exc:  # a damaged file: look for the comment in its raw PNG / JPEG structure
        log.debug("metadata not read from %s by its decoder: %s", p, exc)
        try:
            texts = _raw_comments(p)
        except OSError:
            return None
    return next((t.strip() for t in texts if isinstance(t, str) and t.strip().startswith(NOTE_PREFIX)), None)


def png_chunks(data: bytes) -> list[tuple[bytes, int, int, bool]]:
    """(type, offset, data length, CRC matches) of each complete chunk of a PNG stream."""
    out, i = [], len(PNG_SIGNATURE)
    while i + 12 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        end = i + 12 + length
        if end > len(data):
            break
        kind = data[i + 4 : i + 8]
        (crc,) = struct.unpack(">I", data[i + 8 + length : end])
        out.append((kind, i, length, zlib.crc32(data[i + 4 : i + 8 + length]) == crc))
        i = end
    return out


def _raw_comments(p: Path, limit: int = 1 << 26) -> list[str]:
    """Text of the PNG ``tEXt`` / ``iTXt`` chunks or JPEG ``COM`` segments of a file the image decoder
    refused (e.g. a PNG with a damaged manifest chunk), found by walking its structure; CRCs are not
    checked (a comment is an unsigned claim either way). Compressed text is not read."""
    with open(p, "rb") as fh:
        data = fh.read(limit)
    out: list[str] = []
    if data.startswith(PNG_SIGNATURE):
        for kind, at, n, _crc_ok in png_chunks(data):
            body = data[at + 8 : at + 8 + n]
            if kind == b"tEXt" and b"\0" in body:
                out.append(body.split(b"\0", 1)[1].decode("latin-1"))
            elif kind == b"iTXt" and body.count(b"\0") >= 3:
                _key, rest = body.split(b"\0", 1)
                if rest[:1] == b"\0":  # not compressed: flag, method, language\0, translated key\0, text
                    out.append(rest[2:].split(b"\0", 2)[-1].decode("utf-8", "replace"))
            if kind == b"IEND":
                break
    elif data.startswith(b"\xff\xd8"):
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            if marker in (0xD9, 0xDA):  # end of image / start of scan: no header segments after it
                break
            (n,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker == 0xFE:
                out.append(data[i + 4 : i + 2 + n].decode("utf-8", "replace"))
            i += 2 + n
    return out


__all__ = ["NOTE_PREFIX", "OutputStamp", "ProvenanceOptions", "ProvenanceRecord", "read_note"]

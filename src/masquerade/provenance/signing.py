"""Signing: a C2PA manifest embedded in an image or video, or written beside it as a sidecar.

No timestamp authority is contacted (masquerade is offline), so the signing time is not
countersigned.

Formats: c2pa embeds manifests in JPEG, PNG, WebP, TIFF (and GIF, AVIF, HEIC) images and in MP4,
MOV/M4V and AVI videos. For the rest (BMP, MKV, WebM) :func:`sign_bytes` / :func:`sign_file` raise
:class:`UnsupportedFormat`; :func:`write_sidecar` then writes a detached manifest store
(``name.c2pa`` beside ``name.mkv``) bound to the file's bytes by a hash, which
:func:`~masquerade.provenance.verification.verify_file` finds on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import mimetypes
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from ..files import atomic_write_bytes, temp_beside
from .credentials import SigningConfig, load_credentials, resolve_signing_config
from .manifest import ProvenanceError, ProvenanceInfo, c2pa_library, c2pa_settings

SIDECAR_SUFFIX = ".c2pa"

# extension → MIME type for what masquerade reads and writes (mimetypes is platform-dependent)
_MIME_BY_SUFFIX: Mapping[str, str] = MappingProxyType(
    {
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".png": "image/png",
        ".webp": "image/webp",
        ".tif": "image/tiff",
        ".tiff": "image/tiff",
        ".bmp": "image/bmp",
        ".gif": "image/gif",
        ".avif": "image/avif",
        ".heic": "image/heic",
        ".mp4": "video/mp4",
        ".m4v": "video/x-m4v",
        ".mov": "video/quicktime",
        ".avi": "video/x-msvideo",
        ".mkv": "video/x-matroska",
        ".webm": "video/webm",
        ".c2pa": "application/c2pa",
    }
)
# c2pa lists these as supported, but they are manifest stores, not media a manifest can be put in
_NOT_MEDIA = frozenset({"application/c2pa", "application/x-c2pa-manifest-store", "c2pa"})


class UnsupportedFormat(ProvenanceError):
    """c2pa cannot embed a manifest in this format: write a sidecar (:func:`write_sidecar`) or skip."""


def mime_for_path(path: str | os.PathLike[str]) -> str | None:
    """The MIME type for a file name's extension, or None when unknown."""
    suffix = Path(path).suffix.lower()
    return _MIME_BY_SUFFIX.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0]


def _normalize_mime(mime: str) -> str:
    """Lower-case; ``image/jpg`` → ``image/jpeg``; an extension (``.png``) → its MIME type."""
    mime = mime.strip().lower()
    if "/" not in mime:
        return _MIME_BY_SUFFIX.get(mime if mime.startswith(".") else f".{mime}", mime)
    return {"image/jpg": "image/jpeg", "image/x-png": "image/png", "video/mov": "video/quicktime"}.get(
        mime, mime
    )


def can_embed(mime: str) -> bool:
    """Whether c2pa can embed a manifest in media of this MIME type."""
    mime = _normalize_mime(mime)
    if mime in _NOT_MEDIA:
        return False
    return mime in c2pa_library().Builder.get_supported_mime_types()


def _sign(
    source: BinaryIO,
    dest: BinaryIO,
    mime: str,
    info: ProvenanceInfo,
    config: SigningConfig | None,
    embed: bool,
) -> bytes:
    c2pa = c2pa_library()
    resolved = resolve_signing_config(config)
    creds = load_credentials(resolved)
    manifest = info.manifest_definition()
    try:
        with (
            c2pa.Context.from_dict(c2pa_settings()) as ctx,
            c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(creds.alg, creds.chain_pem, creds.key_pem, creds.tsa_url)
            ) as signer,
            c2pa.Builder(manifest, context=ctx) as builder,
        ):
            if not embed:
                builder.set_no_embed()
            return bytes(builder.sign(signer, mime, source, dest))
    except c2pa.C2paError.NotSupported as exc:
        raise UnsupportedFormat(f"c2pa cannot put a manifest in {mime} media") from exc
    except c2pa.C2paError as exc:
        if resolved.made_here:  # read unchecked: say what is wrong with it, if anything
            load_credentials(dataclasses.replace(resolved, made_here=False))
        raise ProvenanceError(f"C2PA signing failed ({mime}): {exc}") from exc


def _require_embeddable(mime: str) -> str:
    mime = _normalize_mime(mime)
    if not can_embed(mime):
        raise UnsupportedFormat(
            f"c2pa cannot embed a manifest in {mime} media (write a {SIDECAR_SUFFIX} sidecar instead)"
        )
    return mime


def sign_bytes(data: bytes, mime: str, info: ProvenanceInfo, config: SigningConfig | None = None) -> bytes:
    """Return the encoded image ``data`` with a signed C2PA manifest embedded.

    Raises :class:`UnsupportedFormat` for formats c2pa cannot embed in (e.g. ``image/bmp``); see
    :func:`sign_sidecar`. Other failures (unusable key or certificate) raise :class:`ProvenanceError`.
    """
    mime = _require_embeddable(mime)
    out = io.BytesIO()
    _sign(io.BytesIO(data), out, mime, info, config, embed=True)
    return out.getvalue()


def sign_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    mime: str | None,
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
) -> Path:
    """Write ``src_path`` with a signed C2PA manifest embedded to ``dst_path`` (which may be ``src_path``).

    Meant for videos (``video/mp4``, ``video/quicktime``, ``video/x-m4v``, ``video/x-msvideo``) and
    works for images too. Python hands the c2pa library file handles, but the library buffers the
    asset: signing a file peaks at about 2.2 × its size in memory (102 MB: +225 MB measured), the one
    part of a video swap whose memory grows with the video's length. ``mime`` None takes it from the
    extension of ``dst_path`` (else ``src_path``). ``dst_path`` is replaced atomically, so it is left
    untouched when signing fails. Raises :class:`UnsupportedFormat` for ``video/x-matroska`` and
    ``video/webm`` (see :func:`write_sidecar`).
    """
    src, dst = Path(src_path), Path(dst_path)
    mime = mime or mime_for_path(dst) or mime_for_path(src)
    if not mime:
        raise UnsupportedFormat(f"{dst}: cannot tell the media type from the extension")
    mime = _require_embeddable(mime)
    # named like every temporary of ours (``.NAME.HOST-PID.XXXX.c2pa-part.EXT``), so that one left by a
    # killed process is removed by the next run writing the same file (masquerade.files.temp_beside)
    try:
        tmp = temp_beside(dst, ".c2pa-part" + dst.suffix)
    except OSError as exc:
        raise ProvenanceError(f"cannot sign {src} into {dst}: {exc}") from exc
    try:
        with open(tmp, "w+b") as fout, open(src, "rb") as fin:
            _sign(fin, fout, mime, info, config, embed=True)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copymode(dst if dst.exists() else src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise ProvenanceError(f"cannot sign {src} into {dst}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return dst


class _Discard(io.RawIOBase):
    """A seekable sink: c2pa copies the asset to its destination even when it does not embed."""

    def __init__(self) -> None:
        self._pos = 0
        self._end = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return 0

    def write(self, b: Any) -> int:
        n = len(memoryview(b))
        self._pos += n
        self._end = max(self._end, self._pos)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._end}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def sign_sidecar(
    media: bytes | str | os.PathLike[str],
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
    mime: str | None = None,
) -> bytes:
    """A signed, detached C2PA manifest store for ``media`` (bytes or a file), bound to its exact bytes.

    Works for any format (the whole file is hashed), including those c2pa cannot embed in (BMP, MKV,
    WebM). Store it as :func:`sidecar_path` of the media file (see :func:`write_sidecar`).
    """
    if isinstance(media, bytes | bytearray):
        mime = mime or "application/octet-stream"
        return _sign(io.BytesIO(bytes(media)), _Discard(), mime, info, config, embed=False)
    path = Path(media)
    mime = mime or mime_for_path(path) or "application/octet-stream"
    try:
        with open(path, "rb") as fh:
            return _sign(fh, _Discard(), mime, info, config, embed=False)
    except OSError as exc:
        raise ProvenanceError(f"cannot read {path} to sign it: {exc}") from exc


def sidecar_path(media_path: str | os.PathLike[str]) -> Path:
    """Where a media file's detached manifest lives: the same name with ``.c2pa`` (c2patool's convention)."""
    return Path(media_path).with_suffix(SIDECAR_SUFFIX)


def write_sidecar(
    media_path: str | os.PathLike[str],
    info: ProvenanceInfo,
    config: SigningConfig | None = None,
    *,
    mime: str | None = None,
    sidecar: str | os.PathLike[str] | None = None,
) -> Path:
    """Sign ``media_path`` into a detached manifest written to ``sidecar`` (default :func:`sidecar_path`).

    For a file written to a temporary name first, sign the temporary file and pass the final name's
    sidecar: ``write_sidecar(tmp, info, sidecar=sidecar_path(final))``.
    """
    manifest = sign_sidecar(Path(media_path), info, config, mime=mime)
    out = Path(sidecar) if sidecar is not None else sidecar_path(media_path)
    try:
        atomic_write_bytes(out, manifest)
    except OSError as exc:
        raise ProvenanceError(f"cannot write the C2PA sidecar {out}: {exc}") from exc
    return out

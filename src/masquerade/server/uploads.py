"""Receiving an upload (``POST /api/uploads``): the multipart body is parsed as it streams in and its
``file`` field written straight to the upload's folder, counting bytes as they arrive. The size limit
holds for any body, a chunked one (no ``Content-Length``) included: past it, reading stops at once and
the request is answered 413 with ``Connection: close`` (the rest of the body is never read, and the
caller deletes what was written). Nothing is spooled anywhere else (no temporary file of the form
parser's)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

SLACK = 65536  # bytes of a body besides its file: the form's boundaries, part headers, small fields
FLUSH = 1 << 20  # file bytes gathered before a write


class _TooLarge(Exception):
    pass


class _FileField:
    """The parser's callbacks: the data of the first part named ``file``, gathered for writing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.filename = ""
        self.size = 0
        self.seen = False  # a part named "file" has begun
        self.pending = bytearray()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._in_file = False

    def on_part_begin(self) -> None:
        self._disposition, self._in_file = b"", False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") == b"file" and not self.seen:
            self.seen, self._in_file = True, True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise _TooLarge
            self.pending += data[start:end]

    def on_part_end(self) -> None:
        self._in_file = False

    def take(self) -> bytes:
        out = bytes(self.pending)
        self.pending.clear()
        return out


def _refuse(status: int, detail: str) -> HTTPException:
    # the body is not read to its end: the connection cannot carry another request
    return HTTPException(status_code=status, detail=detail, headers={"Connection": "close"})


async def receive_file(request: Request, dest: Path, max_bytes: int, limit: str) -> tuple[str, int]:
    """Write the ``file`` field of ``request``'s multipart body to ``dest``: (the client's file name,
    the file's size). 413 ``upload larger than {limit}`` as soon as the file passes ``max_bytes`` or the
    body ``max_bytes`` + :data:`SLACK` (a declared ``Content-Length`` over that is refused before any of
    the body is read); 415 not a multipart form, 400 a malformed one or one without ``file``."""
    too_large = _refuse(413, f"upload larger than {limit}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + SLACK:
        raise too_large
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise _refuse(415, "send the file as multipart/form-data in a field named 'file'")
    field = _FileField(max_bytes)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": field.on_part_begin,
            "on_header_field": field.on_header_field,
            "on_header_value": field.on_header_value,
            "on_header_end": field.on_header_end,
            "on_headers_finished": field.on_headers_finished,
            "on_part_data": field.on_part_data,
            "on_part_end": field.on_part_end,
        },
    )
    received = 0
    with dest.open("wb") as fh:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes + SLACK:
                    raise too_large
                parser.write(chunk)
                if len(field.pending) >= FLUSH:
                    await _write(fh, field.take())
            parser.finalize()
        except _TooLarge:
            raise too_large from None
        except (FormParserError, ValueError):
            raise _refuse(400, "malformed multipart/form-data body") from None
        except ClientDisconnect:
            raise _refuse(400, "the upload was cut short") from None
        if field.pending:
            await _write(fh, field.take())
    if not field.seen:
        raise _refuse(400, "the form has no field named 'file'")
    return field.filename, field.size


async def _write(fh: BinaryIO, data: bytes) -> None:
    await anyio.to_thread.run_sync(fh.write, data)

"""Generate a corpus of malformed and adversarial inputs for ``masquerade swap``.

    python scripts/make_malformed_corpus.py --out DIR [--seed 0] [--force]

Writes about 250 files (< 30 MB, a few seconds) built from the bundled sample photos and synthetic
data, plus ``DIR/manifest.json``: one entry per file with its category and what ``masquerade swap``
must do with it, as the target (``expect``) and as the source (``expect_as_source``):

* ``"output"``: exit 0 and a valid, decodable output (``output_size`` [width, height] when known),
* ``"error"``: a non-zero exit with exactly one line on stderr (``exit`` / ``exit_as_source``: the
  status when it is certain: 2 unusable input, 3 no face),
* ``"either"``: one of the two (a damaged file may still decode in part).

``warning``: for an entry swapped only in part (an animation's first frame, a video with fewer frames
than it declares), words that the one ``warning:`` line of a successful run as the target must hold;

``warning_as_source``: the same for a successful run with the entry as the source photo.
A few entries are not regular files (a FIFO, a link to ``/dev/zero``): they must be refused unopened.

The contract for every entry, whatever it expects: no crash, no traceback, no hang, no partial or
temporary file left, and the input left byte-for-byte unchanged (``tests/test_malformed_corpus.py``).
The same holds for a run that is stopped: :func:`stoppable_clip` is the video that
``tests/test_signals.py`` stops mid-swap (SIGTERM, SIGHUP, SIGINT; the CLI, a batch, Ray), which must
exit 128 + the signal with one line on stderr and leave nothing but finished outputs.

The set is deterministic for a given ``--seed`` (random flips and noise come from it) and the entry
ids do not depend on it, so ``entry_specs()`` lists the corpus without writing anything.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from masquerade import sample_path
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from masquerade import sample_path

MANIFEST = "manifest.json"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".flv"}
# The astronaut's face is about x 180-272, y 70-178; Grace Hopper's x 168-357, y 130-335.
ASTRO_HEAD = (140, 30, 312, 218)  # (x0, y0, x1, y1), face plus a margin
HOPPER_HEAD = (90, 50, 435, 415)
GLASSES = "the source wears glasses"  # the advice a source photo of Grace Hopper gets (her glasses)


# ---------------------------------------------------------------- entries


@dataclass
class Spec:
    """One corpus entry: how to build it and what ``masquerade swap`` must do with it."""

    id: str
    name: str  # file name inside the corpus folder (spaces and unicode allowed)
    category: str
    build: Callable[[Path, Ctx], None] = field(repr=False)
    expect: str = "either"  # as the target: output | error | either
    expect_as_source: str = "error"
    exit: int | None = None  # exit status when expect == "error" and it is certain
    exit_as_source: int | None = None
    output_size: tuple[int, int] | None = None  # (width, height) of the output as the target
    note: str = ""
    warning: str = ""  # as the target, on success: one "warning:" line on stderr holding these words
    warning_as_source: str = ""  # the same, as the source photo
    known_issue: str = ""  # a contract violation not fixed yet: the test expects it to fail (xfail)

    @property
    def kind(self) -> str:
        return "video" if Path(self.name).suffix.lower() in VIDEO_SUFFIXES else "image"

    def manifest(self) -> dict[str, object]:
        return {
            "id": self.id,
            "path": self.name,
            "category": self.category,
            "kind": self.kind,
            "expect": self.expect,
            "exit": self.exit,
            "expect_as_source": self.expect_as_source,
            "exit_as_source": self.exit_as_source,
            "output_size": list(self.output_size) if self.output_size else None,
            "note": self.note,
            "warning": self.warning or None,
            "warning_as_source": self.warning_as_source or None,
            "known_issue": self.known_issue or None,
        }


class Ctx:
    """Base material shared by the builders, made once and cached; ``rng(key)`` is per entry."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._cache: dict[str, object] = {}

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def get(self, key: str, make: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # images
    @property
    def astro(self) -> np.ndarray:
        return self.get("astro", lambda: _rgb(sample_path("astronaut")))  # type: ignore[return-value]

    @property
    def hopper(self) -> np.ndarray:
        return self.get("hopper", lambda: _rgb(sample_path("grace_hopper")))  # type: ignore[return-value]

    @property
    def astro_jpg(self) -> bytes:
        return self.get("astro_jpg", lambda: sample_path("astronaut").read_bytes())  # type: ignore[return-value]

    @property
    def astro_png(self) -> bytes:
        return self.get("astro_png", lambda: encode(self.astro, "PNG"))  # type: ignore[return-value]

    @property
    def astro_webp(self) -> bytes:
        return self.get("astro_webp", lambda: encode(self.astro, "WEBP", quality=80))  # type: ignore[return-value]

    @property
    def small_png(self) -> bytes:
        """A 16x16 gray PNG: the carrier for patched headers."""
        return self.get("small_png", lambda: encode(np.full((16, 16, 3), 128, np.uint8), "PNG"))  # type: ignore[return-value]

    # videos
    def clip(self, key: str = "clip", **kw: object) -> bytes:
        return self.get(f"video:{key}", lambda: make_clip(self, **kw))  # type: ignore[return-value]

    @property
    def mp4(self) -> bytes:
        """10 frames 320x240 H.264 + AAC, moov at the end (the muxer's default)."""
        return self.clip("mp4")

    @property
    def mp4_fast(self) -> bytes:
        """The same clip with the moov atom first (``movflags=faststart``)."""
        return self.clip("mp4_fast", faststart=True)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def encode(arr: np.ndarray | Image.Image, fmt: str, mode: str | None = None, **kw: object) -> bytes:
    img = (
        arr if isinstance(arr, Image.Image) else Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    )
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def head(rgb: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.asarray(Image.fromarray(rgb[y0:y1, x0:x1]).resize(size, Image.BILINEAR))


def write(data: bytes) -> Callable[[Path, Ctx], None]:
    def build(path: Path, ctx: Ctx) -> None:
        path.write_bytes(data)

    return build


def write_from(make: Callable[[Ctx], bytes]) -> Callable[[Path, Ctx], None]:
    def build(path: Path, ctx: Ctx) -> None:
        path.write_bytes(make(ctx))

    return build


# ---------------------------------------------------------------- byte-level helpers


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        yield data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n


def png_ihdr(width: int, height: int, depth: int = 8, ctype: int = 2) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))


def png_with_ihdr(data: bytes, width: int, height: int) -> bytes:
    """A real PNG whose IHDR is patched to declare ``width`` x ``height`` (CRC fixed)."""
    d = bytearray(data)
    d[16:24] = struct.pack(">II", width, height)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])) & 0xFFFFFFFF)
    return bytes(d)


def png_insert(data: bytes, chunk: bytes, before: bytes = b"IDAT") -> bytes:
    i = data.find(before) - 4
    return data[:i] + chunk + data[i:]


def png_bomb(width: int, height: int, depth: int, ctype: int, level: int = 9) -> bytes:
    """A complete, valid PNG of zeros: tiny on disk, ``width*height`` pixels once inflated."""
    bpp = {0: 1, 2: 3, 4: 2, 6: 4, 3: 1}[ctype]
    row = b"\0" * (1 + (width * bpp * depth + 7) // 8)
    z = zlib.compressobj(level)
    parts = [z.compress(row) for _ in range(height)]
    idat = b"".join(parts) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_ihdr(width, height, depth, ctype)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def zlib_bomb(n: int) -> bytes:
    z = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    return b"".join(z.compress(block) for _ in range(n >> 20)) + z.flush()


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of 0xFF, segment length) up to the first SOS."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (n,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, pos, n
        if marker == 0xDA:
            return
        pos += 2 + n


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    d = bytearray(data)
    for marker, pos, _ in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            d[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(d)
    raise ValueError("no SOF marker")


def jpeg_scan_start(data: bytes) -> int:
    for marker, pos, n in jpeg_segments(data):
        if marker == 0xDA:
            return pos + 2 + n
    raise ValueError("no SOS marker")


def jpeg_insert_app(data: bytes, payload: bytes, marker: int = 0xE1) -> bytes:
    """Insert an APPn segment right after SOI."""
    return data[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + data[2:]


def flip_bytes(data: bytes, rng: np.random.Generator, lo: int, hi: int, count: int) -> bytes:
    d = bytearray(data)
    hi = min(hi, len(d))
    for pos in rng.integers(lo, hi, count):
        d[int(pos)] ^= int(rng.integers(1, 256))
    return bytes(d)


def riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(fourcc, offset, size) of the top-level chunks of a RIFF/WEBP file."""
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (n,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        yield kind, pos, n
        pos += 8 + n + (n & 1)


MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta", b"dinf"}


def mp4_atoms(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Iterator[tuple]:
    """(path, offset, size, header length) of every atom, descending into the usual containers."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        hdr = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr:
            return
        yield kind, pos, size, hdr
        if kind in MP4_CONTAINERS and depth < 8:
            yield from mp4_atoms(data, pos + hdr, min(pos + size, end), depth + 1)
        pos += size


def mp4_find(data: bytes, kind: bytes, nth: int = 0) -> tuple[int, int, int]:
    """(offset, size, header length) of the ``nth`` atom of this type (depth-first)."""
    found = [(pos, size, hdr) for k, pos, size, hdr in mp4_atoms(data) if k == kind]
    if len(found) <= nth:
        raise ValueError(f"no {kind!r} atom")
    return found[nth]


def mp4_patch(data: bytes, kind: bytes, offset: int, value: bytes, nth: int = 0) -> bytes:
    """Overwrite bytes at ``offset`` from the start of an atom's body (after its 8-byte header)."""
    pos, _, hdr = mp4_find(data, kind, nth)
    d = bytearray(data)
    d[pos + hdr + offset : pos + hdr + offset + len(value)] = value
    return bytes(d)


def mp4_cut(data: bytes, kind: bytes) -> bytes:
    pos, size, _ = mp4_find(data, kind)
    return data[:pos] + data[pos + size :]


def mp4_rename(data: bytes, kind: bytes, new: bytes, nth: int = 0) -> bytes:
    pos, _, _ = mp4_find(data, kind, nth)
    return data[: pos + 4] + new + data[pos + 8 :]


def mp4_video_trak(data: bytes, nth_kind: bytes) -> int:
    """Index among all ``nth_kind`` atoms of the one in the video track (handler 'vide')."""
    traks = [(pos, size) for k, pos, size, _ in mp4_atoms(data) if k == b"trak"]
    kinds = [pos for k, pos, _, _ in mp4_atoms(data) if k == nth_kind]
    for pos, size in traks:
        if b"vide" in data[pos : pos + size]:
            for i, p in enumerate(kinds):
                if pos < p < pos + size:
                    return i
    raise ValueError("no video track")


# ---------------------------------------------------------------- video helpers


def make_clip(
    ctx: Ctx,
    frames: int = 10,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    audio: bool = True,
    face: bool = True,
    faststart: bool = False,
    fmt: str = "mp4",
    codec: str = "libx264",
    audio_codec: str = "aac",
    rotation: int = 0,
    pts_offset: int = 0,
) -> bytes:
    """A short clip of the astronaut's head drifting right over a gradient, with a quiet tone."""
    import av

    hd = head(ctx.astro, ASTRO_HEAD, (105, 115)) if face else None
    opts = {"fflags": "+bitexact"}  # no random ids or dates: the corpus is reproducible
    if faststart:
        opts["movflags"] = "faststart"
    # faststart rewrites the file at the end, so the muxer needs a real path
    fd, tmp = tempfile.mkstemp(suffix=".tmp")
    os.close(fd)
    try:
        _write_clip(
            av, tmp, fmt, opts, codec, audio_codec, audio, frames, size, fps, rotation, pts_offset, hd
        )
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def _write_clip(av, path, fmt, opts, codec, audio_codec, audio, frames, size, fps, rotation, pts_offset, hd):
    w, h = size
    with av.open(path, "w", format=fmt, options=opts) as c:
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = {"mjpeg": "yuvj420p", "ffv1": "yuv444p"}.get(
            codec, "yuv444p" if w % 2 or h % 2 else "yuv420p"
        )
        if codec == "libx264":
            vs.options = {"crf": "26", "preset": "ultrafast"}
        if rotation:
            vs.set_display_rotation(rotation)
        a_s = c.add_stream(audio_codec, rate=44100 if audio_codec != "libopus" else 48000) if audio else None
        for i in range(frames):
            img = np.full((h, w, 3), 70, np.uint8)
            img[:, :, 2] = np.linspace(40, 160, w, dtype=np.uint8)[None, :]
            if hd is not None and w >= 150 and h >= 130:
                x = min(10 + 4 * i, w - 106)
                img[10:125, x : x + 105] = hd
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_offset:
                frame.pts = pts_offset + i
                frame.time_base = Fraction(1, fps)
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if a_s is not None:
            rate = a_s.codec_context.sample_rate
            n = int(rate * frames / fps)
            t = np.arange(n) / rate
            tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt_a = "s16" if audio_codec.startswith("pcm") else "fltp"
            chunk = 960 if audio_codec == "libopus" else 1024
            for k in range(0, n, chunk):
                part = tone[None, k : k + chunk]
                if fmt_a == "s16":
                    part = (part * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(part, format=fmt_a, layout="mono")
                af.sample_rate = rate
                for p in a_s.encode(af):
                    c.mux(p)
            for p in a_s.encode(None):
                c.mux(p)


def stoppable_clip(ctx: Ctx, frames: int = 300, audio: bool = True) -> bytes:
    """A valid clip long enough to be stopped mid-swap (``tests/test_signals.py``: SIGTERM, SIGHUP and
    SIGINT while frames are being written, on the CLI, a batch and Ray): 12 s of the astronaut's head
    over a gradient, 320x240 at 25 fps, with a tone; a keyframe every 250 frames (x264's default), so
    ``--segment-seconds`` under 10 gives two segments."""
    return ctx.clip(f"stoppable-{frames}-{audio}", frames=frames, audio=audio, faststart=True)


def audio_only(ctx: Ctx) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for k in range(10):
            af = av.AudioFrame.from_ndarray(
                (0.1 * np.sin(np.arange(1024) / 7 + k)).astype(np.float32)[None], format="fltp", layout="mono"
            )
            af.sample_rate = 44100
            for p in s.encode(af):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def ts_resolution_change(ctx: Ctx) -> bytes:
    """Two MPEG-TS clips of different sizes back to back: the frame size changes mid-stream."""
    return make_clip(ctx, frames=6, fmt="mpegts", audio=False) + make_clip(
        ctx, frames=6, size=(256, 192), fmt="mpegts", audio=False
    )


# ---------------------------------------------------------------- the corpus


def entry_specs() -> list[Spec]:
    specs: list[Spec] = []

    def add(id: str, ext: str, category: str, build: Callable[[Path, Ctx], None], **kw: object) -> None:
        name = kw.pop("name", None) or f"{id}{ext}"
        specs.append(Spec(id=id, name=str(name), category=category, build=build, **kw))  # type: ignore[arg-type]

    ok_img = {"expect": "output", "expect_as_source": "output"}
    ok_512 = {**ok_img, "output_size": (512, 512)}
    input_error = {"expect": "error", "exit": 2, "expect_as_source": "error", "exit_as_source": 2}
    no_face = {"expect": "error", "exit": 3, "expect_as_source": "error", "exit_as_source": 3}
    video_ok = {"expect": "output", "expect_as_source": "error", "exit_as_source": 2}
    video_error = {"expect": "error", "exit": 2, "expect_as_source": "error", "exit_as_source": 2}
    video_either = {"expect": "either", "expect_as_source": "error", "exit_as_source": 2}

    # -- valid references (the harness itself must accept these)
    add("valid-jpeg", ".jpg", "valid", write_from(lambda c: c.astro_jpg), **ok_512)
    add("valid-png", ".png", "valid", write_from(lambda c: c.astro_png), **ok_512)
    add("valid-webp", ".webp", "valid", write_from(lambda c: c.astro_webp), **ok_512)
    add("valid-mp4", ".mp4", "valid", write_from(lambda c: c.mp4), **video_ok, output_size=(320, 240))

    # -- truncated at many byte offsets
    for frac in (0.0005, 0.002, 0.01, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.999):
        tag = f"{frac * 100:g}pct".replace(".", "_")
        small = frac < 0.05

        def cut(key: str, f: float = frac) -> Callable[[Ctx], bytes]:
            return lambda c: (lambda d: d[: max(1, int(len(d) * f))])(getattr(c, key))

        kw = input_error if small else {"expect": "either", "expect_as_source": "either"}
        add(f"truncated-jpeg-{tag}", ".jpg", "truncated", write_from(cut("astro_jpg")), **kw)
        add(f"truncated-png-{tag}", ".png", "truncated", write_from(cut("astro_png")), **kw)
        add(f"truncated-webp-{tag}", ".webp", "truncated", write_from(cut("astro_webp")), **kw)
        add(
            f"truncated-mp4-{tag}",
            ".mp4",
            "truncated",
            write_from(cut("mp4")),
            **video_error if small else video_either,
        )
        add(
            f"truncated-mp4-faststart-{tag}", ".mp4", "truncated", write_from(cut("mp4_fast")), **video_either
        )
    add(
        "truncated-jpeg-no-eoi",
        ".jpg",
        "truncated",
        write_from(lambda c: c.astro_jpg[:-2]),
        expect="either",
        expect_as_source="either",
        note="only the final EOI marker is missing: every pixel is there",
    )
    add("truncated-png-no-iend", ".png", "truncated", write_from(lambda c: c.astro_png[:-12]), **ok_512)

    # -- garbled bytes: random flips in the header and in the data
    def garble(key: str, region: str, count: int, tag: str) -> Callable[[Ctx], bytes]:
        def make(c: Ctx) -> bytes:
            data = getattr(c, key)
            if region == "header":
                lo, hi = (2, 160) if key == "astro_jpg" else (8, 120)
            else:
                lo = jpeg_scan_start(data) + 16 if key == "astro_jpg" else 100 if key == "astro_png" else 64
                hi = len(data) - 16
            return flip_bytes(data, c.rng(tag), lo, hi, count)

        return make

    for key, ext, fmt in (
        ("astro_jpg", ".jpg", "jpeg"),
        ("astro_png", ".png", "png"),
        ("astro_webp", ".webp", "webp"),
    ):
        for region, counts in (("header", (1, 4, 16)), ("data", (1, 8, 64))):
            for count in counts:
                tag = f"garbled-{fmt}-{region}-{count}"
                add(
                    tag,
                    ext,
                    "garbled",
                    write_from(garble(key, region, count, tag)),
                    expect="either",
                    expect_as_source="either",
                )
    for region, lo_hi, count in (
        ("header", (8, 900), 4),
        ("header", (8, 900), 32),
        ("data", None, 8),
        ("data", None, 200),
    ):
        tag = f"garbled-mp4-{region}-{count}"

        def make_mp4(c: Ctx, lo_hi=lo_hi, count=count, tag=tag) -> bytes:
            data = c.mp4_fast
            pos, size, _ = mp4_find(data, b"mdat")
            lo, hi = lo_hi or (pos + 16, pos + size)
            return flip_bytes(data, c.rng(tag), lo, hi, count)

        add(tag, ".mp4", "garbled", write_from(make_mp4), **video_either)
    add(
        "garbled-random-bytes-jpg",
        ".jpg",
        "garbled",
        write_from(lambda c: c.rng("rnd").bytes(30_000)),
        **input_error,
    )
    add(
        "garbled-random-bytes-mp4",
        ".mp4",
        "garbled",
        write_from(lambda c: c.rng("rndv").bytes(30_000)),
        **video_error,
    )
    add(
        "garbled-png-bad-crc",
        ".png",
        "garbled",
        write_from(lambda c: c.astro_png[:29] + b"\0\0\0\0" + c.astro_png[33:]),
        expect="either",
        expect_as_source="either",
    )
    add(
        "garbled-png-random-idat",
        ".png",
        "garbled",
        write_from(
            lambda c: (
                c.astro_png[:33] + png_chunk(b"IDAT", c.rng("idat").bytes(20_000)) + png_chunk(b"IEND", b"")
            )
        ),
        **input_error,
    )

    # -- zero bytes, only a header
    for ext in (".jpg", ".png", ".webp", ".mp4", ".mov", ".bmp", ".tif"):
        add(
            f"zero-byte{ext.replace('.', '-')}",
            ext,
            "zero-byte",
            write(b""),
            **(video_error if ext in VIDEO_SUFFIXES else input_error),
        )
    add("header-only-jpeg-soi", ".jpg", "header-only", write(b"\xff\xd8"), **input_error)
    add("header-only-jpeg-app0", ".jpg", "header-only", write_from(lambda c: c.astro_jpg[:20]), **input_error)
    add(
        "header-only-jpeg-to-sos",
        ".jpg",
        "header-only",
        write_from(lambda c: c.astro_jpg[: jpeg_scan_start(c.astro_jpg)]),
        expect="error",
        expect_as_source="error",
    )
    add("header-only-png-signature", ".png", "header-only", write(b"\x89PNG\r\n\x1a\n"), **input_error)
    add("header-only-png-ihdr", ".png", "header-only", write_from(lambda c: c.astro_png[:33]), **input_error)
    add(
        "header-only-png-ihdr-iend",
        ".png",
        "header-only",
        write_from(lambda c: c.astro_png[:33] + png_chunk(b"IEND", b"")),
        **input_error,
    )
    add(
        "header-only-webp-riff",
        ".webp",
        "header-only",
        write_from(lambda c: c.astro_webp[:12]),
        **input_error,
    )
    add(
        "header-only-webp-vp8", ".webp", "header-only", write_from(lambda c: c.astro_webp[:30]), **input_error
    )
    add("header-only-gif", ".gif", "header-only", write(b"GIF89a\x40\x01\xf0\x00\x00\x00\x00"), **input_error)
    add(
        "header-only-bmp",
        ".bmp",
        "header-only",
        write(
            b"BM"
            + struct.pack("<IHHI", 54 + 300 * 300 * 3, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, 300, 300, 1, 24, 0, 0, 0, 0, 0, 0)
        ),
        **input_error,
    )
    add("header-only-tiff", ".tif", "header-only", write(b"II*\x00\x08\x00\x00\x00"), **input_error)
    add(
        "header-only-mp4-ftyp",
        ".mp4",
        "header-only",
        write_from(lambda c: c.mp4[: mp4_find(c.mp4, b"ftyp")[1]]),
        **video_error,
    )
    add(
        "header-only-mp4-moov-no-mdat",
        ".mp4",
        "header-only",
        write_from(lambda c: c.mp4_fast[: mp4_find(c.mp4_fast, b"mdat")[0]]),
        **video_error,
    )

    # -- huge declared dimensions
    for w, h in (
        (100_000, 100_000),
        (60_000, 60_000),
        (7_100, 7_100),
        (1, 100_000_000),
        (2**31 - 1, 2**31 - 1),
    ):
        add(
            f"huge-png-{w}x{h}",
            ".png",
            "huge-dimensions",
            write_from(lambda c, w=w, h=h: png_with_ihdr(c.small_png, w, h)),
            **input_error,
        )
    add(
        "huge-png-0x0",
        ".png",
        "huge-dimensions",
        write_from(lambda c: png_with_ihdr(c.small_png, 0, 0)),
        **input_error,
    )
    for w, h in ((65_500, 65_500), (8_000, 8_000), (65_535, 1), (0, 0)):
        add(
            f"huge-jpeg-sof-{w}x{h}",
            ".jpg",
            "huge-dimensions",
            write_from(lambda c, w=w, h=h: jpeg_with_size(c.astro_jpg, w, h)),
            **(input_error if w * h > 50e6 or w == 0 else {"expect": "error", "expect_as_source": "error"}),
        )
    add("huge-webp-vp8x-16384", ".webp", "huge-dimensions", write_from(lambda c: huge_webp(c)), **input_error)
    add("huge-gif-screen-65535", ".gif", "huge-dimensions", write_from(lambda c: huge_gif(c)), **input_error)
    add(
        "huge-bmp-50000",
        ".bmp",
        "huge-dimensions",
        write(
            b"BM"
            + struct.pack("<IHHI", 1000, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, 50_000, 50_000, 1, 24, 0, 0, 0, 0, 0, 0)
            + b"\0" * 946
        ),
        **input_error,
    )
    add("huge-tiff-100000", ".tif", "huge-dimensions", write_from(lambda c: huge_tiff(c)), **input_error)
    add(
        "huge-mp4-frames-56mp",
        ".mp4",
        "huge-dimensions",
        write_from(huge_frames_mp4),
        **video_error,
        note="a real 7500x7500 H.264 frame (56 MP, over the default 50 MP limit): refused before decoding",
    )
    add("huge-mp4-tkhd-stsd", ".mp4", "huge-dimensions", write_from(lambda c: huge_mp4(c)), **video_either)

    # -- decompression bombs: small files that inflate to far more than the pixel limit
    add(
        "bomb-png-1bit-100MP",
        ".png",
        "bomb",
        write_from(lambda c: png_bomb(10_000, 10_000, 1, 0)),
        **input_error,
    )
    add(
        "bomb-png-gray-64MP",
        ".png",
        "bomb",
        write_from(lambda c: png_bomb(8_000, 8_000, 8, 0)),
        **input_error,
    )
    add(
        "bomb-png-rgba16-51MP",
        ".png",
        "bomb",
        write_from(lambda c: png_bomb(7_150, 7_150, 16, 6)),
        **input_error,
    )
    add(
        "bomb-png-rgba16-4MP-under-limit",
        ".png",
        "bomb",
        write_from(lambda c: png_bomb(2_000, 2_000, 16, 6)),
        **no_face,
    )
    add(
        "bomb-png-ztxt-64MB",
        ".png",
        "bomb",
        write_from(
            lambda c: png_insert(c.astro_png, png_chunk(b"zTXt", b"Comment\0\0" + zlib_bomb(1 << 26)))
        ),
        expect="either",
        expect_as_source="either",
    )
    add(
        "bomb-png-iccp-64MB",
        ".png",
        "bomb",
        write_from(lambda c: png_insert(c.astro_png, png_chunk(b"iCCP", b"icc\0\0" + zlib_bomb(1 << 26)))),
        expect="either",
        expect_as_source="either",
    )
    add(
        "bomb-png-idat-tail-128MB",
        ".png",
        "bomb",
        write_from(
            lambda c: png_insert(c.astro_png, png_chunk(b"IDAT", zlib_bomb(1 << 27)[2:]), before=b"IEND")
        ),
        expect="either",
        expect_as_source="either",
    )
    add(
        "bomb-png-ztxt-hides-20000x20000",
        ".png",
        "bomb",
        write_from(
            lambda c: png_insert(
                png_bomb(20_000, 20_000, 1, 0), png_chunk(b"zTXt", b"Comment\0\0" + zlib_bomb(1 << 21))
            )
        ),
        **input_error,
        note="Pillow stops at the text chunk before its size check; 400 MP must not reach another decoder",
    )
    add(
        "bomb-png-chunk-length-4GB",
        ".png",
        "bomb",
        write_from(png_chunk_claims_4gb),
        **input_error,
        note="47 bytes; OpenCV 4.11 spent 7 s and 4 GB on it before the chunk-length check (fuzzing find)",
    )
    add(
        "bomb-png16-chunk-length-4GB",
        ".png",
        "bomb",
        write_from(lambda c: png_chunk_claims_4gb(c, depth=16, ctype=2)),
        **input_error,
        note="the same on the 16-bit colour path, which decodes with OpenCV by design",
    )
    add(
        "bomb-png16-iend-with-data",
        ".png",
        "bomb",
        write_from(png16_iend_with_data),
        **input_error,
        note="OpenCV 4.11 read on past a non-empty IEND: 2.6 s and 4 GB before (fuzzing find)",
    )
    add(
        "bomb-png16-trailing-bytes",
        ".png",
        "bomb",
        write_from(lambda c: png16(c, "rgb") + struct.pack(">I", 0xF7FF000C) + b"IDAT" + b"\0" * 8),
        **ok_512,
        note="a valid 16-bit PNG followed by bytes that claim a 4 GB chunk: only the PNG is decoded",
    )
    add(
        "bomb-tiff-deflate-100MP",
        ".tif",
        "bomb",
        write_from(
            lambda c: encode(Image.new("L", (10_000, 10_000)), "TIFF", compression="tiff_adobe_deflate")
        ),
        **input_error,
    )

    # -- wrong extensions
    add("wrongext-png-as-jpg", ".jpg", "wrong-extension", write_from(lambda c: c.astro_png), **ok_512)
    add("wrongext-jpeg-as-png", ".png", "wrong-extension", write_from(lambda c: c.astro_jpg), **ok_512)
    add("wrongext-webp-as-jpg", ".jpg", "wrong-extension", write_from(lambda c: c.astro_webp), **ok_512)
    add(
        "wrongext-bmp-as-png",
        ".png",
        "wrong-extension",
        write_from(lambda c: encode(c.astro, "BMP")),
        **ok_512,
    )
    add(
        "wrongext-tiff-as-jpeg",
        ".jpeg",
        "wrong-extension",
        write_from(lambda c: encode(c.astro, "TIFF", compression="tiff_lzw")),
        **ok_512,
    )
    add("wrongext-mp4-as-jpg", ".jpg", "wrong-extension", write_from(lambda c: c.mp4), **input_error)
    add("wrongext-mp4-as-png", ".png", "wrong-extension", write_from(lambda c: c.mp4_fast), **input_error)
    add(
        "wrongext-text-as-png", ".png", "wrong-extension", write(b"this is not a photo\n" * 40), **input_error
    )
    add(
        "wrongext-html-as-jpg",
        ".jpg",
        "wrong-extension",
        write(b"<!doctype html><html><body><img src=x></body></html>\n"),
        **input_error,
    )
    add(
        "wrongext-svg-as-png",
        ".png",
        "wrong-extension",
        write(b'<svg xmlns="http://www.w3.org/2000/svg" width="9999999" height="9999999"></svg>'),
        **input_error,
    )
    add(
        "wrongext-eps-as-jpg",
        ".jpg",
        "wrong-extension",
        write(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 512 512\nshowpage\n%%EOF\n"),
        **input_error,
    )
    # an image named .mp4 is a (one-frame) video as the target, and still a photo as the source
    add(
        "wrongext-png-as-mp4",
        ".mp4",
        "wrong-extension",
        write_from(lambda c: c.astro_png),
        expect="either",
        expect_as_source="output",
    )
    add(
        "wrongext-jpeg-as-mp4",
        ".mp4",
        "wrong-extension",
        write_from(lambda c: c.astro_jpg),
        expect="either",
        expect_as_source="output",
    )
    add("wrongext-text-as-mp4", ".mp4", "wrong-extension", write(b"not a video\n" * 100), **video_error)
    add(
        "wrongext-mp4-as-mov",
        ".mov",
        "wrong-extension",
        write_from(lambda c: c.mp4),
        **video_ok,
        output_size=(320, 240),
    )
    add(
        "wrongext-mkv-as-mp4",
        ".mp4",
        "wrong-extension",
        write_from(lambda c: c.clip("mkv", fmt="matroska")),
        **video_ok,
        output_size=(320, 240),
    )
    add("wrongext-no-extension", "", "wrong-extension", write_from(lambda c: c.astro_jpg), **ok_512)
    add("wrongext-upper-case", ".JPG", "wrong-extension", write_from(lambda c: c.astro_jpg), **ok_512)

    # -- colour modes and bit depths (valid, unusual)
    add(
        "mode-cmyk-jpeg",
        ".jpg",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).convert("CMYK"), "JPEG", quality=90)),
        **ok_512,
    )
    add(
        "mode-cmyk-tiff",
        ".tif",
        "colour-mode",
        write_from(
            lambda c: encode(
                Image.fromarray(c.astro).convert("CMYK"), "TIFF", compression="tiff_adobe_deflate"
            )
        ),
        **ok_512,
    )
    add(
        "mode-gray-jpeg",
        ".jpg",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).convert("L"), "JPEG")),
        **ok_512,
    )
    add(
        "mode-progressive-jpeg",
        ".jpg",
        "colour-mode",
        write_from(lambda c: encode(c.astro, "JPEG", progressive=True, quality=85)),
        **ok_512,
    )
    add("mode-png-16bit-gray", ".png", "colour-mode", write_from(lambda c: png16(c, "gray")), **ok_512)
    add("mode-png-16bit-rgb", ".png", "colour-mode", write_from(lambda c: png16(c, "rgb")), **ok_512)
    add("mode-png-16bit-rgba", ".png", "colour-mode", write_from(lambda c: png16(c, "rgba")), **ok_512)
    add(
        "mode-png-gray-alpha",
        ".png",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).convert("LA"), "PNG")),
        **ok_512,
    )
    add("mode-png-rgba", ".png", "colour-mode", write_from(lambda c: encode(rgba(c), "PNG")), **ok_512)
    add(
        "mode-png-rgba-fully-transparent",
        ".png",
        "colour-mode",
        write_from(lambda c: encode(np.dstack([c.astro, np.zeros(c.astro.shape[:2], np.uint8)]), "PNG")),
        **ok_512,
    )
    add(
        "mode-png-palette",
        ".png",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).quantize(256), "PNG")),
        **ok_512,
    )
    add(
        "mode-png-palette-trns",
        ".png",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).quantize(64), "PNG", transparency=0)),
        **ok_512,
    )
    add(
        "mode-png-1bit",
        ".png",
        "colour-mode",
        write_from(lambda c: encode(Image.fromarray(c.astro).convert("1"), "PNG")),
        expect="either",
        expect_as_source="either",
        note="dithered black and white: a face may or may not be found",
    )
    add(
        "mode-webp-rgba-lossless",
        ".webp",
        "colour-mode",
        write_from(lambda c: encode(rgba(c), "WEBP", lossless=True)),
        **ok_512,
    )
    add("mode-bmp-32bit", ".bmp", "colour-mode", write_from(lambda c: encode(rgba(c), "BMP")), **ok_512)
    add(
        "mode-tiff-float32",
        ".tif",
        "colour-mode",
        write_from(
            lambda c: encode(
                Image.fromarray(c.astro[..., 1].astype(np.float32) / 255.0, "F"),
                "TIFF",
                compression="tiff_adobe_deflate",
            )
        ),
        **ok_512,
    )
    add("mode-tiff-float32-nan-inf", ".tif", "colour-mode", write_from(lambda c: tiff_nan(c)), **ok_512)
    add(
        "mode-tiff-int32",
        ".tif",
        "colour-mode",
        write_from(
            lambda c: encode(
                Image.fromarray(c.astro[..., 1].astype(np.int32) * 257, "I"),
                "TIFF",
                compression="tiff_adobe_deflate",
            )
        ),
        **ok_512,
    )
    add(
        "mode-tiff-int32-wide-range",
        ".tif",
        "colour-mode",
        write_from(
            lambda c: encode(
                Image.fromarray(c.astro[..., 1].astype(np.int32) * 100_000 - 5_000_000, "I"),
                "TIFF",
                compression="tiff_adobe_deflate",
            )
        ),
        expect="either",
        expect_as_source="either",
        note="values far outside 16 bits: the scaling is a guess",
    )
    add("mode-tiff-16bit-rgb", ".tif", "colour-mode", write_from(lambda c: tiff16(c)), **ok_512)

    # -- degenerate shapes
    for w, h, exp in (
        (1, 1, input_error),
        (7, 7, input_error),
        (8, 8, no_face),
        (10_000, 10, no_face),
        (10, 10_000, no_face),
        (30_000, 8, no_face),
    ):
        for ext, fmt in ((".png", "PNG"), (".jpg", "JPEG")):
            if ext == ".jpg" and max(w, h) > 65_500:
                continue
            add(
                f"shape-{w}x{h}-{fmt.lower()}",
                ext,
                "shape",
                write_from(lambda c, w=w, h=h, fmt=fmt: encode(stripes(w, h), fmt)),
                **exp,
            )
    add(
        "shape-face-in-4000x60",
        ".png",
        "shape",
        write_from(lambda c: encode(strip_with_face(c), "PNG")),
        expect="either",
        expect_as_source="either",
    )

    # -- EXIF orientations 1-8 (each stored so that it displays upright, 512x400) and broken EXIF
    for o in range(1, 9):
        add(
            f"exif-orientation-{o}",
            ".jpg",
            "exif",
            write_from(lambda c, o=o: exif_oriented(c, o)),
            **ok_img,
            output_size=(512, 400),
        )
    for tag, value in (("0", 0), ("9", 9), ("65535", 65535)):
        add(
            f"exif-orientation-invalid-{tag}",
            ".jpg",
            "exif",
            write_from(lambda c, v=value: exif_oriented(c, 1, value=v)),
            **ok_img,
            output_size=(512, 400),
        )
    add(
        "exif-truncated-ifd",
        ".jpg",
        "exif",
        write_from(
            lambda c: jpeg_insert_app(c.astro_jpg, b"Exif\0\0II*\0\x08\0\0\0\xff\x00\x12\x01\x03\x00")
        ),
        **ok_512,
    )
    add(
        "exif-ifd-loop",
        ".jpg",
        "exif",
        write_from(lambda c: jpeg_insert_app(c.astro_jpg, exif_loop())),
        **ok_512,
    )
    add(
        "exif-bad-offsets",
        ".jpg",
        "exif",
        write_from(lambda c: jpeg_insert_app(c.astro_jpg, exif_bad_offsets())),
        **ok_512,
    )
    add(
        "exif-garbage-64k",
        ".jpg",
        "exif",
        write_from(lambda c: jpeg_insert_app(c.astro_jpg, b"Exif\0\0" + c.rng("exifg").bytes(65_000))),
        **ok_512,
    )
    add(
        "exif-png-exif-chunk",
        ".png",
        "exif",
        write_from(
            lambda c: png_insert(
                c.astro_png,
                png_chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0"),
            )
        ),
        **ok_512,
    )
    add(
        "exif-webp-orientation-6",
        ".webp",
        "exif",
        write_from(lambda c: exif_oriented(c, 6, fmt="WEBP")),
        **ok_img,
        output_size=(512, 400),
    )
    add(
        "exif-icc-garbage",
        ".jpg",
        "exif",
        write_from(
            lambda c: jpeg_insert_app(
                c.astro_jpg, b"ICC_PROFILE\0\x01\x01" + c.rng("icc").bytes(3000), marker=0xE2
            )
        ),
        **ok_512,
    )

    # -- animation and multi-page: the first frame is swapped, with a warning
    used = "has 2 frames; only the first frame was used"
    first = {**ok_512, "warning": used, "warning_as_source": used}
    add("anim-gif", ".gif", "multi-frame", write_from(lambda c: animated(c, "GIF")), **first)
    add("anim-webp", ".webp", "multi-frame", write_from(lambda c: animated(c, "WEBP")), **first)
    add("anim-png-apng", ".png", "multi-frame", write_from(lambda c: animated(c, "PNG")), **first)
    add("multipage-tiff", ".tif", "multi-frame", write_from(lambda c: animated(c, "TIFF")), **first)
    add(
        "multipage-tiff-first-page-blank",
        ".tiff",
        "multi-frame",
        write_from(lambda c: animated(c, "TIFF", blank_first=True)),
        **no_face,
    )
    add(
        "anim-gif-truncated",
        ".gif",
        "multi-frame",
        write_from(lambda c: animated(c, "GIF")[:-4000]),
        expect="either",
        expect_as_source="either",
    )

    # -- videos: missing stream, broken index, truncation, odd content
    add("video-audio-only", ".mp4", "video-structure", write_from(audio_only), **video_error)
    add(
        "video-moov-removed",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_cut(c.mp4, b"moov")),
        **video_error,
    )
    add(
        "video-moov-removed-faststart",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_cut(c.mp4_fast, b"moov")),
        **video_error,
    )
    add(
        "video-moov-renamed-free",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_rename(c.mp4, b"moov", b"free")),
        **video_either,
        note="FFmpeg recovers a moov hidden in a 'free' atom",
    )
    add(
        "video-moov-size-zero",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_patch_size(c.mp4_fast, b"moov", 0)),
        **video_either,
    )
    add(
        "video-moov-size-huge",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_patch_size(c.mp4_fast, b"moov", 0x7FFFFFF0)),
        **video_either,
    )
    add(
        "video-mdat-size-huge",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_patch_size(c.mp4_fast, b"mdat", 0x7FFFFFF0)),
        **video_either,
    )
    add(
        "video-stco-zeroed",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stco", "zero")),
        **video_either,
    )
    add(
        "video-stco-past-eof",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stco", "max")),
        **video_either,
    )
    add(
        "video-stsz-huge",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stsz", "max")),
        **video_either,
    )
    add(
        "video-stsz-count-huge",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stsz", "count")),
        **video_either,
    )
    add(
        "video-stts-count-huge",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stts", "count")),
        **video_either,
    )
    add(
        "video-stts-delta-zero",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stts", "delta0")),
        **video_either,
    )
    add(
        "video-stss-garbage",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stss", "max")),
        **video_either,
    )
    add(
        "video-stsc-zeroed",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_table(c, b"stsc", "zero")),
        **video_either,
    )
    add(
        "video-mdhd-timescale-zero",
        ".mp4",
        "video-structure",
        write_from(
            lambda c: mp4_patch(c.mp4_fast, b"mdhd", 12, b"\0\0\0\0", nth=mp4_video_trak(c.mp4_fast, b"mdhd"))
        ),
        **video_either,
    )
    add(
        "video-mvhd-timescale-zero",
        ".mp4",
        "video-structure",
        write_from(lambda c: mp4_patch(c.mp4_fast, b"mvhd", 12, b"\0\0\0\0")),
        **video_either,
    )
    add(
        "video-codec-unknown-fourcc",
        ".mp4",
        "video-structure",
        write_from(lambda c: sample_entry_fourcc(c.mp4_fast, b"avc0")),
        **video_error,
        note="FFmpeg opens the stream without a codec (was exit 1, 'unexpected AttributeError'; fuzzing)",
    )
    add(
        "video-codec-unknown-fourcc-no-audio",
        ".mp4",
        "video-structure",
        write_from(
            lambda c: sample_entry_fourcc(c.clip("mp4_fast_silent", faststart=True, audio=False), b"zzzz")
        ),
        **video_error,
    )
    add(
        "video-audio-sample-rate-zero",
        ".mkv",
        "video-structure",
        write_from(mkv_sample_rate_zero),
        **video_ok,
        output_size=(320, 240),
        note="swapped without its audio (was 'no video frame could be decoded'; from a fuzzing find)",
    )
    add(
        "video-ftyp-brand-garbled",
        ".mp4",
        "video-structure",
        write_from(lambda c: c.mp4_fast.replace(b"avc1", b"zzzz", 1)),
        **video_ok,
        output_size=(320, 240),
    )
    add(
        "video-avcc-garbled", ".mp4", "video-structure", write_from(lambda c: avcc_garbled(c)), **video_either
    )
    add(
        "video-display-matrix-zero",
        ".mp4",
        "video-structure",
        write_from(
            lambda c: mp4_patch(c.mp4_fast, b"tkhd", 40, b"\0" * 36, nth=mp4_video_trak(c.mp4_fast, b"tkhd"))
        ),
        **video_either,
    )
    add(
        "video-display-matrix-45deg",
        ".mp4",
        "video-structure",
        write_from(
            lambda c: mp4_patch(
                c.mp4_fast,
                b"tkhd",
                40,
                struct.pack(">9i", 46341, 46341, 0, -46341, 46341, 0, 0, 0, 1 << 30),
                nth=mp4_video_trak(c.mp4_fast, b"tkhd"),
            )
        ),
        **video_ok,
    )
    add(
        "video-elst-garbage", ".mp4", "video-structure", write_from(lambda c: elst_garbage(c)), **video_either
    )
    for frac in (0.3, 0.6, 0.9):
        tag = f"{int(frac * 100)}pct"
        add(
            f"video-truncated-mid-mdat-faststart-{tag}",
            ".mp4",
            "video-truncated",
            write_from(lambda c, f=frac: mdat_cut(c.mp4_fast, f)),
            **video_ok if frac > 0.5 else video_either,
            note="moov first: the frames before the cut decode (at 30 % the first keyframe is cut)",
        )
        add(
            f"video-truncated-mid-mdat-moov-last-{tag}",
            ".mp4",
            "video-truncated",
            write_from(lambda c, f=frac: mdat_cut(c.mp4, f)),
            **video_error,
            note="the index is lost with the tail",
        )
    add(
        "video-truncated-declares-78-frames",
        ".mp4",
        "video-truncated",
        write_from(lambda c: mdat_cut(c.clip("long_fast", frames=78, faststart=True, audio=False), 0.78)),
        **video_ok,
        output_size=(320, 240),
        warning="declares 78 frames but only",
        note="moov first, cut halfway through the frames: the swap says how many of the 78 could be read",
    )
    add(
        "video-mdat-zeroed",
        ".mp4",
        "video-truncated",
        write_from(lambda c: mdat_fill(c.mp4_fast)),
        **video_error,
    )
    add(
        "video-1-frame",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("one", frames=1)),
        **video_ok,
        output_size=(320, 240),
    )
    add(
        "video-odd-size-321x241",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("odd", frames=4, size=(321, 241), audio=False)),
        **video_ok,
        output_size=(321, 241),
    )
    add(
        "video-tiny-16x16",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("tiny", frames=3, size=(16, 16), audio=False)),
        **{**video_error, "exit": None},
        note="no face fits",
    )
    add(
        "video-tiny-2x2-mkv",
        ".mkv",
        "video-content",
        write_from(
            lambda c: c.clip("tiny2", frames=3, size=(2, 2), audio=False, fmt="matroska", codec="ffv1")
        ),
        **{**video_error, "exit": None},
    )
    add(
        "video-no-face",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("noface", frames=4, face=False)),
        **{**video_error, "exit": 3},
    )
    add(
        "video-rotated-90",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("rot", frames=4, rotation=90, audio=False)),
        **video_ok,
        output_size=(320, 240),
    )
    add(
        "video-mkv-pcm-audio",
        ".mkv",
        "video-content",
        write_from(lambda c: c.clip("pcm", frames=4, fmt="matroska", audio_codec="pcm_s16le")),
        **video_ok,
    )
    add(
        "video-webm-opus",
        ".webm",
        "video-content",
        write_from(lambda c: c.clip("webm", frames=4, fmt="webm", codec="libvpx", audio_codec="libopus")),
        **video_ok,
    )
    add(
        "video-webm-opus-header-cut",
        ".webm",
        "video-structure",
        write_from(webm_short_opus_header),
        **video_either,
        note="the muxer refuses to copy the audio (was exit 1, 'unexpected InvalidDataError'; fuzzing)",
    )
    add(
        "video-avi-mjpeg",
        ".avi",
        "video-content",
        write_from(lambda c: c.clip("avi", frames=4, fmt="avi", codec="mjpeg", audio=False)),
        **video_ok,
    )
    add(
        "video-mpeg4-part2",
        ".mp4",
        "video-content",
        write_from(lambda c: c.clip("mp4v", frames=4, codec="mpeg4", audio=False)),
        **video_ok,
    )
    add(
        "video-large-start-pts",
        ".mkv",
        "video-content",
        write_from(lambda c: c.clip("pts", frames=4, fmt="matroska", audio=False, pts_offset=10**7)),
        **video_ok,
    )
    add(
        "video-resolution-change",
        ".ts",
        "video-content",
        write_from(ts_resolution_change),
        **video_ok,
        note="MPEG-TS whose frame size changes from 320x240 to 256x192 mid-stream",
    )

    # -- faces: none, a crowd, several in the source
    add("noface-gradient", ".png", "faces", write_from(lambda c: encode(gradient(), "PNG")), **no_face)
    add(
        "noface-noise-texture",
        ".jpg",
        "faces",
        write_from(lambda c: encode(c.rng("noise").integers(0, 256, (400, 400, 3), np.uint8), "JPEG")),
        **no_face,
    )
    add("noface-checkerboard", ".png", "faces", write_from(lambda c: encode(checker(), "PNG")), **no_face)
    add(
        "noface-black",
        ".png",
        "faces",
        write_from(lambda c: encode(np.zeros((300, 300, 3), np.uint8), "PNG")),
        **no_face,
    )
    add(
        "noface-white-jpeg",
        ".jpg",
        "faces",
        write_from(lambda c: encode(np.full((300, 300, 3), 255, np.uint8), "JPEG")),
        **no_face,
    )
    add(
        "noface-back-of-head",
        ".png",
        "faces",
        write_from(lambda c: encode(np.ascontiguousarray(c.astro[300:, :]), "PNG")),
        **no_face,
        note="the astronaut's suit below the face",
    )
    add(
        "faces-crowd-30",
        ".jpg",
        "faces",
        write_from(lambda c: encode(crowd(c, 6, 5), "JPEG", quality=92)),
        **ok_img,
        output_size=(540, 490),
    )
    add(
        "faces-crowd-30-png",
        ".png",
        "faces",
        write_from(lambda c: encode(crowd(c, 6, 5), "PNG")),
        **ok_img,
        output_size=(540, 490),
    )
    add(
        "faces-two-people",
        ".jpg",
        "faces",
        write_from(lambda c: encode(two_people(c), "JPEG")),
        **ok_img,
        output_size=(1100, 600),
        warning_as_source=GLASSES,  # the largest face, Grace Hopper's
    )
    add(
        "faces-tiny-crowd",
        ".png",
        "faces",
        write_from(lambda c: encode(crowd(c, 10, 8, tile=(36, 40)), "PNG")),
        expect="either",
        expect_as_source="either",
        note="80 faces of ~20 px, under the detector's range",
    )
    add(
        "faces-huge-face",
        ".jpg",
        "faces",
        write_from(lambda c: encode(head(c.hopper, HOPPER_HEAD, (1900, 2000)), "JPEG")),
        **ok_img,
        output_size=(1900, 2000),
        warning_as_source=GLASSES,
    )
    add(
        "faces-upside-down",
        ".jpg",
        "faces",
        write_from(lambda c: encode(c.astro[::-1].copy(), "JPEG")),
        expect="either",
        expect_as_source="either",
    )

    # -- paths: directory, dangling symlink, spaces and unicode, missing
    add("path-directory-jpg", ".jpg", "path", make_dir, **input_error)
    add("path-directory-mp4", ".mp4", "path", make_dir, **video_error)
    add("path-symlink-missing", ".jpg", "path", make_dangling, **input_error)
    add("path-symlink-missing-mp4", ".mp4", "path", make_dangling, **video_error)
    add("path-symlink-to-valid", ".jpg", "path", make_link_to("valid-jpeg.jpg"), **ok_512)
    # not regular files: refused from their stat, never opened (a FIFO would block, /dev/zero never ends)
    add("path-fifo-jpg", ".jpg", "path", make_fifo, **input_error)
    add("path-fifo-mp4", ".mp4", "path", make_fifo, **video_error)
    add("path-symlink-to-dev-zero", ".jpg", "path", make_link_to("/dev/zero"), **input_error)
    add("path-symlink-to-dev-zero-mp4", ".mp4", "path", make_link_to("/dev/zero"), **video_error)
    add(
        "path-spaces", "", "path", write_from(lambda c: c.astro_jpg), name="photo with  spaces .jpg", **ok_512
    )
    add("path-unicode", "", "path", write_from(lambda c: c.astro_jpg), name="фото_写真_éà 🙂.jpg", **ok_512)
    add("path-leading-dash", "", "path", write_from(lambda c: c.astro_jpg), name="-t.jpg", **ok_512)
    add("path-unicode-video", "", "path", write_from(lambda c: c.mp4), name="vidéo 動画.mp4", **video_ok)
    add("path-newline", "", "path", write_from(lambda c: c.astro_jpg), name="new\nline.jpg", **ok_512)
    add(
        "path-newline-unreadable",
        "",
        "path",
        write(b"not a photo\n"),
        name="bad\nname.jpg",
        **input_error,
    )

    ids = [s.id for s in specs]
    assert len(ids) == len(set(ids)), "duplicate corpus ids"
    return specs


# ---------------------------------------------------------------- builders used above


def rgba(c: Ctx) -> np.ndarray:
    a = np.tile(np.linspace(64, 255, 512).astype(np.uint8), (512, 1))
    a[:40, :40] = 0
    return np.dstack([c.astro, a])


def png16(c: Ctx, kind: str) -> bytes:
    import cv2

    bgr = c.astro[..., ::-1].astype(np.uint16) * 257
    arr = {
        "gray": bgr[..., 1],
        "rgb": bgr,
        "rgba": np.dstack([bgr, np.full(bgr.shape[:2], 65535, np.uint16)]),
    }[kind]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    assert ok
    return buf.tobytes()


def tiff16(c: Ctx) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".tiff", np.ascontiguousarray(c.astro[..., ::-1].astype(np.uint16) * 257))
    assert ok
    return buf.tobytes()


def tiff_nan(c: Ctx) -> bytes:
    f = c.astro[..., 1].astype(np.float32) / 255.0
    f[:20] = np.nan
    f[20:40] = np.inf
    f[40:60] = -np.inf
    return encode(Image.fromarray(f, "F"), "TIFF", compression="tiff_adobe_deflate")


def png_chunk_claims_4gb(c: Ctx, depth: int = 8, ctype: int = 2) -> bytes:
    """A 1x1 PNG header followed by an IDAT chunk whose length field claims ~4 GB (47 bytes in all)."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_ihdr(1 if depth == 8 else 64, 1 if depth == 8 else 64, depth, ctype)
        + struct.pack(">I", 0xF7FF000C)
        + b"IDATxD\xaeB`\x82"
    )


def webm_short_opus_header(c: Ctx) -> bytes:
    """A WebM whose Opus CodecPrivate (the OpusHead) is replaced by an EBML Void element: it decodes,
    but the MP4 muxer refuses to copy the stream ("invalid extradata size")."""
    data = c.clip("webm", frames=4, fmt="webm", codec="libvpx", audio_codec="libopus")
    i = data.find(b"\x63\xa2\x93OpusHead")
    assert i > 0, "no 19-byte OpusHead CodecPrivate"
    return data[:i] + b"\xec\x94" + b"\0" * 20 + data[i + 22 :]


def png16_iend_with_data(c: Ctx) -> bytes:
    """16-bit RGBA header, an IEND chunk that is not empty, then bytes claiming a ~4 GB chunk."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_ihdr(64, 64, 16, 6)
        + png_chunk(b"IEND", b"x" * 40)
        + struct.pack(">I", 0xF7FF000C)
        + b"IDAT"
        + b"\0" * 8
    )


def mkv_sample_rate_zero(c: Ctx) -> bytes:
    """Matroska with PCM audio whose SamplingFrequency element says 0 (PCM has no in-band rate)."""
    data = c.clip("pcm", frames=4, fmt="matroska", audio_codec="pcm_s16le")
    pat = b"\xb5\x88" + struct.pack(">d", 44100.0)
    i = data.find(pat)
    assert i > 0, "no SamplingFrequency element"
    return data[: i + 2] + struct.pack(">d", 0.0) + data[i + 10 :]


def huge_webp(c: Ctx) -> bytes:
    """An extended (VP8X) WebP whose canvas is 16384x16384 while the bitstream is 512x512."""
    data = c.astro_webp
    vp8 = data[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + vp8
    return b"RIFF" + struct.pack("<I", len(body)) + body


def huge_gif(c: Ctx) -> bytes:
    d = bytearray(encode(c.astro, "GIF"))
    d[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(d)


def huge_tiff(c: Ctx) -> bytes:
    """A TIFF whose ImageWidth/ImageLength tags claim 100000x100000."""
    d = bytearray(encode(np.full((16, 16, 3), 90, np.uint8), "TIFF"))
    (ifd,) = struct.unpack("<I", d[4:8])
    (n,) = struct.unpack("<H", d[ifd : ifd + 2])
    for i in range(n):
        e = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", d[e : e + 4])
        if tag in (256, 257):
            if typ == 3:
                d[e + 8 : e + 10] = struct.pack("<H", 65535)
            else:
                d[e + 8 : e + 12] = struct.pack("<I", 100_000)
    return bytes(d)


def huge_mp4(c: Ctx) -> bytes:
    """tkhd and the avc1 sample entry claim 65535x65535 (the bitstream says 320x240)."""
    data = c.mp4_fast
    nth = mp4_video_trak(data, b"tkhd")
    data = mp4_patch(data, b"tkhd", 76, struct.pack(">II", 65535 << 16, 65535 << 16), nth=nth)
    pos = data.find(b"avc1")
    d = bytearray(data)
    d[pos + 4 + 24 : pos + 4 + 28] = struct.pack(">HH", 65535, 65535)
    return bytes(d)


def huge_frames_mp4(c: Ctx) -> bytes:
    """One 7500x7500 frame (56 MP) of flat grey in H.264 (~60 kB)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width = vs.height = 7500
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "40", "preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((7500, 7500, 3), 100, np.uint8), format="rgb24")
        for p in [*vs.encode(frame), *vs.encode(None)]:
            out.mux(p)
    return buf.getvalue()


def sample_entry_fourcc(data: bytes, new: bytes) -> bytes:
    """Rename the video sample entry (``avc1`` in stsd, not the ``avc1`` brand in ftyp)."""
    i = data.find(b"avc1", mp4_find(data, b"moov")[0])
    return data[:i] + new + data[i + 4 :]


def mp4_patch_size(data: bytes, kind: bytes, size: int) -> bytes:
    pos, _, _ = mp4_find(data, kind)
    return data[:pos] + struct.pack(">I", size) + data[pos + 4 :]


def mp4_table(c: Ctx, kind: bytes, how: str) -> bytes:
    """Corrupt a sample table of the video track: offsets/sizes zeroed or maxed, counts huge."""
    data = c.mp4_fast
    pos, size, hdr = mp4_find(data, kind, mp4_video_trak(data, kind))
    d = bytearray(data)
    body = pos + hdr + 4  # after version/flags
    if how == "count":
        d[body + (4 if kind == b"stsz" else 0) : body + (8 if kind == b"stsz" else 4)] = b"\xff\xff\xff\xf0"
        if kind == b"stts":
            d[body + 4 : body + 8] = b"\x7f\xff\xff\xff"
    elif how == "delta0":
        (n,) = struct.unpack(">I", d[body : body + 4])
        for i in range(n):
            d[body + 8 + 8 * i : body + 12 + 8 * i] = b"\0\0\0\0"
    else:
        start = body + (12 if kind == b"stsz" else 4)
        fill = b"\0" if how == "zero" else b"\xff"
        d[start : pos + size] = fill * (pos + size - start)
    return bytes(d)


def avcc_garbled(c: Ctx) -> bytes:
    data = c.mp4_fast
    pos = data.find(b"avcC")
    (n,) = struct.unpack(">I", data[pos - 4 : pos])
    return flip_bytes(data, c.rng("avcc"), pos + 4, pos - 4 + n, 6)


def elst_garbage(c: Ctx) -> bytes:
    data = c.mp4_fast
    try:
        pos, size, hdr = mp4_find(data, b"elst")
    except ValueError:
        return mp4_patch(data, b"mvhd", 16, b"\xff\xff\xff\xff")
    d = bytearray(data)
    d[pos + hdr + 8 : pos + size] = b"\xff" * (pos + size - pos - hdr - 8)
    return bytes(d)


def mdat_cut(data: bytes, frac: float) -> bytes:
    pos, size, hdr = mp4_find(data, b"mdat")
    return data[: pos + hdr + int((size - hdr) * frac)]


def mdat_fill(data: bytes) -> bytes:
    pos, size, hdr = mp4_find(data, b"mdat")
    return data[: pos + hdr] + b"\0" * (size - hdr) + data[pos + size :]


def exif_oriented(c: Ctx, orientation: int, value: int | None = None, fmt: str = "JPEG") -> bytes:
    """The 512x400 upright astronaut, stored so that EXIF ``orientation`` displays it upright."""
    upright = Image.fromarray(c.astro[:400])
    inverse = {
        2: Image.FLIP_LEFT_RIGHT,
        3: Image.ROTATE_180,
        4: Image.FLIP_TOP_BOTTOM,
        5: Image.TRANSPOSE,
        6: Image.ROTATE_90,
        7: Image.TRANSVERSE,
        8: Image.ROTATE_270,
    }
    stored = upright.transpose(inverse[orientation]) if orientation in inverse else upright
    exif = Image.Exif()
    exif[0x0112] = orientation if value is None else value
    return encode(stored, fmt, quality=92, exif=exif.tobytes())


def exif_loop() -> bytes:
    """A TIFF header whose IFD0 points to itself as the next IFD, with an ExifIFD pointer to itself too."""
    ifd = struct.pack("<H", 2) + struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<HHII", 0x8769, 4, 1, 8)
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 8)


def exif_bad_offsets() -> bytes:
    """IFD entries whose value offsets and counts point far past the segment."""
    entries = [
        (0x010F, 2, 0x7FFFFFFF, 0xFFFFFF00),
        (0x0112, 3, 1, 3),
        (0x8825, 4, 1, 0xFFFFFFF0),
        (0x927C, 7, 0x10000000, 0x100),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0xFFFFFFF0)


def animated(c: Ctx, fmt: str, blank_first: bool = False) -> bytes:
    frames = [Image.fromarray(np.roll(c.astro, 8 * i, axis=1)) for i in range(2)]
    if blank_first:
        frames[0] = Image.new("RGB", (512, 512), (40, 80, 120))
    kw: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    if fmt in ("GIF", "PNG", "WEBP"):
        kw.update(duration=100, loop=0)
    if fmt == "WEBP":
        kw["quality"] = 70
    if fmt == "TIFF":
        kw["compression"] = "tiff_adobe_deflate"
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, **kw)
    return buf.getvalue()


def stripes(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256]).astype(np.uint8)


def gradient() -> np.ndarray:
    y, x = np.mgrid[0:360, 0:480]
    return np.dstack([x * 255 // 479, y * 255 // 359, (x + y) * 255 // 838]).astype(np.uint8)


def checker() -> np.ndarray:
    y, x = np.mgrid[0:400, 0:400]
    return np.repeat((((x // 25) + (y // 25)) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)


def crowd(c: Ctx, cols: int, rows: int, tile: tuple[int, int] = (90, 98)) -> np.ndarray:
    """``cols*rows`` faces (astronaut and Hopper alternating), each about ``tile[0] / 2`` px wide."""
    tw, th = tile
    heads = [head(c.astro, ASTRO_HEAD, tile), head(c.hopper, HOPPER_HEAD, tile)]
    out = np.full((rows * th, cols * tw, 3), 100, np.uint8)
    for r in range(rows):
        for k in range(cols):
            out[r * th : (r + 1) * th, k * tw : (k + 1) * tw] = heads[(r + k) % 2]
    return out


def two_people(c: Ctx) -> np.ndarray:
    canvas = np.full((600, 1100, 3), 90, np.uint8)
    canvas[40:552, 20:532] = c.astro
    canvas[0:600, 570:1082] = c.hopper
    return canvas


def strip_with_face(c: Ctx) -> np.ndarray:
    strip = np.full((60, 4000, 3), 120, np.uint8)
    strip[:, 2000:2055] = head(c.astro, ASTRO_HEAD, (55, 60))
    return strip


def make_dir(path: Path, ctx: Ctx) -> None:
    path.mkdir()
    (path / "inside.jpg").write_bytes(ctx.astro_jpg)


def make_dangling(path: Path, ctx: Ctx) -> None:
    path.symlink_to(path.with_name(f"missing-{path.name}"))


def make_fifo(path: Path, ctx: Ctx) -> None:
    os.mkfifo(path)


def make_link_to(target: str) -> Callable[[Path, Ctx], None]:
    def build(path: Path, ctx: Ctx) -> None:
        path.symlink_to(target)

    return build


# ---------------------------------------------------------------- driver


def generate(
    out: Path, seed: int = 0, force: bool = False, only: set[str] | None = None
) -> dict[str, object]:
    """Write the corpus and its manifest into ``out`` (created; must be empty unless ``force``);
    ``only`` restricts it to these entry ids."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SystemExit(f"{out}: not empty (use --force to replace its contents)")
        for p in out.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(seed)
    entries = []
    for spec in entry_specs():
        if only is not None and spec.id not in only:
            continue
        t = time.perf_counter()
        spec.build(out / spec.name, ctx)
        if os.environ.get("CORPUS_TIMING") and time.perf_counter() - t > 0.3:
            print(f"{spec.id}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
        entries.append(spec.manifest())
    manifest = {
        "generator": "scripts/make_malformed_corpus.py",
        "seed": seed,
        "count": len(entries),
        "source_sample": "astronaut",
        "target_sample": "astronaut",
        "entries": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def corpus_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the corpus into")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random flips and noise (default 0)")
    ap.add_argument("--force", action="store_true", help="empty a non-empty --out first")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = generate(args.out, args.seed, args.force)
    cats: dict[str, int] = {}
    for e in manifest["entries"]:  # type: ignore[union-attr]
        cats[e["category"]] = cats.get(e["category"], 0) + 1
    took = time.perf_counter() - t0
    size = corpus_bytes(args.out) / 1e6
    print(f"{manifest['count']} entries, {size:.1f} MB in {took:.1f} s → {args.out}/{MANIFEST}")
    print(", ".join(f"{k} {v}" for k, v in cats.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading and writing still images safely.

* Inputs: any format Pillow or OpenCV decode; EXIF orientation applied; grayscale, palette, CMYK,
  16-bit and float images converted to 8-bit RGB; an alpha channel is kept separately so it can be
  written back unchanged. Only a regular file is read (not a FIFO or a device), and only when its size
  is under :func:`max_file_bytes` for the pixel limit; the pixel count is checked from the header
  *before* decoding. Of an animation or a multi-page file the first frame is read
  (:attr:`LoadedImage.frames` says how many there are; :func:`frames_note` says it in words).
* Outputs: encoded in memory and written atomically (:func:`masquerade.files.atomic_write_bytes`), so a
  failed write never leaves a partial file and an existing file is replaced in one step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError, LimitError, OutputError
from .files import atomic_write_bytes, check_input_file, read_input_bytes

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# what Pillow may decode: raster formats it reads itself. Not EPS/PS (Pillow hands those to Ghostscript,
# an interpreter, when it is installed) nor anything else that would run another program on the input.
READ_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF", "GIF", "PPM", "TGA", "ICO")


@dataclass(frozen=True)
class LoadedImage:
    """An image as RGB uint8 plus its alpha channel (if it had one)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path | None = None
    frames: int = 1  # frames (or pages) in the file, of which the first is ``rgb``; 0: several, count unknown

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def _in_mp(max_pixels: int) -> bool:
    return max_pixels >= 1_000_000 and max_pixels % 100_000 == 0


def pixel_limit(max_pixels: int) -> str:
    """A pixel limit as the messages give it: "50 MP" where that is exact to 0.1 MP, else in pixels
    ("1,000 pixels"), so that a small limit is never rounded to 0."""
    return f"{max_pixels / 1e6:g} MP" if _in_mp(max_pixels) else f"{max_pixels:,} pixels"


def limit_phrase(max_pixels: int) -> str:
    """The limit as a phrase: "the 50 MP limit" or "the limit of 1,000 pixels"."""
    if _in_mp(max_pixels):
        return f"the {pixel_limit(max_pixels)} limit"
    return f"the limit of {pixel_limit(max_pixels)}"


def over_pixel_limit(width: int, height: int, max_pixels: int) -> str:
    """A size and the limit it passes, in the same unit: "4000x3000 (12.0 MP), over the 1 MP limit" or
    "40x40 (1,600 pixels), over the limit of 1,000 pixels"."""
    n = width * height
    size = f"{n / 1e6:.1f} MP" if _in_mp(max_pixels) else f"{n:,} pixels"
    return f"{width}x{height} ({size}), over {limit_phrase(max_pixels)}"


def max_file_bytes(max_pixels: int) -> int:
    """The largest image file read for a pixel limit: 16 bytes a pixel (4 channels of 32 bits,
    uncompressed, the most any supported format stores) and 16 MiB of metadata."""
    return 16 * max(int(max_pixels), 0) + (16 << 20)


def frames_note(img: LoadedImage) -> str | None:
    """The warning for an animation or a multi-page file: "anim.gif has 12 frames; only the first frame
    was used"; None for a single image."""
    if img.frames == 1:
        return None
    n = f"{img.frames} frames" if img.frames > 1 else "several frames"
    return f"{img.path or 'the image'} has {n}; only the first frame was used"


def file_frames_note(path: str | os.PathLike[str]) -> str | None:
    """:func:`frames_note` for an image file already loaded with :func:`load_image` (a source or
    reference photo, whose :class:`LoadedImage` was not kept): its frames are counted from the
    headers, no pixel is decoded; None for a single image, or a file that cannot be opened now."""
    p = Path(path)
    try:
        check_input_file(p, "an image")  # never opens a FIFO or a device
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p, formats=READ_FORMATS) as im:
                frames = _frame_count(im)
    except Exception:
        log.debug("counting the frames of %s failed", p, exc_info=True)
        return None
    return frames_note(LoadedImage(np.zeros((0, 0, 3), np.uint8), None, p, frames))


def _frame_count(im: Image.Image) -> int:
    """Frames (or pages) of an opened image; 0 when it has several but counting them failed."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except Exception:  # a damaged later frame: there is more than one, whatever it holds
        log.debug("counting the frames of %s failed", im.format, exc_info=True)
        return 0 if getattr(im, "is_animated", False) else 1


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if arr.dtype in (np.int32, np.uint32, np.int64):
        hi = float(arr.max()) if arr.size else 1.0
        scale = 255.0 / 65535.0 if hi > 255 else 1.0
        return np.clip(arr * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        a = arr.astype(np.float32)
        finite = np.isfinite(a)
        # the range is judged on finite pixels: a few inf/NaN must not turn a 0..1 image black
        hi = float(a[finite].max()) if finite.any() else 0.0
        a = np.nan_to_num(a, nan=0.0, posinf=max(hi, 1.0), neginf=0.0)
        if hi <= 1.0:
            a = a * 255.0
        return np.clip(a, 0, 255).astype(np.uint8)
    raise InputError(f"unsupported pixel type {arr.dtype}")


def _from_pil(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    alpha: np.ndarray | None = None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.uint8).copy()
        img = img.convert("RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _to_uint8(np.asarray(img))
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2)), None
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)), alpha


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STDERR_LOCK = threading.Lock()


def _declared_png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR (always the first chunk), or None for anything else."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    return None


def _png_for_opencv(data: bytes) -> bytes | None:
    """The PNG up to its IEND chunk if every chunk lies inside the data, else None.

    OpenCV 4.11 allocates a chunk's declared length before reading it: a 47-byte file that claims a
    4 GB chunk (or such a "chunk" in bytes after IEND) costs it seconds and gigabytes."""
    pos = 8
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        if n > 0x7FFFFFFF or pos + 12 + n > len(data):
            return None
        if data[pos + 4 : pos + 8] == b"IEND":
            return data[: pos + 12] if n == 0 else None
        pos += 12 + n
    return data if pos == len(data) else None  # no IEND, but nothing cut either


@contextlib.contextmanager
def _native_stderr_to_log(p: Path) -> Iterator[None]:
    """Send what the C decoders print straight to file descriptor 2 (libpng and libjpeg messages,
    OpenCV's log) to the debug log: the command line's errors must stay one line. Python warnings
    raised meanwhile (Pillow's "Corrupt EXIF data" …) go to the debug log as well."""
    with _STDERR_LOCK, warnings.catch_warnings(record=True) as caught, tempfile.TemporaryFile() as sink:
        warnings.simplefilter("always")
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep quiet
            saved = None
        if saved is not None:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace").strip()
            if text:
                log.debug("decoder messages for %s: %s", p, text)
            for w in caught:
                log.debug("decoder warning for %s: %s", p, w.message)


def _from_cv2(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    if data[:8] == _PNG_SIGNATURE:
        png = _png_for_opencv(data)
        if png is None:
            raise ValueError("PNG chunk lengths do not match the data")
        data = png
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        raise ValueError("undecodable")
    alpha = None
    if arr.ndim == 2:
        arr = cv2.cvtColor(_to_uint8(arr), cv2.COLOR_GRAY2RGB)
    elif arr.shape[2] == 4:
        alpha = _to_uint8(arr[..., 3])
        arr = cv2.cvtColor(_to_uint8(arr[..., :3]), cv2.COLOR_BGR2RGB)
    else:
        arr = cv2.cvtColor(_to_uint8(arr[..., :3]), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(arr), alpha


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load an image file as 8-bit RGB, raising :class:`InputError` with a one-line reason."""
    p = Path(path)
    why = f" for images of up to {pixel_limit(max_pixels)} (raise it with --max-pixels)"
    data = read_input_bytes(p, max_file_bytes(max_pixels), "an image", why)
    if not data:
        raise InputError(f"{p}: empty file")
    with _native_stderr_to_log(p):
        rgb, alpha, frames = _decode(p, data, max_pixels)
    if rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise InputError(f"{p}: image is only {rgb.shape[1]}x{rgb.shape[0]} pixels, too small for a face")
    return LoadedImage(rgb=rgb, alpha=alpha, path=p, frames=frames)


def _decode(p: Path, data: bytes, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    from io import BytesIO

    checked = False  # whether the declared size passed the max_pixels check
    frames = 1
    try:
        # (Pillow's DecompressionBombWarning is recorded, not shown: our own max_pixels check governs.)
        with Image.open(BytesIO(data), formats=READ_FORMATS) as probe:
            w, h = probe.size
            if w <= 0 or h <= 0:
                raise InputError(f"{p}: image has no pixels")
            if w * h > max_pixels:
                raise LimitError(
                    f"{p}: image is {over_pixel_limit(w, h, max_pixels)} (raise it with --max-pixels)"
                )
            checked = True
            # Pillow truncates 16-bit colour PNGs; OpenCV decodes them at full depth.
            is_16bit_rgb = probe.format == "PNG" and len(data) > 25 and data[24] == 16 and data[25] in (2, 6)
            probe.load()
            if is_16bit_rgb:
                rgb, alpha = _from_cv2(data)
            else:
                rgb, alpha = _from_pil(probe)
            frames = _frame_count(probe)
    except InputError:
        raise
    except Image.DecompressionBombError:
        # Pillow refuses outright past 2x MAX_IMAGE_PIXELS, before our check can see the size.
        hard = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        if max_pixels < hard:
            why = f"over {limit_phrase(max_pixels)} (raise it with --max-pixels)"
        else:
            why = f"over the decoder's {hard / 1e6:.0f} MP decompression-bomb pixel limit"
        raise LimitError(f"{p}: image dimensions are {why}") from None
    except UnidentifiedImageError:
        raise InputError(f"{p}: not a readable image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        log.debug("Pillow failed on %s: %s", p, exc)
        if not checked:
            # Pillow gave up before the size check (e.g. on an oversized text chunk): OpenCV must not
            # decode a size nobody has checked, or a tiny file could inflate to gigabytes first.
            size = _declared_png_size(data)
            if size is None:
                raise InputError(f"{p}: corrupt or truncated image") from None
            if size[0] * size[1] > max_pixels:
                raise LimitError(
                    f"{p}: image is {over_pixel_limit(*size, max_pixels)} (raise it with --max-pixels)"
                ) from None
        try:
            rgb, alpha = _from_cv2(data)
        except Exception:
            raise InputError(f"{p}: corrupt or truncated image") from None
        if rgb.shape[0] * rgb.shape[1] > max_pixels:
            h, w = rgb.shape[:2]
            raise LimitError(
                f"{p}: image is {over_pixel_limit(w, h, max_pixels)} (raise it with --max-pixels)"
            ) from None
    return rgb, alpha, frames


def encode_image(
    rgb: np.ndarray,
    suffix: str,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    comment: str | None = None,
) -> bytes:
    """Encode RGB (+ optional alpha) to the format named by ``suffix`` (``.png``, ``.jpg`` …).

    ``comment`` is stored where the format has a place for text: a PNG ``tEXt`` chunk (key
    ``Comment``), a JPEG ``COM`` segment, a TIFF or WebP (EXIF) ImageDescription; BMP has none."""
    fmt = IMAGE_EXTENSIONS.get(suffix.lower())
    if fmt is None:
        raise OutputError(f"unsupported output extension {suffix!r}")
    from io import BytesIO

    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        img.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    buf = BytesIO()
    kwargs: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if comment:
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_text("Comment", comment)
            kwargs["pnginfo"] = info
        elif fmt == "JPEG":
            kwargs["comment"] = comment.encode()
        elif fmt == "TIFF":
            kwargs["tiffinfo"] = {270: comment}
        elif fmt == "WEBP":
            exif = Image.Exif()
            exif[270] = comment  # EXIF ImageDescription
            kwargs["exif"] = exif.tobytes()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def save_image(
    path: str | os.PathLike[str], rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95
) -> Path:
    """Encode and atomically write an RGB image; the format follows the extension."""
    p = Path(path)
    atomic_write_bytes(p, encode_image(rgb, p.suffix, alpha=alpha, quality=quality))
    return p

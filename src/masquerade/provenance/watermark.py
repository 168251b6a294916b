"""An invisible, robust watermark for the images and video frames masquerade writes.

What it carries
    A fixed 16-bit masquerade magic (:data:`MAGIC`) and a 48-bit content id (:class:`WatermarkPayload`).
    The magic is sent as known *pilot* symbols: they alone decide whether a mark is present and give
    the confidence. The content id travels with a CRC-16 under a rate-1/3, constraint-length-7
    convolutional code (soft Viterbi decoding) and is reported only when the CRC checks.

Where it lives
    In luma (BT.601 Y) at a canonical resolution: Y is area-resampled to N×N (128×128) whatever the
    image's size and aspect ratio, so resizing the image does not move the mark. The DCT coefficients of
    that canonical image in a low/mid-frequency annulus (radius 6…56, i.e. 3 to 28 cycles across the
    image) are split, in a keyed pseudo-random order, into 338 groups of 7; each group with keyed ±1
    signs defines a *projection*. 128 projections carry the pilot, 210 the coded content id.

How a symbol is written: quantisation index modulation (dither modulation)
    Each projection is moved onto a lattice ``dither + bit·Δ/2 + Δ·k`` (Δ = 32 grey levels; ``k`` the
    nearest integer). Unlike additive spread spectrum, the host image does not interfere with the
    reading: only what happens to the picture afterwards does (JPEG, resizing, H.264 move a projection by
    a few grey levels). The change is synthesised at canonical resolution, shaped by a perceptual mask
    (more in texture, less on flat skin and sky, at straight edges and near black/white), refined twice
    against the exact separable model of "upsample bilinearly, then area-downsample", upsampled to the
    image and added equally to R, G and B — which changes Y only, so grey images stay grey. The mark's
    RMS is capped at 2.4 grey levels (PSNR ≥ 40 dB; typically 42–44 dB).

How it is found, and how sure the answer is
    Same canonical resample, DCT and projections; each projection gives a unit phasor
    ``exp(2πi·(value − dither)/Δ)``. Without a mark the phases are uniform and independent of the key,
    so the pilot statistic ``z = Σ Re(phasor·pilot) / sqrt(Σ|phasor|²/2)`` is ≈ N(0, 1) (its terms are
    bounded, so also ``P(z ≥ t) ≤ exp(−t²/4)`` by Hoeffding); pilot pairs sit half a step apart so that
    a flat image scores exactly 0. A clean mark scores ``sqrt(2·128) = 16``. ``present`` means
    ``z ≥ 6`` (normal tail 1e-9), or a valid CRC with ``z ≥ 3``. Video frames are combined by averaging
    their phasors before the one test, so an unmarked still clip gains nothing from repetition.

The key (:data:`KEY`) is fixed and public: this mark says "masquerade made this"; it is not a secret and
anyone with this code can read, strip or forge it. It survives JPEG quality 50, resizing to half size
(for images whose shorter side is ≥ ~250 px) and H.264 at CRF 28. The mark lives in the geometry of
the whole frame, so a crop of one pixel, or a resize that rounds an odd size up while keeping the exact
scale (OpenCV ``fx=0.5``, Pillow ``reduce(2)``: 487 px → 244 px holding 243.5 px of picture), would
move it; :meth:`Watermarker.detect` therefore also tries the image re-aligned for crops of up to 2 px
per edge and for that rounding (400 placements, p-value corrected for them). It does not survive
larger crops, rotation, flips, strong filtering or large contrast changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

log = logging.getLogger(__name__)

MAGIC = 0x4D51  # "MQ": the fixed 16-bit masquerade magic, sent as the known pilot symbols
KEY = b"masquerade/watermark/v1"  # public: seeds projection groups, signs and dithers
ID_BITS = 48
CRC_BITS = 16
_MAGIC_BITS = 16
_CONSTRAINT = 7  # convolutional code: K = 7, rate 1/3, generators 133, 171, 165 (octal)
_GENERATORS = (0o133, 0o171, 0o165)
_MESSAGE_BITS = ID_BITS + CRC_BITS
_STEPS = _MESSAGE_BITS + _CONSTRAINT - 1  # six zero tail bits end the trellis in state 0
_CODED_BITS = _STEPS * len(_GENERATORS)  # 210

MIN_EMBED_SIDE = 128  # px; smaller images are returned unmarked, with the reason, not weakly marked
MIN_DETECT_SIDE = 24  # px; below this detect() says "not measurable"
MAX_RMS = 2.4  # grey levels: cap on the mark's RMS, so PSNR stays ≥ 40 dB (2.55 RMS)
DEFAULT_THRESHOLD = 6.0  # pilot z-score for "present": normal tail 1.0e-9, Hoeffding bound 1.2e-4
CRC_THRESHOLD = 3.0  # a valid CRC-16 with z ≥ 3 also counts (chance ≤ 1.3e-3 × 2⁻¹⁶ = 2e-8)
_Y_SPAN = 219.0  # limited-range luma: black 16, white 235
HYSTERESIS = 0.7  # FrameMarker keeps last frame's lattice point while it is within 0.7 Δ (less flicker)
_ITERATIONS = 2  # refinements of the canonical change against the mask and the resampling
# perceptual mask: gain = clip(texture / REF, LO, HI) × luminance factor, then normalised to mean 1
_MASK_REF, _MASK_LO, _MASK_HI = 6.0, 0.25, 2.0
# Re-alignment search of Watermarker.detect: the mark lives in the whole frame's geometry, so a crop of
# one pixel, or a resize that rounds the size (0.5 × 487 px → 244 px holding 243.5 px of picture), moves
# every canonical cell and costs most of z. Pixels the marked frame may extend past the start (left /
# top) and the end (right / bottom) of each axis; -0.5: the image holds half a pixel more than the frame.
SEARCH_START = (0.0, 0.5, 1.0, 2.0)
SEARCH_END = (-0.5, 0.0, 0.5, 1.0, 2.0)
_SEARCH_SIDE = 512  # px: larger images are area-reduced to about this shorter side before the search
SEARCH_BELOW = 10.0  # detect() searches unless the image as it is gives z ≥ this and a content id


# --------------------------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class WatermarkPayload:
    """What a mark carries besides the magic: a 48-bit content id."""

    content_id: int

    def __post_init__(self) -> None:
        if isinstance(self.content_id, bool) or not isinstance(self.content_id, int | np.integer):
            raise TypeError(f"content_id must be an int, not {type(self.content_id).__name__}")
        if not 0 <= int(self.content_id) < 1 << ID_BITS:
            raise ValueError(f"content_id must fit in {ID_BITS} bits (0 … 2^{ID_BITS}-1)")
        object.__setattr__(self, "content_id", int(self.content_id))

    @classmethod
    def from_bytes(cls, data: bytes) -> WatermarkPayload:
        """A content id derived from any bytes (a file's sha256, a job id): 48 bits of BLAKE2b."""
        return cls(int.from_bytes(hashlib.blake2b(bytes(data), digest_size=6).digest(), "big"))

    @classmethod
    def from_uuid(cls, value: uuid.UUID | str) -> WatermarkPayload:
        u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        return cls.from_bytes(u.bytes)

    @classmethod
    def from_hex(cls, text: str) -> WatermarkPayload:
        return cls(int(text, 16))

    @classmethod
    def random(cls) -> WatermarkPayload:
        return cls(secrets.randbits(ID_BITS))

    @property
    def hex(self) -> str:
        return f"{self.content_id:012x}"


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WatermarkResult:
    """What :meth:`Watermarker.detect` found.

    ``confidence`` is the pilot z-score (≈ N(0, 1) without a mark; 16 for a clean mark) and ``p_value``
    its one-sided normal tail: the chance of scoring this high without a mark. ``content_id`` is set
    when the mark is present and its CRC checks; ``bit_errors`` then counts the raw symbols (16 magic +
    210 coded) read wrong before error correction, ``magic_errors`` the magic bits among them.
    ``reason`` says why nothing could be measured (image too small, no frames).

    ``alignments`` is how many placements of the image in the marked frame were tried (1: the image as
    it is; more when :meth:`Watermarker.detect` searched for a crop of a few pixels or a resize that
    rounded the size) and ``alignment`` the one that found the mark, e.g. ``"left 0, right -0.5, top 0,
    bottom 0 px"`` (pixels the marked frame extends past each edge; negative: the image has that much
    more). ``confidence`` is then the best z of those tried and ``p_value`` is multiplied by their
    number (Bonferroni), so it stays the chance of scoring this high without a mark.
    """

    present: bool
    confidence: float
    content_id: int | None
    bit_errors: int | None
    p_value: float = 1.0
    magic_errors: int | None = None
    frames: int = 1
    reason: str | None = None
    alignment: str | None = None
    alignments: int = 1

    @property
    def content_hex(self) -> str | None:
        return None if self.content_id is None else f"{self.content_id:012x}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["content_hex"] = self.content_hex
        return d

    def summary(self) -> str:
        """One line, e.g. ``watermark present (z = 15.8, p = 1e-56), content id 0123456789ab, ...``."""
        if self.reason and not self.present:
            return f"watermark not measurable: {self.reason}"
        p = f"p = {self.p_value:.2g}" if self.p_value > 0 else "p < 1e-300"
        head = f"watermark {'present' if self.present else 'absent'} (z = {self.confidence:.1f}, {p}"
        if self.frames > 1:
            head += f", {self.frames} frames"
        if self.alignments > 1:
            head += f", best of {self.alignments} alignments"
        head += ")"
        if self.present and self.alignment:
            head += f", found re-aligned ({self.alignment})"
        if self.content_id is not None:
            head += f", content id {self.content_hex}, {self.bit_errors} raw symbol errors of 226"
        elif self.present:
            head += ", content id unreadable"
        return head


@dataclass(frozen=True)
class EmbedResult:
    """:meth:`Watermarker.embed_checked`'s answer: the image (a new array) and whether it was marked."""

    rgb: np.ndarray
    embedded: bool
    reason: str | None = None


# --------------------------------------------------------------------------------------------- coding


def _bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], np.uint8)


def _int(bits: np.ndarray) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def _crc16(value: int, nbits: int) -> int:
    """CRC-16/CCITT-FALSE over the ``nbits``-bit big-endian ``value``."""
    crc = 0xFFFF
    for i in range(nbits - 1, -1, -1):
        top = ((crc >> 15) & 1) ^ ((value >> i) & 1)
        crc = (crc << 1) & 0xFFFF
        if top:
            crc ^= 0x1021
    return crc


def _message(content_id: int) -> np.ndarray:
    return np.concatenate([_bits(content_id, ID_BITS), _bits(_crc16(content_id, ID_BITS), CRC_BITS)])


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for s in (4, 2, 1):
        x ^= x >> s
    return x & 1


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# register = (newest input bit << 6) | state; state = the six previous inputs, newest in bit 5
_OUT_BITS = _readonly(np.stack([_parity(np.arange(1 << _CONSTRAINT) & g) for g in _GENERATORS], axis=1))
_OUT_SIGN = _readonly(1.0 - 2.0 * _OUT_BITS)  # (128, 3): ±1 output symbols of each register
_NEXT = np.arange(1 << (_CONSTRAINT - 1))
_INTO = _readonly(np.stack([_NEXT << 1, (_NEXT << 1) | 1], axis=1))  # the two registers into each state


def _conv_encode(message: np.ndarray) -> np.ndarray:
    """Rate-1/3 code bits (0/1) for ``message`` followed by six zero tail bits."""
    state, out = 0, []
    for b in [*message.tolist(), *([0] * (_CONSTRAINT - 1))]:
        reg = (int(b) << (_CONSTRAINT - 1)) | state
        out.append(_OUT_BITS[reg])
        state = reg >> 1
    return np.concatenate(out).astype(np.uint8)


def _viterbi(soft: np.ndarray) -> np.ndarray:
    """Maximum-correlation message for soft code values (positive = bit 0), zero-tailed trellis."""
    nstates = 1 << (_CONSTRAINT - 1)
    prev = _INTO & (nstates - 1)
    branch = (_OUT_SIGN @ soft.reshape(_STEPS, len(_GENERATORS)).T).T  # (steps, registers)
    metric = np.full(nstates, -np.inf)
    metric[0] = 0.0
    decisions = np.empty((_STEPS, nstates), np.intp)
    rows = np.arange(nstates)
    for t in range(_STEPS):
        cand = metric[prev] + branch[t][_INTO]
        choice = np.argmax(cand, axis=1)
        decisions[t] = choice
        metric = cand[rows, choice]
    state, bits = 0, np.empty(_STEPS, np.uint8)
    for t in range(_STEPS - 1, -1, -1):
        bits[t] = state >> (_CONSTRAINT - 2)  # the input bit is the new state's top bit
        state = ((state << 1) | int(decisions[t, state])) & (nstates - 1)
    return bits[:_MESSAGE_BITS]


# --------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class WatermarkConfig:
    """The mark's format; embedder and detector must agree. The defaults are format v1."""

    size: int = 128  # canonical N×N resolution of Y
    band: tuple[float, float] = (6.0, 56.0)  # radial DCT index range (index k ↔ k/2 cycles per image)
    step: float = 32.0  # lattice step Δ, in canonical orthonormal-DCT units (grey levels)
    pilots: int = 128  # projections carrying the known magic (even: they come in cancelling pairs)
    repeat: int = 1  # projections per coded bit


class _Layout:
    """The keyed arrangement of projections for one :class:`WatermarkConfig` (immutable once built)."""

    def __init__(self, cfg: WatermarkConfig) -> None:
        n = cfg.size
        v, u = np.mgrid[0:n, 0:n]
        r = np.hypot(u, v)
        flat = np.flatnonzero(((r >= cfg.band[0]) & (r <= cfg.band[1])).ravel())
        if cfg.pilots < 2 or cfg.pilots % 2:
            raise ValueError("pilots must be even and ≥ 2")
        self.n_pilot = cfg.pilots
        self.n_proj = cfg.pilots + _CODED_BITS * cfg.repeat
        length = flat.size // self.n_proj
        if length < 1:
            raise ValueError("watermark band too small for the payload")
        # SHAKE-256 key stream: the same on every platform and numpy version
        words = 2 * flat.size + self.n_proj
        seed = KEY + b"/%d/%.3f/%.3f/%d/%d" % (n, cfg.band[0], cfg.band[1], cfg.pilots, cfg.repeat)
        stream = np.frombuffer(hashlib.shake_256(seed).digest(4 * words), "<u4")
        order = np.argsort(stream[: flat.size], kind="stable")
        used = self.n_proj * length
        self.index = _readonly(flat[order][:used].reshape(self.n_proj, length))
        sign = np.where(stream[flat.size : 2 * flat.size] & 1, 1.0, -1.0)[:used]
        self.weight = _readonly((sign / math.sqrt(length)).reshape(self.n_proj, length).astype(np.float32))
        self.step = float(cfg.step)
        dither = stream[2 * flat.size :] / 2.0**32 * cfg.step
        # pilot 2i+1 sits half a step from pilot 2i and carries the same bit: on a flat image (every
        # projection 0) their terms cancel exactly, so featureless pictures score z = 0
        dither[1 : self.n_pilot : 2] = (dither[0 : self.n_pilot : 2] + cfg.step / 2) % cfg.step
        self.dither = _readonly(dither)
        self.magic_group = _readonly((np.arange(self.n_pilot) // 2) % _MAGIC_BITS)
        self.pilot_bits = _readonly(_bits(MAGIC, _MAGIC_BITS)[self.magic_group].astype(np.float64))
        self.code_group = _readonly(np.arange(self.n_proj - self.n_pilot) % _CODED_BITS)
        self.size = n

    def symbols(self, content_id: int) -> np.ndarray:
        """The 0/1 symbol of every projection for a payload (pilots first)."""
        code = _conv_encode(_message(content_id))
        return np.concatenate([self.pilot_bits, code[self.code_group]]).astype(np.float64)

    def project(self, coef: np.ndarray) -> np.ndarray:
        """Projection values (float64) of an N×N DCT plane."""
        return np.einsum("ij,ij->i", coef.ravel()[self.index], self.weight, dtype=np.float64)

    def scatter(self, amount: np.ndarray) -> np.ndarray:
        """The N×N DCT plane (float32) whose projections are ``amount`` and which is zero elsewhere."""
        coef = np.zeros(self.size * self.size, np.float32)
        coef[self.index] = amount[:, None] * self.weight
        return coef.reshape(self.size, self.size)


# --------------------------------------------------------------------------------------------- watermarker


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}".strip()
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got {got}")
    return np.ascontiguousarray(rgb)


def _normal_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


class _RowSparse:
    """A matrix with a few non-zeros per row, kept as ``k`` (column, weight) pairs per row: ``M @ X`` is
    ``k`` gathers of rows of ``X``. The resampling matrices here have 2 to 7 per row; a dense product
    would wake BLAS threads that spin for milliseconds (taking CPU from a video encoder beside us), and
    scipy.sparse costs a tenth of a second to import."""

    def __init__(self, index: np.ndarray, weight: np.ndarray) -> None:
        self.index = index  # (rows, k) column numbers; a column may repeat (the weights add up)
        self.weight = weight.astype(np.float32)  # (rows, k)

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> _RowSparse:
        nonzero = dense != 0
        k = max(1, int(nonzero.sum(1).max()))
        index = np.argsort(~nonzero, axis=1, kind="stable")[:, :k]  # non-zero columns first
        return cls(index, np.take_along_axis(dense, index, 1))

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nkc->nc", self.weight, x[self.index])


def _area_square(y: np.ndarray, size: int) -> np.ndarray:
    """``y`` (uint8) area-resampled to size×size, as float32 rounded to integers: OpenCV's one-step
    INTER_AREA (equal to it to the grey level). Area resampling is separable, so where one side is a
    whole multiple of ``size`` that axis goes first, through OpenCV's fast integer-factor path, and the
    other on 1/k of the pixels (a 720p frame to 256²: 0.6 instead of 1.3 ms)."""
    h, w = y.shape
    if w % size == 0 or h % size == 0:
        first = (size, h) if w % size == 0 else (w, size)
        out = cv2.resize(cv2.resize(y.astype(np.float32), first, interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_AREA)  # fmt: skip
        return np.rint(out, out=out)
    return cv2.resize(y, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def _area_matrix(n: int, length: int, start: float, stop: float) -> _RowSparse:
    """n×length area-resampling weights: output cell ``j`` averages ``[start + j·s, start + (j+1)·s)`` of
    a line of ``length`` pixels (``s = (stop − start) / n``), the part outside ``[0, length)`` taken from
    the edge pixel. ``(0, length)`` is OpenCV's INTER_AREA downsampling."""
    s = (stop - start) / n
    a = start + s * np.arange(n)
    b = a + s
    i = np.floor(a).astype(np.intp)[:, None] + np.arange(math.ceil(s) + 2)  # the pixels a cell may touch
    overlap = np.minimum(b[:, None], i + 1) - np.maximum(a[:, None], i)
    return _RowSparse(np.clip(i, 0, length - 1), np.where(overlap > 1e-9, overlap / s, 0.0))


class _Buffers:
    """Scratch images for one frame size (reused frame after frame)."""

    def __init__(self, h: int, w: int) -> None:
        self.off = np.empty((h, w), np.uint8)
        self.mid = np.full((h, w), 128, np.uint8)
        self.gray = np.empty((h, w), np.uint8)
        self._colour: tuple[np.ndarray, np.ndarray] | None = None

    def colour(self) -> tuple[np.ndarray, np.ndarray]:
        """Two H×W×3 scratch images (made on first use: a luma-only marker never needs them)."""
        if self._colour is None:
            h, w = self.off.shape
            self._colour = (np.empty((h, w, 3), np.uint8), np.empty((h, w, 3), np.uint8))
        return self._colour


_Sparse2 = tuple[_RowSparse, _RowSparse]
_K = TypeVar("_K")
_V = TypeVar("_V")


def _lru(cache: OrderedDict[_K, _V], key: _K, make: Callable[[], _V], size: int) -> _V:
    value = cache.get(key)
    if value is None:
        value = make()
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value


class Watermarker:
    """Embeds and detects masquerade's watermark.

    ``strength`` (0, 1] is how far each projection is moved towards its lattice point (1: all the way;
    lower is fainter and less robust). ``threshold`` is the pilot z-score from which a mark is reported
    present. An instance caches per-size matrices and scratch buffers: use one per thread.
    """

    def __init__(
        self,
        strength: float = 1.0,
        threshold: float = DEFAULT_THRESHOLD,
        config: WatermarkConfig | None = None,
    ) -> None:
        if not 0.0 < strength <= 1.0:
            raise ValueError("strength must be in (0, 1]")
        self.strength = float(strength)
        self.threshold = float(threshold)
        self.config = config or WatermarkConfig()
        self._layout = _Layout(self.config)
        self._shapes: OrderedDict[tuple[int, int], _Sparse2] = OrderedDict()
        self._symbols: OrderedDict[int, np.ndarray] = OrderedDict()
        self._buffers: OrderedDict[tuple[int, int], _Buffers] = OrderedDict()
        self._areas: OrderedDict[tuple[int, float, float], _RowSparse] = OrderedDict()

    # ----------------------------------------------------------------------------------------- caches

    def _resampling(self, h: int, w: int) -> _Sparse2:
        """``(B_v, B_hᵀ)``, sparse, with ``canonical(bilinear_upsample(d)) == B_v @ d @ B_h`` for an H×W
        image (both OpenCV resamplings are separable, so this is exact; each row has ≤ 3 non-zeros).
        Sparse on purpose: a dense BLAS product would wake OpenBLAS threads that then spin for
        milliseconds, taking CPU from a video encoder running beside us."""

        def make() -> _Sparse2:
            n = self.config.size
            eye = np.eye(n, dtype=np.float32)
            up_h = cv2.resize(eye, (w, n), interpolation=cv2.INTER_LINEAR)
            up_v = cv2.resize(eye, (n, h), interpolation=cv2.INTER_LINEAR)
            bh = cv2.resize(up_h, (n, n), interpolation=cv2.INTER_AREA)
            bv = cv2.resize(up_v, (n, n), interpolation=cv2.INTER_AREA)
            return _RowSparse.from_dense(bv), _RowSparse.from_dense(bh.T)

        return _lru(self._shapes, (h, w), make, 8)

    def _payload_symbols(self, content_id: int) -> np.ndarray:
        return _lru(self._symbols, content_id, lambda: self._layout.symbols(content_id), 8)

    # ----------------------------------------------------------------------------------------- embed

    def _analyse(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical N×N luma (float32, as :meth:`evidence` sees it) and the perceptual mask.

        The mask is a gain at canonical resolution with mean 1: larger in texture, smaller on flat areas
        (skin, sky, walls), beside straight edges and near black or white (where the mark would clip).
        It is measured on a 2N×2N area resample; area resampling nests exactly, so that resample also
        yields the canonical image (up to uint8 rounding).
        """
        n = self.config.size
        h, w = y.shape
        if min(h, w) >= 2 * n:
            f = _area_square(y, 2 * n)
            yc = cv2.resize(f.astype(np.uint8), (n, n), interpolation=cv2.INTER_AREA)
        else:
            f = y.astype(np.float32)
            yc = cv2.resize(y, (n, n), interpolation=cv2.INTER_AREA)
        k = (3, 3)
        mu = cv2.boxFilter(f, -1, k)
        # texture, not edges: across a straight edge or stripe only one direction has contrast, and a
        # mark beside it shows; the geometric mean of horizontal and vertical activity is small there
        ax = cv2.boxFilter(np.abs(cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=1)), -1, k)
        ay = cv2.boxFilter(np.abs(cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=1)), -1, k)
        gain = np.sqrt(ax * ay)
        gain *= 1.0 / _MASK_REF
        np.clip(gain, _MASK_LO, _MASK_HI, out=gain)
        gain *= np.clip((255.0 - mu) * (1.0 / 24.0), 0.05, 1.0)
        gain *= np.clip(mu * (1.0 / 16.0), 0.05, 1.0)
        m = cv2.resize(gain, (n, n), interpolation=cv2.INTER_AREA)
        m *= 1.0 / max(float(m.mean()), 1e-6)
        return yc.astype(np.float32), m

    def canonical_delta(
        self, y: np.ndarray, content_id: int, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The N×N luma change that, upsampled bilinearly to ``y``'s size, puts every projection on
        its lattice point; and the lattice indices chosen. ``keep``: indices to stay on while they are
        within ``HYSTERESIS`` steps (temporal coherence for video)."""
        lay = self._layout
        bv, bh_t = self._resampling(*y.shape)
        yc, m = self._analyse(y)
        proj = lay.project(cv2.dct(yc))
        offset = lay.dither + self._payload_symbols(content_id) * (lay.step / 2)
        index = np.round((proj - offset) / lay.step)
        if keep is not None and keep.shape == index.shape:
            near = np.abs(offset + lay.step * keep - proj) <= HYSTERESIS * lay.step
            index = np.where(near, keep, index)
        want = self.strength * (offset + lay.step * index - proj)
        amount = want.copy()
        # fixed-point refinement: the mask and the resampling couple the projections a little
        for _ in range(_ITERATIONS):
            delta = m * cv2.idct(lay.scatter(amount))
            seen = np.ascontiguousarray((bh_t @ (bv @ delta).T).T)  # what the detector will see
            amount += want - lay.project(cv2.dct(seen))
        delta = m * cv2.idct(lay.scatter(amount))
        rms = float(np.sqrt(np.mean(delta * delta)))
        if rms > MAX_RMS:  # rare (very uneven texture): keep PSNR ≥ 40 dB, embed less far
            delta *= MAX_RMS / rms
        return delta, index

    def _offset(self, h: int, w: int, delta: np.ndarray) -> _Buffers:
        """``round(delta) + 128`` at canonical resolution, upsampled bilinearly in uint8 to h×w (into
        the buffers' ``off``); the detector's canonical image is rounded to integers as well, so the
        rounding costs nothing measurable."""
        small = cv2.convertScaleAbs(delta, alpha=1.0, beta=128.0)
        buf = _lru(self._buffers, (h, w), lambda: _Buffers(h, w), 2)
        cv2.resize(small, (w, h), dst=buf.off, interpolation=cv2.INTER_LINEAR)
        return buf

    def _apply(self, rgb: np.ndarray, delta: np.ndarray, inplace: bool) -> np.ndarray:
        h, w = rgb.shape[:2]
        buf = self._offset(h, w, delta)
        pos, neg = buf.colour()
        cv2.subtract(buf.off, buf.mid, dst=buf.gray)
        cv2.cvtColor(buf.gray, cv2.COLOR_GRAY2RGB, dst=pos)
        cv2.subtract(buf.mid, buf.off, dst=buf.gray)
        cv2.cvtColor(buf.gray, cv2.COLOR_GRAY2RGB, dst=neg)
        # equal changes to R, G and B change Y only (the BT.601 weights sum to 1)
        out = cv2.add(rgb, pos, dst=rgb if inplace else None)
        return cv2.subtract(out, neg, dst=out)

    def _apply_luma(self, y: np.ndarray, delta: np.ndarray) -> None:
        """Add ``delta`` (grey levels of full-range luma) to a limited-range Y plane, in place."""
        h, w = y.shape
        buf = self._offset(h, w, delta * (_Y_SPAN / 255.0))
        cv2.subtract(buf.off, buf.mid, dst=buf.gray)
        cv2.add(y, buf.gray, dst=y)
        cv2.subtract(buf.mid, buf.off, dst=buf.gray)
        cv2.subtract(y, buf.gray, dst=y)

    def _refusal(self, shape: tuple[int, ...]) -> str | None:
        """Why an image of ``shape`` (h, w, …) is not marked, or None."""
        h, w = shape[:2]
        if min(h, w) < MIN_EMBED_SIDE:
            return f"image {w}x{h} is below the {MIN_EMBED_SIDE} px minimum side for a reliable watermark"
        return None

    def embed_checked(self, rgb: np.ndarray, payload: WatermarkPayload, inplace: bool = False) -> EmbedResult:
        """Mark ``rgb`` (H×W×3 uint8) or say why not. The image returned is a new array, or with
        ``inplace=True`` ``rgb`` itself, marked in place (when it is C-contiguous; saves a frame copy)."""
        rgb = _as_rgb(rgb)
        reason = self._refusal(rgb.shape)
        if reason:
            return EmbedResult(rgb if inplace else rgb.copy(), False, reason)
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        delta, _ = self.canonical_delta(y, payload.content_id)
        return EmbedResult(self._apply(rgb, delta, inplace), True)

    def embed(self, rgb: np.ndarray, payload: WatermarkPayload, inplace: bool = False) -> np.ndarray:
        """``rgb`` with the mark added (a new array, or ``rgb`` itself with ``inplace=True``). An image
        below ``MIN_EMBED_SIDE`` comes back unmarked with a warning logged; :meth:`embed_checked`
        returns the reason instead."""
        res = self.embed_checked(rgb, payload, inplace)
        if not res.embedded:
            log.warning("watermark not embedded: %s", res.reason)
        return res.rgb

    def frame_marker(self, payload: WatermarkPayload) -> FrameMarker:
        """A callable that marks the frames of one video in order (less temporal flicker)."""
        return FrameMarker(self, payload)

    # ----------------------------------------------------------------------------------------- detect

    def evidence(self, rgb: np.ndarray) -> np.ndarray | None:
        """One unit phasor per projection (where it sits on its lattice), or None when too small."""
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_DETECT_SIDE:
            return None
        n = self.config.size
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return self._phasors(cv2.resize(y, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32))

    def _phasors(self, yc: np.ndarray) -> np.ndarray:
        """The unit phasors of a canonical (config.size²) float32 grey image."""
        lay = self._layout
        phase = (2 * math.pi / lay.step) * (lay.project(cv2.dct(yc)) - lay.dither)
        return np.exp(1j * phase)

    def _area(self, length: int, before: float, after: float) -> _RowSparse:
        """Area weights from a line of ``length`` px extended by ``before`` / ``after`` px (cached)."""
        key = (length, before, after)
        n = self.config.size
        return _lru(self._areas, key, lambda: _area_matrix(n, length, -before, length + after), 64)

    def aligned_evidence(self, rgb: np.ndarray) -> tuple[np.ndarray, str, int] | None:
        """The phasors of the best of several placements of ``rgb`` in the marked frame: per axis, the
        frame may extend ``SEARCH_START`` px before the image (a crop; 0.5: a 1 px crop, then halved)
        and ``SEARCH_END`` px after it (a crop, or −0.5 / +0.5: a resize that rounded the size and kept
        the exact scale, e.g. 0.5 × 487 px → 244 px holding 243.5 px of picture); every combination of
        the four edges, 400 in all. Returns the phasors with the highest pilot z, that placement in
        words and the number tried; None when the image is too small."""
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_DETECT_SIDE:
            return None
        lay = self._layout
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        k = min(h, w) / _SEARCH_SIDE
        if k >= 2.0:  # area-reduce first (INTER_AREA maps the whole extent, so geometry is kept)
            y = cv2.resize(y, (round(w / k), round(h / k)), interpolation=cv2.INTER_AREA)
        hr, wr = y.shape
        sx, sy = wr / w, hr / h  # reduced pixels per image pixel
        yt = np.ascontiguousarray(y.T, dtype=np.float32)
        horizontal = [(a, b) for a in SEARCH_START for b in SEARCH_END]
        vertical = [(a, b) for a in SEARCH_START for b in SEARCH_END]
        # canonical = A_v · Y · A_hᵀ: each horizontal placement once, then each vertical one on it
        across = [np.ascontiguousarray((self._area(wr, a * sx, b * sx) @ yt).T) for a, b in horizontal]
        # the pilots alone decide which placement is best: z = Σ cos(phase)·sign / sqrt(pilots / 2)
        signs = 1.0 - 2.0 * lay.pilot_bits
        norm = math.sqrt(lay.n_pilot / 2.0)
        index, weight = lay.index[: lay.n_pilot], lay.weight[: lay.n_pilot]
        dither = lay.dither[: lay.n_pilot]
        best: tuple[float, np.ndarray, str] = (-math.inf, np.empty(0), "")
        for top, bottom in vertical:
            av = self._area(hr, top * sy, bottom * sy)
            for (left, right), g in zip(horizontal, across, strict=True):
                yc = np.ascontiguousarray(av @ g, dtype=np.float32)
                np.round(yc, out=yc)  # as the uint8 canonical image of evidence()
                coef = cv2.dct(yc).ravel()
                pilots = np.einsum("ij,ij->i", coef[index], weight, dtype=np.float64)
                z = float(np.dot(np.cos((2 * math.pi / lay.step) * (pilots - dither)), signs)) / norm
                if z > best[0]:
                    where = f"left {left:g}, right {right:g}, top {top:g}, bottom {bottom:g} px"
                    best = (z, yc, where)
        return self._phasors(best[1]), best[2], len(horizontal) * len(vertical)

    def decide(self, x: np.ndarray | None, frames: int = 1, reason: str | None = None) -> WatermarkResult:
        """A result from evidence: one image's phasors, or their mean over the frames of a video."""
        if x is None or frames == 0:
            return WatermarkResult(False, 0.0, None, None, 1.0, None, frames, reason or "nothing to measure")
        lay = self._layout
        xp = x[: lay.n_pilot]
        denom = math.sqrt(float(np.sum(np.abs(xp) ** 2)) / 2.0)
        z = float(np.dot(xp.real, 1.0 - 2.0 * lay.pilot_bits) / denom) if denom > 0 else 0.0
        magic_soft = np.bincount(lay.magic_group, xp.real, minlength=_MAGIC_BITS)
        magic_errors = int(np.sum((magic_soft < 0) != _bits(MAGIC, _MAGIC_BITS).astype(bool)))
        soft = np.bincount(lay.code_group, x[lay.n_pilot :].real, minlength=_CODED_BITS)
        msg = _viterbi(soft)
        cid = _int(msg[:ID_BITS])
        crc_ok = _int(msg[ID_BITS:]) == _crc16(cid, ID_BITS)
        present = z >= self.threshold or (crc_ok and z >= CRC_THRESHOLD)
        if not (present and crc_ok):
            return WatermarkResult(present, z, None, None, _normal_tail(z), magic_errors, frames, reason)
        coded_errors = int(np.sum((soft < 0) != _conv_encode(msg).astype(bool)))
        return WatermarkResult(
            True, z, cid, coded_errors + magic_errors, _normal_tail(z), magic_errors, frames, reason
        )

    def detect(self, rgb: np.ndarray, search: bool = True) -> WatermarkResult:
        """Look for the mark in one RGB uint8 image: first as it is; unless that reads a content id
        with z ≥ ``SEARCH_BELOW`` (or ``search`` is False), also re-aligned for a crop of up to 2 px
        per edge or a resize that rounded the size (:meth:`aligned_evidence`; about 50-100 ms more),
        keeping the better. A re-aligned find must reach ``threshold`` itself (the CRC rule applies
        to the image as it is only); its p-value counts every placement tried. Video frames
        (:meth:`detect_frames`) are not re-aligned."""
        x = self.evidence(rgb)
        if x is None:
            h, w = rgb.shape[:2]
            return self.decide(None, 1, f"image {w}x{h} is below the {MIN_DETECT_SIDE} px minimum side")
        plain = self.decide(x)
        confident = plain.present and plain.content_id is not None and plain.confidence >= SEARCH_BELOW
        if confident or not search:
            return plain
        found = self.aligned_evidence(rgb)
        if found is None:  # pragma: no cover - evidence() measured it, so it is large enough
            return plain
        xa, where, tried = found
        res = self.decide(xa)
        if res.confidence <= plain.confidence:
            return dataclasses.replace(plain, alignments=tried + 1)
        present = res.confidence >= self.threshold
        p = min(1.0, (tried + 1) * res.p_value)
        if plain.present and not (present and (res.content_id is not None or plain.content_id is None)):
            return dataclasses.replace(plain, alignments=tried + 1)  # found as it is, and read no worse
        if not present:
            return dataclasses.replace(res, present=False, content_id=None, bit_errors=None, p_value=p,
                                       alignments=tried + 1)  # fmt: skip
        return dataclasses.replace(res, present=True, p_value=p, alignment=where, alignments=tried + 1)

    def detect_frames(self, frames: Iterable[np.ndarray]) -> WatermarkResult:
        """Look for one mark across video frames: their phasors are averaged, then tested once."""
        total: np.ndarray | None = None
        count = 0
        for rgb in frames:
            x = self.evidence(rgb)
            if x is None:
                continue
            total = x if total is None else total + x
            count += 1
        if total is None:
            return self.decide(None, 0, "no frame large enough to measure")
        return self.decide(total / count, count)

    def detect_file(self, path: str | os.PathLike[str], max_frames: int = 32) -> WatermarkResult:
        """An image (via :func:`masquerade.imageio.load_image`) or a video: up to ``max_frames`` frames
        spread evenly over it (every frame is decoded; the sampled ones are tested)."""
        from ..imageio import load_image
        from ..video.probe import is_video_path, iter_frames, probe

        p = Path(path)
        if not is_video_path(p):
            return self.detect(load_image(p).rgb)
        info = probe(p)
        stride = max(1, info.frames // max(1, max_frames)) if info.frames else 1

        def sampled() -> Iterator[np.ndarray]:
            taken = 0
            for i, (rgb, _t) in enumerate(iter_frames(p)):
                if i % stride == 0:
                    yield rgb
                    taken += 1
                    if taken >= max_frames:
                        return

        return self.detect_frames(sampled())


class FrameMarker:
    """Marks the frames of one video, in order, with one payload.

    Like :meth:`Watermarker.embed` per frame, but each projection stays on the previous frame's lattice
    point while that is within ``HYSTERESIS`` steps, so a still or slowly moving scene gets a nearly
    static mark (less shimmer, and cheaper for the encoder). Not thread-safe; ``reset()`` at a cut.
    """

    def __init__(self, watermarker: Watermarker, payload: WatermarkPayload) -> None:
        self.watermarker = watermarker
        self.payload = payload
        self._index: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self.frames = 0
        self.skipped = 0

    def reset(self) -> None:
        self._index, self._shape = None, None

    def _take(self, shape: tuple[int, ...]) -> bool:
        """Whether the next frame, of ``shape`` (h, w), gets the mark: a frame too small is counted as
        skipped; a new size starts the lattice afresh."""
        reason = self.watermarker._refusal(shape)
        if reason:
            if self.skipped == 0:  # the caller reports it (frames / skipped); a log line here could
                log.debug("watermark not embedded: %s", reason)  # precede a one-line error
            self.skipped += 1
            return False
        hw = (int(shape[0]), int(shape[1]))
        if self._shape != hw:
            self.reset()
            self._shape = hw
        return True

    def __call__(self, rgb: np.ndarray, inplace: bool = False) -> np.ndarray:
        """The next frame, marked: a new array, or ``rgb`` itself with ``inplace=True``."""
        wm = self.watermarker
        rgb = _as_rgb(rgb)
        if not self._take(rgb.shape[:2]):
            return rgb if inplace else rgb.copy()
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        delta, self._index = wm.canonical_delta(y, self.payload.content_id, keep=self._index)
        self.frames += 1
        return wm._apply(rgb, delta, inplace)

    def mark_luma(self, y: np.ndarray) -> bool:
        """Mark the next frame through its luma plane alone, in place: ``y`` is the frame's Y plane as
        an encoder's ``yuv420p`` frame carries it (uint8, H×W, BT.601 limited range 16-235), upright
        (a rotated view is fine). The same mark as :meth:`__call__` on the RGB frame, which moves R, G
        and B by the same amount and so changes Y alone, up to rounding; at about half the cost (no
        RGB → grey, one channel to change). Returns whether the frame was marked."""
        wm = self.watermarker
        if not self._take(y.shape[:2]):
            return False
        plane = y if y.flags.c_contiguous else np.ascontiguousarray(y)
        grey = cv2.convertScaleAbs(plane, alpha=255.0 / _Y_SPAN, beta=-16.0 * 255.0 / _Y_SPAN)
        delta, self._index = wm.canonical_delta(grey, self.payload.content_id, keep=self._index)
        wm._apply_luma(plane, delta)
        if plane is not y:
            y[...] = plane
        self.frames += 1
        return True


def detect_file(path: str | os.PathLike[str], max_frames: int = 32) -> WatermarkResult:
    """Is there a masquerade watermark in this image or video file? (default :class:`Watermarker`)"""
    return Watermarker().detect_file(path, max_frames=max_frames)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) between two uint8 images of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


__all__ = [
    "DEFAULT_THRESHOLD",
    "KEY",
    "MAGIC",
    "MIN_EMBED_SIDE",
    "EmbedResult",
    "FrameMarker",
    "WatermarkConfig",
    "WatermarkPayload",
    "WatermarkResult",
    "Watermarker",
    "detect_file",
    "psnr",
]

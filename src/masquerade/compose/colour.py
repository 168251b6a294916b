"""Colour correction of a swapped face to the target's colour and lighting.

* ``reinhard``: match the mean and standard deviation of each LAB channel inside the mask
  (Reinhard et al. 2001).
* ``shading``: Reinhard, then transfer the target's low-frequency lighting (masked Gaussian
  low-pass of LAB), so directional light and shadows on the target face carry over.
* ``none``: leave the colours.

Both corrections then keep the face's highlights within the target's own. A linear transfer scales the
source's highlights with its skin: shine on a dark-skinned forehead, moved to a light-skinned target
with the contrast doubled, ended far above anything in the target's face, clipped to flat white
patches. Specular shine does not scale with the skin's lightness. So where the source's 99.5th
percentile of lightness, transferred, lands above the target's, lightness above the target's 95th
percentile is compressed smoothly (tanh) so that it lands on the target's 99.5th instead; a source
whose highlights are no brighter than the target's, transferred (the target itself, say), is left
as it is.

Before that, a source whose skin is much darker than the target's has its shine taken out of the
lightness gain. The gain doubles a dark face's lightness spread to match a light one's, and with it
the shine on its forehead, brow ridge and cheekbones: bright bars that read as a mask. Shine is light
reflected off the skin's surface, so it does not scale with the skin's darkness: lightness standing
above its surroundings in spots and ridges narrower than a tenth of the face (a greyscale opening) gets
the gain divided by the ratio of the skins' lightness (L + 16, which goes with the cube root of
luminance). The step ramps in between ratios 1.3 and 1.8 (:data:`SHINE_RATIO`): below, a darker photo
is more likely the same skin less exposed, whose shine brightens with the rest.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from typing import Literal

import cv2
import numpy as np

ColourMode = Literal["none", "reinhard", "shading"]
COLOUR_MODES: tuple[str, ...] = ("none", "reinhard", "shading")
HIGHLIGHTS = (95.0, 99.5)  # percentiles of lightness: where the knee starts (target), what it matches


def warm_up() -> threading.Thread:
    """Build OpenCV's colour-conversion tables on a background thread, now: the first LAB conversion
    of a process spends about 0.15 s on them (with the GIL released), which a one-photo swap would
    otherwise wait for after detecting its faces. Returns the started thread. Not a daemon: the
    interpreter waits for it before it exits, as it must — a process that ends (say, on bad input)
    while a thread is still inside OpenCV aborts when OpenCV's own threads are torn down."""
    t = threading.Thread(target=_build_tables, name="masquerade-warm-up")
    t.start()
    return t


def _build_tables() -> None:
    # nothing may escape: a thread's exception is printed as a traceback, and the conversion this
    # prepares raises its own error where it is really made
    with contextlib.suppress(Exception):
        _rgb(_lab(np.zeros((1, 1, 3), np.uint8)))


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _rgb(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    rgb *= 255.0
    return np.clip(rgb, 0, 255, out=rgb)


def _masked_lows(xs: list[np.ndarray], sel: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Normalised (masked) Gaussian low-passes of each ``x`` inside the boolean mask ``sel``, left at the
    reduced resolution they are computed at (1/max(1, sigma/3) of the size): one grid for all, so they
    can be combined there and brought to full size once (bilinear upsampling is linear)."""
    h, wd = sel.shape
    f = max(1.0, sigma / 3.0)
    small = (max(1, round(wd / f)), max(1, round(h / f)))
    s = sigma / f
    m8 = np.ascontiguousarray(sel).view(np.uint8)
    den = cv2.GaussianBlur(cv2.resize(sel.astype(np.float32), small, interpolation=cv2.INTER_AREA), (0, 0), s)
    den = np.maximum(den, 1e-4)[..., None]
    lows = []
    for x in xs:
        inside = cv2.copyTo(x, m8, np.zeros_like(x))  # x·mask, an order of magnitude faster than a product
        low = cv2.resize(inside, small, interpolation=cv2.INTER_AREA)
        lows.append(cv2.GaussianBlur(low, (0, 0), s) / den)
    return lows


def reinhard_stats(src_lab: np.ndarray, ref_lab: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """The colour statistics inside ``sel`` (every other pixel each way), a 5×3 array: the source's and
    the reference's mean and standard deviation of L, a, b (rows 0-3), and the highlights (row 4): the
    reference's lightness at the two :data:`HIGHLIGHTS` percentiles and the source's at the second."""
    grid = np.ascontiguousarray(sel[::2, ::2], np.uint8)  # every other pixel: plenty for mean and spread
    s, r = src_lab[::2, ::2], ref_lab[::2, ::2]
    if cv2.countNonZero(grid) < 16:
        grid, s, r = sel.astype(np.uint8), src_lab, ref_lab
    mu_s, sd_s = cv2.meanStdDev(np.ascontiguousarray(s), mask=grid)
    mu_r, sd_r = cv2.meanStdDev(np.ascontiguousarray(r), mask=grid)
    inside = grid > 0
    high = [*_percentiles(r[..., 0][inside], HIGHLIGHTS), *_percentiles(s[..., 0][inside], HIGHLIGHTS[1:])]
    return np.stack([mu_s.ravel(), sd_s.ravel() + 1e-4, mu_r.ravel(), sd_r.ravel() + 1e-4, high])


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """The order statistics nearest the percentiles ``qs`` of a 1-D array: a partial sort, without
    ``np.percentile``'s interpolation and its overhead (a tenth of the time on a face's pixels)."""
    k = np.round(np.asarray(qs) / 100.0 * (len(values) - 1)).astype(np.intp)
    return np.partition(values, k)[k]


def _gain(stats: np.ndarray) -> np.ndarray:
    return np.clip(stats[3] / stats[1], 0.5, 2.0)


def reinhard_apply(src_lab: np.ndarray, stats: np.ndarray) -> np.ndarray:
    stats = np.asarray(stats, np.float64)
    mu_s, mu_r, gain = stats[0], stats[2], _gain(stats)
    m = np.hstack([np.diag(gain), (mu_r - mu_s * gain)[:, None]])  # per channel: x·gain + offset
    return cv2.transform(src_lab, m)


def correct_colour(
    patch: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray,
    mode: ColourMode | str = "reinhard",
    face_px: float = 100.0,
    stats_filter: Callable[[np.ndarray], np.ndarray] | None = None,
    keep_chroma: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``patch`` (uint8 RGB, same size as ``target``) recoloured to ``target`` inside ``mask``.

    ``stats_filter`` may smooth the colour statistics over time (video): it receives and returns the
    5×3 array of :func:`reinhard_stats`. ``keep_chroma`` (float 0..1, patch-sized; the eyes): where the
    patch keeps its own hue and saturation and only its lightness is corrected — the skin's shift would
    turn blue irises green and the whites of the eyes the target's skin colour.
    """
    if mode not in COLOUR_MODES:
        raise ValueError(f"unknown colour mode {mode!r}; choose from {', '.join(COLOUR_MODES)}")
    if mode == "none":
        return patch
    sel = mask > 0.5
    if sel.sum() < 16:
        return patch
    p, t = _lab(patch), _lab(target)
    stats = reinhard_stats(p, t, sel)
    if stats_filter is not None:
        stats = stats_filter(stats)
    out = reinhard_apply(p, stats)
    shine_gain = _shine_gain(stats)
    if shine_gain < 1.0:  # a darker skin's shine is not scaled with it (see the module docstring)
        spots = shine(p[..., 0], sel, face_px)
        spots -= float(cv2.mean(spots, mask=sel.view(np.uint8))[0])  # the mean stays the target's
        out[..., 0] -= (1.0 - shine_gain) * float(_gain(stats)[0]) * spots
    if mode == "shading":  # inside the mask, the target's low-frequency lighting replaces the patch's
        low_t, low_out = _masked_lows([t, out], sel, max(2.0, face_px / 10.0))
        lighting = cv2.resize(low_t - low_out, (sel.shape[1], sel.shape[0]), interpolation=cv2.INTER_LINEAR)
        cv2.add(out, lighting, dst=out, mask=sel.view(np.uint8))
    start, top, src_top = (float(v) for v in stats[4])
    span = knee_span(start, top, (src_top - stats[0, 0]) * _gain(stats)[0] + stats[2, 0])
    if span is not None:
        light = out[..., 0]
        over = sel & (light > start)
        light[over] = start + span * np.tanh((light[over] - start) / span)
    if keep_chroma is not None:
        x, y, bw, bh = cv2.boundingRect((keep_chroma > 0).view(np.uint8))
        box = (slice(y, y + bh), slice(x, x + bw), slice(1, 3))
        out[box] += keep_chroma[box[:2]][..., None] * (p[box] - out[box])
    return _rgb(out).astype(np.uint8)


SHINE_RATIO = (1.3, 1.8)  # target's over source's skin lightness (L + 16): shine's own gain ramps in


def _shine_gain(stats: np.ndarray) -> float:
    """The share of the lightness gain a source's shine takes: 1 / the ratio ``a`` of the skins'
    lightness (L + 16, which goes with the cube root of luminance) where the source's skin is much
    darker than the target's, ramping in over :data:`SHINE_RATIO` (a lighter photo of the same skin —
    exposure, not skin — brightens its shine with it); 1 otherwise."""
    a = float((stats[2, 0] + 16.0) / (stats[0, 0] + 16.0))
    lo, hi = SHINE_RATIO
    t = min(1.0, max(0.0, (a - lo) / (hi - lo)))
    return 1.0 - t * (1.0 - 1.0 / a)


SHINE_SIZE = 0.1  # of the face's size: lightness narrower than this above its surroundings is shine


def shine(light: np.ndarray, sel: np.ndarray, face_px: float) -> np.ndarray:
    """How far the lightness ``light`` stands above its surroundings in bright spots and ridges narrower
    than :data:`SHINE_SIZE` of the face (a greyscale opening); zero outside ``sel``. Computed at a
    resolution reduced to a ninth of that size (pores and fine texture stay with the skin)."""
    d = max(3.0, SHINE_SIZE * face_px)
    f = max(1.0, d / 9.0)
    h, w = light.shape
    small = (max(1, round(w / f)), max(1, round(h / f)))
    low = cv2.resize(light, small, interpolation=cv2.INTER_AREA) if f > 1.0 else light
    k = max(3, int(round(d / f)) | 1)
    base = cv2.morphologyEx(low, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    base = cv2.GaussianBlur(base, (0, 0), k / 4.0)
    spot = np.maximum(low - base, 0.0)
    if f > 1.0:
        spot = cv2.resize(spot, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.copyTo(spot, sel.view(np.uint8), np.zeros_like(spot))


def knee_span(start: float, top: float, high: float) -> float | None:
    """The span of the highlight knee ``start + span·tanh((L − start) / span)`` that brings lightness
    ``high`` (the source's highlights, transferred) down to ``top`` (the target's); None when ``high``
    is not above ``top`` (nothing to compress) or the target has no highlights above ``start``.
    The knee is continuous with slope 1 at ``start``, so the face's ordinary range is untouched."""
    if high <= top or top <= start:
        return None
    ratio = (top - start) / (high - start)  # = tanh(u) / u with u = (high - start) / span; solve for u
    lo, hi = 0.0, 1.0
    while math.tanh(hi) / hi > ratio:
        hi *= 2.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.tanh(mid) / mid > ratio else (lo, mid)
    return (high - start) / hi

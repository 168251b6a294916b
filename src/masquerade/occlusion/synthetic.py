"""Synthetic occluders with exact masks: things in front of a face, drawn from a seed.

The survey's way of simulating occlusion (pasting objects onto faces) for benchmarks and training: an
:class:`OccluderLayer` is an RGB layer and its alpha over the whole image, placed relative to a face's
68 landmarks, so the same seed on the same face always gives the same occluder. Kinds:

* ``patch``: a blob cut from another photo's non-face region (``texture``), anywhere on the face;
* ``hand``: a palm with fingers in a skin tone with shading, over the chin, mouth or a cheek;
* ``strands``: hair strands falling from the forehead across an eye and cheek;
* ``bar``: a microphone (a dark bar with a head) coming from below towards the mouth;
* ``glasses``: a frame round both eyes, clear or (half of the time) dark lenses.

Three more kinds, closer to the occluders of in-the-wild photos (the segmenter trains on all eight; the
shipped benchmarks' specs use the five above):

* ``bangs``: a fringe of hair over the forehead with a jagged edge of strand tips, straight or swept to
  one side, in a hair colour with a strand texture (noise stretched along the strands);
* ``palm``: a hand in the face's own skin tone (sampled from its cheeks in ``image``) resting on the
  chin, a cheek, the temple or the forehead, fingers pointing any way but down;
* ``sunglasses``: large dark or mirrored lenses (round, wayfarer or teardrop) with a gradient and a
  highlight.

``alpha`` is anti-aliased; :attr:`OccluderLayer.mask` (alpha > 0.5) is the exact mask a benchmark scores.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .hand_cutouts import HandCutouts, real_hand_layer

OCCLUDER_KINDS: tuple[str, ...] = ("patch", "hand", "strands", "bar", "glasses")
REALISTIC_KINDS: tuple[str, ...] = ("bangs", "palm", "sunglasses")
ALL_KINDS: tuple[str, ...] = (*OCCLUDER_KINDS, *REALISTIC_KINDS)
# a real hand cut out of another photo (:mod:`.hand_cutouts`): only with a bank of cut-outs, so not a
# kind a benchmark's spec can name
REAL_HAND = "realhand"
SS = 4  # drawing supersampling (anti-aliased alpha)

# skin tones (Lab, OpenCV 8-bit scale: L 0..255, a/b offset 128) and hair colours (RGB)
_SKIN_LAB = np.array([[200, 140, 150], [175, 145, 155], [150, 148, 160], [115, 146, 156], [80, 143, 150]])
_HAIR_RGB = np.array(
    [[20, 16, 14], [45, 30, 22], [80, 55, 35], [140, 105, 60], [200, 170, 110], [120, 50, 25]]
)


@dataclass(frozen=True)
class OccluderLayer:
    """An occluder over a whole image: ``rgb`` (H×W×3 uint8) where ``alpha`` (H×W float32, 0..1) > 0."""

    kind: str
    rgb: np.ndarray
    alpha: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """The occluder's exact mask (alpha above one half)."""
        return self.alpha > 0.5

    def over(self, image: np.ndarray) -> np.ndarray:
        """``image`` with the occluder in front of it."""
        a = self.alpha[..., None]
        return np.clip(
            image.astype(np.float32) * (1 - a) + self.rgb.astype(np.float32) * a + 0.5, 0, 255
        ).astype(np.uint8)


def parse_occluder(spec: str) -> tuple[str, int]:
    """``"hand:17"`` → (``"hand"``, 17); one-line :class:`InputError` otherwise."""
    kind, _, seed = spec.partition(":")
    if kind not in ALL_KINDS or not seed.isdigit():
        raise InputError(f"occluder {spec!r}: expected KIND:SEED with KIND one of {', '.join(ALL_KINDS)}")
    return kind, int(seed)


def occluder_rng(kind: str, seed: int) -> np.random.Generator:
    """The generator an occluder spec stands for (the same on every machine)."""
    return np.random.default_rng([zlib.crc32(kind.encode()), seed])


@dataclass(frozen=True)
class _Frame:
    """A face's frame from its 68 landmarks: eye midpoint, unit right/down vectors, inter-ocular distance."""

    centre: np.ndarray
    right: np.ndarray
    down: np.ndarray
    iod: float
    lm: np.ndarray

    def at(self, u: float, v: float) -> np.ndarray:
        """The point ``u`` IODs right and ``v`` IODs down of the eye midpoint."""
        return self.centre + self.iod * (u * self.right + v * self.down)


def face_frame(landmarks_68: np.ndarray) -> _Frame:
    lm = np.asarray(landmarks_68, np.float64)
    el, er = lm[36:42].mean(0), lm[42:48].mean(0)
    right = er - el
    iod = float(np.linalg.norm(right)) or 1.0
    right = right / iod
    down = np.array([-right[1], right[0]])
    if np.dot(lm[48:68].mean(0) - (el + er) / 2, down) < 0:
        down = -down
    return _Frame((el + er) / 2, right, down, iod, lm)


class _Canvas:
    """Supersampled drawing of a layer's colour and coverage inside a bounding box of the image."""

    def __init__(self, shape: tuple[int, ...], pts: np.ndarray, pad: float) -> None:
        h, w = shape[:2]
        lo = np.floor(pts.min(0) - pad).astype(int)
        hi = np.ceil(pts.max(0) + pad).astype(int)
        self.x0, self.y0 = max(0, int(lo[0])), max(0, int(lo[1]))
        self.x1, self.y1 = min(w, int(hi[0])), min(h, int(hi[1]))
        self.shape = shape
        bw, bh = max(1, self.x1 - self.x0), max(1, self.y1 - self.y0)
        self.alpha: np.ndarray = np.zeros((bh * SS, bw * SS), np.float32)
        self.rgb: np.ndarray = np.zeros((bh * SS, bw * SS, 3), np.float32)

    def px(self, pts: np.ndarray) -> np.ndarray:
        """Image points → fixed-point canvas coordinates (cv2's shift of 4 bits)."""
        p = (np.asarray(pts, np.float64) - [self.x0, self.y0] + 0.5) * SS - 0.5
        return np.round(p * 16).astype(np.int32)

    def shape_mask(self) -> np.ndarray:
        return np.zeros(self.alpha.shape, np.uint8)

    def paint(self, mask: np.ndarray, colour: np.ndarray, opacity: float = 1.0) -> None:
        """Paint ``colour`` (an RGB triple or a canvas-sized image) over what is there, where ``mask`` is."""
        m = mask.astype(np.float32) * np.float32(opacity / 255.0)
        col = np.broadcast_to(np.asarray(colour, np.float32), self.rgb.shape)
        self.rgb = self.rgb * (1 - m[..., None]) + col * m[..., None]
        self.alpha = self.alpha + m * (1 - self.alpha)

    def layer(self, kind: str) -> OccluderLayer:
        h, w = self.shape[:2]
        rgb = np.zeros((h, w, 3), np.uint8)
        alpha = np.zeros((h, w), np.float32)
        if self.x1 > self.x0 and self.y1 > self.y0:
            size = (self.x1 - self.x0, self.y1 - self.y0)
            a = cv2.resize(self.alpha, size, interpolation=cv2.INTER_AREA)
            premul = cv2.resize(self.rgb * self.alpha[..., None], size, interpolation=cv2.INTER_AREA)
            col = premul / np.maximum(a[..., None], 1e-6)
            rgb[self.y0 : self.y1, self.x0 : self.x1] = np.clip(col + 0.5, 0, 255).astype(np.uint8)
            alpha[self.y0 : self.y1, self.x0 : self.x1] = np.clip(a, 0, 1)
        return OccluderLayer(kind, rgb, alpha)


def _shade(canvas: _Canvas, base_rgb: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A canvas-sized colour image: ``base_rgb`` with a linear light gradient and fine noise."""
    h, w = canvas.alpha.shape
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = (np.cos(ang) * xx / max(w, 1) + np.sin(ang) * yy / max(h, 1)) - 0.5
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), SS * 1.5)
    k = 1.0 + amount * g + 0.04 * noise
    return np.clip(np.asarray(base_rgb, np.float32)[None, None, :] * k[..., None], 0, 255)


def _skin_rgb(rng: np.random.Generator) -> np.ndarray:
    i = rng.integers(len(_SKIN_LAB))
    lab = _SKIN_LAB[i] + rng.normal(0, [8, 3, 4])
    lab = np.clip(lab, 0, 255).astype(np.uint8)[None, None, :]
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)[0, 0].astype(np.float32)


def _capsule(mask: np.ndarray, canvas: _Canvas, a: np.ndarray, b: np.ndarray, width: float) -> None:
    pa, pb = canvas.px(a), canvas.px(b)
    thick = max(1, int(round(width * SS)))
    cv2.line(mask, tuple(int(v) for v in pa), tuple(int(v) for v in pb), 255, thick, cv2.LINE_8, 4)


_HAND_ANCHORS = ((0.0, 1.45), (0.0, 1.1), (-0.75, 0.9), (0.75, 0.9), (-0.4, 1.3), (0.4, 1.3))
# a palm also rests on a temple, the forehead or the side of the jaw
_PALM_ANCHORS = (*_HAND_ANCHORS, (-1.05, -0.6), (1.05, -0.6), (0.0, -1.5), (-1.1, 0.5), (1.1, 0.5))


def _hand(
    f: _Frame, shape: tuple[int, ...], rng: np.random.Generator, skin: np.ndarray | None = None,
    anchors: tuple[tuple[float, float], ...] = _HAND_ANCHORS, turn: float = 0.9, kind: str = "hand",
) -> OccluderLayer:  # fmt: skip
    """A hand; ``skin`` (RGB) instead of a random skin tone, ``turn``: the fingers' largest tilt from
    pointing up (radians)."""
    u, v = anchors[rng.integers(len(anchors))]
    palm_c = f.at(u + rng.normal(0, 0.12), v + 0.55 + rng.normal(0, 0.1))  # the palm sits below the anchor
    ang = rng.uniform(-turn, turn)  # the fingers point up, tilted
    up = -(np.cos(ang) * f.down + np.sin(ang) * f.right)
    side = np.array([-up[1], up[0]])
    s = f.iod * rng.uniform(0.85, 1.25)
    palm_w, palm_h = 0.95 * s, 1.05 * s
    tips = []
    fingers = []
    for k in range(4):
        base = palm_c + up * (palm_h * 0.42) + side * (palm_w * (-0.36 + 0.24 * k))
        length = s * (0.75, 0.88, 0.82, 0.62)[k] * rng.uniform(0.85, 1.1)
        spread = (k - 1.5) * rng.uniform(0.05, 0.16)
        d = np.cos(spread) * up + np.sin(spread) * side
        tip = base + d * length
        fingers.append((base, tip, s * 0.21))
        tips.append(tip)
    thumb_base = palm_c + side * (palm_w * 0.45 * rng.choice([-1, 1])) + up * 0.05 * s
    thumb_dir = up + 1.2 * (thumb_base - palm_c) / max(np.linalg.norm(thumb_base - palm_c), 1e-6)
    thumb_tip = thumb_base + thumb_dir / np.linalg.norm(thumb_dir) * s * 0.6
    fingers.append((thumb_base, thumb_tip, s * 0.24))
    wrist = palm_c - up * s * 1.6
    pts = np.array([palm_c, wrist, thumb_tip, *tips])
    c = _Canvas(shape, pts, pad=s)
    m = c.shape_mask()
    axes = (int(palm_w / 2 * SS * 16), int(palm_h / 2 * SS * 16))
    ctr = tuple(int(v) for v in c.px(palm_c))
    deg = float(np.degrees(np.arctan2(up[1], up[0]))) + 90.0
    cv2.ellipse(m, ctr, axes, deg, 0, 360, 255, -1, cv2.LINE_8, 4)
    _capsule(m, c, palm_c, wrist, palm_w * 0.8)
    for a, b, wdt in fingers:
        _capsule(m, c, a, b, wdt)
    tone = _skin_rgb(rng)
    if skin is not None:
        tone = np.clip(np.asarray(skin, np.float32) * rng.uniform(0.85, 1.12) + rng.normal(0, 4, 3), 0, 255)
    skin_img = _shade(c, tone, rng, 0.35)
    if skin is not None:  # keep the face's tone on average (the shading's gradient is not centred)
        skin_img = np.clip(skin_img * (tone / np.maximum(skin_img[m > 0].mean(0), 1.0)), 0, 255)
    c.paint(m, skin_img)
    # finger edges: a thin darker line between fingers, as real hands show
    edge = c.shape_mask()
    for a, b, wdt in fingers[:4]:
        for sgn in (-1, 1):
            n = np.array([-(b - a)[1], (b - a)[0]]) / max(np.linalg.norm(b - a), 1e-6)
            _capsule(edge, c, a + sgn * n * wdt / 2, b + sgn * n * wdt / 2, max(1.0, f.iod * 0.015))
    c.paint((edge & m), skin_img * 0.7, 0.6)
    return c.layer(kind)


def _face_skin(image: np.ndarray | None, f: _Frame) -> np.ndarray | None:
    """The median colour of the two cheeks of the face in ``image`` (None without an image)."""
    if image is None:
        return None
    h, w = image.shape[:2]
    r = max(1, int(f.iod * 0.12))
    pix = []
    for u in (-0.55, 0.55):
        x, y = (int(round(c)) for c in f.at(u, 0.75))
        patch = image[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)]
        pix.append(patch.reshape(-1, 3))
    allpix = np.concatenate(pix)
    return np.median(allpix, 0).astype(np.float32) if len(allpix) else None


def _hair_texture(
    canvas: _Canvas, colour: np.ndarray, rng: np.random.Generator, along: np.ndarray
) -> np.ndarray:
    """A canvas-sized hair image: ``colour`` with strands (noise stretched ``along`` a unit direction)
    and a light gradient."""
    h, w = canvas.alpha.shape
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    ang = float(np.degrees(np.arctan2(along[1], along[0])))
    long_ = max(3, int(min(h, w) * 0.6)) | 1
    kernel = np.zeros((long_, long_), np.float32)
    kernel[long_ // 2, :] = 1.0 / long_
    rot = cv2.getRotationMatrix2D((long_ / 2 - 0.5, long_ / 2 - 0.5), -ang, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (long_, long_))
    kernel /= max(float(kernel.sum()), 1e-6)
    streaks = cv2.filter2D(cv2.GaussianBlur(noise, (0, 0), SS * 0.6), -1, kernel)
    streaks /= max(float(streaks.std()), 1e-6)
    base = _shade(canvas, colour, rng, rng.uniform(0.2, 0.6))
    k = 1.0 + rng.uniform(0.12, 0.3) * np.clip(streaks, -2.5, 2.5)
    return np.clip(base * k[..., None], 0, 255)


def _bangs(f: _Frame, shape: tuple[int, ...], rng: np.random.Generator) -> OccluderLayer:
    colour = _HAIR_RGB[rng.integers(len(_HAIR_RGB))].astype(np.float32) * rng.uniform(0.7, 1.3)
    left, right = -rng.uniform(0.9, 1.8), rng.uniform(0.9, 1.8)
    base = rng.uniform(-1.05, -0.2)  # the edge's height: eyebrows are near -0.45, the eyes at 0
    tilt = rng.normal(0, 0.3) if rng.random() < 0.5 else 0.0  # swept to one side
    us = np.linspace(left, right, 48)
    mid, half = (left + right) / 2, (right - left) / 2
    wobble = cv2.GaussianBlur(rng.normal(0, 1, (1, 48)).astype(np.float64), (0, 0), 3)[0]
    tips = -np.abs(rng.normal(0, 0.06, 48))
    vs = base + tilt * us + 0.25 * wobble + tips - 0.7 * ((us - mid) / half) ** 4
    edge = np.array([f.at(u, v) for u, v in zip(us, vs, strict=True)])
    top = np.array([f.at(u, -3.0) for u in (right, left)])
    poly = np.concatenate([edge, top])
    c = _Canvas(shape, poly, pad=f.iod * 0.3)
    m = c.shape_mask()
    cv2.fillPoly(m, [c.px(poly)], 255, cv2.LINE_8, 4)
    # loose strands past the edge
    for _ in range(int(rng.integers(3, 14))):
        i = int(rng.integers(48))
        a = edge[i]
        b = a + f.down * f.iod * rng.uniform(0.05, 0.3) + f.right * f.iod * rng.normal(0, 0.08)
        _capsule(m, c, a, b, f.iod * rng.uniform(0.015, 0.05))
    along = f.down + f.right * (tilt + rng.normal(0, 0.15))
    c.paint(m, _hair_texture(c, colour, rng, along / np.linalg.norm(along)))
    return c.layer("bangs")


def _sunglasses(f: _Frame, shape: tuple[int, ...], rng: np.random.Generator) -> OccluderLayer:
    el, er = f.lm[36:42].mean(0), f.lm[42:48].mean(0)
    style = int(rng.integers(3))  # 0 round, 1 wayfarer (wide, flat top), 2 teardrop (aviator)
    lw = f.iod * rng.uniform(0.42, 0.6)
    lh = f.iod * (rng.uniform(0.3, 0.42) if style != 1 else rng.uniform(0.26, 0.34))
    thick = f.iod * rng.uniform(0.03, 0.09)
    mirror = rng.random() < 0.25
    tint = rng.uniform(170, 255, 3) if mirror else rng.uniform(3, 50, 3)
    c = _Canvas(shape, np.array([el - f.right * f.iod, er + f.right * f.iod]), pad=f.iod * 0.8)
    lens = c.shape_mask()
    rim = c.shape_mask()
    for sgn, e in ((-1.0, el), (1.0, er)):
        ctr = e + f.down * lh * rng.uniform(0.0, 0.3) + f.right * sgn * f.iod * rng.uniform(-0.02, 0.06)
        t = np.linspace(0, 2 * np.pi, 40)
        du, dv = np.cos(t), np.sin(t)
        if style == 1:  # wayfarer: flat top, full bottom
            dv = np.where(dv > 0, dv, -0.7 * np.abs(dv) ** 0.3)
        elif style == 2:  # teardrop: deeper below and outwards
            du = du + sgn * 0.15 * np.maximum(dv, 0)
            dv = np.where(dv > 0, 1.25 * dv, 0.9 * dv)
        outline = ctr + np.outer(du, f.right * lw) + np.outer(dv, f.down * lh)
        pts = c.px(np.array(outline))
        cv2.fillPoly(lens, [pts], 255, cv2.LINE_8, 4)
        cv2.polylines(rim, [pts], True, 255, max(1, int(thick * SS)), cv2.LINE_8, 4)
    _capsule(rim, c, el + f.right * lw * 0.9, er - f.right * lw * 0.9, thick)
    _capsule(rim, c, el - f.right * lw, el - f.right * f.iod * 1.0, thick)
    _capsule(rim, c, er + f.right * lw, er + f.right * f.iod * 1.0, thick)
    img = _shade(c, np.asarray(tint, np.float32), rng, rng.uniform(0.4, 0.9))
    h, w = lens.shape
    # a highlight: a soft light streak across the lenses
    streak = np.zeros((h, w), np.float32)
    p0 = c.px(f.at(rng.uniform(-1.0, 0.0), rng.uniform(-0.4, 0.1))) / 16.0
    p1 = p0 + np.array([w, -h * rng.uniform(0.1, 0.5)]) * 0.5
    cv2.line(
        streak, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, max(1, int(f.iod * SS * 0.08))
    )
    streak = cv2.GaussianBlur(streak, (0, 0), SS * max(1.0, f.iod * 0.03))
    img = np.clip(img + rng.uniform(40, 140) * streak[..., None] / max(float(streak.max()), 1e-6), 0, 255)
    c.paint(lens, img, rng.uniform(0.9, 1.0))
    c.paint(rim, np.full(3, rng.uniform(150, 210) if rng.random() < 0.25 else rng.uniform(5, 60), np.float32))
    return c.layer("sunglasses")


def _strands(f: _Frame, shape: tuple[int, ...], rng: np.random.Generator) -> OccluderLayer:
    side = rng.choice([-1.0, 1.0])
    n = int(rng.integers(6, 26))
    colour = _HAIR_RGB[rng.integers(len(_HAIR_RGB))].astype(np.float32)
    start_u = side * rng.uniform(0.0, 0.6)
    curves = []
    for _ in range(n):
        p0 = f.at(start_u + rng.normal(0, 0.25), -1.0 + rng.normal(0, 0.15))
        p2 = f.at(start_u + side * rng.uniform(0.0, 0.8) + rng.normal(0, 0.2), rng.uniform(0.3, 1.4))
        p1 = (p0 + p2) / 2 + f.right * f.iod * rng.normal(0, 0.35)
        t = np.linspace(0, 1, 24)[:, None]
        curves.append((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2)
    c = _Canvas(shape, np.concatenate(curves), pad=f.iod * 0.2)
    for pts in curves:
        m = c.shape_mask()
        thick = max(1, int(round(f.iod * rng.uniform(0.025, 0.08) * SS)))
        cv2.polylines(m, [c.px(pts)], False, 255, thick, cv2.LINE_8, 4)
        col = np.clip(colour * rng.uniform(0.75, 1.3), 0, 255)
        c.paint(m, col, rng.uniform(0.85, 1.0))
    return c.layer("strands")


def _bar(f: _Frame, shape: tuple[int, ...], rng: np.random.Generator) -> OccluderLayer:
    head = f.at(rng.normal(0, 0.25), 1.15 + rng.normal(0, 0.15))
    ang = rng.uniform(-0.6, 0.6)
    d = np.cos(ang) * f.down + np.sin(ang) * f.right  # the handle runs from the head downwards
    tail = head + d * f.iod * 4.0
    width = f.iod * rng.uniform(0.3, 0.5)
    head_r = f.iod * rng.uniform(0.35, 0.55)
    c = _Canvas(shape, np.array([head, tail]), pad=head_r + width)
    grey = np.full(3, rng.uniform(15, 90), np.float32)
    m = c.shape_mask()
    _capsule(m, c, head, tail, width)
    c.paint(m, _shade(c, grey, rng, 0.6))
    m = c.shape_mask()
    cv2.circle(m, tuple(int(v) for v in c.px(head)), int(head_r * SS * 16), 255, -1, cv2.LINE_8, 4)
    mesh = _shade(c, np.full(3, rng.uniform(40, 160), np.float32), rng, 0.5)
    h, w = m.shape
    period = max(2, int(round(head_r * SS * 0.25)))
    grid = ((np.arange(h)[:, None] // period + np.arange(w)[None, :] // period) % 2).astype(np.float32)
    c.paint(m, mesh * (0.8 + 0.2 * grid[..., None]))
    return c.layer("bar")


def _glasses(f: _Frame, shape: tuple[int, ...], rng: np.random.Generator) -> OccluderLayer:
    el, er = f.lm[36:42].mean(0), f.lm[42:48].mean(0)
    lw, lh = f.iod * rng.uniform(0.38, 0.5), f.iod * rng.uniform(0.25, 0.36)
    thick = f.iod * rng.uniform(0.04, 0.1)
    dark = rng.random() < 0.5
    frame_rgb = np.full(3, rng.uniform(5, 70), np.float32)
    c = _Canvas(shape, np.array([el - f.right * f.iod * 0.9, er + f.right * f.iod * 0.9]), pad=f.iod * 0.6)
    deg = float(np.degrees(np.arctan2(f.right[1], f.right[0])))
    lens = c.shape_mask()
    rim = c.shape_mask()
    for e in (el, er):
        ctr = tuple(int(v) for v in c.px(e + f.down * lh * 0.1))
        axes = (int(lw * SS * 16), int(lh * SS * 16))
        cv2.ellipse(lens, ctr, axes, deg, 0, 360, 255, -1, cv2.LINE_8, 4)
        cv2.ellipse(rim, ctr, axes, deg, 0, 360, 255, max(1, int(thick * SS)), cv2.LINE_8, 4)
    _capsule(rim, c, el + f.right * lw * 0.95, er - f.right * lw * 0.95, thick)
    _capsule(rim, c, el - f.right * lw, el - f.right * f.iod * 0.95, thick)
    _capsule(rim, c, er + f.right * lw, er + f.right * f.iod * 0.95, thick)
    if dark:
        tint = _shade(c, np.array(rng.uniform(5, 45, 3), np.float32), rng, 0.5)
        c.paint(lens, tint, rng.uniform(0.85, 0.97))
    c.paint(rim, frame_rgb)
    return c.layer("glasses")


def _patch(
    f: _Frame, shape: tuple[int, ...], rng: np.random.Generator, texture: np.ndarray | None,
    avoid: np.ndarray | None,
) -> OccluderLayer:  # fmt: skip
    ctr = f.lm[rng.integers(len(f.lm))] + f.iod * rng.normal(0, 0.2, 2)
    r = f.iod * rng.uniform(0.35, 0.75)
    n = int(rng.integers(5, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.3, n)
    poly = ctr + np.stack([np.cos(ang) * rad, np.sin(ang) * rad], 1)
    c = _Canvas(shape, poly, pad=2)
    m = c.shape_mask()
    cv2.fillPoly(m, [c.px(poly)], 255, cv2.LINE_8, 4)
    k = max(1, int(r * SS * 0.15)) | 1
    m = cv2.GaussianBlur(m, (k, k), 0)
    m = np.where(m > 127, 255, 0).astype(np.uint8)
    h, w = m.shape
    fill = _texture_crop(texture, avoid, (w, h), rng)
    c.paint(m, fill)
    return c.layer("patch")


def _texture_crop(
    texture: np.ndarray | None, avoid: np.ndarray | None, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A ``size`` (w, h) crop of ``texture`` outside its ``avoid`` box (a face), or a random-colour
    gradient without a texture."""
    w, h = size
    if texture is None or min(texture.shape[:2]) < 16:
        return _shade_plain((h, w), rng)
    th, tw = texture.shape[:2]
    side = int(rng.uniform(0.15, 0.4) * min(th, tw))
    for _ in range(20):
        x, y = int(rng.integers(0, tw - side + 1)), int(rng.integers(0, th - side + 1))
        if avoid is None or not _overlaps((x, y, x + side, y + side), avoid):
            break
    crop = texture[y : y + side, x : x + side].astype(np.float32)
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def _shade_plain(hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.float32)


def _overlaps(r: tuple[int, int, int, int], box: np.ndarray) -> bool:
    return not (r[2] <= box[0] or r[0] >= box[2] or r[3] <= box[1] or r[1] >= box[3])


def make_occluder(
    kind: str, seed: int, landmarks_68: np.ndarray, shape: tuple[int, ...],
    texture: np.ndarray | None = None, texture_face_box: np.ndarray | None = None,
    image: np.ndarray | None = None, hands: HandCutouts | None = None,
) -> OccluderLayer:  # fmt: skip
    """The occluder ``kind:seed`` for the face with ``landmarks_68`` in an image of ``shape``.
    ``texture`` (another photo, with its face box to avoid) fills ``patch`` occluders; ``image`` (the
    photo the occluder goes on) gives ``palm`` and :data:`REAL_HAND` their skin tone; ``hands`` are the
    cut-outs :data:`REAL_HAND` draws from."""
    if kind == REAL_HAND and (hands is None or not len(hands)):
        raise InputError(f"occluder kind {REAL_HAND!r} needs hand cut-outs")
    if kind not in ALL_KINDS and kind != REAL_HAND:
        raise InputError(f"unknown occluder kind {kind!r}; choose from {', '.join(ALL_KINDS)}")
    rng = occluder_rng(kind, seed)
    f = face_frame(landmarks_68)
    if kind == REAL_HAND:
        assert hands is not None
        rgb, alpha = real_hand_layer(hands, f, shape, rng, _face_skin(image, f))
        return OccluderLayer(kind, rgb, alpha)
    if kind == "hand":
        return _hand(f, shape, rng)
    if kind == "palm":
        skin = _face_skin(image, f)
        return _hand(f, shape, rng, skin if skin is not None else _skin_rgb(rng), _PALM_ANCHORS, 1.7, "palm")
    if kind == "bangs":
        return _bangs(f, shape, rng)
    if kind == "sunglasses":
        return _sunglasses(f, shape, rng)
    if kind == "strands":
        return _strands(f, shape, rng)
    if kind == "bar":
        return _bar(f, shape, rng)
    if kind == "glasses":
        return _glasses(f, shape, rng)
    return _patch(f, shape, rng, texture, texture_face_box)


__all__ = [
    "ALL_KINDS",
    "OCCLUDER_KINDS",
    "REALISTIC_KINDS",
    "REAL_HAND",
    "OccluderLayer",
    "face_frame",
    "make_occluder",
    "occluder_rng",
    "parse_occluder",
]

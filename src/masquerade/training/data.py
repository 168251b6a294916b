"""Training data from facesets: reading, in-memory arrays, augmentation, loss-weight maps, sampling.

numpy/OpenCV only (no torch), shared by every trainer. A faceset is a folder written by
``masquerade.faceset.extract`` (see ``masquerade.faceset.format``): ``faceset.json`` (format
``masquerade-faceset``, version 1) listing aligned S×S RGB crops, their uint8 mask PNGs and 68
landmarks in crop pixels (iBUG 300-W order).

Reproducibility: a batch depends only on ``(seed, stream, step)`` — which faces (shuffled passes
over the faceset, see :class:`EpochSampler`) and every augmentation parameter are drawn from
``numpy.random.default_rng([seed, stream, step])``. Resuming at step *k* therefore yields exactly the
batches an uninterrupted run would have seen, with no generator state to carry, and batches can be
prepared ahead in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..faceset.format import Faceset, load_faceset
from .configs import AugmentConfig, RegionWeights

MIN_FACES = 4

# iBUG 300-W 68-point indices
EYE_LEFT = tuple(range(36, 42))
EYE_RIGHT = tuple(range(42, 48))
MOUTH_OUTER = tuple(range(48, 60))


def read_faceset(path: str | Path) -> Faceset:
    """Read and check a faceset folder (one-line :class:`InputError` when it is unusable); the single
    place trainers read faceset metadata through (:func:`masquerade.faceset.format.load_faceset`)."""
    return load_faceset(path)


@dataclass(frozen=True)
class FaceArrays:
    """A faceset in memory at the model resolution R."""

    images: np.ndarray  # N×R×R×3 uint8 RGB
    masks: np.ndarray  # N×R×R uint8
    landmarks: np.ndarray  # N×68×2 float32, R-pixel coordinates; NaN where the faceset has none
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def load_face_arrays(faceset: Faceset, resolution: int, min_faces: int = MIN_FACES) -> FaceArrays:
    """Load every crop and mask of ``faceset``, resized to ``resolution``."""
    if len(faceset) < min_faces:
        raise InputError(f"{faceset.path}: only {len(faceset)} face(s); training needs at least {min_faces}")
    n, r = len(faceset), int(resolution)
    images = np.empty((n, r, r, 3), np.uint8)
    masks = np.empty((n, r, r), np.uint8)
    landmarks = np.full((n, 68, 2), np.nan, np.float32)
    for i, face in enumerate(faceset.faces):
        images[i] = _resize(faceset.read_image(i), r)
        masks[i] = _resize(faceset.read_mask(i), r)
        lm = np.asarray(face.landmarks_68, np.float64)
        if lm.shape == (68, 2) and np.all(np.isfinite(lm)):
            landmarks[i] = lm * (r / faceset.size)
    return FaceArrays(images=images, masks=masks, landmarks=landmarks, ids=tuple(f.id for f in faceset.faces))


@dataclass(frozen=True)
class Batch:
    """Network-ready arrays, float32 N×C×R×R in [0, 1] (``weights``: ≥ 1)."""

    inputs: np.ndarray  # N×3×R×R, augmented and warped
    targets: np.ndarray  # N×3×R×R, augmented, not warped
    masks: np.ndarray  # N×1×R×R
    weights: np.ndarray  # N×1×R×R region weights


def affine_params(size: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Random 2×3 flip/rotation/scale/translation about the crop centre."""
    c = (size - 1) / 2.0
    angle = rng.uniform(-cfg.rotate, cfg.rotate)
    scale = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    tx, ty = rng.uniform(-cfg.translate, cfg.translate, 2) * size
    flip = rng.random() < cfg.flip
    m = np.vstack([cv2.getRotationMatrix2D((c, c), angle, scale), [0.0, 0.0, 1.0]])
    m[:2, 2] += (tx, ty)
    if flip:
        m = m @ np.array([[-1.0, 0.0, 2 * c], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return m[:2]


def random_warp_maps(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """DeepFaceLab's random warp: a coarse grid (2, 4 or 8 cells a side) whose inner points move by
    N(0, 0.24 cell), interpolated to dense ``cv2.remap`` maps."""
    cell = size // (2 ** int(rng.integers(1, 4)))
    count = size // cell + 1
    grid = np.linspace(0.0, float(size), count)
    mapx = np.broadcast_to(grid, (count, count)).copy()
    mapy = mapx.T.copy()
    inner = (count - 2, count - 2)
    mapx[1:-1, 1:-1] += rng.normal(size=inner) * cell * 0.24
    mapy[1:-1, 1:-1] += rng.normal(size=inner) * cell * 0.24
    half = cell // 2
    big = (size + cell, size + cell)
    mx = cv2.resize(mapx, big)[half : half + size, half : half + size].astype(np.float32)
    my = cv2.resize(mapy, big)[half : half + size, half : half + size].astype(np.float32)
    return mx, my


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Saturation, contrast, brightness and white-balance jitter of a float RGB image in [0, 1].

    All four are linear in RGB, so they are applied as one 3×4 colour matrix (``cv2.transform``)."""
    if strength <= 0:
        return img
    s = strength
    luma = np.array([0.299, 0.587, 0.114])
    sat = rng.uniform(1 - 2 * s, 1 + 2 * s)
    contrast = rng.uniform(1 - s, 1 + s)
    bright = rng.uniform(-s, s)
    gains = rng.uniform(1 - s / 2, 1 + s / 2, 3)
    mean = float(np.dot(cv2.mean(img)[:3], luma))  # saturation keeps the luma, so its mean too
    saturate = sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), luma)
    m = np.empty((3, 4))
    m[:, :3] = contrast * gains[:, None] * saturate
    m[:, 3] = gains * ((1 - contrast) * mean + bright)
    out = cv2.transform(img, m)
    return np.clip(out, 0.0, 1.0, out=out)


def region_weight_map(landmarks_68: np.ndarray, size: int, weights: RegionWeights) -> np.ndarray:
    """size×size float32 map: 1 everywhere, ``eyes`` on the (dilated) eyes, ``mouth`` on the mouth."""
    w = np.ones((size, size), np.float32)
    if landmarks_68 is None or not np.all(np.isfinite(landmarks_68)):
        return w
    grow = max(1, round(size / 32))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    for loops, value in (((EYE_LEFT, EYE_RIGHT), weights.eyes), ((MOUTH_OUTER,), weights.mouth)):
        if value == 1.0:
            continue
        m = np.zeros((size, size), np.uint8)
        for loop in loops:
            hull = cv2.convexHull(np.round(landmarks_68[list(loop)] * 16).astype(np.int32))
            cv2.fillConvexPoly(m, hull, 255, lineType=cv2.LINE_AA, shift=4)
        m = cv2.dilate(m, kernel)
        w = np.maximum(w, 1.0 + (value - 1.0) * m.astype(np.float32) / 255.0)
    return w


def augment_geometry(
    image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The random flip/rotation/scale/shift of a sample (when ``cfg.enabled``): (image, mask, landmarks,
    2×3 matrix old → new crop pixels; the identity when disabled)."""
    size = image.shape[0]
    if not cfg.enabled:
        return image, mask, landmarks, np.eye(2, 3)
    m = affine_params(size, rng, cfg)
    image = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return image, mask, landmarks @ m[:, :2].T + m[:, 2], m


def augment_sample(
    image: np.ndarray,
    mask: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    weights: RegionWeights,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One training sample: (input, target, mask, weights), float32 H×W×C in [0, 1] (weights ≥ 1)."""
    size = image.shape[0]
    image, mask, landmarks, _ = augment_geometry(image, mask, landmarks, rng, cfg)
    target = image.astype(np.float32) * np.float32(1 / 255)
    if cfg.enabled:
        target = colour_jitter(target, rng, cfg.colour)
    inp = target
    if cfg.enabled and cfg.warp:
        mx, my = random_warp_maps(size, rng)
        inp = cv2.remap(target, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wmap = region_weight_map(landmarks, size, weights)
    return inp, target, mask.astype(np.float32)[..., None] * np.float32(1 / 255), wmap[..., None]


class EpochSampler:
    """Shuffled passes over ``n`` items, stateless: draw *k* of step *s* is item
    ``perm_e[(s·batch + k) mod n]`` where ``perm_e`` is the permutation of pass ``e`` seeded by
    ``(seed, stream, e)``."""

    def __init__(self, n: int, seed: int, stream: int) -> None:
        if n < 1:
            raise ValueError("nothing to sample")
        self.n, self.seed, self.stream = int(n), int(seed), int(stream)
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            p = np.random.default_rng([self.seed, self.stream, epoch, 0x5A]).permutation(self.n)
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = p
        return p

    def indices(self, step: int, batch_size: int) -> np.ndarray:
        g = int(step) * int(batch_size) + np.arange(batch_size)
        return np.array([self._perm(int(e))[int(i)] for e, i in zip(g // self.n, g % self.n, strict=True)])

    def rng(self, step: int) -> np.random.Generator:
        """The augmentation generator of ``step``."""
        return np.random.default_rng([self.seed, self.stream, int(step)])


def make_batch(
    faces: FaceArrays,
    indices: np.ndarray,
    rng: np.random.Generator,
    augment: AugmentConfig,
    weights: RegionWeights,
) -> Batch:
    """Augment ``faces[indices]`` into a :class:`Batch` (NCHW float32)."""
    parts = [
        augment_sample(faces.images[i], faces.masks[i], faces.landmarks[i], rng, augment, weights)
        for i in indices
    ]

    def stack(k: int) -> np.ndarray:
        return np.ascontiguousarray(np.stack([p[k] for p in parts]).transpose(0, 3, 1, 2))

    return Batch(inputs=stack(0), targets=stack(1), masks=stack(2), weights=stack(3))


def clean_batch(faces: FaceArrays, indices: np.ndarray, weights: RegionWeights | None = None) -> Batch:
    """Un-augmented batch (previews, evaluation)."""
    return make_batch(
        faces, indices, np.random.default_rng(0), AugmentConfig(enabled=False), weights or RegionWeights()
    )


def preview_indices(n: int, count: int) -> np.ndarray:
    """``count`` faces spread evenly over a faceset of ``n`` (repeats when ``n < count``)."""
    return np.round(np.linspace(0, n - 1, count)).astype(int) if n >= count else np.arange(count) % n

"""Temporal-stability metrics for videos: landmark jitter and face-colour flicker.

Both come from one analysis pass: for every frame a ``FaceAnalyzer(identity=False)`` finds the largest
face; its 68 landmarks, inter-ocular distance (IOD, between ``landmarks_5[0]`` and ``[1]``) and the
mean LAB lightness inside the face region are recorded. From those series:

* **jitter**: the mean over consecutive frame triples of the landmarks' second difference
  ``x[t+1] − 2·x[t] + x[t−1]`` (an acceleration), its norm averaged over the 68 landmarks and
  divided by the middle frame's IOD. Smooth motion has a small acceleration; frame-to-frame jitter
  a large one. The pixel difference is divided by one IOD rather than dividing each frame's absolute
  coordinates by its own IOD, which would turn IOD estimation noise into position noise in
  proportion to the face's distance from the image origin.
* **flicker**: the mean ``|L[t+1] − 2·L[t] + L[t−1]|`` of the mean lightness ``L`` (OpenCV's float
  LAB, 0–100) inside the convex hull of the 468 face-mesh points, eroded by a few pixels.

A triple is skipped when any of its frames has no face, or when it spans a scene cut: a step whose
mean landmark displacement exceeds ``cut_jump`` (0.5) IODs.

:func:`compare` measures an input video and its processed output and returns both plus the ratios
output / input (above 1: the output is less stable than the input).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..face import Face

log = logging.getLogger(__name__)

CUT_JUMP = 0.5  # mean landmark displacement between two frames, in IODs, that counts as a scene cut
ERODE_FRACTION = 0.08  # erosion of the face hull, as a fraction of the IOD (at least 1 px)

FrameItem = np.ndarray | tuple[np.ndarray, float]


@dataclass(frozen=True)
class FrameSeries:
    """Per-frame measurements of the largest face; NaN where a frame has no face."""

    landmarks: np.ndarray  # (n, 68, 2) pixels
    iod: np.ndarray  # (n,) pixels
    lightness: np.ndarray  # (n,) mean L (0–100) inside the eroded face hull

    @property
    def frames(self) -> int:
        return len(self.iod)

    @property
    def present(self) -> np.ndarray:
        return np.isfinite(self.iod) & (self.iod > 0)


@dataclass(frozen=True)
class JitterStats:
    jitter: float  # mean over valid triples of the landmark acceleration, in IODs (NaN: no triple)
    median: float  # median of the same per-triple values
    frames: int
    face_frames: int
    face_fraction: float
    triples: int  # triples that entered the mean
    cuts: int  # frame steps taken as scene cuts

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True)
class FlickerStats:
    flicker: float  # mean |second difference| of the face's mean L (LAB 0–100; NaN: no triple)
    median: float
    mean_lightness: float
    frames: int
    face_frames: int
    face_fraction: float
    triples: int
    cuts: int

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True)
class TemporalStats:
    jitter: JitterStats
    flicker: FlickerStats

    def to_dict(self) -> dict[str, Any]:
        return {"jitter": self.jitter.to_dict(), "flicker": self.flicker.to_dict()}


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN → None, so the result is valid JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------------ per frame


def face_lightness(rgb: np.ndarray, face: Face, erode_fraction: float = ERODE_FRACTION) -> float:
    """Mean LAB lightness (OpenCV float conversion, 0–100) inside the eroded convex hull of the 468
    mesh points (the 68 landmarks when the face has no mesh); NaN when the region is empty."""
    pts = face.mesh[:468, :2] if face.mesh is not None else face.landmarks_68
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return math.nan
    crop = rgb[y0:y1, x0:x1]
    mask = np.zeros(crop.shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(pts - (x0, y0)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    iod = float(np.linalg.norm(face.landmarks_5[0] - face.landmarks_5[1]))
    r = max(1, int(round(erode_fraction * iod)))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    if not mask.any():
        return math.nan
    lab = cv2.cvtColor(crop.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2LAB)
    return float(lab[..., 0][mask.astype(bool)].mean())


def _frames(frames: Iterable[FrameItem], max_frames: int | None) -> Iterator[np.ndarray]:
    for i, item in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            return
        yield item[0] if isinstance(item, tuple) else item


def measure_frames(
    frames: Iterable[FrameItem],
    analyzer: FaceAnalyzer | None = None,
    max_frames: int | None = None,
    colour: bool = True,
) -> FrameSeries:
    """One analysis pass: landmarks, IOD and (with ``colour``) face lightness of the largest face of
    every frame. ``frames`` yields RGB uint8 arrays or ``(rgb, seconds)`` pairs (as
    :func:`masquerade.video.probe.iter_frames` does)."""
    own = analyzer is None
    fa = analyzer or FaceAnalyzer(identity=False)
    lms: list[np.ndarray] = []
    iods: list[float] = []
    lum: list[float] = []
    nan68 = np.full((68, 2), np.nan)
    try:
        for rgb in _frames(frames, max_frames):
            faces = fa.get(rgb, identity=False, small_faces=False)
            if not faces:
                lms.append(nan68)
                iods.append(math.nan)
                lum.append(math.nan)
                continue
            f = faces[0]
            lms.append(np.asarray(f.landmarks_68, np.float64)[:, :2])
            iods.append(float(np.linalg.norm(f.landmarks_5[0] - f.landmarks_5[1])))
            lum.append(face_lightness(rgb, f) if colour else math.nan)
    finally:
        if own:
            fa.close()
    n = len(iods)
    return FrameSeries(
        landmarks=np.asarray(lms, np.float64).reshape(n, 68, 2),
        iod=np.asarray(iods, np.float64),
        lightness=np.asarray(lum, np.float64),
    )


# ------------------------------------------------------------------------------------ series maths


def cut_steps(landmarks: np.ndarray, iod: np.ndarray, cut_jump: float = CUT_JUMP) -> np.ndarray:
    """Boolean (n−1,): True where the step from frame t to t+1 is a scene cut (mean landmark
    displacement over the mean of the two IODs above ``cut_jump``). Steps touching a frame without a
    face are False (such triples are skipped anyway)."""
    if len(iod) < 2:
        return np.zeros(0, bool)
    disp = np.linalg.norm(np.diff(landmarks, axis=0), axis=-1).mean(-1)
    scale = 0.5 * (iod[1:] + iod[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = disp / scale
    return np.nan_to_num(jump, nan=0.0) > cut_jump


def valid_triples(present: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Boolean (n−2,): triple (t−1, t, t+1) for t = 1…n−2 has a face in all three frames and no cut."""
    if len(present) < 3:
        return np.zeros(0, bool)
    ok = present[:-2] & present[1:-1] & present[2:]
    return ok & ~cuts[:-1] & ~cuts[1:]


def jitter_from_series(series: FrameSeries, cut_jump: float = CUT_JUMP) -> JitterStats:
    lm, iod = series.landmarks, series.iod
    present = series.present
    cuts = cut_steps(lm, iod, cut_jump)
    ok = valid_triples(present, cuts)
    if ok.any():
        acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]  # (n-2, 68, 2)
        per = np.linalg.norm(acc, axis=-1).mean(-1) / iod[1:-1]
        vals = per[ok]
        mean, median = float(vals.mean()), float(np.median(vals))
    else:
        mean = median = math.nan
    n, nf = series.frames, int(present.sum())
    return JitterStats(
        jitter=mean, median=median, frames=n, face_frames=nf, face_fraction=nf / n if n else math.nan,
        triples=int(ok.sum()), cuts=int(cuts.sum()),
    )  # fmt: skip


def flicker_from_series(series: FrameSeries, cut_jump: float = CUT_JUMP) -> FlickerStats:
    lum = series.lightness
    present = series.present & np.isfinite(lum)
    cuts = cut_steps(series.landmarks, series.iod, cut_jump)
    ok = valid_triples(present, cuts)
    if ok.any():
        vals = np.abs(lum[2:] - 2 * lum[1:-1] + lum[:-2])[ok]
        mean, median = float(vals.mean()), float(np.median(vals))
    else:
        mean = median = math.nan
    n, nf = series.frames, int(present.sum())
    return FlickerStats(
        flicker=mean, median=median, mean_lightness=float(lum[present].mean()) if nf else math.nan,
        frames=n, face_frames=nf, face_fraction=nf / n if n else math.nan, triples=int(ok.sum()),
        cuts=int(cuts.sum()),
    )  # fmt: skip


# ------------------------------------------------------------------------------------ public API


def landmark_jitter(
    frames_iter: Iterable[FrameItem],
    analyzer: FaceAnalyzer | None = None,
    max_frames: int | None = None,
    cut_jump: float = CUT_JUMP,
) -> JitterStats:
    """Landmark jitter of the largest face (see the module docstring)."""
    return jitter_from_series(measure_frames(frames_iter, analyzer, max_frames, colour=False), cut_jump)


def colour_flicker(
    frames_iter: Iterable[FrameItem],
    analyzer: FaceAnalyzer | None = None,
    max_frames: int | None = None,
    cut_jump: float = CUT_JUMP,
) -> FlickerStats:
    """Lightness flicker inside the largest face (see the module docstring)."""
    return flicker_from_series(measure_frames(frames_iter, analyzer, max_frames), cut_jump)


def measure(
    frames_iter: Iterable[FrameItem],
    analyzer: FaceAnalyzer | None = None,
    max_frames: int | None = None,
    cut_jump: float = CUT_JUMP,
) -> TemporalStats:
    """Jitter and flicker from one analysis pass."""
    s = measure_frames(frames_iter, analyzer, max_frames)
    return TemporalStats(jitter_from_series(s, cut_jump), flicker_from_series(s, cut_jump))


def _ratio(out: float, inp: float) -> float | None:
    if not (math.isfinite(out) and math.isfinite(inp)) or inp <= 0:
        return None
    return out / inp


def compare(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    max_frames: int | None = None,
    analyzer: FaceAnalyzer | None = None,
    cut_jump: float = CUT_JUMP,
) -> dict[str, Any]:
    """Jitter and flicker of an input video and its processed output (first ``max_frames`` frames of
    each), and the ratios output / input (None where undefined)."""
    from .probe import iter_frames

    own = analyzer is None
    fa = analyzer or FaceAnalyzer(identity=False)
    try:
        res: dict[str, Any] = {}
        stats: dict[str, TemporalStats] = {}
        for key, path in (("input", input_path), ("output", output_path)):
            st = measure(iter_frames(path), fa, max_frames, cut_jump)
            stats[key] = st
            res[key] = {"path": os.fspath(path), **st.to_dict()}
            log.info(
                "%s: jitter %.4f IOD, flicker %.3f L over %d frames (%d with a face)",
                key, st.jitter.jitter, st.flicker.flicker, st.jitter.frames, st.jitter.face_frames,
            )  # fmt: skip
    finally:
        if own:
            fa.close()
    i, o = stats["input"], stats["output"]
    res["ratio"] = {
        "jitter": _ratio(o.jitter.jitter, i.jitter.jitter),
        "jitter_median": _ratio(o.jitter.median, i.jitter.median),
        "flicker": _ratio(o.flicker.flicker, i.flicker.flicker),
        "flicker_median": _ratio(o.flicker.median, i.flicker.median),
    }
    return res

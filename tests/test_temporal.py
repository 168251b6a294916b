"""Temporal-stability metrics: the series maths on synthetic data, and on a real clip that synthetic
jitter and flicker raise the measured values clearly."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer
from masquerade.video.probe import iter_frames
from masquerade.video.temporal import (
    FrameSeries,
    compare,
    cut_steps,
    face_lightness,
    flicker_from_series,
    jitter_from_series,
    measure,
)

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
CLIP = VIDEOS / "talking_512_d0.mp4"
N_FRAMES = 60


def series(offsets: np.ndarray, iod: float = 50.0, lightness: np.ndarray | None = None) -> FrameSeries:
    """A face whose 68 landmarks all move by ``offsets`` (n×2 pixels) from a fixed layout."""
    base = np.random.default_rng(1).uniform(100, 200, (68, 2))
    lm = base[None] + np.asarray(offsets, np.float64)[:, None, :]
    n = len(offsets)
    return FrameSeries(
        lm, np.full(n, iod), np.zeros(n) if lightness is None else np.asarray(lightness, float)
    )


# ------------------------------------------------------------------------------------- series maths


def test_jitter_zero_for_uniform_motion() -> None:
    t = np.arange(20, dtype=float)
    s = jitter_from_series(series(np.stack([3 * t, -t], 1)))
    assert s.triples == 18 and s.cuts == 0
    assert s.jitter == pytest.approx(0.0, abs=1e-9)


def test_jitter_measures_acceleration_in_iods() -> None:
    # x alternates 0, 2, 0, 2 … px: every second difference has norm 4 px; IOD 50 → 0.08
    off = np.zeros((10, 2))
    off[1::2, 0] = 2.0
    s = jitter_from_series(series(off, iod=50.0))
    assert s.jitter == pytest.approx(4.0 / 50.0)
    assert s.median == pytest.approx(4.0 / 50.0)


def test_missing_faces_and_cuts_are_skipped() -> None:
    off = np.zeros((12, 2))
    off[6:, 0] = 100.0  # a 2-IOD jump between frames 5 and 6: a cut
    base = series(off)
    assert cut_steps(base.landmarks, base.iod).nonzero()[0].tolist() == [5]
    lm = base.landmarks.copy()
    iod = base.iod.copy()
    lm[2], iod[2] = np.nan, np.nan  # no face in frame 2
    s = jitter_from_series(FrameSeries(lm, iod, base.lightness))
    # 10 triples; 3 touch frame 2, 2 span the cut
    assert (s.frames, s.face_frames, s.cuts, s.triples) == (12, 11, 1, 5)
    assert s.face_fraction == pytest.approx(11 / 12)
    assert s.jitter == pytest.approx(0.0, abs=1e-9)


def test_flicker_is_mean_abs_second_difference() -> None:
    lum = np.array([50, 52, 50, 52, 50, 52], float)
    f = flicker_from_series(series(np.zeros((6, 2)), lightness=lum))
    assert f.flicker == pytest.approx(4.0)
    assert f.mean_lightness == pytest.approx(51.0)
    flat = flicker_from_series(series(np.zeros((6, 2)), lightness=np.linspace(40, 60, 6)))
    assert flat.flicker == pytest.approx(0.0, abs=1e-9)


def test_no_triples_gives_nan_not_error() -> None:
    s = jitter_from_series(series(np.zeros((2, 2))))
    assert s.triples == 0 and math.isnan(s.jitter)
    assert s.to_dict()["jitter"] is None  # JSON-safe


# ------------------------------------------------------------------------------------- real frames


@pytest.fixture(scope="module")
def fa() -> FaceAnalyzer:
    a = FaceAnalyzer(identity=False).prepare()
    yield a
    a.close()


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    if not CLIP.is_file():
        pytest.skip(f"test video not available at {CLIP} (../shared/data/videos beside the repo)")
    return [rgb for rgb, _ in itertools.islice(iter_frames(CLIP), N_FRAMES)]


@pytest.fixture(scope="module")
def clip_stats(clip_frames: list[np.ndarray], fa: FaceAnalyzer):
    return measure(clip_frames, fa)


def test_face_lightness_uses_the_face_hull(hopper: np.ndarray, fa: FaceAnalyzer) -> None:
    face = fa.get(hopper)[0]
    hull = cv2.convexHull(np.round(face.mesh[:468, :2]).astype(np.int32))
    mask = np.zeros(hopper.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    img = np.full_like(hopper, 255)
    img[mask.astype(bool)] = 0
    assert face_lightness(img, face) == pytest.approx(0.0, abs=1e-6)  # nothing from outside leaks in
    grey = np.full_like(hopper, 128)
    want = cv2.cvtColor(np.full((1, 1, 3), 128 / 255, np.float32), cv2.COLOR_RGB2LAB)[0, 0, 0]
    assert face_lightness(grey, face) == pytest.approx(float(want), abs=1e-3)


@pytest.mark.slow  # real clip
def test_original_clip_is_smooth(clip_stats) -> None:
    j, f = clip_stats.jitter, clip_stats.flicker
    assert j.face_fraction > 0.95
    assert j.cuts == 0
    assert j.triples >= N_FRAMES - 4
    assert math.isfinite(j.jitter) and 0 < j.jitter < 0.05  # IODs per frame²
    assert math.isfinite(f.flicker) and 0 <= f.flicker < 1.0  # L units
    assert 20 < f.mean_lightness < 90


@pytest.mark.slow  # real clip
def test_translation_jitter_raises_landmark_jitter(
    clip_frames: list[np.ndarray], clip_stats, fa: FaceAnalyzer
) -> None:
    rng = np.random.default_rng(0)
    shaken = [np.roll(rgb, tuple(int(v) for v in rng.integers(0, 5, 2)), axis=(0, 1)) for rgb in clip_frames]
    s = measure(shaken, fa)
    assert s.jitter.cuts == 0
    assert s.jitter.jitter > 1.5 * clip_stats.jitter.jitter
    # a pure translation leaves the face's colour alone
    assert s.flicker.flicker < 2.0 * clip_stats.flicker.flicker + 0.1


@pytest.mark.slow  # real clip
def test_brightness_flicker_raises_colour_flicker(
    clip_frames: list[np.ndarray], clip_stats, fa: FaceAnalyzer
) -> None:
    flick = [
        np.clip(rgb.astype(np.int16) + (12 if i % 2 else 0), 0, 255).astype(np.uint8)
        for i, rgb in enumerate(clip_frames)
    ]
    s = measure(flick, fa)
    # +12 grey levels moves L by roughly 4–5 units; alternating, the second difference is ~4× that
    assert s.flicker.flicker > 3.0
    assert s.flicker.flicker > 5.0 * clip_stats.flicker.flicker
    # and the landmarks do not care
    assert s.jitter.jitter < 1.5 * clip_stats.jitter.jitter


@pytest.mark.slow  # real clip
def test_compare_same_video_gives_unit_ratios(clip_frames: list[np.ndarray], fa: FaceAnalyzer) -> None:
    res = compare(CLIP, CLIP, max_frames=20, analyzer=fa)
    assert res["input"]["jitter"]["frames"] == 20
    assert res["output"]["flicker"]["frames"] == 20
    assert res["ratio"]["jitter"] == pytest.approx(1.0)
    assert res["ratio"]["flicker"] == pytest.approx(1.0)

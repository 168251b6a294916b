"""The temporal filters of video swaps on synthetic signals: the One-Euro filter leaves a still signal
alone, removes jitter, follows a jump and lags a moving one by a bounded amount; the exponential average
moves by its time constant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from masquerade.video.smoothing import ExpAverage, OneEuroFilter, OneEuroParams

FPS = 30.0
FACE = 100.0  # the speed scale a video swap passes: the face size in pixels


def run(f: OneEuroFilter, xs: np.ndarray, scale: float = FACE) -> np.ndarray:
    """Filter the rows of ``xs`` as frames at FPS."""
    return np.array([f(x, i / FPS, scale) for i, x in enumerate(np.asarray(xs, np.float64))])


def test_first_value_passes_and_a_constant_signal_is_unchanged() -> None:
    x = np.array([[12.5, -3.0], [400.0, 0.25]])
    ys = run(OneEuroFilter(), np.repeat(x[None], 60, axis=0))
    assert ys.shape == (60, 2, 2)
    assert np.array_equal(ys[0], x)
    assert np.allclose(ys, x, rtol=0, atol=1e-12)


def test_jitter_is_reduced_without_bias() -> None:
    # a still landmark with 1 px of detector noise on a 100 px face
    rng = np.random.default_rng(0)
    xs = 240.0 + rng.normal(0.0, 1.0, (300, 1))
    ys = run(OneEuroFilter(), xs)[30:, 0]
    assert ys.std() < xs[30:, 0].std() / 2.5
    assert abs(ys.mean() - 240.0) < 0.1


def test_a_jump_is_followed_quickly_without_overshoot() -> None:
    xs = np.where(np.arange(60) < 30, 0.0, 50.0)[:, None]  # half a face in one frame
    ys = run(OneEuroFilter(), xs)[:, 0]
    assert np.all(ys[:30] == 0.0)
    after = ys[30:]
    assert after[0] > 10.0  # moves at once
    assert np.all(np.diff(after) >= 0) and after.max() <= 50.0  # monotone, never past the target
    assert abs(after[10] - 50.0) < 0.5  # within 1 % of the jump after a third of a second


@pytest.mark.parametrize("beta", [0.0, 0.8, 3.0])
def test_lag_on_a_steady_motion_is_bounded_by_the_minimum_cutoff(beta: float) -> None:
    """A face moving at 100 px/s: the filter trails by at most speed / (2π·min_cutoff) (a plain low-pass
    at the minimum cutoff); the speed term (beta) cuts that lag."""
    params = OneEuroParams(beta=beta)
    speed = 100.0
    t = np.arange(90) / FPS
    lag = speed * t - run(OneEuroFilter(params), (speed * t)[:, None])[:, 0]
    bound = speed / (2 * math.pi * params.min_cutoff)
    assert np.all(lag >= 0) and lag.max() <= bound + 1e-9
    if beta == 0.0:
        assert lag[-1] == pytest.approx(bound, rel=1e-3)  # settles on the low-pass lag
    else:
        assert lag[-1] < bound / 2


def test_more_beta_less_lag_and_scale_normalises_speed() -> None:
    t = np.arange(60) / FPS
    ramp = (100.0 * t)[:, None]

    def final_lag(beta: float, scale: float = FACE) -> float:
        return float(ramp[-1, 0] - run(OneEuroFilter(OneEuroParams(beta=beta)), ramp, scale)[-1, 0])

    assert final_lag(3.0) < final_lag(0.8) < final_lag(0.0)
    # the same pixels are a slower motion on a larger face: smoothed harder, so more lag
    assert final_lag(0.8, scale=400.0) > final_lag(0.8, scale=FACE)


def test_each_element_is_filtered_on_its_own() -> None:
    rng = np.random.default_rng(1)
    xs = np.cumsum(rng.normal(0, 3, (40, 3)), axis=0)
    together = run(OneEuroFilter(), xs)
    for k in range(3):
        alone = run(OneEuroFilter(), xs[:, k : k + 1])[:, 0]
        assert np.allclose(together[:, k], alone, rtol=0, atol=1e-12)


def test_reset_and_time_going_back_restart_the_filter() -> None:
    f = OneEuroFilter()
    for i in range(10):
        f(np.array([0.0]), i / FPS, FACE)
    assert f(np.array([50.0]), 10 / FPS, FACE)[0] < 50.0  # smoothed
    f.reset()
    assert f(np.array([80.0]), 11 / FPS, FACE)[0] == 80.0
    assert f(np.array([-5.0]), 0.0, FACE)[0] == -5.0  # an earlier time (a seek): start again
    out = f(np.array([1.0]), 1 / FPS, FACE)
    out[0] = 1e6  # the caller's copy, not the filter's state
    assert f(np.array([1.0]), 2 / FPS, FACE)[0] < 2.0


def test_exp_average_moves_by_its_time_constant() -> None:
    avg = ExpAverage(tau=0.25)
    assert avg(np.array([0.0, 10.0]), 0.0).tolist() == [0.0, 10.0]
    v = avg(np.array([1.0, 10.0]), 0.25)  # one time constant later
    assert v[0] == pytest.approx(1 - math.exp(-1)) and v[1] == pytest.approx(10.0)
    v = avg(np.array([1.0, 10.0]), 0.5)
    assert v[0] == pytest.approx(1 - math.exp(-2))
    avg.reset()
    assert avg(np.array([7.0, 7.0]), 0.75).tolist() == [7.0, 7.0]
    assert avg(np.array([3.0, 3.0]), 0.75).tolist() == [3.0, 3.0]  # no time passed: restart

"""The three blend modes on synthetic images: where the mask is 0 the target stays bit-identical, deep
inside the mask the result is the foreground (Poisson: its detail, on the target's level), and the
transition has no seam."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from masquerade.compose.blending import BLEND_MODES, blend, feather, multiband, poisson

H, W = 240, 320
YY, XX = np.mgrid[:H, :W]


def disc(
    cx: float = 160, cy: float = 120, full: float = 75, ramp: float = 15
) -> tuple[np.ndarray, np.ndarray]:
    """A soft disc mask (1 inside radius ``full``, 0 beyond ``full + ramp``) and the radius map."""
    r = np.hypot(XX - cx, YY - cy)
    return np.clip((full + ramp - r) / ramp, 0, 1).astype(np.float32), r


def texture(base: float, amp: float, seed: int) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, 1, (H, W, 3)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), 1.5)
    return np.clip(base + amp * n / n.std(), 0, 255).astype(np.uint8)


def flat(v: int) -> np.ndarray:
    return np.full((H, W, 3), v, np.uint8)


def max_jump(img: np.ndarray) -> int:
    """The largest difference between neighbouring pixels."""
    a = img.astype(np.int16)
    return int(max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max()))


def high_pass(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x - cv2.GaussianBlur(x, (0, 0), 4)


TARGET, FG = texture(70, 20, seed=1), texture(170, 20, seed=2)


@pytest.mark.parametrize("mode", BLEND_MODES)
@pytest.mark.parametrize("where", ["centre", "edge"])  # edge: the mask runs off the image (Poisson pads)
def test_where_the_mask_is_zero_the_target_is_untouched(mode, where) -> None:
    mask, _ = disc(cx=160 if where == "centre" else 10, cy=120 if where == "centre" else 5)
    out = blend(TARGET, FG, mask, mode)
    assert out.shape == TARGET.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask <= 0], TARGET[mask <= 0])
    assert (mask <= 0).sum() > 0.5 * mask.size
    # and the mask's part did change
    assert np.abs(out[mask >= 1].astype(int) - TARGET[mask >= 1]).mean() > 10


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_an_empty_or_tiny_mask_returns_the_target(mode) -> None:
    assert np.array_equal(blend(TARGET, FG, np.zeros((H, W), np.float32), mode), TARGET)
    speck = np.zeros((H, W), np.float32)
    speck[100:103, 100:103] = 0.01  # under every mode's threshold for changing anything visible
    out = blend(TARGET, FG, speck, mode)
    assert np.array_equal(out[speck <= 0], TARGET[speck <= 0])
    assert np.abs(out.astype(int) - TARGET).max() <= 2


def test_feather_is_the_alpha_blend() -> None:
    mask, _ = disc()
    out = feather(TARGET, FG, mask)
    assert np.array_equal(out[mask >= 1], FG[mask >= 1])
    expect = TARGET * (1 - mask[..., None]) + FG * mask[..., None]
    assert np.abs(out - expect).max() < 0.51  # rounded to the nearest level (float32 weights)


def test_multiband_interior_is_the_foreground() -> None:
    mask, r = disc(full=75, ramp=15)
    out = multiband(TARGET, FG, mask).astype(int)
    assert np.abs(out[r < 45] - FG[r < 45]).max() <= 1  # 30 px inside the full mask
    assert np.abs(high_pass(out)[r < 60] - high_pass(FG)[r < 60]).mean() < 0.5  # and its detail nearer


def test_poisson_interior_carries_the_foregrounds_detail_at_the_targets_level() -> None:
    mask, r = disc()
    out = poisson(TARGET, FG, mask)
    inner = r < 60
    assert np.abs(high_pass(out)[inner] - high_pass(FG)[inner]).mean() < 1.0
    assert np.abs(high_pass(FG)[inner]).mean() > 10  # (there is detail to carry)
    # gradient-domain: the 100-level brighter foreground is brought down to the target's brightness
    assert abs(out[inner].mean() - TARGET[inner].mean()) < 15
    assert abs(feather(TARGET, FG, mask)[inner].mean() - FG[inner].mean()) < 1


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_a_soft_mask_leaves_no_seam(mode) -> None:
    """Flat grey 60 under flat 200 through a 15-px ramp: no step between neighbours larger than twice
    the ramp's own (140 / 15 per pixel)."""
    mask, _ = disc(full=75, ramp=15)
    out = blend(flat(60), flat(200), mask, mode)
    assert max_jump(out) <= 2 * 140 / 15
    assert out[120, 160, 0] == (59 if mode == "poisson" else 200)  # rounding of seamlessClone: 59


def test_poisson_and_multiband_soften_a_hard_edge() -> None:
    mask = (disc()[1] < 80).astype(np.float32)
    tgt, fg = flat(60), flat(200)
    assert max_jump(feather(tgt, fg, mask)) == 140  # the seam a hard alpha blend leaves
    assert max_jump(multiband(tgt, fg, mask)) < 140 / 2
    assert max_jump(poisson(tgt, fg, mask)) <= 2


def test_unknown_mode() -> None:
    with pytest.raises(
        ValueError, match="unknown blend mode 'alpha'; choose from feather, poisson, multiband"
    ):
        blend(TARGET, FG, np.zeros((H, W), np.float32), "alpha")

"""Colour correction on a real face (the astronaut sample, its face mask from the mesh): ``reinhard``
moves the patch's Lab mean and spread inside the mask to the target's, ``shading`` also carries the
target's lighting across the face, ``none`` is the identity."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer
from masquerade.compose.colour import COLOUR_MODES, correct_colour, reinhard_stats
from masquerade.compose.masks import eye_mask, region_mask
from masquerade.face import Face


@pytest.fixture(scope="module")
def face(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> Face:
    (f,) = analyzer.get(astronaut, identity=False)
    return f


@pytest.fixture(scope="module")
def mask(face: Face, astronaut: np.ndarray) -> np.ndarray:
    return region_mask(astronaut.shape[:2], face.mesh)


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def stats(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of L, a, b inside the mask."""
    px = lab(rgb)[mask > 0.5]
    return px.mean(0), px.std(0)


def cast(rgb: np.ndarray) -> np.ndarray:
    """A warm colour cast with 30 % less contrast."""
    x = (rgb.astype(np.float32) - 128) * 0.7 + 128
    return np.clip(x * np.array([1.25, 0.95, 0.7], np.float32), 0, 255).astype(np.uint8)


def lit_from_the_right(rgb: np.ndarray, face: Face) -> np.ndarray:
    """Light falling across the face: dark on its left edge, bright on its right."""
    x0, x1 = face.box[0], face.box[2]
    gain = np.clip(0.45 + (np.arange(rgb.shape[1]) - x0) / (x1 - x0) * 0.8, 0.45, 1.25)
    return np.clip(rgb * gain[None, :, None], 0, 255).astype(np.uint8)


def right_minus_left(rgb: np.ndarray, mask: np.ndarray, face: Face) -> float:
    """Mean lightness of the right half of the masked face minus the left half's."""
    L = lab(rgb)[..., 0]
    sel, right = mask > 0.5, (np.arange(rgb.shape[1]) >= face.center[0])[None, :]
    return float(L[sel & right].mean() - L[sel & ~right].mean())


def test_none_is_the_identity(astronaut, mask) -> None:
    patch = cast(astronaut)
    assert correct_colour(patch, astronaut, mask, "none") is patch


@pytest.mark.parametrize("mode", ["reinhard", "shading"])
def test_colour_statistics_move_to_the_targets_inside_the_mask(astronaut, mask, face, mode) -> None:
    patch = cast(astronaut)
    out = correct_colour(patch, astronaut, mask, mode, face_px=100.0)
    assert out.shape == patch.shape and out.dtype == np.uint8
    (mu_p, sd_p), (mu_t, sd_t), (mu_o, sd_o) = (stats(x, mask) for x in (patch, astronaut, out))
    assert np.all(np.abs(mu_p - mu_t) > [3, 10, 15])  # the cast is a real one
    assert np.all(np.abs(mu_o - mu_t) < 0.1 * np.abs(mu_p - mu_t) + 0.5)
    assert abs(sd_p[0] / sd_t[0] - 1) > 0.25 and abs(sd_o[0] / sd_t[0] - 1) < 0.03  # contrast restored
    assert np.all(np.abs(sd_o - sd_t) < [0.5, 0.5, 0.6])


def test_a_different_face_takes_the_targets_colours_with_a_bounded_contrast_change(
    astronaut, hopper, mask
) -> None:
    """Hopper's photo (other skin, other light) on the astronaut's face: the means match, the spread
    moves by at most the gain limit (×0.5 to ×2) — her spread is over three times the astronaut's
    in a and b, so it ends at half of hers."""
    patch = cv2.resize(hopper, astronaut.shape[1::-1], interpolation=cv2.INTER_AREA)
    out = correct_colour(patch, astronaut, mask, "reinhard")
    (mu_p, sd_p), (mu_t, sd_t), (mu_o, sd_o) = (stats(x, mask) for x in (patch, astronaut, out))
    assert abs(mu_p[0] - mu_t[0]) > 20 and np.abs(mu_o - mu_t).max() < 1.5
    assert np.all(sd_p[1:] > 3 * sd_t[1:])
    assert np.all((sd_o[1:] > 0.45 * sd_p[1:]) & (sd_o[1:] < 0.55 * sd_p[1:]))
    assert abs(sd_o[0] - sd_t[0]) < 0.5  # L within the limit: matched


def test_only_the_target_inside_the_mask_counts(astronaut, mask) -> None:
    patch = cast(astronaut)
    other = astronaut.copy()
    other[mask <= 0.5] = (0, 255, 0)  # a green world around the same face
    for mode in ("reinhard", "shading"):
        assert np.array_equal(
            correct_colour(patch, astronaut, mask, mode), correct_colour(patch, other, mask, mode)
        )
    changed = astronaut.copy()
    changed[mask > 0.5] //= 2
    assert not np.array_equal(correct_colour(patch, astronaut, mask), correct_colour(patch, changed, mask))


def test_shading_carries_the_targets_lighting_across_the_face(astronaut, mask, face) -> None:
    target = lit_from_the_right(astronaut, face)
    t, p = right_minus_left(target, mask, face), right_minus_left(astronaut, mask, face)
    assert t > 8 and p < -8  # the photo's own light comes from the left
    reinhard = right_minus_left(
        correct_colour(astronaut, target, mask, "reinhard", face_px=100.0), mask, face
    )
    shading = right_minus_left(correct_colour(astronaut, target, mask, "shading", face_px=100.0), mask, face)
    assert abs(reinhard - p) < 1.0  # global statistics only: the patch's own light stays
    assert abs(shading - t) < 0.35 * abs(t - p)  # most of the way to the target's light


def test_stats_filter_sees_the_statistics_and_its_result_is_used(astronaut, mask) -> None:
    patch = cast(astronaut)
    seen: list[np.ndarray] = []

    def keep_the_patch(s: np.ndarray) -> np.ndarray:
        seen.append(s.copy())
        # "the target looks like the patch", highlights too
        return np.stack([s[0], s[1], s[0], s[1], [s[4, 2], s[4, 2], s[4, 2]]])

    out = correct_colour(patch, astronaut, mask, "reinhard", stats_filter=keep_the_patch)
    (s,) = seen
    assert s.shape == (5, 3)
    assert np.allclose(s, reinhard_stats(lab(patch), lab(astronaut), mask > 0.5))
    assert np.abs(out.astype(int) - patch).max() <= 1  # an identity transform, up to Lab round trips


def shiny_dark(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face at 45 % of its brightness, with a patch of white shine on the forehead (as on a
    dark-skinned face lit from above)."""
    out = (rgb.astype(np.float32) * 0.45).astype(np.uint8)
    x0, y0, x1, y1 = face.box
    cx, fy = int((x0 + x1) / 2), int(y0 + 0.2 * (y1 - y0))
    cv2.ellipse(out, (cx, fy), (int(0.12 * (x1 - x0)), int(0.04 * (y1 - y0))), 0, 0, 360, (235, 235, 235), -1)
    return out


@pytest.mark.parametrize("mode", ["reinhard", "shading"])
def test_a_dark_faces_shine_stays_within_the_targets_highlights(
    astronaut, mask, face, mode, monkeypatch
) -> None:
    """Transferred linearly, the shine of a dark face lands far above anything in the target's face
    (clipped white); it is compressed to the target's own highlights, and the rest of the face keeps
    the linear transfer. (The shine's own gain is left out here: see the next test.)"""
    from masquerade.compose import colour
    from masquerade.compose.colour import HIGHLIGHTS, reinhard_apply

    monkeypatch.setattr(colour, "_shine_gain", lambda stats: 1.0)

    patch = shiny_dark(astronaut, face)
    sel = mask > 0.5
    top = float(np.percentile(lab(astronaut)[..., 0][sel], HIGHLIGHTS[1]))
    start = float(np.percentile(lab(astronaut)[..., 0][sel], HIGHLIGHTS[0]))
    linear = reinhard_apply(lab(patch), reinhard_stats(lab(patch), lab(astronaut), sel))[..., 0]
    shine = sel & (lab(patch)[..., 0] > 80)
    assert shine.sum() > 100 and np.median(linear[shine]) > top + 10  # what it was: far above
    out = lab(correct_colour(patch, astronaut, mask, mode, face_px=100.0))[..., 0]
    assert np.percentile(out[shine], 99) < top + 1.0
    ordinary = sel & (linear < start - 5)
    if mode == "reinhard":
        assert np.abs(out[ordinary] - linear[ordinary]).max() < 1.0  # up to the uint8 round trip


def with_spot(rgb: np.ndarray, face: Face, size: float, amount: float) -> np.ndarray:
    """``rgb`` (float) with a soft bright spot of ``amount`` grey levels and a radius of ``size`` of the
    face's width added on its left cheek."""
    x0, y0, x1, y1 = face.box
    w = x1 - x0
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    cx, cy, r = x0 + 0.3 * w, y0 + 0.8 * (y1 - y0), size * w
    spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    return np.clip(rgb + amount * spot[..., None], 0, 255)


@pytest.mark.parametrize("mode", ["reinhard", "shading"])
def test_a_dark_faces_shine_is_not_scaled_with_its_skin(astronaut, mask, face, mode, monkeypatch) -> None:
    """A darker face onto a lighter one doubles its lightness spread, and scaled with it a small spot
    of shine came out nearly twice as bright above the skin (shine is light reflected off the skin's
    surface: it does not scale with how dark the skin is). It now stands above the skin about as it did
    in the source, while a broad brighter area (light, not shine) keeps the linear transfer. The
    highlight knee is left out here (it would compress the spot for a reason of its own)."""
    from masquerade.compose import colour

    monkeypatch.setattr(colour, "knee_span", lambda *a: None)
    dark = astronaut.astype(np.float32) * 0.45
    sel = mask > 0.5
    w = face.box[2] - face.box[0]

    def transfer(patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the correction's lightness, the linear transfer's with the same statistics)"""
        stats = reinhard_stats(lab(patch), lab(astronaut), sel)
        assert colour._gain(stats)[0] > 1.6
        linear = colour.reinhard_apply(lab(patch), stats)[..., 0]
        return lab(correct_colour(patch, astronaut, mask, mode, face_px=w))[..., 0], linear

    plain, plain_linear = transfer(dark.astype(np.uint8))
    spotted = with_spot(dark, face, 0.03, 20.0).astype(np.uint8)
    grown = lab(spotted)[..., 0] - lab(dark.astype(np.uint8))[..., 0]
    core = sel & (grown > 0.8 * grown[sel].max())
    out, linear = transfer(spotted)
    assert float((linear - plain_linear)[core].mean() / grown[core].mean()) > 1.7  # what it was
    assert float((out - plain)[core].mean() / grown[core].mean()) < 1.35
    if mode == "reinhard":  # the shading mode replaces broad light with the target's anyway
        broad = with_spot(dark, face, 0.25, 20.0).astype(np.uint8)
        grown = lab(broad)[..., 0] - lab(dark.astype(np.uint8))[..., 0]
        core = sel & (grown > 0.8 * grown[sel].max())
        out, linear = transfer(broad)
        moved = out - linear  # the shine step's change, besides keeping the mean
        assert abs(float(moved[core].mean() - np.median(moved[sel]))) < 1.0


def test_the_same_skin_in_a_darker_photo_keeps_its_shine_scaled(astronaut, mask, face) -> None:
    """A photo of the same skin a little darker (exposure, not skin): its shine is brightened with the
    rest, as the linear transfer does."""
    from masquerade.compose import colour

    dark = astronaut.astype(np.float32) * 0.8
    sel = mask > 0.5
    stats = reinhard_stats(lab(dark.astype(np.uint8)), lab(astronaut), sel)
    assert colour._gain(stats)[0] > 1.15 and colour._shine_gain(stats) == 1.0
    spotted = with_spot(dark, face, 0.03, 20.0).astype(np.uint8)
    w = face.box[2] - face.box[0]
    out = lab(correct_colour(spotted, astronaut, mask, "reinhard", face_px=w))[..., 0]
    linear = colour.reinhard_apply(lab(spotted), reinhard_stats(lab(spotted), lab(astronaut), sel))[..., 0]
    low = sel & (linear < np.percentile(linear[sel], 90))  # below the highlight knee
    assert np.abs(out - linear)[low].max() < 1.0


@pytest.mark.parametrize("mode", ["reinhard", "shading"])
def test_a_face_no_brighter_than_the_target_keeps_its_highlights(astronaut, mask, mode) -> None:
    """The target onto itself: its highlights are its own, nothing is compressed."""
    out = correct_colour(astronaut, astronaut, mask, mode, face_px=100.0)
    assert np.abs(out.astype(int) - astronaut).max() <= 1


def test_the_knee_brings_the_highlight_to_the_top_and_is_smooth() -> None:
    from masquerade.compose.colour import knee_span

    assert knee_span(80.0, 90.0, 90.0) is None and knee_span(80.0, 80.0, 120.0) is None
    for high in (90.5, 100.0, 300.0):
        span = knee_span(80.0, 90.0, high)
        assert span is not None
        assert abs(80.0 + span * np.tanh((high - 80.0) / span) - 90.0) < 1e-6
        assert 80.0 + span * np.tanh(0.01 / span) > 80.0099  # slope 1 at the knee
    assert knee_span(80.0, 90.0, 90.01) > 100.0  # barely above: nearly the identity


def test_the_eyes_keep_the_share_of_their_own_colour_they_are_given(astronaut, mask, face) -> None:
    """Blue irises on a warm-cast patch: the correction alone pulls the eyes' hue to the target's skin's
    way; with ``keep_chroma`` at half over the eye openings their a, b land halfway between the patch's
    and the corrected ones (lightness corrected as before), and nothing outside the eyes changes."""
    eyes = eye_mask(astronaut.shape[:2], face.mesh)
    inside = eyes > 0.99
    assert inside.sum() > 50
    patch = cast(astronaut)
    patch[inside] = (patch[inside] * 0.4 + np.array([60, 110, 200]) * 0.6).astype(np.uint8)
    full = correct_colour(patch, astronaut, mask, "shading", face_px=100.0)
    half = correct_colour(patch, astronaut, mask, "shading", face_px=100.0, keep_chroma=0.5 * eyes)
    ab = [lab(x)[inside][:, 1:].mean(0) for x in (patch, full, half)]
    assert np.abs(ab[0] - ab[1]).max() > 8  # the correction moves the eyes' colour
    assert np.abs(ab[2] - (ab[0] + ab[1]) / 2).max() < 0.5, ab
    L = [lab(x)[inside][:, 0].mean() for x in (full, half)]
    assert abs(L[0] - L[1]) < 1.0
    assert np.array_equal(full[eyes == 0], half[eyes == 0])


def test_too_small_a_mask_leaves_the_patch(astronaut) -> None:
    patch = cast(astronaut)
    tiny = np.zeros(astronaut.shape[:2], np.float32)
    tiny[200:203, 200:205] = 1.0  # 15 pixels
    assert correct_colour(patch, astronaut, tiny, "reinhard") is patch


def test_unknown_mode(astronaut, mask) -> None:
    assert COLOUR_MODES == ("none", "reinhard", "shading")
    with pytest.raises(ValueError, match="unknown colour mode 'auto'; choose from none, reinhard, shading"):
        correct_colour(astronaut, astronaut, mask, "auto")


def test_warm_up_builds_the_tables_quietly_and_is_joined_at_exit(monkeypatch, capfd) -> None:
    """The command line builds OpenCV's colour tables on a thread as it starts: not a daemon (a process
    that ends while the thread is inside OpenCV aborts), and a failure there prints nothing (the real
    conversion reports its own error)."""
    from masquerade.compose import colour

    t = colour.warm_up()
    t.join(timeout=30)
    assert not t.is_alive() and not t.daemon

    def broken(*_a, **_k):
        raise cv2.error("no tables")

    escaped: list[object] = []  # what would be printed as "Exception in thread …" with a traceback
    monkeypatch.setattr(colour.threading, "excepthook", escaped.append)
    monkeypatch.setattr(colour.cv2, "cvtColor", broken)
    colour.warm_up().join(timeout=30)
    assert escaped == [] and capfd.readouterr().err == ""

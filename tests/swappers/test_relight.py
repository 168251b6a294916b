"""mesh3d's relighting: the source's own light out, the target's in (masquerade.swappers.relight)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from masquerade import SwapOptions, load_image
from masquerade.errors import InputError
from masquerade.swappers.mesh3d import Mesh3DOptions, Mesh3DSwapper
from masquerade.swappers.relight import (
    fit_lighting,
    ratio_canvas,
    ratio_image,
    sh_basis,
    skin_vertices,
    vertex_lightness,
    vertex_normals,
)


def _side_lit(rgb: np.ndarray, face, dark: float) -> np.ndarray:
    """``rgb`` lit from the image's right: lightness falls linearly to ``dark`` of itself across the face
    towards the left (a smooth light, as a lamp beside the sitter gives)."""
    xs = face.mesh[:468, 0]
    t = np.clip((np.arange(rgb.shape[1]) - xs.min()) / np.ptp(xs), 0.0, 1.0)
    gain = dark + (1.0 - dark) * t
    return np.clip(rgb * gain[None, :, None] + 0.5, 0, 255).astype(np.uint8)


def _left_right(patch) -> float:
    """Lightness of the patch's left half of the face over its right half (where the warp covers)."""
    luma = patch.image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    cover = patch.coverage > 0.5
    xs = patch.mesh[:468, 0] - patch.x0
    mid = (xs.min() + xs.max()) / 2
    cols = np.arange(luma.shape[1])[None, :].repeat(luma.shape[0], 0)
    left, right = cover & (cols < mid - 0.1 * np.ptp(xs)), cover & (cols > mid + 0.1 * np.ptp(xs))
    return float(luma[left].mean() / luma[right].mean())


def test_the_fit_finds_a_known_light_through_outliers(analyzer, astronaut):
    """Lightness made from a known light on a real face's normals, a sixth of the skin vertices spoiled
    (shine, a hand's shadow): the robust fit gets the light back, a plain least squares would not."""
    sw = Mesh3DSwapper()
    (face,) = analyzer.get(astronaut, identity=False)
    n = vertex_normals(face.mesh, sw.canonical.triangles)
    skin = skin_vertices(sw.canonical.vertices)
    truth = np.array([120.0, 35.0, -10.0, 20.0, 0, 0, 0, 0, 0])
    lightness = sh_basis(n) @ truth
    rng = np.random.default_rng(0)
    spoiled = rng.random(468) < 1 / 6
    lightness[spoiled] += rng.choice([-80.0, 80.0], spoiled.sum())
    light = fit_lighting(lightness, n, skin)
    assert light is not None
    sel = skin & (-n[:, 2] > 0.2)
    err = np.abs(light.shading(n[sel]) - (sh_basis(n[sel]) @ truth))
    assert err.mean() < 4.0, err.mean()  # grey levels, against a spread of about 35 across the face
    assert fit_lighting(lightness, n, np.zeros(468, bool)) is None  # no skin: no light


def test_a_face_relit_onto_itself_is_left_alone(analyzer, astronaut):
    (face,) = analyzer.get(astronaut, identity=False)
    plain = Mesh3DSwapper(Mesh3DOptions(relight=0)).swap(astronaut, face, astronaut, face)
    lit = Mesh3DSwapper(Mesh3DOptions(relight=1)).swap(astronaut, face, astronaut, face)
    cover = plain.coverage > 0.5
    diff = np.abs(lit.image.astype(int) - plain.image.astype(int))[cover]
    assert diff.mean() < 2.0, diff.mean()


def test_the_sources_side_light_is_taken_out(analyzer, astronaut, hopper):
    """Hopper lit from one side, swapped onto the astronaut: without relighting the warp carries the
    dark side over; relit, the face's left-to-right balance is back near the evenly lit source's."""
    (src,) = analyzer.get(hopper, identity=False)
    (tgt,) = analyzer.get(astronaut, identity=False)
    dark = _side_lit(hopper, src, 0.45)
    off, on = Mesh3DSwapper(Mesh3DOptions(relight=0)), Mesh3DSwapper(Mesh3DOptions(relight=1))
    even = _left_right(on.swap(hopper, src, astronaut, tgt))
    plain = _left_right(off.swap(dark, src, astronaut, tgt))
    relit = _left_right(on.swap(dark, src, astronaut, tgt))
    assert plain < even - 0.2  # the side light is there without relighting
    assert abs(relit - even) < 0.4 * abs(plain - even), (even, plain, relit)


def test_relight_off_is_the_plain_warp_and_bad_strength_is_refused(analyzer, astronaut, hopper):
    (src,), (tgt,) = analyzer.get(hopper, identity=False), analyzer.get(astronaut, identity=False)
    sw = Mesh3DSwapper(Mesh3DOptions(relight=0))
    maps, _ = sw.fill_maps(src, tgt, astronaut.shape, False)
    assert np.array_equal(sw.swap(hopper, src, astronaut, tgt).image, sw.render(hopper, maps).image)
    with pytest.raises(InputError, match="relight must be 0 to 1"):
        Mesh3DOptions(relight=1.5)
    assert Mesh3DOptions().relight == 0.5  # half the way by default


def test_the_light_ratio_never_leaves_its_vertices_range(analyzer, astronaut):
    """Pixels of a closed mouth's gap belong to no triangle and take their lips' slivers, whose linear
    interpolation extrapolates: a small face's gain went to −0.35 there (black and white dots on the
    lips). Whatever the vertex values, the gain stays between the least and the most of them."""
    triangles = Mesh3DSwapper()._skin_triangles
    rng = np.random.default_rng(0)
    for scale in (1.0, 0.3):
        small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        (face,) = analyzer.get(small, identity=False)
        pts = face.mesh[:468] - [*(np.floor(face.mesh[:468, :2].min(0)) - 2), 0]
        size = tuple(int(v) for v in np.ceil(pts[:, :2].max(0)) + 3)
        ids, canvas = ratio_canvas(pts, triangles, size)
        for _ in range(5):
            ratio = rng.uniform(0.5, 2.0, 468)
            gain = ratio_image(ratio, ids, canvas, triangles, size)
            assert gain.min() >= ratio.min() - 1e-4 and gain.max() <= ratio.max() + 1e-4, (scale, gain.min())


def test_lightness_is_read_at_the_vertices(analyzer, astronaut):
    (face,) = analyzer.get(astronaut, identity=False)
    flat = np.full_like(astronaut, 77)
    assert np.allclose(vertex_lightness(flat, face.mesh), 77.0, atol=0.5)


def test_relighting_brings_same_person_swaps_closer_to_the_real_photo(lfw, swapper):
    """Two photos of one person, one swapped onto the other: the real target is the answer inside its
    face, and the default (half-way) relit warp is nearer to it (SSIM in the face) than the plain warp,
    over a few pairs."""
    from masquerade import FaceSwapper
    from masquerade.evaluation.metrics import face_region, masked_ssim

    names = [
        "Colin_Powell", "George_W_Bush", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder",
        "Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi", "Jean_Chretien", "John_Ashcroft",
    ]  # fmt: skip
    gains = []
    for own in (Mesh3DOptions(relight=0), None):  # plain, and the default
        opts = SwapOptions(swapper_options=own)
        with FaceSwapper(opts, analyzer=swapper.analyzer) as fs:
            scores = []
            for name in names:
                src = load_image(lfw / "images" / name / f"{name}_0001.jpg").rgb
                tgt = load_image(lfw / "images" / name / f"{name}_0002.jpg").rgb
                out, _ = fs.swap(src, tgt)
                face = fs.analyzer.get(tgt, identity=False)[0]
                scores.append(masked_ssim(out, tgt, face_region(tgt.shape, face)))
            gains.append(np.array(scores))
    assert (gains[1] - gains[0]).mean() > 0.005, gains


def test_in_video_the_light_follows_the_target_smoothly(analyzer, astronaut, hopper):
    """With video's per-person state the first frame is relit as a photo is, and a sudden change of the
    target's light (a lamp switched on at the side) is taken in over frames, not at once."""
    (src,), (tgt,) = analyzer.get(hopper, identity=False), analyzer.get(astronaut, identity=False)
    sw = Mesh3DSwapper(Mesh3DOptions(relight=1))
    state: dict = {}
    first = sw.swap(hopper, src, astronaut, tgt, state=state)
    assert np.array_equal(first.image, sw.swap(hopper, src, astronaut, tgt).image)
    lamp = _side_lit(astronaut, tgt, 0.45)
    at_once = _left_right(sw.swap(hopper, src, lamp, tgt))
    steps = [_left_right(sw.swap(hopper, src, lamp, tgt, state=state)) for _ in range(15)]
    before = _left_right(first)
    assert abs(steps[0] - before) < 0.35 * abs(at_once - before), (before, steps[0], at_once)
    assert abs(steps[-1] - at_once) < 0.1 * abs(at_once - before)  # and gets there

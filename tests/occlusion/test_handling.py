"""Occlusion-aware swapping with the shipped segmenter: a pasted occluder in front of the target survives
the swap, one pasted on the source does not reach the output, video masks are steady, bad weights are a
one-line error, and ``analyze`` reports each face's visible share."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from occlusion_fixtures import painted_fringe, pasted_kept, side_lock
from PIL import Image

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions
from masquerade.analysis.alignment import invert_affine
from masquerade.analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    idx,
)
from masquerade.cli.main import main
from masquerade.errors import ModelError
from masquerade.evaluation.metrics import face_region
from masquerade.occlusion.handling import TINY_IOD, WARN_HIDDEN, Occlusion, whole_forehead
from masquerade.occlusion.segmenter import OcclusionSegmenter, crop_matrix, read_segmenter_info
from masquerade.occlusion.synthetic import make_occluder
from masquerade.swappers.mesh3d import Mesh3DOptions


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, hopper: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return fa.get(astronaut)[0], fa.get(hopper)[0]


def _swap(source: np.ndarray, target: np.ndarray, occlusion: bool, colour: str = "shading") -> np.ndarray:
    with FaceSwapper(SwapOptions(occlusion=occlusion, colour=colour)) as fs:
        return fs.swap(source, target)[0]


def test_segmenter_finds_a_pasted_hand(faces, astronaut: np.ndarray) -> None:
    seg = OcclusionSegmenter()
    face = faces[0]
    layer = make_occluder("hand", 11, face.landmarks_68, astronaut.shape)
    occluded = layer.over(astronaut)
    region = face_region(astronaut.shape, face)
    found = seg.image_mask(occluded, face) > 0.5
    truth = layer.mask & region
    iou = (found & truth).sum() / max(1, (found | truth).sum())
    assert iou > 0.5, iou
    assert seg.visible_share(astronaut, face) > 0.9  # the clean photo
    assert seg.visible_share(occluded, face) < seg.visible_share(astronaut, face) - 0.05
    # the mask is warped back over the crop's footprint only: the same as warping the whole image (up to
    # OpenCV's 1/32-pixel interpolation steps, which depend on the absolute position)
    h, w = astronaut.shape[:2]
    prob = np.random.default_rng(0).random((seg.resolution,) * 2).astype(np.float32)
    moved = dataclasses.replace(face, landmarks_5=face.landmarks_5 - face.landmarks_5.min(0) + 1)  # corner
    for f in (face, moved):
        inv = invert_affine(crop_matrix(f.landmarks_5, seg.resolution))
        whole = cv2.warpAffine(prob, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        _same_warp(seg.image_mask(occluded, f, prob), whole)


def _same_warp(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and np.array_equal(a > 0, b > 0) and (b > 0.5).sum() > 100
    assert np.abs(a - b).max() <= 1 / 32 + 1e-6


def test_video_mask_looks_every_second_frame_and_follows_the_face(faces, astronaut: np.ndarray) -> None:
    """In video (a ``state`` per person) the segmenter looks at every second frame; in between, the running
    mask (in the face's coordinates) follows the face, so a hand that moves with the face stays covered."""
    face = faces[0]
    target = make_occluder("hand", 11, face.landmarks_68, astronaut.shape).over(astronaut)
    occ = Occlusion(hands=False, hair=False)
    looks = []
    look = occ.segmenter.crop_prob
    occ.segmenter.crop_prob = lambda *a: looks.append(a) or look(*a)  # type: ignore[method-assign]
    state: dict = {}
    first = occ.target_mask(target, face, state).full(target.shape)
    assert len(looks) == 1 and (first > 0.5).sum() > 500
    # the next frame: the whole picture 12 px to the right, the face with it; no look, the mask moves
    h, w = target.shape[:2]
    moved = cv2.warpAffine(target, np.float64([[1, 0, 12], [0, 1, 0]]), (w, h))
    dx = np.array([12.0, 0.0])
    face2 = dataclasses.replace(
        face, box=face.box + np.array([12.0, 0, 12, 0]), landmarks_5=face.landmarks_5 + dx,
        landmarks_68=face.landmarks_68 + dx, mesh=face.mesh + np.array([12.0, 0, 0]),
    )  # fmt: skip
    second = occ.target_mask(moved, face2, state).full(target.shape)
    assert len(looks) == 1
    _same_warp(second[:, 12:], first[:, :-12])
    third = occ.target_mask(moved, face2, state).full(target.shape)  # a look, averaged with the running mask
    assert len(looks) == 2 and np.abs(third - second).max() < 0.2
    occ.target_mask(moved, face2)
    assert len(looks) == 3  # no state: every call looks


def test_target_occluder_survives_the_swap(faces, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    """Hands and bars pasted over the target's face: the share of their pixels that come out within 8 grey
    levels of the occluded target, occlusion off (the face is pasted over them) and on (they are kept)."""
    kept = {on: pasted_kept(lambda t, o=on: _swap(hopper, t, o), astronaut, faces[0]) for on in (False, True)}
    off, on = float(np.mean(kept[False])), float(np.mean(kept[True]))
    assert off < 0.5 and on > 0.8 and min(kept[True]) > 0.6, kept


def test_refiner_leaves_what_the_target_keeps(faces, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    """The refiner's correction reaches a few pixels past the composite's mask (to soften its edge), but
    not over what the target keeps in front of its face: where a pasted hand or bar is kept whole, the
    refined swap equals mesh3d's, and the refiner does change the face around it."""
    face = faces[0]
    occ = Occlusion.for_options(SwapOptions())
    changed = 0
    for kind, seed in (("hand", 3), ("bar", 5)):
        target = make_occluder(kind, seed, face.landmarks_68, astronaut.shape).over(astronaut)
        kept = occ.target_mask(target, face).full(target.shape) > 0.999
        outs = []
        for name in ("mesh3d", "refined"):
            with FaceSwapper(SwapOptions(swapper=name)) as fs:
                outs.append(fs.swap(hopper, target)[0].astype(int))
        assert kept.sum() > 500
        assert np.array_equal(outs[0][kept], outs[1][kept])
        changed += int((np.abs(outs[0] - outs[1]).max(-1) > 2).sum())
    occ.close()
    assert changed > 1000


def test_source_occluder_does_not_reach_the_output(faces, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    """Green occluders pasted over the source's face (hand, hair strands, bar, glasses, patch): count the
    green pixels in the swapped face (no colour correction, so the occluder's colour shows as it is)."""
    region = face_region(astronaut.shape, faces[0])

    def green(out: np.ndarray) -> int:
        x = out.astype(int)
        return int(((x[..., 1] > x[..., 0] + 50) & (x[..., 1] > x[..., 2] + 50) & region).sum())

    assert green(_swap(hopper, astronaut, False, "none")) == 0
    count = {False: 0, True: 0}
    for kind in ("hand", "strands", "bar", "glasses", "patch"):
        covered = hopper.copy()
        covered[make_occluder(kind, 3, faces[1].landmarks_68, hopper.shape).mask] = (40, 190, 60)
        for on in (False, True):
            count[on] += green(_swap(covered, astronaut, on, "none"))
    assert count[False] > 2000 and count[True] < 0.15 * count[False], count


def test_a_source_lock_down_the_cheek_is_not_copied(faces, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    """A lock of the source's own hair painted down one side of its face: with occlusion handling off it is
    warped onto the target's cheek; on (the segmenter and the hair finder's side locks) the swapped face
    there stays close to the swap of the clean source (no colour correction, so the lock's colour shows as
    it is; measured: 4.6 grey levels on, 46 off, 6.7 on before the finder looked at the sides)."""
    locked, lock = side_lock(astronaut, faces[0])
    assert lock.sum() > 300
    clean = _swap(astronaut, hopper, True, "none").astype(int)
    off = _swap(locked, hopper, False, "none").astype(int)
    region = np.abs(off - clean).max(-1) > 30  # where the lock lands on the target
    assert region.sum() > 200
    on = _swap(locked, hopper, True, "none").astype(int)
    err_off = float(np.abs(off - clean)[region].mean())
    err_on = float(np.abs(on - clean)[region].mean())
    assert err_on < 0.5 * err_off, (err_on, err_off)


def _fringes(rgb: np.ndarray, face) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The forehead's mask (the face oval above the eyebrows' lowest point and 0.02 of the face's height
    below it), a long fringe painted over the forehead down towards the eyes (photo, its mask) and a short
    one at the forehead's top (photo, its mask)."""
    mesh = face.mesh
    oval = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    line = mesh[list(BROW_IMAGE_LEFT) + list(BROW_IMAGE_RIGHT), 1].max() + 0.02 * np.ptp(mesh[:468, 1])
    rows = np.arange(rgb.shape[0])[:, None]
    forehead = (oval > 0) & (rows < line)
    painted, fringe = painted_fringe(rgb, face, long=True)
    top = mesh[idx(FACE_OVAL), 1].min()
    short = fringe & (rows < top + 0.3 * (line - top))
    bangs = rgb.copy()
    bangs[short] = painted[short]
    return forehead, painted, fringe, bangs, short


def test_a_forehead_mostly_hidden_is_left_out_whole(faces, astronaut: np.ndarray) -> None:
    """With ``--occlusion-forehead on``, a fringe over most of the source's forehead and its eyebrows: the
    whole forehead, brows included, is left out (the target's own shows there, not a patchwork of the
    source's forehead between the holes); a short fringe, at the top of the forehead, leaves out only
    itself, and so does any fringe by default."""
    face = faces[0]
    forehead, painted, fringe, bangs, short = _fringes(astronaut, face)
    half = forehead & (np.arange(astronaut.shape[1])[None, :] < np.median(np.nonzero(forehead)[1]))
    assert np.array_equal(whole_forehead(half, face), forehead)  # half of it hidden: all of it
    quarter = half & (np.arange(astronaut.shape[0])[:, None] < np.median(np.nonzero(half)[0]))
    assert np.array_equal(whole_forehead(quarter, face), quarter)  # a quarter: as it was
    for on in (True, False):  # --occlusion-forehead on, and the default (off): the holes alone
        occ = Occlusion.for_options(SwapOptions(occlusion_forehead=on))
        for photo, drawn, whole in ((painted, fringe, on), (bangs, short, False)):
            holes = occ.source_holes(photo, face)
            assert holes is not None
            left_out = holes > 0.5
            assert (left_out & drawn).sum() > 0.9 * drawn.sum()
            covered = (left_out & forehead).sum() / forehead.sum()
            assert (covered > 0.97) == whole, (on, whole, covered)
        occ.close()


def test_a_source_forehead_mostly_hidden_gets_advice(faces, astronaut: np.ndarray, caplog) -> None:
    """A fringe over most of the source's forehead and brows: one warning names the patchwork and the option
    that leaves the forehead to the target; none with the option on, and none for a short fringe."""
    face = faces[0]
    mesh = face.mesh
    _, painted, fringe, short, _ = _fringes(astronaut, face)
    oval = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    eyes = mesh[list(EYE_IMAGE_LEFT) + list(EYE_IMAGE_RIGHT), 1].min()
    over = (oval > 0) & (np.arange(astronaut.shape[0])[:, None] < eyes - 0.02 * np.ptp(mesh[:468, 1]))
    long = astronaut.copy()
    long[over] = painted[fringe][0]  # down over the brows to the eyes
    said = {}
    for on in (False, True):
        occ = Occlusion.for_options(SwapOptions(occlusion_forehead=on))
        for name, photo in (("long", long), ("short", short)):
            caplog.clear()
            with caplog.at_level("WARNING", logger="masquerade.occlusion.handling"):
                occ.clean_source(photo, face)
            said[on, name] = [r.getMessage() for r in caplog.records if "forehead" in r.getMessage()]
        occ.close()
    (message,) = said[False, "long"]
    assert "--occlusion-forehead on" in message and "patches" in message
    assert not said[True, "long"] and not said[False, "short"] and not said[True, "short"]


def test_the_command_line_leaves_a_hidden_forehead_to_the_target(faces) -> None:
    from masquerade.cli.common import swap_request
    from masquerade.cli.main import build_parser
    from masquerade.job import prepare_job

    argv = ["swap", "-s", "sample:astronaut", "-t", "sample:grace_hopper", "-o", "out.jpg"]
    with FaceAnalyzer(identity=False) as analyzer:
        for extra, on in (([], False), (["--occlusion-forehead", "on"], True)):
            request = swap_request(build_parser().parse_args(argv + extra))
            job, _ = prepare_job(request, analyzer, load=False)
            assert request.occlusion_forehead is on and job.options.occlusion_forehead is on
            occ = Occlusion.for_options(job.options)
            assert occ.forehead is on
            occ.close()


def test_hidden_source_cheek_is_filled_from_the_other_cheek(
    faces, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    """A green disk over one of the source's cheeks: mesh3d's mirror fill (the default) brings the swapped
    face there closer to the swap of the clean source than filling with the target's own face does."""
    lm = faces[1].landmarks_68
    r = int(np.linalg.norm(lm[45] - lm[36]) * 0.28)
    clean = _swap(hopper, astronaut, True).astype(int)
    for point in (1, 15):  # the source's right and left cheek
        covered = hopper.copy()
        cv2.circle(covered, tuple(int(v) for v in lm[point] * 0.55 + lm[30] * 0.45), r, (40, 190, 60), -1)
        region = np.abs(_swap(covered, astronaut, False).astype(int) - clean).max(-1) > 30  # where it lands
        assert region.sum() > 300
        err = {}
        for fill in ("mirror", "target"):
            with FaceSwapper(SwapOptions(occlusion=True, swapper_options=Mesh3DOptions(fill=fill))) as fs:
                out = fs.swap(covered, astronaut)[0].astype(int)
            err[fill] = float(np.abs(out - clean)[region].mean())
        assert err["mirror"] < 0.85 * err["target"], (point, err)


def test_bad_or_missing_weights_are_one_line_errors(tmp_path: Path) -> None:
    shipped = read_segmenter_info().folder
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("model.json", "segmenter.onnx"):
        (bad / f).write_bytes((shipped / f).read_bytes())
    with (bad / "segmenter.onnx").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xfe")
    with pytest.raises(ModelError, match="sha256") as exc:
        OcclusionSegmenter(bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(ModelError, match="no such model folder"):
        OcclusionSegmenter(tmp_path / "nowhere")


def test_swap_with_a_segmenter_folder(faces, astronaut: np.ndarray, tmp_path: Path, capsys) -> None:
    """--occlusion-model DIR: the segmenter in DIR (here a copy of the package's) is used, with occlusion
    on (a hand in front of the target stays); a damaged or missing folder is a one-line error and no
    output."""
    target = tmp_path / "hand.png"
    Image.fromarray(make_occluder("hand", 11, faces[0].landmarks_68, astronaut.shape).over(astronaut)).save(
        target
    )
    shipped = read_segmenter_info().folder
    copy = tmp_path / "seg"
    copy.mkdir()
    for f in ("model.json", "segmenter.onnx"):
        (copy / f).write_bytes((shipped / f).read_bytes())
    base = ["swap", "-s", "sample:grace_hopper", "-t", str(target), "--no-provenance"]
    out = {}
    for name, extra in (
        ("off", ["--occlusion", "off"]),
        ("on", []),  # the default
        ("dir", ["--occlusion-model", str(copy)]),
    ):
        assert main([*base, "-o", str(tmp_path / f"{name}.png"), *extra]) == 0
        out[name] = np.asarray(Image.open(tmp_path / f"{name}.png"))
    assert np.array_equal(out["dir"], out["on"]) and not np.array_equal(out["dir"], out["off"])
    capsys.readouterr()
    with (copy / "segmenter.onnx").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xfe")
    for folder, needle in ((copy, "sha256"), (tmp_path / "nowhere", "no such model folder")):
        assert main([*base, "-o", str(tmp_path / "bad.png"), "--occlusion-model", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err, err
        assert not (tmp_path / "bad.png").exists()


def test_analyze_reports_visible_share(capsys) -> None:
    assert main(["analyze", "sample:astronaut", "--no-identity"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert 0.85 < doc["faces"][0]["visible"] <= 1.0  # her hair over a corner of the forehead
    assert doc["faces"][0]["facing"] > 0.95 >= doc["faces"][0]["visible"]  # facing the camera


def test_a_tiny_source_face_is_warned_about(astronaut: np.ndarray, caplog) -> None:
    """A source face too small to give the swap its detail (the astronaut at a third of her size: 14 px
    between the eyes) gets one warning that says how small; at full size none."""
    occ = Occlusion()
    small = cv2.resize(astronaut, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA)
    with FaceAnalyzer(identity=False) as fa:
        big_face, small_face = fa.get(astronaut)[0], fa.get(small)[0]
    with caplog.at_level("WARNING", logger="masquerade.occlusion.handling"):
        occ.clean_source(astronaut, big_face)
        assert not caplog.records
        occ.clean_source(small, small_face)
        occ.clean_source(small, small_face)  # cached: said once
    (rec,) = caplog.records
    assert "px between the eyes, too small" in rec.getMessage() and "larger photo" in rec.getMessage()
    iod = float(np.linalg.norm(small_face.landmarks_5[1] - small_face.landmarks_5[0]))
    assert f"is {iod:.0f} px" in rec.getMessage() and iod < TINY_IOD
    occ.close()


TURNED_PHOTO = "7449/028110.jpg"  # CelebA: a three-quarter view, 46° of yaw


@pytest.mark.slow
def test_a_turned_source_is_warned_about(celeba: Path, astronaut: np.ndarray, caplog) -> None:
    """A source photo in three-quarter view: about 40 % of the face turned away, one warning that says
    so (not the covered-face one), and ``analyze`` reports it as facing and visible alike."""
    from masquerade import load_image

    path = celeba / "images" / TURNED_PHOTO
    rgb = load_image(path).rgb
    occ = Occlusion()
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(rgb)[0]
    prob, _ = occ.crop_mask(rgb, face)
    seen, visible = occ.shares(rgb, face, prob)
    assert seen < 1.0 - WARN_HIDDEN and abs(visible - seen) < 0.03
    assert occ.segmenter.visible_share(rgb, face, prob) > 0.95  # nothing in front of it
    with caplog.at_level("WARNING", logger="masquerade.occlusion.handling"):
        occ.clean_source(rgb, face)
    (rec,) = caplog.records
    assert "out of view (turned away from the camera)" in rec.getMessage(), rec.getMessage()
    occ.close()


def test_onnx_sessions_do_not_spin_between_inferences() -> None:
    """The segmenter runs on one thread, and sessions made by ``onnx_session`` and the identity network
    sleep between inferences: onnxruntime's default spin-waiting took the CPU a video's decoding and
    encoding need (BENCHMARKS.md: the refiner's video 14.7 → 17.5 fps without it)."""
    from masquerade.identity.onnx_net import OnnxFaceEncoder
    from masquerade.swappers.aligned import onnx_session

    seg = OcclusionSegmenter()
    opts = seg.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    encoder = OnnxFaceEncoder()
    sessions = (seg.session, onnx_session(seg.path), encoder._session)
    for o in (s.get_session_options() for s in sessions):
        assert o.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert o.get_session_config_entry("session.inter_op.allow_spinning") == "0"


SUNGLASSES_PHOTO = "7444/036697.jpg"  # dark sunglasses (celeba_occlusion_v1): 30 % of the face oval hidden


@pytest.mark.slow
@pytest.mark.parametrize("glasses", [False, True], ids=["segmenter", "default"])
def test_a_source_in_sunglasses_is_warned_about(
    glasses: bool, celeba: Path, hopper: np.ndarray, caplog
) -> None:
    """One warning that names sunglasses; Grace Hopper's clear glasses only the advice about glasses (with
    the glasses finders), not one about a hidden face. With the segmenter alone
    the sunglasses hide the eyes (the eyes' warning, or the share's where it finds their rims too); the
    sunglasses finder finds their rims, a third of the face (the share's warning)."""
    from masquerade import load_image

    rgb = load_image(celeba / "images" / SUNGLASSES_PHOTO).rgb
    occ = Occlusion(glasses=glasses)
    with FaceAnalyzer(identity=False) as fa:
        face, plain = fa.get(rgb)[0], fa.get(hopper)[0]
    hidden = 1.0 - occ.visible_share(rgb, face)
    assert hidden > (0.35 if glasses else 0.15), hidden
    with caplog.at_level("WARNING", logger="masquerade.occlusion.handling"):
        occ.clean_source(hopper, plain)  # her clear glasses: the glasses finders' advice only
        said = [r.getMessage() for r in caplog.records]
        assert said == (["the source wears glasses: their frames go onto the swapped face with it; a photo "
                         "without glasses swaps cleaner"] if glasses else [])  # fmt: skip
        caplog.clear()
        occ.clean_source(rgb, face)
        occ.clean_source(rgb, face)  # the same photo again: cached, no second warning
    (rec,) = caplog.records
    assert "sunglasses" in rec.getMessage()
    shares = "of the source face is hidden" in rec.getMessage()
    assert shares == (hidden > WARN_HIDDEN) and (shares or "eyes are hidden" in rec.getMessage())
    occ.close()


@pytest.mark.slow
def test_a_source_in_sunglasses_leaves_no_frames_on_the_swap(
    celeba: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    """The segmenter marks most of a pair of dark sunglasses but not all of their frames' edges; with the
    eyes hidden by something dark the source's holes grow more (GROW_EYES), so no dark outline of the
    frames reaches the swap: target pixels made more than 60 grey levels darker, in the swapped face (the
    code before: 39 on the astronaut, 174 on Grace Hopper; with it 3 and 33)."""
    from masquerade import load_image

    src = load_image(celeba / "images" / SUNGLASSES_PHOTO).rgb
    for target, most in ((astronaut, 15), (hopper, 80)):
        with FaceSwapper(SwapOptions()) as fs:
            out, rep = fs.swap(src, target)
        region = face_region(target.shape, rep.targets[0])
        gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(int) for x in (target, out)]
        darker = int(((gray[0] - gray[1] > 60) & region).sum())
        assert darker < most, (darker, most)


@pytest.mark.slow
def test_evaluation_does_not_warn_about_hidden_sources(celeba: Path, caplog) -> None:
    """Benchmarks hold occluded sources on purpose: ``evaluate`` leaves out the advice to take another
    photo, and a swap after it gives it again."""
    from masquerade import load_image, sample_path
    from masquerade.evaluation import evaluate
    from masquerade.evaluation.benchmarks import PairSpec

    src = celeba / "images" / SUNGLASSES_PHOTO
    pair = PairSpec(index=0, kind="swap", source=src, target=sample_path("astronaut"))
    with caplog.at_level("WARNING", logger="masquerade.occlusion.handling"):
        (rep,) = evaluate(["mesh3d"], [pair])
        assert rep.pairs[0].failure is None and not caplog.records
        with FaceSwapper(SwapOptions()) as fs:
            fs.swap(load_image(src).rgb, load_image(sample_path("astronaut")).rgb)
    assert any("sunglasses" in r.getMessage() for r in caplog.records)  # the share of the face hidden

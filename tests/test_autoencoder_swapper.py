"""The ``autoencoder`` swapper: a trained model folder (model.json + ONNX) through the common image and
video path. The model here is built in the test: it colour-inverts the aligned face and predicts a fixed
ellipse as the face mask."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_video import make_clip

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path
from masquerade.analysis.alignment import align_face, paste_back, warp_back
from masquerade.cli.main import main
from masquerade.errors import ModelError
from masquerade.swappers import AutoencoderSwapper, create_swapper
from masquerade.video.probe import iter_frames

R = 64  # model resolution


def ellipse(r: int = R, scale: float = 1.0) -> np.ndarray:
    """The test model's mask: an ellipse over the face of an ffhq-aligned crop (float32 0/1)."""
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32) + 0.5
    ax, ay = 0.25 * r * scale, 0.3 * r * scale
    return ((((xx - 0.5 * r) / ax) ** 2 + ((yy - 0.6 * r) / ay) ** 2) <= 1.0).astype(np.float32)


def build_onnx(path: Path) -> None:
    """face_in N×3×R×R → face = 1 - face_in (colour-inverted), mask = the fixed ellipse (N×1×R×R).
    (Input and output cannot share the name "face" in ONNX; torch's exporter renames the input.)"""
    x = helper.make_tensor_value_info("face_in", TensorProto.FLOAT, ["N", 3, R, R])
    face = helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, R, R])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, R, R])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    ell = helper.make_tensor("ell", TensorProto.FLOAT, [1, 1, R, R], ellipse().ravel().tolist())
    nodes = [
        helper.make_node("Sub", ["one", "face_in"], ["face"]),
        helper.make_node("Mul", ["face_in", "zero"], ["z3"]),
        helper.make_node("ReduceMean", ["z3"], ["z1"], axes=[1], keepdims=1),  # N×1×R×R zeros
        helper.make_node("Add", ["z1", "ell"], ["mask"]),
    ]
    graph = helper.make_graph(nodes, "invert", [x], [face, mask], initializer=[one, zero, ell])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_model(folder: Path, **overrides: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    build_onnx(folder / "autoencoder.onnx")
    meta = {
        "format": "masquerade-autoencoder", "version": 1, "variant": "df", "resolution": R,
        "template": "ffhq", "onnx": "autoencoder.onnx",
        "sha256": hashlib.sha256((folder / "autoencoder.onnx").read_bytes()).hexdigest(), "steps": 10,
    }  # fmt: skip
    meta.update(overrides)
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("ae") / "invert-model")


@pytest.fixture(scope="module")
def fa() -> FaceAnalyzer:
    a = FaceAnalyzer(identity=False)
    yield a
    a.close()


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_image_swap_pastes_the_model_face(
    model_dir: Path, fa: FaceAnalyzer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    code, err = run(
        capsys, "swap", "-t", "sample:astronaut", "--swapper", "autoencoder", "--model", model_dir,
        "-o", out, "--colour", "none", "--no-provenance",
    )  # fmt: skip
    assert code == 0, err
    src = load_image(sample_path("astronaut")).rgb
    res = load_image(out).rgb
    assert res.shape == src.shape
    face = fa.get(src)[0]
    crop_in, m = align_face(src, face.landmarks_5, R, "ffhq")
    # outside the model's crop (dilated by a few pixels for interpolation) nothing changed at all
    _, cover, x0, y0 = warp_back(np.zeros((R, R, 3), np.uint8), m, src.shape)
    near = np.zeros(src.shape[:2], np.uint8)
    near[y0 : y0 + cover.shape[0], x0 : x0 + cover.shape[1]] = cover > 0
    near = cv2.dilate(near, np.ones((7, 7), np.uint8)) > 0
    assert np.array_equal(res[~near], src[~near])
    # the library gives the same image, and the mask of where the swap fully replaced the target (the
    # face oval less its feathered edge and the target's open mouth, which the common path keeps)
    opts = SwapOptions(swapper="autoencoder", model=str(model_dir), colour="none")
    fs = FaceSwapper(opts, analyzer=fa)  # (not closed: the analyzer is the module's)
    lib, report = fs.swap(None, src)
    pred, mask = fs.swapper.predict(crop_in)
    assert report.source is None and np.array_equal(lib, res)
    np.testing.assert_array_equal(mask[0], ellipse())
    # inside: the model's face (the inverted crop) at the right place, compared in the aligned frame
    crop_out, _ = align_face(res, face.landmarks_5, R, "ffhq")
    full, _ = align_face(report.mask, face.landmarks_5, R, "ffhq")
    core = full > 0.99
    assert core.sum() > 0.04 * R * R
    diff = np.abs(crop_out.astype(np.float32) - pred[0]).max(-1)[core]
    assert np.median(diff) < 4 and (diff > 16).mean() < 0.05, (np.median(diff), (diff > 16).mean())
    changed = np.abs(crop_out.astype(np.float32) - crop_in).max(-1)[core]
    assert np.median(changed) > 40  # visibly swapped (inverted), not the input
    assert "swapped 1 face" in err


def test_swapper_patch_and_paste_back_agree(model_dir: Path, fa: FaceAnalyzer) -> None:
    """The patch is the same inverse warp as alignment.paste_back (one copy of it), over the target's
    region, with the target's mesh and a coverage that follows the model's mask."""
    src = load_image(sample_path("astronaut")).rgb
    face = fa.get(src)[0]
    sw = create_swapper("autoencoder", model=model_dir)
    assert sw.info.needs_source is False
    p = sw.swap(None, None, src, face)
    assert p.mesh is face.mesh and p.coverage.dtype == np.float32
    crop, m = sw.align(src, face)
    pred, mask = sw.predict(crop)
    pasted = paste_back(src, np.clip(np.rint(pred[0]), 0, 255).astype(np.uint8), m, mask[0])
    ys, xs = p.roi
    sel = p.coverage > 0.999
    assert sel.sum() > 1000
    assert np.abs(pasted[ys, xs][sel].astype(int) - p.image[sel].astype(int)).max() <= 1
    assert warp_back(crop, np.array([[1.0, 0, -5000], [0, 1.0, 0]]), src.shape) is None


def test_video_keeps_frame_count(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    frames = make_clip(clip, frames=6, size=(320, 240), audio=False)
    code, err = run(
        capsys, "swap", "-t", clip, "--swapper", "autoencoder", "--model", model_dir, "-o", out,
        "--no-provenance", "--colour", "none",
    )  # fmt: skip
    assert code == 0, err
    got = [rgb for rgb, _ in iter_frames(out)]
    assert len(got) == len(frames)
    assert "swapped faces in 6 of 6 frames" in err
    # the face area (the head is pasted at x = 60 + 2i, y 50..170) is visibly changed in every frame
    for i, (a, b) in enumerate(zip(got, frames, strict=True)):
        x = 60 + 2 * i
        d = np.abs(a[80:150, x + 20 : x + 85].astype(int) - b[80:150, x + 20 : x + 85]).mean()
        assert d > 25, (i, d)


def test_evaluate_names_the_model(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    astro = sample_path("astronaut")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"self\t{astro}\t{astro}\n")
    out = tmp_path / "report"
    code, err = run(capsys, "evaluate", "--pairs", pairs, "--swapper", "autoencoder", "--model", model_dir,
                    "--out", out)  # fmt: skip
    assert code == 0, err
    sha = json.loads((model_dir / "model.json").read_text())["sha256"]
    doc = json.loads((out / "results.json").read_text())
    described = doc["swappers"][0]["swapper"]
    assert described["model"]["name"] == "invert-model" and described["model"]["sha256"] == sha
    assert "--model" in doc["environment"]["command"]
    md = (out / "report.md").read_text()
    assert "invert-model" in md and sha[:12] in md


def _bad_model(tmp_path: Path, model_dir: Path, kind: str) -> Path:
    bad = tmp_path / kind
    if kind == "missing":
        return bad
    shutil.copytree(model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    if kind == "sha256":
        meta["sha256"] = "0" * 64
    elif kind == "version":
        meta["version"] = 2
    elif kind == "format":
        meta["format"] = "something-else"
    elif kind == "no-onnx":
        (bad / "autoencoder.onnx").unlink()
    (bad / "model.json").write_text(json.dumps(meta))
    return bad


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such model folder"),
        ("sha256", "does not match"),
        ("version", "version 2"),
        ("format", "format"),
        ("no-onnx", "missing"),
    ],
)
def test_bad_model_folder(
    kind: str, needle: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad_model(tmp_path, model_dir, kind)
    out = tmp_path / "out.png"
    argv = ["swap", "-t", "sample:astronaut", "--swapper", "autoencoder", "--model", bad, "-o", out]
    code, err = run(capsys, *argv)
    _one_line_error(code, err, needle)
    assert not out.exists()
    with pytest.raises(ModelError):
        AutoencoderSwapper(bad)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--swapper", "autoencoder"], "--model"),  # no model
        ([], "--source"),  # mesh3d without -s
        (["--swapper", "mesh3d", "--model", "MODEL"], "--model"),
        (["--swapper", "autoencoder", "--model", "MODEL", "-s", "sample:grace_hopper"], "--source"),
        (["--swapper", "autoencoder", "--model", "MODEL", "--faces", "many"], "many"),
    ],
)
def test_swapper_argument_errors(
    args: list[str], needle: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    argv = [str(model_dir) if a == "MODEL" else a for a in args]
    code, err = run(capsys, "swap", "-t", "sample:astronaut", "-o", out, *argv)
    _one_line_error(code, err, needle)
    assert not out.exists()
    if "-s" not in args:  # live checks the same combinations first
        code, err = run(capsys, "live", "-i", "0", *argv)
        _one_line_error(code, err, needle)


def _one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert needle.lower() in lines[0].lower(), lines[0]

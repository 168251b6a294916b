"""The ``onnx`` swapper: a user's ONNX one-shot swapper described by a model card (TOML), through the
common image and video path. Every model here is built by the test with ``onnx.helper``: the "swap"
adds a per-channel offset computed from the identity vector through a fixed matrix, so a different
source gives a visibly different output and the exact result can be computed with numpy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from occlusion_fixtures import pasted_kept
from onnx import TensorProto, helper, numpy_helper
from test_video import make_clip

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path
from masquerade.analysis.alignment import align_face
from masquerade.cli.main import main
from masquerade.errors import ModelError
from masquerade.swappers import ExternalOnnxSwapper, create_swapper, swapper_takes_model
from masquerade.swappers.model_card import read_model_card
from masquerade.video.probe import iter_frames

RNG = np.random.default_rng(7)
W128 = (RNG.standard_normal((128, 3)) * 0.6).astype(np.float32)  # identity → per-channel offset
W512 = (RNG.standard_normal((512, 3)) * 0.4).astype(np.float32)
EMAP = (RNG.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32)
CONV = (RNG.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
FC = RNG.standard_normal((8, 512)).astype(np.float32)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(path: Path, nodes: list, inputs: list, outputs: list, inits: dict[str, np.ndarray]) -> Path:
    tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def vi(name: str, shape: list) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def offset_model(path: Path, size: int, dim: int, w: np.ndarray, mask: bool = False) -> Path:
    """target N×3×S×S, source N×dim → output = target + reshape(source @ w, N×3×1×1) (+ a fixed
    ellipse mask N×1×S×S); an unused ``emap`` initializer last, as inswapper keeps its own."""
    nodes = [
        helper.make_node("MatMul", ["source", "w"], ["off"]),
        helper.make_node("Reshape", ["off", "shape"], ["off4"]),
        helper.make_node("Add", ["target", "off4"], ["output"]),
    ]
    outs = [vi("output", ["N", 3, size, size])]
    inits = {"w": w, "shape": np.array([-1, 3, 1, 1], np.int64)}
    if mask:
        nodes += [
            helper.make_node("ReduceMean", ["target"], ["m1"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["m1", "zero"], ["m0"]),
            helper.make_node("Add", ["m0", "ell"], ["mask"]),
        ]
        outs.append(vi("mask", ["N", 1, size, size]))
        inits |= {"zero": np.zeros((), np.float32), "ell": ellipse(size)[None, None]}
    inits["emap"] = EMAP
    return save(path, nodes, [vi("target", ["N", 3, size, size]), vi("source", ["N", dim])], outs, inits)


def ellipse(s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    return ((((xx - 0.5 * s) / (0.4 * s)) ** 2 + ((yy - 0.55 * s) / (0.45 * s)) ** 2) <= 1).astype(np.float32)


def nhwc_bgr_model(path: Path, mean: np.ndarray, std: np.ndarray) -> Path:
    """img N×S×S×3 (BGR, normalised with mean/std) → out N×2S×2S×3 BGR in 0..1 = x·std + mean + the
    identity offset, at twice the size (nearest)."""
    nodes = [
        helper.make_node("Mul", ["img", "std"], ["a"]),
        helper.make_node("Add", ["a", "mean"], ["b"]),
        helper.make_node("MatMul", ["id", "w"], ["off"]),
        helper.make_node("Reshape", ["off", "shape"], ["off4"]),
        helper.make_node("Add", ["b", "off4"], ["c"]),
        helper.make_node("Resize", ["c", "", "scales"], ["out"], mode="nearest"),
    ]
    inits = {
        "std": std.astype(np.float32), "mean": mean.astype(np.float32), "w": W128,
        "shape": np.array([-1, 1, 1, 3], np.int64), "scales": np.array([1, 2, 2, 1], np.float32),
    }  # fmt: skip
    return save(
        path, nodes, [vi("img", [1, 96, 96, 3]), vi("id", [1, 128])], [vi("out", [1, 192, 192, 3])], inits
    )


def embedding_model(path: Path) -> Path:
    """A tiny ArcFace stand-in: N×3×112×112 → conv, relu, global pool, linear → N×512."""
    nodes = [
        helper.make_node("Conv", ["face", "k"], ["c"], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["embedding"]),
    ]
    return save(
        path, nodes, [vi("face", ["N", 3, 112, 112])], [vi("embedding", ["N", 512])], {"k": CONV, "fc": FC}
    )


def write_card(path: Path, tables: dict[str, dict[str, object]]) -> Path:
    def value(v: object) -> str:
        return json.dumps(v)  # JSON strings, numbers and lists are TOML too

    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def card_a(folder: Path, **changes: dict[str, object]) -> Path:
    """The main test model: NCHW RGB 128 crop, mean/std 0.5, masquerade's dlib 128-d identity."""
    onnx_path = folder / "a.onnx"
    if not onnx_path.exists():
        offset_model(onnx_path, 128, 128, W128)
    tables: dict[str, dict[str, object]] = {
        "model": {"name": "offset-a", "onnx": "a.onnx", "sha256": sha(onnx_path), "licence": "test"},
        "input": {"crop_size": 128, "template": "arcface_v2", "mean": 0.5, "std": [0.5, 0.5, 0.5]},
        "identity": {"kind": "dlib128", "dim": 128},
        "output": {"mean": 0.5, "std": 0.5},
    }
    for t, kv in changes.items():
        tables.setdefault(t, {}).update(kv)
        tables[t] = {k: v for k, v in tables[t].items() if v is not None}
    return write_card(folder / "a.toml", tables)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("external")
    card_a(d)
    offset_model(d / "c.onnx", 128, 512, W512, mask=True)
    embedding_model(d / "arc.onnx")
    np.save(d / "emap.npy", EMAP)
    ident = {
        "kind": "onnx", "onnx": "arc.onnx", "sha256": sha(d / "arc.onnx"), "crop_size": 112,
        "template": "arcface", "mean": 0.5, "std": 0.5, "dim": 512, "normalise": "l2",
    }  # fmt: skip
    common = {
        "model": {"name": "offset-c", "onnx": "c.onnx", "sha256": sha(d / "c.onnx")},
        "input": {"crop_size": 128, "template": "arcface_v2", "target": "target", "identity": "source"},
        "output": {"name": "output", "mask": "mask", "edge_feather": 0.05},
    }
    write_card(
        d / "c.toml",
        {**common, "identity": {**ident, "emap": "emap.npy", "emap_sha256": sha(d / "emap.npy")}},
    )
    write_card(d / "c_init.toml", {**common, "identity": {**ident, "emap_initializer": "last"}})
    mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])  # in the model's (BGR) order
    nhwc_bgr_model(d / "b.onnx", mean, std)
    write_card(d / "b.toml", {
        "model": {"onnx": str(d / "b.onnx"), "sha256": sha(d / "b.onnx")},  # an absolute path
        "input": {"crop_size": 96, "template": "ffhq", "colour": "bgr", "layout": "nhwc",
                  "mean": mean.tolist(), "std": std.tolist()},
        "output": {"colour": "bgr", "layout": "nhwc", "edge_feather": 0},
    })  # fmt: skip
    return d


@pytest.fixture(scope="module")
def fa() -> FaceAnalyzer:
    a = FaceAnalyzer(identity=False)
    yield a
    a.close()


@pytest.fixture(scope="module")
def faces(fa: FaceAnalyzer) -> dict[str, tuple[np.ndarray, object]]:
    out = {}
    for name in ("astronaut", "grace_hopper"):
        rgb = load_image(sample_path(name)).rgb
        out[name] = (rgb, fa.get(rgb)[0])
    return out


@pytest.fixture(scope="module")
def swapper_a(models: Path) -> ExternalOnnxSwapper:
    return create_swapper("onnx", model=models / "a.toml")  # type: ignore[return-value]


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert needle.lower() in lines[0].lower(), lines[0]


@pytest.mark.slow
def test_cli_image_swap_equals_library(
    models: Path, fa: FaceAnalyzer, swapper_a: ExternalOnnxSwapper, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out.png"
    code, err = run(
        capsys, "swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "--swapper", "onnx",
        "--model", models / "a.toml", "-o", out, "--colour", "none", "--no-provenance",
    )  # fmt: skip
    assert code == 0, err
    assert "swapped 1 face" in err
    res = load_image(out).rgb
    src, tgt = load_image(sample_path("grace_hopper")).rgb, load_image(sample_path("astronaut")).rgb
    fs = FaceSwapper(SwapOptions(swapper="onnx", model=str(models / "a.toml"), colour="none"), analyzer=fa)
    lib, report = fs.swap(src, tgt)
    assert np.array_equal(lib, res)
    assert report.source is not None
    # inside the face, the aligned output is the model's: crop + 127.5 · (identity @ W) per channel
    sw = fs.swapper
    face = report.targets[0]
    crop, _ = sw.align(tgt, face)
    lat = sw.latent(src, report.source)
    pred, mask = sw.predict(crop, lat)
    assert mask is None
    want = np.clip(crop + 127.5 * (lat @ W128)[0], 0, 255)
    np.testing.assert_allclose(pred, want, atol=1e-3)
    got, _ = align_face(res, face.landmarks_5, 128, "arcface_v2")
    full, _ = align_face(report.mask, face.landmarks_5, 128, "arcface_v2")
    core = full > 0.99
    assert core.sum() > 0.05 * 128 * 128
    diff = np.abs(got.astype(np.float32) - pred).max(-1)[core]
    assert np.median(diff) < 4, np.median(diff)
    # the identity is masquerade's dlib embedding of the source, unit length
    emb = sw.embedding(src, report.source)
    np.testing.assert_allclose(lat[0], emb / np.linalg.norm(emb), rtol=1e-5, atol=1e-6)
    assert swapper_a.card.describe()["sha256"] == sha(models / "a.onnx")


def test_different_sources_give_different_outputs(swapper_a: ExternalOnnxSwapper, faces: dict) -> None:
    (a_rgb, a_face), (h_rgb, h_face) = faces["astronaut"], faces["grace_hopper"]
    p1 = swapper_a.swap(h_rgb, h_face, a_rgb, a_face)
    p2 = swapper_a.swap(a_rgb, a_face, a_rgb, a_face)
    sel = (p1.coverage > 0.99) & (p2.coverage > 0.99)
    d = np.abs(p1.image.astype(int) - p2.image.astype(int))[sel].mean()
    assert d > 10, d
    assert p1.mesh is a_face.mesh and (p1.x0, p1.y0) == (p2.x0, p2.y0)
    # the identity is computed once per source face
    lat = swapper_a.latent(h_rgb, h_face)
    assert swapper_a.latent(h_rgb, h_face) is lat


def test_occlusion_keeps_what_is_in_front_of_the_target(models: Path, fa: FaceAnalyzer, faces: dict) -> None:
    """Occlusion handling is the common composite's, so it works for a user's ONNX swapper too: hands
    and bars pasted over the target's face come out as they were with it on (the default), while with it
    off the swapped face (here the target's crop with the source's colour offset) is pasted over them;
    the same measure as mesh3d's test in ``tests/occlusion/test_handling.py``."""
    rgb, face = faces["astronaut"]
    src = faces["grace_hopper"][0]
    kept = {}
    for on in (False, True):
        opts = SwapOptions(swapper="onnx", model=str(models / "a.toml"), colour="none", occlusion=on)
        with FaceSwapper(opts, analyzer=fa) as fs:
            kept[on] = pasted_kept(lambda t, fs=fs: fs.swap(src, t)[0], rgb, face)
    assert np.mean(kept[False]) < 0.5 and np.mean(kept[True]) > 0.8 and min(kept[True]) > 0.6, kept


def test_bgr_nhwc_normalisation_and_output_size(models: Path, faces: dict) -> None:
    sw = create_swapper("onnx", model=models / "b.toml")
    (a_rgb, a_face), (h_rgb, h_face) = faces["astronaut"], faces["grace_hopper"]
    crop, _ = sw.align(a_rgb, a_face)
    assert crop.shape == (96, 96, 3)
    np.testing.assert_array_equal(crop, align_face(a_rgb, a_face.landmarks_5, 96, "ffhq")[0])
    lat = sw.latent(h_rgb, h_face)
    pred, _ = sw.predict(crop, lat)
    off_bgr = (lat @ W128)[0]
    want = np.clip(crop.astype(np.float32) + 255 * off_bgr[::-1], 0, 255)  # the model adds in BGR
    want = want.repeat(2, 0).repeat(2, 1)  # its output is twice the size
    np.testing.assert_allclose(pred, want, atol=1e-2)
    # the larger output covers the same region of the target: it lands where the input crop came from
    p = sw.swap(h_rgb, h_face, a_rgb, a_face)
    pasted = a_rgb.copy()
    region = pasted[p.roi]
    sel = p.coverage > 0.5
    region[sel] = p.image[sel]
    back, _ = align_face(pasted, a_face.landmarks_5, 96, "ffhq")
    inner = np.s_[8:-8, 8:-8]
    assert np.median(np.abs(back[inner].astype(np.float32) - pred[::2, ::2][inner])) < 3


def test_onnx_identity_with_emap(models: Path, faces: dict) -> None:
    (a_rgb, a_face), (h_rgb, h_face) = faces["astronaut"], faces["grace_hopper"]
    sw = create_swapper("onnx", model=models / "c.toml")
    sw2 = create_swapper("onnx", model=models / "c_init.toml")  # the emap read from the swapper ONNX
    # reference: the embedding model on the ArcFace 112 crop, l2, @ emap, l2
    crop112, _ = align_face(h_rgb, h_face.landmarks_5, 112, "arcface")
    x = ((crop112.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    sess = ort.InferenceSession(str(models / "arc.onnx"), providers=["CPUExecutionProvider"])
    emb = sess.run(None, {"face": x})[0][0]
    v = emb / np.linalg.norm(emb) @ EMAP
    v /= np.linalg.norm(v)
    lat = sw.latent(h_rgb, h_face)
    assert lat.shape == (1, 512)
    np.testing.assert_allclose(lat[0], v, atol=1e-5)
    np.testing.assert_allclose(sw2.latent(h_rgb, h_face), lat, atol=1e-6)
    crop, _ = sw.align(a_rgb, a_face)
    pred, mask = sw.predict(crop, lat)
    np.testing.assert_allclose(pred, np.clip(crop + 255 * (v @ W512), 0, 255), atol=1e-2)
    np.testing.assert_array_equal(mask, ellipse(128))
    # coverage = the model's mask (feathered at the crop edge): nothing outside its ellipse
    p = sw.swap(h_rgb, h_face, a_rgb, a_face)
    assert 0.3 < (p.coverage > 0.99).sum() / (p.coverage > 0).sum() < 1
    other = sw.swap(a_rgb, a_face, a_rgb, a_face)
    assert np.abs(p.image.astype(int) - other.image.astype(int))[p.coverage > 0.99].mean() > 5


def test_video_path(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    frames = make_clip(clip, frames=5, size=(320, 240), audio=False)
    code, err = run(
        capsys, "swap", "-s", "sample:grace_hopper", "-t", clip, "--swapper", "onnx", "--model",
        models / "a.toml", "-o", out, "--no-provenance", "--colour", "none",
    )  # fmt: skip
    assert code == 0, err
    got = [rgb for rgb, _ in iter_frames(out)]
    assert len(got) == len(frames)
    assert "swapped faces in 5 of 5 frames" in err
    for i, (a, b) in enumerate(zip(got, frames, strict=True)):
        x = 60 + 2 * i
        d = np.abs(a[90:150, x + 25 : x + 80].astype(int) - b[90:150, x + 25 : x + 80]).mean()
        assert d > 10, (i, d)


def test_model_kinds(models: Path) -> None:
    assert swapper_takes_model("onnx", models / "a.toml")
    assert not swapper_takes_model("autoencoder", models / "a.toml")
    assert not swapper_takes_model("onnx", models)
    card = read_model_card(models / "c.toml")
    assert card.identity.kind == "onnx" and card.identity.dim == 512 and card.input.crop_size == 128


def test_evaluate_names_the_card(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    astro = sample_path("astronaut")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"self\t{astro}\t{astro}\n")
    out = tmp_path / "report"
    code, err = run(capsys, "evaluate", "--pairs", pairs, "--swapper", "onnx", "--model", models / "a.toml",
                    "--out", out)  # fmt: skip
    assert code == 0, err
    described = json.loads((out / "results.json").read_text())["swappers"][0]["swapper"]
    assert described["model"]["name"] == "offset-a"
    assert described["model"]["sha256"] == sha(models / "a.onnx")
    assert "offset-a" in (out / "report.md").read_text()


def test_yaml_card(models: Path, faces: dict, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    import tomllib

    card = tomllib.loads((models / "a.toml").read_text())
    card["model"]["onnx"] = str(models / "a.onnx")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(card))
    (a_rgb, a_face), (h_rgb, h_face) = faces["astronaut"], faces["grace_hopper"]
    p1 = create_swapper("onnx", model=tmp_path / "a.yaml").swap(h_rgb, h_face, a_rgb, a_face)
    p2 = create_swapper("onnx", model=models / "a.toml").swap(h_rgb, h_face, a_rgb, a_face)
    assert np.array_equal(p1.image, p2.image)


def _bad(models: Path, tmp: Path, kind: str) -> Path:
    d = tmp / kind
    d.mkdir()
    (d / "a.onnx").write_bytes((models / "a.onnx").read_bytes())
    if kind == "missing":
        return d / "nothing.toml"
    if kind == "toml":
        (d / "a.toml").write_text("[model\nonnx = 'a.onnx'\n")
        return d / "a.toml"
    if kind == "folder":
        return d
    if kind == "suffix":
        return d / "a.onnx"
    changes: dict[str, dict[str, object]] = {
        "no-sha": {"model": {"sha256": None}},
        "sha": {"model": {"sha256": "0" * 64}},
        "crop": {"input": {"crop_size": 112}},
        "typo": {"input": {"crop_szie": 128}},
        "dim": {
            "identity": {
                "kind": "onnx",
                "onnx": str(models / "arc.onnx"),
                "sha256": sha(models / "arc.onnx"),
                "dim": 512,
            }
        },
        "emap": {"identity": {"emap": str(models / "emap.npy"), "emap_sha256": sha(models / "emap.npy")}},
        "template": {"input": {"template": "nope"}},
        "no-onnx": {"model": {"onnx": "gone.onnx"}},
    }[kind]
    return card_a(d, **changes)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such model card"),
        ("toml", "not valid TOML"),
        ("folder", "takes a model card file"),
        ("suffix", "a model card is a .toml file"),
        ("no-sha", "sha256 is required"),
        ("sha", "does not match"),
        ("crop", "crop_size 112"),
        ("typo", "unknown key 'crop_szie'"),
        ("dim", "512 values"),
        ("emap", "expected a float 128×K"),
        ("template", "template must be one of"),
        ("no-onnx", "missing"),
    ],
)
def test_bad_cards(
    kind: str, needle: str, models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = _bad(models, tmp_path, kind)
    with pytest.raises(ModelError) as exc:
        ExternalOnnxSwapper(card)
    assert needle.lower() in str(exc.value).lower() and "\n" not in str(exc.value), str(exc.value)
    if kind in ("missing", "toml", "sha", "crop", "dim"):  # and through the command line
        out = tmp_path / "out.png"
        code, err = run(capsys, "swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut",
                        "--swapper", "onnx", "--model", card, "-o", out)  # fmt: skip
        one_line_error(code, err, needle)
        assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--swapper", "onnx"], "--model"),
        (["--swapper", "onnx", "--model", "CARD"], "--source"),
        (["--swapper", "mesh3d", "--model", "CARD", "-s", "sample:grace_hopper"], "--swapper onnx"),
    ],
)
def test_argument_errors(
    args: list[str], needle: str, models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    argv = [str(models / "a.toml") if a == "CARD" else a for a in args]
    code, err = run(capsys, "swap", "-t", "sample:astronaut", "-o", out, *argv)
    one_line_error(code, err, needle)
    assert not out.exists()
    code, err = run(capsys, "live", "-i", "0", *argv)  # live checks the same combinations first
    one_line_error(code, err, needle)

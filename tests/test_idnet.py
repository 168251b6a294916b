"""Our reader of dlib's face ResNet, its ONNX graph and its PyTorch module, against dlib itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import lfw_image, lfw_pairs

from masquerade.identity import dlibnet
from masquerade.identity.encoder import IdentityEncoder, cosine_similarity
from masquerade.identity.onnx_net import OnnxFaceEncoder
from masquerade.models import file_sha256

MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def dlib_id() -> IdentityEncoder:
    enc = IdentityEncoder(backend="dlib")
    yield enc
    enc.close()


@pytest.fixture(scope="module")
def onnx_id() -> IdentityEncoder:
    enc = IdentityEncoder(backend="onnx")
    yield enc
    enc.close()


@pytest.fixture(scope="module")
def net() -> dlibnet.DlibNet:
    return dlibnet.load()


@pytest.fixture(scope="module")
def sample_chips(hopper, astronaut, analyzer, dlib_id) -> np.ndarray:
    chips = []
    for rgb in (hopper, astronaut):
        face = analyzer.get(rgb, identity=False)[0]
        chips.append(dlib_id.chip(rgb, face.landmarks_68))
    rng = np.random.default_rng(0)
    chips.append(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8))  # noise: exercises every pixel
    return np.stack(chips)


def assert_same(ours: np.ndarray, ref: np.ndarray) -> None:
    ours, ref = np.atleast_2d(ours), np.atleast_2d(ref)
    assert ours.shape == ref.shape
    for a, b in zip(ours, ref, strict=True):
        assert cosine_similarity(a, b) >= MIN_COSINE
    assert np.abs(ours - ref).max() < 1e-4


# ------------------------------------------------------------------------------------------ reader


def test_parse_dlib_file(net: dlibnet.DlibNet) -> None:
    kinds = [op.kind for op in net.ops]
    assert kinds[0] == "input" and kinds[-1] == "fc"
    assert kinds.count("conv") == kinds.count("affine") == 29
    assert kinds.count("add_prev") == 14
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.avg_rgb, [122.782, 117.001, 104.298], atol=1e-3)
    assert net.loss["type"] == "loss_metric" and net.loss["dist_thresh"] == pytest.approx(0.6)
    assert net.out_dim == 128 and net.ops[-1].arrays["weight"].shape == (256, 128)
    assert net.shapes()[-2] == (256, 1, 1)
    assert all(np.isfinite(a).all() for op in net.ops for a in op.arrays.values())


def test_dlib_float_codec() -> None:
    rng = np.random.default_rng(1)
    special = [0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan, 1e-40, -3e38, 2.0**-149, 12345.678]
    x = np.concatenate([rng.normal(0, 0.05, 500), special]).astype(np.float32)
    data = dlibnet.encode_floats(x)
    arr = np.frombuffer(b"\x07" + data + b"tail", np.uint8)
    vals, end = dlibnet.decode_floats(arr, 1, len(x))
    assert end == 1 + len(data)
    np.testing.assert_array_equal(vals.astype(np.float32), x)
    # the scalar reader agrees, value by value
    r = dlibnet._Reader(data)
    np.testing.assert_array_equal(np.array([r.float() for _ in x], np.float32), x)
    assert r.pos == len(data)
    for k in (1, 2, 3, 7):  # short runs
        np.testing.assert_array_equal(dlibnet.decode_floats(arr, 1, k)[0].astype(np.float32), x[:k])


def test_version1_tensor() -> None:
    """dlib's older tensor format stores dlib floats instead of raw float32."""
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7 - 1
    head = bytes([1, 1]) + b"".join(bytes([1, d]) for d in x.shape)  # version 1, dims
    t = dlibnet._Reader(head + dlibnet.encode_floats(x)).tensor()
    np.testing.assert_array_equal(t, x)


def test_bad_files_are_rejected() -> None:
    good = dlibnet.load().source
    data = Path(good).read_bytes()
    for bad in (b"", b"\x01\x01\x05hello", data[:1000], data + b"\x00"):
        with pytest.raises(dlibnet.DlibFormatError):
            dlibnet.parse_bytes(bad)


def test_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASQUERADE_CACHE", str(tmp_path))
    a = dlibnet.load()
    files = list((tmp_path / "dlib-resnet").glob("*.npz"))
    assert len(files) == 1 and a.sha256 in {file_sha256(a.source)}
    b = dlibnet.load()  # from the cache
    assert [op.kind for op in a.ops] == [op.kind for op in b.ops] and b.loss == a.loss
    for oa, ob in zip(a.ops, b.ops, strict=True):
        assert oa.attrs == ob.attrs and oa.arrays.keys() == ob.arrays.keys()
        for k in oa.arrays:
            np.testing.assert_array_equal(oa.arrays[k], ob.arrays[k])
    from masquerade.identity.onnx_net import onnx_path

    p = onnx_path()
    assert isinstance(p, Path) and p.is_file() and p.parent == files[0].parent
    assert not list(tmp_path.rglob("*.tmp"))
    p.write_bytes(b"damaged")  # a broken cache file is rebuilt, not fatal
    assert OnnxFaceEncoder().embed_chips(np.zeros((1, 150, 150, 3), np.uint8)).shape == (1, 128)
    assert p.stat().st_size > 1_000_000  # and the cache is repaired


# -------------------------------------------------------------------------------- ONNX vs dlib


def test_onnx_equals_dlib_on_samples(sample_chips: np.ndarray, dlib_id: IdentityEncoder, onnx_id) -> None:
    ref = np.stack([dlib_id.embed_chip(c) for c in sample_chips])
    assert_same(onnx_id.embed_chips(sample_chips), ref)
    assert_same(np.stack([onnx_id.embed_chip(c) for c in sample_chips]), ref)


def test_embed_from_landmarks(hopper, astronaut, analyzer, dlib_id, onnx_id) -> None:
    for rgb in (hopper, astronaut):
        face = analyzer.get(rgb, identity=False)[0]
        assert_same(onnx_id.embed(rgb, face.landmarks_68), dlib_id.embed(rgb, face.landmarks_68))
    # the analyzer's own encoder is the onnx one now
    face = analyzer.get(hopper)[0]
    assert analyzer.identity.backend == "onnx"
    assert_same(face.embedding, dlib_id.embed(hopper, face.landmarks_68))


@pytest.mark.slow  # LFW
@pytest.mark.lfw
def test_onnx_equals_dlib_on_lfw(lfw: Path, analyzer, dlib_id: IdentityEncoder, onnx_id) -> None:
    chips = []
    for a, n1, b, n2 in lfw_pairs(lfw, matched=True, count=10):
        for name, n in ((a, n1), (b, n2)):
            rgb = lfw_image(lfw, name, n)
            faces = analyzer.get(rgb, identity=False, small_faces=False)
            assert faces, f"no face in {name} {n}"
            chips.append(dlib_id.chip(rgb, faces[0].landmarks_68))
    assert len(chips) == 20
    ref = dlib_id.embed_chips(chips)
    ours = onnx_id.embed_chips(chips)
    assert_same(ours, ref)
    # same person, different photos: within dlib's 0.6 for most of these pairs
    d = np.linalg.norm(ours[0::2] - ours[1::2], axis=1)
    assert (d < 0.6).mean() >= 0.8


def test_batch_equals_single(sample_chips: np.ndarray) -> None:
    enc = OnnxFaceEncoder(max_batch=2)  # forces two runs for three chips
    batch = enc.embed_chips(sample_chips)
    single = np.stack([enc.embed_chip(c) for c in sample_chips])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    as_list = enc.embed_chips(list(sample_chips))
    np.testing.assert_allclose(as_list, batch, atol=1e-6)
    assert enc.embed_chips(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(Exception, match="150"):
        enc.embed_chips(np.zeros((1, 100, 100, 3), np.uint8))


def test_backend_choice_and_jitters(sample_chips: np.ndarray, onnx_id: IdentityEncoder) -> None:
    with pytest.raises(ValueError, match="backend"):
        IdentityEncoder(backend="tensorflow")  # type: ignore[arg-type]
    plain = onnx_id.embed_chip(sample_chips[0])
    with IdentityEncoder(num_jitters=4, seed=3) as jit:
        j = jit.embed_chip(sample_chips[0])
        assert 0 < np.linalg.norm(j - plain) < 0.3  # averaged over slightly moved copies
        assert jit.embed_chips(sample_chips[:2]).shape == (2, 128)


def test_falls_back_to_dlib_without_onnxruntime(monkeypatch: pytest.MonkeyPatch, sample_chips) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    with IdentityEncoder() as enc:
        assert enc.backend == "dlib"
        assert enc.embed_chip(sample_chips[0]).shape == (128,)


def test_core_runs_without_torch_or_onnx(tmp_path: Path) -> None:
    """Importing masquerade and embedding with a cached model needs neither torch nor onnx."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
        "import numpy as np, masquerade\n"
        "from masquerade.identity.onnx_net import OnnxFaceEncoder\n"
        "print(OnnxFaceEncoder().embed_chips(np.zeros((2, 150, 150, 3), np.uint8)).shape)\n"
    )
    OnnxFaceEncoder()  # make sure the model is built and cached (this process has onnx)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2, 128)"


# ----------------------------------------------------------------------------------------- torch


@pytest.fixture(scope="module")
def torch_net(net: dlibnet.DlibNet):
    pytest.importorskip("torch")
    from masquerade.identity.torch_net import DlibResNet

    return DlibResNet(net).eval()


@pytest.mark.slow  # PyTorch
def test_torch_equals_onnx(torch_net, sample_chips: np.ndarray, onnx_id: IdentityEncoder) -> None:
    import torch

    from masquerade.identity.torch_net import DlibResNet

    ref = onnx_id.embed_chips(sample_chips)
    assert_same(torch_net.embed_chips(sample_chips), ref)
    unit = DlibResNet(dlibnet.load(), input_range=1.0).eval()
    with torch.no_grad():
        out = unit(DlibResNet.to_tensor(sample_chips) / 255.0).numpy()
    assert_same(out, ref)


@pytest.mark.slow  # PyTorch
def test_gradient_reaches_pixels(torch_net, sample_chips: np.ndarray) -> None:
    from masquerade.identity.torch_net import DlibResNet

    x = DlibResNet.to_tensor(sample_chips[:2]).requires_grad_(True)
    emb = torch_net(x)
    assert emb.shape == (2, 128)
    (emb[0] - emb[1]).pow(2).sum().backward()  # distance between the two identities
    g = x.grad
    assert g is not None and g.shape == x.shape
    assert bool(g.isfinite().all())
    assert float(g.abs().sum()) > 0 and float((g != 0).float().mean()) > 0.5


@pytest.mark.slow  # PyTorch
def test_export_onnx(torch_net, sample_chips: np.ndarray, tmp_path: Path, onnx_id) -> None:
    import onnxruntime as ort

    from masquerade.identity.torch_net import DlibResNet, export_onnx

    path = export_onnx(torch_net, tmp_path / "dlib_resnet.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = DlibResNet.to_tensor(sample_chips).numpy()
    assert_same(sess.run(None, {"x": x})[0], onnx_id.embed_chips(sample_chips))

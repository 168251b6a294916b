"""Pair autoencoder training (masquerade.training): data, losses, loop, resume, export, CLI.

Tiny models at 32 px on two small facesets made from the sample photos; the whole file takes well
under a minute on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceset_fixtures import make_faceset  # noqa: E402
from train_helpers import loss_rows, one_line_error, train_opts  # noqa: E402

from masquerade import FaceAnalyzer, load_image, sample_path  # noqa: E402
from masquerade.cli.main import main  # noqa: E402
from masquerade.training.autoencoder import AutoencoderTask, build_autoencoder  # noqa: E402
from masquerade.training.common import parameter_count  # noqa: E402
from masquerade.training.configs import (  # noqa: E402
    AUTOENCODER_PRESETS,
    VARIANTS,
    AugmentConfig,
    AutoencoderConfig,
    AutoencoderTrainConfig,
    RegionWeights,
)
from masquerade.training.data import (  # noqa: E402
    EpochSampler,
    clean_batch,
    load_face_arrays,
    read_faceset,
)
from masquerade.training.export import export_autoencoder  # noqa: E402
from masquerade.training.losses import dssim, ssim_map  # noqa: E402
from masquerade.training.trainer import ConfigMismatchError, Trainer  # noqa: E402

pytestmark = pytest.mark.slow  # training

RES = 32
MICRO = {"resolution": RES, "enc_dims": 8, "ae_dims": 32, "dec_dims": 8, "mask_dims": 4}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    # one thread: micro models gain nothing from more, and an oversubscribed core costs 10×
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def facesets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("facesets")
    out = []
    with FaceAnalyzer(identity=False) as fa:
        for name, seed in (("astronaut", 1), ("grace_hopper", 2)):
            rgb = load_image(sample_path(name)).rgb
            face = fa.get(rgb, small_faces=False)[0]
            out.append(make_faceset(root / name, rgb, face, copies=6, size=64, seed=seed, source=name))
    return out[0], out[1]


@pytest.fixture(scope="module")
def arrays(facesets):
    return tuple(load_face_arrays(read_faceset(p), RES) for p in facesets)


def _config(facesets, variant: str = "df", **kw) -> AutoencoderTrainConfig:
    a, b = facesets
    kw.setdefault("batch_size", 4)
    kw.setdefault("lr", 1e-3)
    return AutoencoderTrainConfig(str(a), str(b), model=AutoencoderConfig(variant, **MICRO), **kw)


def _task(facesets, arrays, variant: str = "df", seed: int = 0, **kw) -> AutoencoderTask:
    return AutoencoderTask(_config(facesets, variant, **kw), seed=seed, faces_a=arrays[0], faces_b=arrays[1])


@pytest.fixture(scope="module")
def trained_df(tmp_path_factory, facesets, arrays) -> Path:
    """40 steps of a micro DF model, previews every 20, checkpoints every 20."""
    out = tmp_path_factory.mktemp("run") / "df"
    Trainer(_task(facesets, arrays), out, train_opts(40, save_every=20, preview_every=20)).run()
    return out


# -- data and losses ------------------------------------------------------------------------------


def test_batches_are_a_function_of_seed_and_step(facesets, arrays):
    t1, t2 = _task(facesets, arrays, seed=3), _task(facesets, arrays, seed=3)
    a1, b1 = t1.batch(7)
    a2, b2 = t2.batch(7)
    assert np.array_equal(a1.inputs, a2.inputs) and np.array_equal(b1.weights, b2.weights)
    assert not np.array_equal(t1.batch(8)[0].inputs, a1.inputs)
    assert a1.inputs.shape == (4, 3, RES, RES) and a1.masks.shape == (4, 1, RES, RES)
    assert a1.inputs.dtype == np.float32 and a1.inputs.min() >= 0.0 and a1.inputs.max() <= 1.0
    assert not np.array_equal(a1.inputs, a1.targets)  # the random warp deforms only the input
    # every face appears once per pass over the faceset
    s = EpochSampler(6, seed=0, stream=0)
    assert sorted(np.concatenate([s.indices(k, 3) for k in (0, 1)])) == list(range(6))


def test_region_weights_favour_eyes_and_mouth(arrays):
    faces = arrays[0]
    batch = clean_batch(faces, np.array([0]), RegionWeights(eyes=3.0, mouth=2.0))
    lm = faces.landmarks[0]
    w = batch.weights[0, 0]

    def at(p):
        return w[int(round(p[1])), int(round(p[0]))]

    assert at(lm[36:42].mean(0)) == pytest.approx(3.0, abs=0.05)
    assert at(lm[42:48].mean(0)) == pytest.approx(3.0, abs=0.05)
    assert at(lm[48:60].mean(0)) == pytest.approx(2.0, abs=0.05)
    assert w[1, 1] == 1.0
    assert np.array_equal(batch.inputs, batch.targets)  # no augmentation in clean batches


def test_augmentation_moves_landmarks_with_the_image(arrays):
    """The eye/mouth weights of a flipped, rotated sample sit where the clean weights land when warped
    like the image."""
    import cv2

    from masquerade.training.data import affine_params, augment_sample, region_weight_map

    faces = arrays[0]
    cfg = AugmentConfig(flip=1.0, rotate=10.0, colour=0.0, warp=False)
    img, mask, lm = faces.images[0], faces.masks[0], faces.landmarks[0]
    _, target, _, w = augment_sample(img, mask, lm, np.random.default_rng(5), cfg, RegionWeights())
    m = affine_params(RES, np.random.default_rng(5), cfg)
    assert (
        np.abs(target * 255 - cv2.warpAffine(img, m, (RES, RES), borderMode=cv2.BORDER_REPLICATE)).max() <= 1
    )
    moved = cv2.warpAffine(region_weight_map(lm, RES, RegionWeights()), m, (RES, RES), borderValue=1.0)
    a, b = w[..., 0] > 1.5, moved > 1.5
    assert (a & b).sum() / (a | b).sum() > 0.6


def test_dssim_and_weights():
    x = torch.rand(2, 3, RES, RES)
    assert float(dssim(x, x)) == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert 0.05 < float(dssim(x, y)) < 0.5
    assert ssim_map(x, y, 5).shape == x.shape
    # weights pick where the error counts: an error only in the weighted half dominates
    z = x.clone()
    z[..., : RES // 2] = y[..., : RES // 2]
    w = torch.zeros(2, 1, RES, RES)
    w[..., RES // 2 :] = 1.0
    assert float(dssim(x, z, w)) < float(dssim(x, z, 1.0 - w))


def test_presets_build_both_variants():
    counts = {}
    for preset, (e, a, d, m) in AUTOENCODER_PRESETS.items():
        for variant in VARIANTS:
            with torch.device("meta"):  # sizes only, no memory or initialisation
                counts[preset, variant] = parameter_count(
                    build_autoencoder(AutoencoderConfig(variant, 64, e, a, d, m))
                )
    assert counts["tiny", "df"] < counts["small", "df"] < counts["medium", "df"] < counts["medium", "liae"]
    for variant in VARIANTS:
        model = build_autoencoder(AutoencoderConfig(variant, **MICRO)).eval()
        x = torch.rand(2, 3, RES, RES)
        with torch.no_grad():
            (ra, ma), (rb, mb) = model(x, x)
            for rgb, mask in ((ra, ma), (rb, mb), model.recon_a(x), model.recon_b(x), model.swap(x)):
                assert rgb.shape == (2, 3, RES, RES) and mask.shape == (2, 1, RES, RES)
                assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
            # the joint forward equals the separate paths
            assert torch.allclose(ra, model.recon_a(x)[0], atol=1e-5)
            assert torch.allclose(rb, model.recon_b(x)[0], atol=1e-5)


# -- training loop --------------------------------------------------------------------------------


def test_loss_decreases_and_outputs_are_written(trained_df):
    rows = loss_rows(trained_df)
    assert [int(r["step"]) for r in rows] == list(range(1, 41))
    total = np.array([float(r["total"]) for r in rows])
    assert total[-5:].mean() < 0.8 * total[0], total
    assert {"loss_a", "loss_b", "dssim", "mask", "total", "time"} <= set(rows[0])
    for name in ("previews/step_0000020.png", "previews/step_0000040.png", "preview.png", "loss.png"):
        img = load_image(trained_df / name).rgb
        assert img.shape[0] > 4 * RES and img.std() > 10, name
    ckpts = sorted(p.name for p in (trained_df / "checkpoints").iterdir())
    assert ckpts == ["latest.pt", "step_0000020.pt", "step_0000040.pt"]
    run = json.loads((trained_df / "train.json").read_text())
    assert run["config"]["model"]["variant"] == "df" and run["config"]["seed"] == 0


def test_resume_continues_exactly(tmp_path, facesets, arrays):
    """LIAE: 2 steps, stop, resume to 5 == 5 steps uninterrupted (losses and weights)."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    Trainer(_task(facesets, arrays, "liae"), whole, train_opts(5)).run()
    first = Trainer(_task(facesets, arrays, "liae"), split, train_opts(2)).run()
    assert first.step == 2 and not first.interrupted
    task = _task(facesets, arrays, "liae")
    res = Trainer(task, split, train_opts(5)).run()
    assert res.start_step == 2 and res.step == 5
    a, b = loss_rows(whole), loss_rows(split)
    assert [r["step"] for r in b] == ["1", "2", "3", "4", "5"]
    for ra, rb in zip(a, b, strict=True):
        assert ra["total"] == rb["total"] and ra["loss_a"] == rb["loss_a"]
    w = torch.load(whole / "checkpoints" / "latest.pt", weights_only=True)["modules"]["model"]
    for k, v in task.model.state_dict().items():
        assert torch.equal(v, w[k]), k


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path, facesets, arrays):
    def progress(p):
        if p.step == 3:
            signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    res = Trainer(_task(facesets, arrays), tmp_path / "run", train_opts(50), progress=progress).run()
    assert res.interrupted and res.step == 3
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_config_mismatch_is_refused_unless_forced(tmp_path, facesets, arrays):
    out = tmp_path / "run"
    Trainer(_task(facesets, arrays), out, train_opts(1)).run()
    with pytest.raises(ConfigMismatchError) as exc:
        Trainer(_task(facesets, arrays, lr=2e-3), out, train_opts(2)).run()
    msg = str(exc.value)
    assert "\n" not in msg and "lr: 0.001 → 0.002" in msg and "--force" in msg
    res = Trainer(_task(facesets, arrays, lr=2e-3), out, train_opts(1, force=True)).run()
    assert res.start_step == 0 and [r["step"] for r in loss_rows(out)] == ["1"]


# -- export ---------------------------------------------------------------------------------------


def test_export_matches_pytorch(trained_df, arrays):
    import onnxruntime as ort

    res = export_autoencoder(trained_df)
    meta = json.loads(res.model_json.read_text())
    assert meta["format"] == "masquerade-autoencoder" and meta["version"] == 1
    assert (meta["variant"], meta["resolution"], meta["template"], meta["steps"]) == ("df", RES, "ffhq", 40)
    assert meta["onnx"] == "autoencoder.onnx" and meta["inputs"] == ["face"]
    assert meta["sha256"] == hashlib.sha256((trained_df / "autoencoder.onnx").read_bytes()).hexdigest()
    assert meta["trained"]["device"] == "cpu" and meta["trained"]["torch"] == torch.__version__
    assert meta["faceset_a"].endswith("astronaut") and meta["config"]["model"]["enc_dims"] == 8

    state = torch.load(trained_df / "checkpoints" / "latest.pt", weights_only=True)
    model = build_autoencoder(AutoencoderConfig("df", **MICRO))
    model.load_state_dict(state["modules"]["model"])
    model.eval()
    x = clean_batch(arrays[0], np.arange(3)).inputs  # a batch of 3 (the graph's batch is dynamic)
    sess = ort.InferenceSession(str(trained_df / "autoencoder.onnx"), providers=["CPUExecutionProvider"])
    face, mask = sess.run(None, {"face": x})
    with torch.no_grad():
        ref_face, ref_mask = model.swap(torch.from_numpy(x))
    assert face.shape == (3, 3, RES, RES) and mask.shape == (3, 1, RES, RES)
    assert np.abs(face - ref_face.numpy()).max() < 1e-4 and np.abs(mask - ref_mask.numpy()).max() < 1e-4
    assert [o.name for o in sess.get_outputs()] == meta["outputs"] == ["swapped", "mask"]


# -- command line ---------------------------------------------------------------------------------


def test_cli_trains_resumes_and_exports(tmp_path, facesets, capsys):
    a, b = facesets
    out = tmp_path / "model"
    argv = ["train", "autoencoder", "--a", str(a), "--b", str(b), "-o", str(out), "--preset", "tiny",
            "--resolution", "32", "--batch", "2", "--steps", "2", "--device", "cpu",
            "--preview-every", "1"]  # fmt: skip
    assert main(argv) == 0
    got = capsys.readouterr()
    assert "exported step 2" in got.out and "→" in got.out
    meta = json.loads((out / "model.json").read_text())
    assert meta["steps"] == 2 and meta["config"]["model"]["enc_dims"] == AUTOENCODER_PRESETS["tiny"][0]
    # the same folder with only --steps resumes with the stored options (a moved faceset is fine)
    moved = tmp_path / "moved_b"
    shutil.copytree(b, moved)
    assert (
        main(["train", "autoencoder", "-o", str(out), "--steps", "3", "--b", str(moved), "--device", "cpu"])
        == 0
    )
    assert "resuming at step 2" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["steps"] == 3 and meta["faceset_b"] == str(moved.resolve())
    # a different option is refused, in one line
    rc = main(
        ["train", "autoencoder", "-o", str(out), "--steps", "4", "--resolution", "48", "--device", "cpu"]
    )
    assert "model.resolution: 32 → 48" in one_line_error(capsys, 2, rc)
    (out / "model.json").unlink()
    assert main(["train", "export", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["steps"] == 3


def test_cli_bad_inputs_are_one_line(tmp_path, facesets, capsys):
    a, b = facesets
    out = str(tmp_path / "o")
    base = ["train", "autoencoder", "-o", out, "--device", "cpu", "--steps", "1"]
    assert "faceset" in one_line_error(capsys, 2, main([*base, "--a", str(tmp_path / "nope"), "--b", str(b)]))
    notfs = tmp_path / "notfs"
    notfs.mkdir()
    (notfs / "faceset.json").write_text('{"format": "something-else"}')
    assert "not a masquerade faceset" in one_line_error(
        capsys, 2, main([*base, "--a", str(notfs), "--b", str(b)])
    )
    few = tmp_path / "few"
    shutil.copytree(a, few)
    doc = json.loads((few / "faceset.json").read_text())
    doc["faces"] = doc["faces"][:2]
    (few / "faceset.json").write_text(json.dumps(doc))
    assert "at least 4" in one_line_error(capsys, 2, main([*base, "--a", str(few), "--b", str(b)]))
    assert "--a and --b" in one_line_error(capsys, 2, main(base))
    assert "export" in one_line_error(capsys, 2, main(["train", "export", str(tmp_path)]))
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    rc = main(["train", "autoencoder", "-o", str(full), "--a", str(a), "--b", str(b), "--device", "cpu"])
    assert "not empty" in one_line_error(capsys, 2, rc)
    if not torch.cuda.is_available():
        rc = main([*base, "--a", str(a), "--b", str(b), "--device", "cuda"])
        assert "CUDA" in one_line_error(capsys, 2, rc)


def test_cli_without_torch_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    rc = main(["train", "autoencoder", "--a", "x", "--b", "y", "-o", str(tmp_path / "o")])
    assert "pip install torch==2.13.0" in one_line_error(capsys, 2, rc)

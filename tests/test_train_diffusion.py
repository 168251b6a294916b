"""The diffusion swapper: noise schedule and DDIM sampler, training (losses, resume), ONNX export, the
``diffusion`` swapper and the CLI.

Data: the tiny two-person folder of :mod:`identity_fixtures`; models are the tiny preset at 32 px.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from identity_fixtures import COPIES, RES  # noqa: E402
from train_helpers import loss_rows, one_line_error, train_opts  # noqa: E402

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path  # noqa: E402
from masquerade.analysis.alignment import align_face  # noqa: E402
from masquerade.cli import train as train_cli  # noqa: E402
from masquerade.cli.main import main  # noqa: E402
from masquerade.errors import InputError, ModelError  # noqa: E402
from masquerade.swappers import create_swapper, swapper_needs_source, swapper_takes_model  # noqa: E402
from masquerade.swappers.diffusion import (  # noqa: E402
    DiffusionOptions,
    DiffusionSwapper,
    alphas_cumprod,
    attribute_condition,
    ddim_sample,
    ddim_timesteps,
    landmark_heatmap,
)
from masquerade.training.configs import (  # noqa: E402
    DIFFUSION_LOSS_NAMES,
    DiffusionTrainConfig,
    diffusion_condition_preset,
    diffusion_preset,
)
from masquerade.training.diffusion import DiffusionTask, WarpDiffusionTask  # noqa: E402
from masquerade.training.export import export_run  # noqa: E402
from masquerade.training.trainer import Trainer  # noqa: E402

# training: slow; people, cache, faces: conftest.py
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


def _config(people: Path, **kw) -> DiffusionTrainConfig:
    kw.setdefault("batch_size", 4)
    kw.setdefault("lr", 2e-3)
    kw.setdefault("sampling_steps", 4)
    return DiffusionTrainConfig(str(people), model=diffusion_preset("tiny", RES), holdout="none", **kw)


FIXED = 10_000  # a batch (pairs, timesteps, noise) never trained on: the losses before / after


@pytest.fixture(scope="module")
def trained(tmp_path_factory, people, faces):
    """40 steps of the tiny denoiser (previews and checkpoints every 20); the losses of a fixed batch
    before and after."""
    out = tmp_path_factory.mktemp("run") / "diffusion"
    task = DiffusionTask(_config(people), data=faces)
    Trainer(task, out, train_opts(0)).run()
    cpu = torch.device("cpu")
    before = task.evaluate(FIXED, cpu)
    Trainer(task, out, train_opts(40, save_every=20, preview_every=20)).run()
    return out, before, task.evaluate(FIXED, cpu), task


# -- schedule and sampler -------------------------------------------------------------------------


def test_schedules_and_timesteps() -> None:
    for name in ("cosine", "linear"):
        a = alphas_cumprod(name, 1000)
        assert a.shape == (1000,) and np.all(np.diff(a) < 0) and 0.99 < a[0] < 1 and 0 <= a[-1] < 0.01
    ts = ddim_timesteps(1000, 25)
    assert len(ts) == 25 and ts[0] == 999 and ts[-1] == 0 and np.all(np.diff(ts) < 0)
    assert list(ddim_timesteps(10, 10)) == list(range(9, -1, -1))
    with pytest.raises(InputError, match="1 to 1000"):
        ddim_timesteps(1000, 0)
    with pytest.raises(InputError, match="1 to 10"):
        ddim_timesteps(10, 11)


def test_ddim_recovers_x0_with_an_oracle_and_counts_steps() -> None:
    """With a denoiser that knows the clean image, DDIM returns it, in exactly ``steps`` calls; with
    guidance each call carries the conditional and the unconditional batch."""
    rng = np.random.default_rng(0)
    abar = alphas_cumprod("cosine", 1000)
    x0 = np.clip(rng.normal(0, 0.4, (2, 3, 8, 8)), -1, 1).astype(np.float32)
    cond = rng.random((2, 5, 8, 8), dtype=np.float32)
    ident = np.eye(2, 128, dtype=np.float32)
    calls: list[int] = []

    def oracle(x, t, c, i):
        calls.append(len(x))
        a = abar[t.astype(int)][:, None, None, None]
        clean = np.concatenate([x0] * (len(x) // len(x0)))
        return ((x - np.sqrt(a) * clean) / np.sqrt(1 - a)).astype(np.float32)

    for steps in (1, 7, 25):
        calls.clear()
        got = ddim_sample(oracle, cond, ident, abar, steps, guidance=1.0, seed=3)
        assert len(calls) == steps and set(calls) == {2}
        np.testing.assert_allclose(got, x0, atol=1e-4)
    calls.clear()
    got = ddim_sample(oracle, cond, ident, abar, 5, guidance=3.0, seed=3)
    assert calls == [4] * 5  # conditional + unconditional in one batch
    np.testing.assert_allclose(got, x0, atol=1e-4)  # both branches agree, so guidance changes nothing


def test_sampling_is_deterministic_with_a_seed() -> None:
    abar = alphas_cumprod("cosine", 100)
    cond = np.zeros((1, 5, 8, 8), np.float32)
    ident = np.eye(1, 128, dtype=np.float32)

    def model(x, t, c, i):  # some fixed, identity-dependent function
        return (0.3 * x + 0.1 * i[:, :1, None, None] + 0.01 * t[:, None, None, None] / 100).astype(np.float32)

    a = ddim_sample(model, cond, ident, abar, 10, 2.0, seed=5)
    b = ddim_sample(model, cond, ident, abar, 10, 2.0, seed=5)
    c = ddim_sample(model, cond, ident, abar, 10, 2.0, seed=6)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_attribute_condition() -> None:
    face = np.full((16, 16, 3), 0.75, np.float32)
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 4:12] = 1.0
    lm = np.array([[8.0, 8.0]] * 68)
    cond = attribute_condition(face, mask, lm)
    assert cond.shape == (5, 16, 16) and cond.dtype == np.float32
    assert np.all(cond[:3, 6:10, 6:10] == 0) and np.allclose(cond[:3, 0, 0], 0.5)  # blanked / kept (in ±1)
    assert np.array_equal(cond[3], mask)
    heat = landmark_heatmap(lm, 16)
    assert heat.max() == pytest.approx(1.0, abs=0.05) and heat.argmax() == 8 * 16 + 8 and heat[0, 0] < 1e-3
    assert not landmark_heatmap(np.full((68, 2), np.nan), 16).any()


# -- training -------------------------------------------------------------------------------------


def test_training_reduces_the_losses(trained) -> None:
    out, before, after, _ = trained
    assert set(DIFFUSION_LOSS_NAMES) <= set(before)
    assert before["denoise"] == pytest.approx(1.0, abs=0.1)  # zero-initialised output: ε̂ = 0
    assert after["denoise"] < 0.8 * before["denoise"], (before, after)
    assert after["total"] < before["total"]
    rows = loss_rows(out)
    assert len(rows) == 40 and {"denoise", "identity", "reconstruction", "total"} <= set(rows[0])
    assert (out / "checkpoints" / "step_0000040.pt").is_file() and (out / "preview.png").is_file()
    assert load_image(out / "preview.png").rgb.shape[1] > 5 * RES  # five columns


def test_resume_continues_exactly(tmp_path, people, faces) -> None:
    cfg = _config(people, loss=_config(people).loss.__class__(identity=0.0))
    straight, split = tmp_path / "a", tmp_path / "b"
    Trainer(DiffusionTask(cfg, data=faces), straight, train_opts(4)).run()
    Trainer(DiffusionTask(cfg, data=faces), split, train_opts(2, save_every=2)).run()
    Trainer(DiffusionTask(cfg, data=faces), split, train_opts(4)).run()
    a, b = loss_rows(straight), loss_rows(split)
    assert [r["total"] for r in a] == [r["total"] for r in b]


# -- export and the swapper -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(trained) -> Path:
    out = trained[0]
    res = export_run(out)
    assert res.max_abs_diff < 1e-4 and res.steps == 40
    return out


def test_export_and_model_json(model_dir: Path, trained) -> None:
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["format"] == "masquerade-diffusion" and meta["resolution"] == RES
    assert meta["schedule"] == "cosine" and meta["timesteps"] == 1000 and meta["sampling_steps"] == 4
    assert meta["inputs"] == ["x", "t", "condition", "identity"] and meta["outputs"] == ["eps"]
    # the exported denoiser is the EMA network: same noise prediction as PyTorch's EMA
    task = trained[3]
    sw = DiffusionSwapper(model_dir, DiffusionOptions(steps=3, guidance=1.0, seed=0))
    b = task.batch(FIXED)
    x = b.noise
    t = b.t.astype(np.float32)
    ids = b.pairs.identity
    with torch.no_grad():
        want = task.ema.eval()(*(torch.from_numpy(v) for v in (x, t, b.condition, ids))).numpy()
    np.testing.assert_allclose(sw.denoise(x, t, b.condition, ids), want, atol=1e-4)


def test_swap_deterministic_and_steps_honoured(model_dir: Path, tmp_path: Path, capsys) -> None:
    src, hopper = load_image(sample_path("astronaut")).rgb, load_image(sample_path("grace_hopper")).rgb
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(src)[0]
        runs = {}
        for seed, steps in ((1, 5), (1, 5), (2, 5), (1, 2)):
            opts = SwapOptions(
                swapper="diffusion", model=str(model_dir), colour="none",
                swapper_options=DiffusionOptions(steps=steps, seed=seed),
            )  # fmt: skip
            fs = FaceSwapper(opts, analyzer=fa)
            out, _ = fs.swap(hopper, src, source=fs.source_face(hopper))
            assert fs.swapper.calls == steps  # one denoiser run per DDIM step (both guidance branches)
            runs.setdefault((seed, steps), []).append(out)
    a, b = runs[(1, 5)]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, runs[(2, 5)][0]) and not np.array_equal(a, runs[(1, 2)][0])
    crop_in, _ = align_face(src, face.landmarks_5, RES, "ffhq")
    crop_out, _ = align_face(a, face.landmarks_5, RES, "ffhq")
    centre = slice(RES // 3, 2 * RES // 3)
    assert np.abs(crop_out[centre, centre].astype(int) - crop_in[centre, centre]).mean() > 2  # face changed
    assert np.array_equal(a[:40, :40], src[:40, :40])  # the corners did not
    # the command line gives the same image
    out = tmp_path / "out.png"
    argv = ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "--swapper", "diffusion",
            "--model", str(model_dir), "-o", str(out), "--colour", "none", "--no-provenance",
            "--steps", "5", "--seed", "1"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert np.array_equal(load_image(out).rgb, a)


def test_registry_and_bad_inputs(model_dir: Path, tmp_path: Path, capsys) -> None:
    assert swapper_needs_source("diffusion")
    assert swapper_takes_model("diffusion", model_dir) and not swapper_takes_model("generator", model_dir)
    sw = create_swapper("diffusion", model=model_dir)
    assert sw.steps == 4 and sw.guidance == 2.0 and sw.model_info.model.steps == 40
    with pytest.raises(InputError, match="1 to 1000"):
        DiffusionOptions(steps=0)
    bad = tmp_path / "bad"
    bad.mkdir()
    meta = json.loads((model_dir / "model.json").read_text())
    (bad / "denoiser.onnx").write_bytes((model_dir / "denoiser.onnx").read_bytes())
    (bad / "model.json").write_text(json.dumps({**meta, "schedule": "quadratic"}))
    with pytest.raises(ModelError, match="schedule"):
        create_swapper("diffusion", model=bad)
    base = ["swap", "-t", "sample:astronaut", "-o", str(tmp_path / "o.png")]
    for argv, needle in (
        (["--swapper", "diffusion", "--model", str(model_dir), "-s", "sample:grace_hopper", "--steps", "0"],
         "1 to 1000"),
        (["-s", "sample:grace_hopper", "--steps", "3"], "--steps goes with --swapper diffusion"),
        (["-s", "sample:grace_hopper", "--guidance", "2", "--seed", "1"], "--guidance/--seed go with"),
        (["--swapper", "diffusion", "--model", str(model_dir)], "--source"),
        (["--swapper", "generator", "--model", str(model_dir), "-s", "sample:grace_hopper"], "format"),
    ):  # fmt: skip
        one_line_error(capsys, 2, main([*base, *argv]), needle)
    assert not (tmp_path / "o.png").exists()


def test_cli_trains_resumes_and_exports(tmp_path, people, cache, capsys) -> None:
    out = tmp_path / "model"
    base = ["train", "diffusion", "-o", str(out), "--device", "cpu", "--cache", str(cache)]
    argv = [*base, "--data", str(people), "--preset", "tiny", "--resolution", str(RES), "--batch", "2",
            "--steps", "1", "--preview-every", "1", "--weight", "identity=0", "--sampling-steps", "3",
            "--guidance", "1.5", "--holdout", "none"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    got = capsys.readouterr()
    assert "exported step 1" in got.out and f"{2 * COPIES} faces of 2 people" in got.out
    meta = json.loads((out / "model.json").read_text())
    assert meta["sampling_steps"] == 3 and meta["guidance"] == 1.5
    assert meta["config"]["loss"]["identity"] == 0.0 and meta["data"]["holdout"] == "none"
    assert main([*base, "--steps", "2"]) == 0
    assert "resuming at step 1" in capsys.readouterr().out
    rc = main([*base, "--steps", "3", "--cond-drop", "0.5"])
    assert "cond_drop: 0.1 → 0.5" in one_line_error(capsys, 2, rc)
    rc = main(["train", "diffusion", "-o", str(tmp_path / "x"), "--data", str(people), "--steps", "1",
               "--sampling-steps", "2000", "--device", "cpu", "--cache", str(cache)])  # fmt: skip
    one_line_error(capsys, 2, rc, "sampling_steps")
    assert train_cli._diffusion_weight("reconstruction=2") == ("reconstruction", 2.0)
    with pytest.raises(Exception, match="NAME=VALUE"):
        train_cli._diffusion_weight("adversarial=1")


def test_sampling_from_the_warp_starts_there() -> None:
    """With ``start`` (SDEdit), sampling begins from the start image noised ``strength`` of the way: an
    oracle that knows x0 returns it in exactly ``steps`` calls, and a do-nothing denoiser at a small
    strength stays near the start."""
    rng = np.random.default_rng(1)
    abar = alphas_cumprod("cosine", 1000)
    x0 = np.clip(rng.normal(0, 0.4, (2, 3, 8, 8)), -1, 1).astype(np.float32)
    start = np.clip(x0 + rng.normal(0, 0.3, x0.shape), -1, 1).astype(np.float32)
    cond = np.zeros((2, 7, 8, 8), np.float32)
    ident = np.eye(2, 128, dtype=np.float32)
    calls: list[int] = []

    def oracle(x, t, c, i):
        calls.append(len(x))
        a = abar[t.astype(int)][:, None, None, None]
        return ((x - np.sqrt(a) * x0) / np.sqrt(1 - a)).astype(np.float32)

    got = ddim_sample(oracle, cond, ident, abar, 6, 1.0, seed=2, start=start, strength=0.5)
    assert len(calls) == 6
    np.testing.assert_allclose(got, x0, atol=1e-4)

    def zero(x, t, c, i):
        return np.zeros_like(x)

    near = ddim_sample(zero, cond, ident, abar, 4, 1.0, seed=2, start=start, strength=0.1)
    far = ddim_sample(zero, cond, ident, abar, 4, 1.0, seed=2)
    assert np.abs(near - start).mean() < 0.2 < np.abs(far - start).mean()


class _WarpPairs:
    """Blank warp pairs (the fields :class:`WarpDiffusionTask` reads), half of them same-person."""

    def __init__(self, n: int, size: int) -> None:
        img = np.zeros((n, size, size, 3), np.uint8)
        self.out = self.out_corrupt = self.target = self.parts = img
        self.mask = np.zeros((n, size, size), np.uint8)
        self.same = np.arange(n) % 2 == 0
        self.corruption = np.ones(n, np.float32)
        self.source_emb = np.random.default_rng(0).standard_normal((n, 128)).astype(np.float32)
        self.theta = np.zeros((n, 2, 3), np.float32)

    def __len__(self) -> int:
        return len(self.same)


def test_warp_training_draws_timesteps_only_up_to_the_strength(people: Path) -> None:
    """Sampling starts from the warp noised to ``strength``: training spends no steps above it."""
    model = diffusion_condition_preset("tiny", RES, "warp")
    cfg = DiffusionTrainConfig(str(people), model=model, holdout="none", condition="warp", strength=0.3)
    task = WarpDiffusionTask(cfg, data=_WarpPairs(12, 2 * RES))
    t = np.concatenate([task.batch(step).t for step in range(50)])
    top = round(0.3 * (cfg.timesteps - 1))
    assert t.max() <= top and t.max() > 0.8 * top and (t < 0.2 * top).any()


@pytest.mark.slow
def test_warp_conditioned_diffusion_trains_exports_and_swaps(people: Path, tmp_path: Path) -> None:
    """--condition warp: trained on the refiner's warp pairs, exported with the warp condition, and the
    swapper samples from mesh3d's composite (deterministic for a seed)."""
    out = tmp_path / "warp"
    rc = main([
        "train", "diffusion", "--condition", "warp", "--data", str(people), "--holdout", "none",
        "-o", str(out),
        "--steps", "2", "--preset", "tiny", "--resolution", "64", "--cache", str(tmp_path / "cache"),
        "--device", "cpu", "--batch", "2", "--sampling-steps", "3", "--different", "6",
        "--same-per-person", "4", "--preview-every", "2",
    ])  # fmt: skip
    assert rc == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["condition"] == "warp-composite+mask+parts-v1" and meta["strength"] == 0.6
    src, tgt = load_image(sample_path("grace_hopper")).rgb, load_image(sample_path("astronaut")).rgb
    opts = SwapOptions(swapper="diffusion", model=str(out), swapper_options=DiffusionOptions(seed=1))
    with FaceSwapper(opts) as fs:
        a, _ = fs.swap(src, tgt)
        b, _ = fs.swap(src, tgt)
        assert fs.swapper.calls == 6  # 3 DDIM steps per swap
    assert np.array_equal(a, b) and not np.array_equal(a, tgt)
    # it refines mesh3d's composite: it changes pixels only where the warp did (its 64-px change is
    # resampled to the photo, so up to a crop pixel or two beyond) ...
    with FaceSwapper(SwapOptions(swapper="mesh3d")) as fs:
        warp, _ = fs.swap(src, tgt)
    changed = np.abs(a.astype(int) - warp).max(2) > 0
    near = cv2.dilate((np.abs(warp.astype(int) - tgt).max(2) > 0).astype(np.uint8), np.ones((25, 25)))
    assert changed.any() and not (changed & (near == 0)).any()
    # ... and only by what the model changed: a sample equal to its start (the warp's 64-px crop) leaves
    # the warp as it was, at full resolution, not a 64-px copy of it
    with FaceSwapper(opts) as fs:
        fs.swapper.generate = lambda cond, ident, start: (start.transpose(0, 2, 3, 1) + 1) * 127.5
        same, _ = fs.swap(src, tgt)
    assert np.array_equal(same, warp)

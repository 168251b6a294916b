"""The one-shot generator (masquerade.training.generator): identity data, losses, loop, resume, export,
the ``generator`` swapper and the CLI.

The data is a tiny identity-labelled folder made here from the two sample photos (four jittered copies
of each as separate "photos" of two people); models are the tiny preset at 32 px.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from identity_fixtures import COPIES, PEOPLE, RES  # noqa: E402
from train_helpers import loss_rows, one_line_error, train_opts  # noqa: E402

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path  # noqa: E402
from masquerade.analysis.alignment import align_face  # noqa: E402
from masquerade.cli import train as train_cli  # noqa: E402
from masquerade.cli.main import main  # noqa: E402
from masquerade.errors import InputError, ModelError  # noqa: E402
from masquerade.identity.encoder import IdentityEncoder  # noqa: E402
from masquerade.swappers import create_swapper, swapper_needs_source, swapper_takes_model  # noqa: E402
from masquerade.training.common import IdentityLoss  # noqa: E402
from masquerade.training.configs import (  # noqa: E402
    GENERATOR_PRESETS,
    GeneratorLossConfig,
    GeneratorTrainConfig,
    generator_preset,
)
from masquerade.training.export import export_generator, export_run  # noqa: E402
from masquerade.training.generator import (  # noqa: E402
    GeneratorNet,
    GeneratorTask,
    build_generator,
    model_sizes,
)
from masquerade.training.identity_data import (  # noqa: E402
    clean_pair_batch,
    holdout_people,
    load_identity_faces,
    scan_identity_folder,
)
from masquerade.training.trainer import Trainer  # noqa: E402

# training: slow; people, cache, faces: conftest.py
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


def _config(people: Path, **kw) -> GeneratorTrainConfig:
    kw.setdefault("batch_size", 4)
    kw.setdefault("lr", 2e-3)
    kw.setdefault("lr_d", 2e-3)
    kw.setdefault("same_ratio", 0.5)
    return GeneratorTrainConfig(str(people), model=generator_preset("tiny", RES), **kw)


CROSS = (np.array([0, 4, 1, 5]), np.array([4, 0, 5, 1]))  # (sources, targets): other person
SAME = (np.array([0, 4, 1, 5]), np.array([2, 6, 3, 7]))  # another photo of the same person


@pytest.fixture(scope="module")
def trained(tmp_path_factory, people, faces):
    """30 steps of the tiny generator (previews and checkpoints every 15); the losses of fixed pairs
    before and after."""
    out = tmp_path_factory.mktemp("run") / "gen"
    task = GeneratorTask(_config(people), data=faces)
    Trainer(task, out, train_opts(0)).run()  # step 0: the initial weights
    cpu = torch.device("cpu")
    before = task.evaluate(*CROSS, cpu), task.evaluate(*SAME, cpu)
    Trainer(task, out, train_opts(30, save_every=15, preview_every=15)).run()
    after = task.evaluate(*CROSS, cpu), task.evaluate(*SAME, cpu)
    return out, before, after


# -- data -----------------------------------------------------------------------------------------


def test_identity_folder_cache_and_holdout(people: Path, cache: Path, faces, tmp_path: Path) -> None:
    folder = scan_identity_folder(people)
    assert [p.name for p in folder.people] == list(PEOPLE) and folder.photos == 2 * COPIES
    assert len(faces) == 2 * COPIES and faces.people == PEOPLE and faces.skipped == 0
    assert faces.faces.images.shape == (2 * COPIES, RES, RES, 3) and faces.embeddings.shape == (
        2 * COPIES,
        128,
    )
    assert list(faces.person) == [0] * COPIES + [1] * COPIES
    # the cache is used: no analyzer is needed the second time
    again = load_identity_faces(folder, RES, "ffhq", cache=cache, analyzer=object())
    assert np.array_equal(again.faces.images, faces.faces.images)
    assert np.array_equal(again.embeddings, faces.embeddings)
    # the cached embedding is masquerade's identity of the photo (what the swapper computes)
    rgb = load_image(people / "grace_hopper" / "grace_hopper_0000.png").rgb
    with FaceAnalyzer() as fa:
        want = fa.get(rgb)[0].embedding
    assert np.abs(faces.embeddings[COPIES] - want).max() < 1e-4
    # same person: centred identities agree; different people: they do not
    c = faces.centred(np.arange(len(faces)))
    sim = c @ c.T
    assert sim[0, 1:COPIES].min() > 0.5 and sim[0, COPIES:].max() < 0
    # the differentiable chip of the aligned crop gives nearly the photo's embedding (at 32 px: blurred;
    # 0.98 at 64 px, 0.998 at 128), and is on the side of its own person
    b = clean_pair_batch(faces, np.arange(len(faces)), np.arange(len(faces)))
    x, theta = torch.from_numpy(b.target), torch.from_numpy(b.theta)
    with torch.no_grad():
        raw = IdentityLoss()(x, theta).numpy()
        centred = IdentityLoss(faces.mean_embedding)(x, theta).numpy() @ c.T
    assert (raw * faces.unit_embeddings).sum(1).min() > 0.9
    mine = faces.person[:, None] == faces.person[None, :]
    assert centred[mine].min() > 0.1 and centred[~mine].max() < -0.1, centred
    # hold-out: the people of a benchmark are left out (the shipped one names LFW people)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("swap\tastronaut/astronaut_0000.png\tX/X_0001.jpg\t-\tastronaut\tX\n")
    assert holdout_people(pairs) == {"astronaut", "X"}
    assert "Emma_Watson" in holdout_people("lfw_swap_v1") and holdout_people("none") == frozenset()
    with pytest.raises(InputError, match="at least 2 people"):
        scan_identity_folder(people, holdout=holdout_people(pairs))
    with pytest.raises(InputError, match="3 people asked for"):
        scan_identity_folder(people, people=3)
    assert [p.name for p in scan_identity_folder(people, people=2, max_photos=2).people] == list(PEOPLE)


def test_batches_are_a_function_of_seed_and_step(people, faces) -> None:
    t1, t2 = (
        GeneratorTask(_config(people), seed=3, data=faces),
        GeneratorTask(_config(people), seed=3, data=faces),
    )
    a, b = t1.batch(5), t2.batch(5)
    for name in ("target", "theta", "identity", "same", "source_index"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(t1.batch(6).target, a.target)
    assert (
        a.target.shape == (4, 3, RES, RES) and a.eyes.shape == (4, 1, RES, RES) and a.theta.shape == (4, 2, 3)
    )
    np.testing.assert_allclose(np.linalg.norm(a.identity, axis=1), 1.0, atol=1e-5)
    # same-person pairs pair two photos of one person, the others two people
    draws = [t1.batch(s) for s in range(1, 21)]
    same = np.concatenate([d.same for d in draws]).astype(bool)
    src = np.concatenate([d.source_index for d in draws])
    tgt = np.concatenate([d.target_index for d in draws])
    assert 0.25 < same.mean() < 0.75
    assert np.array_equal(faces.person[src] == faces.person[tgt], same)
    assert (src[same] != tgt[same]).all()  # another photo of the person when there is one
    assert (a.eyes.max(axis=(1, 2, 3)) > 0.5).all() and a.eyes.min() >= 0.0


def test_presets_and_shapes() -> None:
    sizes = {p: model_sizes(generator_preset(p, 64))[0] for p in GENERATOR_PRESETS}
    assert sizes["tiny"] < sizes["small"] < sizes["medium"]
    g = build_generator(generator_preset("tiny", RES)).eval()
    x = torch.rand(2, 3, RES, RES)
    with torch.no_grad():
        out, mask = g(x, torch.randn(2, 128))
    assert out.shape == x.shape and mask.shape == (2, 1, RES, RES)
    for t in (out, mask):
        assert float(t.min()) >= 0 and float(t.max()) <= 1
    with pytest.raises(ValueError, match="≥ 0"):
        GeneratorLossConfig(identity=-1)


# -- training -------------------------------------------------------------------------------------


def test_training_reduces_the_losses(trained) -> None:
    out, (cross0, same0), (cross1, same1) = trained
    # identity moves towards the source on pairs of different people, reconstruction of same-person
    # pairs improves, and the mask head learns the face region
    assert cross1["identity"] < cross0["identity"] - 0.1, (cross0, cross1)
    assert same1["reconstruction"] < same0["reconstruction"], (same0, same1)
    assert same1["mask"] < 0.5 * same0["mask"], (same0, same1)
    rows = loss_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert {"total", "identity", "reconstruction", "feature_matching", "discriminator", "eyes"} <= set(
        rows[0]
    )
    for name in ("previews/step_0000015.png", "previews/step_0000030.png", "preview.png", "loss.png"):
        img = load_image(out / name).rgb
        assert img.shape[0] > 4 * RES and img.std() > 10, name
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["latest.pt", "step_0000000.pt", "step_0000015.pt", "step_0000030.pt"]


def test_resume_continues_exactly(tmp_path, people, faces) -> None:
    """2 steps, stop, resume to 3 == 3 steps uninterrupted (losses, generator and discriminator)."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    Trainer(GeneratorTask(_config(people), data=faces), whole, train_opts(3)).run()
    Trainer(GeneratorTask(_config(people), data=faces), split, train_opts(2)).run()
    task = GeneratorTask(_config(people), data=faces)
    res = Trainer(task, split, train_opts(3)).run()
    assert res.start_step == 2 and res.step == 3
    a, b = loss_rows(whole), loss_rows(split)
    assert [r["step"] for r in b] == ["1", "2", "3"]
    for ra, rb in zip(a, b, strict=True):
        assert ra["total"] == rb["total"] and ra["discriminator"] == rb["discriminator"]
    state = torch.load(whole / "checkpoints" / "latest.pt", weights_only=True)["modules"]
    for name, module in task.modules().items():
        for k, v in module.state_dict().items():
            assert torch.equal(v, state[name][k]), (name, k)


# -- export and the swapper -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(trained) -> Path:
    out = trained[0]
    export_generator(out)
    return out


def test_export_matches_pytorch(model_dir: Path, faces) -> None:
    import onnxruntime as ort

    meta = json.loads((model_dir / "model.json").read_text())
    assert (meta["format"], meta["version"], meta["identity"]) == ("masquerade-generator", 1, "dlib128")
    assert (meta["resolution"], meta["template"], meta["steps"], meta["onnx"]) == (
        RES,
        "ffhq",
        30,
        "generator.onnx",
    )
    assert meta["inputs"] == ["target", "identity"] and meta["outputs"] == ["swapped", "mask"]
    assert meta["sha256"] == hashlib.sha256((model_dir / "generator.onnx").read_bytes()).hexdigest()
    state = torch.load(model_dir / "checkpoints" / "latest.pt", weights_only=True)
    g = build_generator(generator_preset("tiny", RES))
    g.load_state_dict(state["modules"]["generator"])
    b = clean_pair_batch(faces, np.array([0, 4, 1]), np.array([4, 0, 2]))  # a batch of 3 (dynamic)
    sess = ort.InferenceSession(str(model_dir / "generator.onnx"), providers=["CPUExecutionProvider"])
    face, mask = sess.run(None, {"target": b.target, "identity": b.identity})
    with torch.no_grad():
        ref_face, ref_mask = GeneratorNet(g).eval()(torch.from_numpy(b.target), torch.from_numpy(b.identity))
    assert face.shape == (3, 3, RES, RES) and mask.shape == (3, 1, RES, RES)
    assert np.abs(face - ref_face.numpy()).max() < 1e-4 and np.abs(mask - ref_mask.numpy()).max() < 1e-4
    # export_run finds the trainer in the checkpoint
    assert export_run(model_dir).sha256 == meta["sha256"]


def test_swap_through_the_cli(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    argv = ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "--swapper", "generator",
            "--model", str(model_dir), "-o", str(out), "--colour", "none", "--no-provenance"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "swapped 1 face" in capsys.readouterr().err
    src, hopper = load_image(sample_path("astronaut")).rgb, load_image(sample_path("grace_hopper")).rgb
    res = load_image(out).rgb
    assert res.shape == src.shape
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(src)[0]
        # the face changed (to the model's face), the corners did not
        crop_in, _ = align_face(src, face.landmarks_5, RES, "ffhq")
        crop_out, _ = align_face(res, face.landmarks_5, RES, "ffhq")
        centre = slice(RES // 3, 2 * RES // 3)
        assert np.abs(crop_out[centre, centre].astype(int) - crop_in[centre, centre]).mean() > 2
        assert np.array_equal(res[:40, :40], src[:40, :40])
        # the library does the same; the source identity is computed once per source face
        fs = FaceSwapper(SwapOptions(swapper="generator", model=str(model_dir), colour="none"), analyzer=fa)
        src_face = fs.source_face(hopper)
        lib, report = fs.swap(hopper, src, source=src_face)
        assert np.array_equal(lib, res) and report.source is src_face
        sw = fs.swapper
        assert len(sw.identities._cache) == 1
        fs.swap(hopper, src, source=src_face)
        assert len(sw.identities._cache) == 1
        want = IdentityEncoder().embed(hopper, src_face.landmarks_68)
        np.testing.assert_allclose(sw.identities(hopper, src_face), want / np.linalg.norm(want), atol=1e-5)


def test_swapper_registry_and_bad_models(model_dir: Path, tmp_path: Path, capsys) -> None:
    assert swapper_needs_source("generator")
    assert swapper_takes_model("generator", model_dir) and not swapper_takes_model("autoencoder", model_dir)
    sw = create_swapper("generator", model=model_dir)
    assert sw.resolution == RES and sw.model_info.steps == 30
    bad = tmp_path / "bad"
    shutil.copytree(model_dir / ".", bad, ignore=shutil.ignore_patterns("checkpoints", "previews"))
    meta = json.loads((bad / "model.json").read_text())
    (bad / "model.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="does not match"):
        create_swapper("generator", model=bad)
    (bad / "model.json").write_text(json.dumps({**meta, "identity": "arcface512"}))
    with pytest.raises(ModelError, match="identity"):
        create_swapper("generator", model=bad)
    for argv, needle in (
        (["--swapper", "generator", "--model", str(model_dir)], "--source"),
        (["--swapper", "generator", "-s", "sample:grace_hopper"], "--model"),
        (["--swapper", "autoencoder", "--model", str(model_dir)], "format"),
    ):
        rc = main(["swap", "-t", "sample:astronaut", "-o", str(tmp_path / "o.png"), *argv])
        one_line_error(capsys, 2, rc, needle)


# -- command line ---------------------------------------------------------------------------------


def test_cli_trains_resumes_and_exports(tmp_path, people, cache, capsys) -> None:
    out = tmp_path / "model"
    base = ["train", "generator", "-o", str(out), "--device", "cpu", "--cache", str(cache)]
    argv = [*base, "--data", str(people), "--preset", "tiny", "--resolution", str(RES), "--batch", "2",
            "--steps", "1", "--preview-every", "1", "--weight", "identity=20",
            "--holdout", "none"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    got = capsys.readouterr()
    assert "exported step 1" in got.out and f"{2 * COPIES} faces of 2 people" in got.out
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "masquerade-generator" and meta["config"]["loss"]["identity"] == 20.0
    assert meta["config"]["model"]["channels"] == GENERATOR_PRESETS["tiny"][0]
    assert meta["data"]["holdout"] == "none"
    # the same folder with only --steps resumes with the stored options
    assert main([*base, "--steps", "2"]) == 0
    assert "resuming at step 1" in capsys.readouterr().out
    assert json.loads((out / "model.json").read_text())["steps"] == 2
    # a different option is refused, in one line, before any work
    rc = main([*base, "--steps", "3", "--same-ratio", "0.7"])
    assert "same_ratio: 0.2 → 0.7" in one_line_error(capsys, 2, rc)
    (out / "model.json").unlink()
    assert main(["train", "export", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["steps"] == 2


def test_cli_bad_inputs_are_one_line(tmp_path, people, cache, capsys) -> None:
    out = str(tmp_path / "o")
    base = ["train", "generator", "-o", out, "--device", "cpu", "--steps", "1", "--cache", str(cache)]
    one_line_error(capsys, 2, main(base), "--data")
    one_line_error(capsys, 2, main([*base, "--data", str(tmp_path / "nope")]), "no such data folder")
    one = tmp_path / "one"
    shutil.copytree(people / "astronaut", one / "astronaut")
    one_line_error(capsys, 2, main([*base, "--data", str(one)]), "at least 2 people")
    one_line_error(capsys, 2, main([*base, "--data", str(people), "--people", "5"]), "5 people asked for")
    if not torch.cuda.is_available():
        rc = main([*base, "--data", str(people), "--device", "cuda"])
        one_line_error(capsys, 2, rc, "CUDA")
    assert train_cli._weight("feature-matching=3") == ("feature_matching", 3.0)
    with pytest.raises(Exception, match="NAME=VALUE"):
        train_cli._weight("nonsense=1")


# -- identity packs and time limits ---------------------------------------------------------------


def test_identity_pack_round_trip_and_training(tmp_path, people, cache, faces, capsys) -> None:
    from masquerade.training.identity_data import load_identity_pack

    pack = tmp_path / "faces.npz"
    argv = ["train", "pack", "--data", str(people), "-o", str(pack), "--resolution", str(RES),
            "--cache", str(cache), "--holdout", "none", "--quality", "95"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert f"{2 * COPIES} faces of 2 people" in capsys.readouterr().out
    got = load_identity_pack(pack)
    assert got.faces.ids == faces.faces.ids and got.people == faces.people
    assert got.template == "ffhq" and got.resolution == RES
    np.testing.assert_array_equal(got.embeddings, faces.embeddings)
    np.testing.assert_array_equal(got.chips, faces.chips)
    np.testing.assert_array_equal(got.faces.landmarks, faces.faces.landmarks)
    np.testing.assert_array_equal(got.faces.masks, faces.faces.masks)  # PNG: lossless
    for mine, theirs in zip(got.faces.images, faces.faces.images, strict=True):  # JPEG at --quality 95
        _, buf = cv2.imencode(".jpg", theirs[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.testing.assert_array_equal(mine, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    np.testing.assert_array_equal(got.person, faces.person)
    # the same choice of people as for a folder
    assert len(load_identity_pack(pack, max_photos=2)) == 4
    assert load_identity_pack(pack, people=1 + 1).people == faces.people
    with pytest.raises(InputError, match="at least 2 people"):
        load_identity_pack(pack, holdout={"astronaut"})
    # an existing pack is kept unless --force; the name must be .npz
    before = pack.read_bytes()
    one_line_error(capsys, 2, main(argv), "exists")
    assert pack.read_bytes() == before
    bad = [*argv[:5], str(tmp_path / "faces.zip"), *argv[6:]]
    one_line_error(capsys, 2, main(bad), ".npz")
    assert not (tmp_path / "faces.zip").exists()
    # train from the pack (a machine without the photos): the pack's resolution is required
    out = tmp_path / "run"
    base = ["train", "generator", "-o", str(out), "--device", "cpu", "--data", str(pack), "--holdout", "none",
            "--preset", "tiny", "--batch", "2", "--preview-every", "0", "--no-export"]  # fmt: skip
    one_line_error(capsys, 2, main([*base, "--steps", "1", "--resolution", "64"]), "--resolution 32")
    rc = main([*base, "--resolution", str(RES), "--steps", "1000", "--time-limit", "0.01s"])
    assert rc == 0, capsys.readouterr().err
    got_io = capsys.readouterr()
    assert "time limit reached at step 1 of 1000" in got_io.err
    assert f"{2 * COPIES} faces of 2 people" in got_io.out
    assert (out / "checkpoints" / "latest.pt").is_file() and len(loss_rows(out)) == 1
    # a file that is not a pack
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    rc = main([*base[:7], str(junk), *base[8:], "--resolution", str(RES), "--steps", "1", "--force"])
    one_line_error(capsys, 2, rc, "not an identity pack")


def test_durations() -> None:
    assert train_cli._duration("600") == 600.0
    assert train_cli._duration("90s") == 90.0
    assert train_cli._duration("45m") == 2700.0
    assert train_cli._duration("1h30m") == 5400.0
    assert train_cli._duration("0.5h") == 1800.0
    for bad in ("", "m", "-3", "0", "1x", "2 hours"):
        with pytest.raises(Exception, match=r"duration|more than 0"):
            train_cli._duration(bad)

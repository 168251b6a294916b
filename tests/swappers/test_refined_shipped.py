"""The refiner that ships in the package: listed and verified by the registry, its sha256 checked at load,
and an identity-drift guard on held-out LFW people (the refined output stays closer to the source)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image
from masquerade.cli.main import main
from masquerade.errors import InputError, ModelError
from masquerade.evaluation import load_benchmark
from masquerade.models import get_model
from masquerade.swappers import Mesh3DOptions, RefinedOptions, create_swapper
from masquerade.swappers.refined import SHIPPED, model_relight, read_refiner_info, shipped_model_folder


def test_registry_lists_and_verifies_the_shipped_models(capsys) -> None:
    assert main(["models", "--verify"]) == 0
    text = capsys.readouterr().out
    for name in ("masquerade-refiner", "masquerade-occlusion"):
        assert name in text
    info = read_refiner_info()
    assert info.sha256 == get_model(SHIPPED).sha256
    assert info.onnx.stat().st_size <= 20 * 2**20
    card = (shipped_model_folder() / "MODEL_CARD.md").read_text()
    assert "non-commercial" in card and info.sha256 in card


def test_a_changed_shipped_refiner_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "refiner"
    shutil.copytree(shipped_model_folder(), copy)
    onnx = read_refiner_info(copy).onnx
    with onnx.open("r+b") as fh:
        fh.seek(500)
        fh.write(b"\x07\x07\x07")
    with pytest.raises(ModelError, match="sha256"):
        create_swapper("refined", model=copy)
    # a registry entry that does not match the file in the package: refused before any use
    spec = get_model(SHIPPED)
    monkeypatch.setattr("masquerade.models.get_model", lambda name: replace(spec, sha256="0" * 64))
    with pytest.raises(ModelError, match="not the shipped refiner"):
        create_swapper("refined")


@pytest.mark.slow
def test_refined_output_stays_closer_to_the_source(lfw: Path) -> None:
    """Identity-drift guard: on 8 different-person pairs of held-out LFW people (``lfw_swap_v1``), the refined
    swap is closer to the source than to the target about as often as the mesh3d warp it corrects."""
    pairs = [p for p in load_benchmark("lfw_swap_v1", lfw).pairs if p.kind == "swap"][:8]
    wins = {"mesh3d": 0, "refined": 0}
    with FaceAnalyzer() as fa:
        for name in wins:
            with FaceSwapper(SwapOptions(swapper=name)) as fs:
                for p in pairs:
                    src, tgt = load_image(p.source).rgb, load_image(p.target).rgb
                    out, _ = fs.swap(src, tgt)
                    e = [fa.get(x)[0].embedding for x in (out, src, tgt)]
                    wins[name] += int(np.linalg.norm(e[0] - e[1]) < np.linalg.norm(e[0] - e[2]))
    assert wins["refined"] >= 6 and wins["refined"] >= wins["mesh3d"] - 1, wins


def test_video_mode_folds_each_look_in_at_the_next_frame(hopper: np.ndarray, astronaut: np.ndarray) -> None:
    """In a video the network looks at every second frame on its own thread; what it saw is averaged
    into the person's correction from the next frame on, whatever the timing (results are
    reproducible), and a new person's first frame is refined at once, as a photo is."""
    from concurrent.futures import Future

    from masquerade.compose.composite import composite, mouth_policy
    from masquerade.swappers.refined import VIDEO_EVERY, VIDEO_SMOOTHING, add_correction

    with FaceAnalyzer(identity=False) as fa:
        s_face, t_face = fa.get(hopper)[0], fa.get(astronaut)[0]
    sw = create_swapper("refined")
    patch = sw.swap(hopper, s_face, astronaut, t_face)
    base, m = composite(astronaut.copy(), patch, t_face, SwapOptions(), mouth_policy(s_face, t_face))
    bright = np.clip(base.astype(int) + 40, 0, 255).astype(np.uint8)  # another look at frame 2
    # a video's looks are the plain crop's (the running average does what the mirror does for a photo)
    c_base, mat = sw.correction(base, hopper, s_face, t_face, m, mirror=False)
    c_bright, _ = sw.correction(bright, hopper, s_face, t_face, m, mirror=False)
    assert np.abs(c_bright - c_base).max() > 2  # the network sees the difference

    def expected(img: np.ndarray, corr: np.ndarray) -> np.ndarray:
        out = img.copy()
        add_correction(out, corr, mat)
        return out

    assert VIDEO_EVERY == 2
    mixed = VIDEO_SMOOTHING * c_bright + (1 - VIDEO_SMOOTHING) * c_base
    want = [expected(base, c_base), expected(base, c_base), expected(bright, c_base), expected(base, mixed)]
    assert np.abs(want[3].astype(int) - want[1]).max() >= 2  # frame 3 shows frame 2's look
    for _ in range(2):  # twice: the same frames whatever the worker thread's timing
        state: dict = {}
        for i, img in enumerate([base, base, bright, base]):
            got = img.copy()
            sw.refine(got, hopper, s_face, t_face, m, state=state)
            # the look's session runs on one thread: its sums may round differently by a level
            assert np.abs(got.astype(int) - want[i]).max() <= 1, i
        assert "look" not in state  # frame 2's look was folded in at frame 3
        got = base.copy()
        sw.refine(got, hopper, s_face, t_face, m, state=state)  # frame 4 looks again
        assert isinstance(state["look"], Future)


def test_a_photo_is_refined_with_its_mirrored_crop_too(hopper: np.ndarray, astronaut: np.ndarray) -> None:
    """On a photo the correction is the average of the crop's and the mirrored crop's (mirrored back): a
    mirrored crop gets exactly the mirrored correction, which the network alone does not give; with
    ``mirror=False`` it is the plain crop's."""
    from masquerade.compose.composite import composite, mouth_policy

    with FaceAnalyzer(identity=False) as fa:
        s_face, t_face = fa.get(hopper)[0], fa.get(astronaut)[0]
    sw = create_swapper("refined")
    assert sw.mirror
    patch = sw.swap(hopper, s_face, astronaut, t_face)
    base, m = composite(astronaut.copy(), patch, t_face, SwapOptions(), mouth_policy(s_face, t_face))
    feeds, _ = sw._feeds(base, hopper, s_face, t_face, m)
    flipped = {k: v if k == "identity" else np.ascontiguousarray(v[..., ::-1]) for k, v in feeds.items()}
    plain, back = sw._run(feeds), sw._run(flipped)[:, ::-1]
    assert np.abs(plain - back).max() > 1  # the network alone is not mirror-symmetric
    both = sw._run(feeds, mirror=True)
    assert np.abs(both - (plain + back) / 2).max() < 1e-3
    assert np.abs(sw._run(flipped, mirror=True)[:, ::-1] - both).max() < 1e-3
    got, _ = sw.correction(base, hopper, s_face, t_face, m)
    assert np.abs(got - both).max() < 1e-3
    single, _ = create_swapper("refined", mirror=False).correction(base, hopper, s_face, t_face, m)
    assert np.abs(single - plain).max() < 1e-3


def test_the_refined_warp_is_relit_as_its_model_was_trained() -> None:
    """mesh3d's options for the refined swapper: ``relight`` left out is the model's own strength (its
    model.json; mesh3d's default for a model that does not say), given is given; only the refined swapper's
    options may leave it out."""
    info = read_refiner_info()
    assert create_swapper("refined").options.relight == model_relight(info) == info.meta.get("relight", 0.5)
    assert create_swapper("refined", options=RefinedOptions(relight=0.25)).options.relight == 0.25
    assert RefinedOptions().relight is None and Mesh3DOptions().relight == 0.5
    with pytest.raises(InputError, match="relight"):
        Mesh3DOptions(relight=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="relight"):
        RefinedOptions(relight=1.5)

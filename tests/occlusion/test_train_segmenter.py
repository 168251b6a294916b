"""Training the occlusion segmenter (masquerade.training.segmenter): the faces it learns from, the
occluder mixes ("basic": the benchmarks' five kinds; "realistic": eight kinds with photo augmentation;
"hands": the realistic mix with real hands cut out of the training photos),
the loss falling on a tiny set, and switching an old run to the realistic mix when resuming.

The data is the tiny folder of two people made from the sample photos (conftest.py ``people``); the model
is the tiny preset on 64-px crops.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from train_helpers import loss_rows, train_opts  # noqa: E402

from masquerade.errors import InputError  # noqa: E402
from masquerade.occlusion.hand_cutouts import HandCutouts  # noqa: E402
from masquerade.occlusion.synthetic import (  # noqa: E402
    OCCLUDER_KINDS,
    REAL_HAND,
    REALISTIC_KINDS,
    make_occluder,
)
from masquerade.training.configs import SegmenterTrainConfig, segmenter_preset  # noqa: E402
from masquerade.training.segmenter import (  # noqa: E402
    SegmenterTask,
    _pick_kind,
    load_segmenter_faces,
    make_batch,
    occluded_sample,
)
from masquerade.training.trainer import ConfigMismatchError, Trainer  # noqa: E402

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.slow]


def _config(people: Path, **kw) -> SegmenterTrainConfig:
    kw.setdefault("batch_size", 8)
    return SegmenterTrainConfig(
        data=(str(people),), holdout="none", resolution=64, model=segmenter_preset("tiny"), max_non_skin=1.0,
        **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def faces(people: Path, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("segmenter-cache")
    data, summary = load_segmenter_faces(_config(people), 0, cache, workers=1)
    return data, summary


def test_config_occluder_mixes() -> None:
    cfg = SegmenterTrainConfig(data=("x",))
    assert cfg.occluders == "realistic"
    stored = cfg.to_dict()
    del stored["occluders"]  # a run from before the choice existed trained on the basic five
    assert SegmenterTrainConfig.from_dict(stored).occluders == "basic"
    with pytest.raises(ValueError, match="occluders"):
        SegmenterTrainConfig(data=("x",), occluders="fancy")


def test_occluder_mixes_draw_their_kinds() -> None:
    rng = np.random.default_rng(0)
    basic = Counter(_pick_kind(rng, "basic") for _ in range(2000))
    realistic = Counter(_pick_kind(rng, "realistic") for _ in range(2000))
    assert set(basic) == set(OCCLUDER_KINDS)
    assert set(realistic) == set(OCCLUDER_KINDS) | set(REALISTIC_KINDS)
    share = sum(realistic[k] for k in REALISTIC_KINDS) / 2000
    assert 0.48 < share < 0.6, share  # bangs, palms and sunglasses get 54 % of the draws
    hands = Counter(_pick_kind(rng, "hands") for _ in range(2000))
    assert set(hands) == set(realistic) | {REAL_HAND}
    assert 0.17 < hands[REAL_HAND] / 2000 < 0.25 and hands["palm"] < realistic["palm"] / 2


def test_samples_label_exactly_what_was_pasted(faces) -> None:
    data, summary = faces
    assert len(data) >= 2 and "clean faces" in summary
    r = data.images.shape[1]
    rng = np.random.default_rng(1)
    occluded = 0
    for k in range(24):
        i = k % len(data)
        img, label = occluded_sample(data, i, rng, 0.2, "basic")
        assert img.shape == (r, r, 3) and label.shape == (r, r) and set(np.unique(label)) <= {0.0, 1.0}
        changed = np.abs(img.astype(int) - data.images[i].astype(int)).max(-1) > 0
        # without photo augmentation ("basic"), the pixels that changed are the occluders' (up to their
        # anti-aliased rims) and every labelled pixel changed or matches by chance
        assert (changed & (label == 0)).sum() <= 0.5 * max(1, (label > 0).sum()) + 4 * r
        if label.any():
            occluded += 1
            assert changed[label > 0].mean() > 0.9
        else:
            assert not changed.any()
    assert 12 <= occluded < 24  # ~80 % have an occluder
    # the realistic mix changes the whole photo now and then (shadow, blur, JPEG), labels stay binary
    b = make_batch(data, np.arange(8) % len(data), np.random.default_rng(2), 0.0, "realistic")
    assert b.image.shape == (8, 3, r, r) and set(torch.unique(b.label).tolist()) <= {0.0, 1.0}
    assert float(b.label.mean()) > 0.01


def _hand_bank(size: int = 32) -> HandCutouts:
    """One flat "hand": a bright disc of alpha 1 and 21 landmarks on a vertical line through it."""
    rgba = np.zeros((1, size, size, 4), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2
    rgba[0][disc] = (250, 250, 250, 255)
    lm = np.stack([np.full(21, size / 2), np.linspace(size * 1.2, -size * 0.3, 21)], 1)  # palm: 2/3 size
    return HandCutouts(rgba, lm[None].astype(np.float32))


def test_samples_with_real_hands(faces, people: Path, tmp_path: Path) -> None:
    data, _ = faces
    with_hands = type(data)(data.images, data.ovals, data.landmarks, data.person, _hand_bank())
    assert len(with_hands.subset(np.arange(2)).hands) == 1  # the bank goes with every subset
    img = data.images[0]
    layer = make_occluder(REAL_HAND, 0, data.landmarks[0], img.shape, image=img, hands=with_hands.hands)
    assert 0.01 < layer.mask.mean() < 0.5  # the disc, scaled to the face, on the crop
    rng = np.random.default_rng(3)
    for k in range(40):  # the mix draws it (a fifth of the draws) and labels stay binary
        _, label = occluded_sample(with_hands, k % len(data), rng, 0.0, "hands")
        assert set(np.unique(label)) <= {0.0, 1.0}
    # the sample people's photos have no hands: a one-line error, not an empty bank
    with pytest.raises(InputError, match="no hand was found"):
        load_segmenter_faces(_config(people, occluders="hands"), 0, tmp_path, workers=1)


def test_training_lowers_the_loss_and_an_old_run_can_switch_to_realistic(faces, tmp_path: Path) -> None:
    data, _ = faces
    basic = _config(Path("x"), occluders="basic", lr=3e-3)
    out = tmp_path / "run"
    Trainer(SegmenterTask(basic, faces=data), out, train_opts(40, save_every=40)).run()
    rows = loss_rows(out)
    first = np.mean([float(r["total"]) for r in rows[:8]])
    last = np.mean([float(r["total"]) for r in rows[-8:]])
    assert last < 0.9 * first, (first, last)
    # the mix may change when resuming (as the data folders may) …
    realistic = _config(Path("x"), occluders="realistic", lr=3e-3)
    Trainer(SegmenterTask(realistic, faces=data), out, train_opts(44)).run()
    assert len(loss_rows(out)) == 44
    # … other settings may not
    with pytest.raises(ConfigMismatchError, match="lr"):
        Trainer(SegmenterTask(_config(Path("x"), lr=1e-2), faces=data), out, train_opts(48)).run()


def test_turned_faces_are_drawn_more_often(faces, astronaut: np.ndarray, tmp_path: Path) -> None:
    """``turned``: the asymmetry is 0 for a frontal face's landmarks, grows as the nose moves towards one
    edge, and the batches draw the turned faces more often; 0 draws as before; a run stored before the
    option resumes as 0."""
    from masquerade import FaceAnalyzer
    from masquerade.training.segmenter import turn_asymmetry

    with FaceAnalyzer(identity=False) as fa:
        lm = fa.get(astronaut)[0].landmarks_68.astype(np.float64)
    frontal = lm.copy()
    frontal[:, 0] = lm[:, 0] - lm[30, 0]  # the nose tip at x = 0, the edges placed symmetrically round it
    frontal[16, 0], frontal[0, 0] = 50.0, -50.0
    turned = frontal.copy()
    turned[30, 0] = 30.0
    a = turn_asymmetry(np.stack([frontal, turned]))
    assert a[0] == 0 and a[1] == pytest.approx(0.6)
    data, _ = faces
    task = SegmenterTask(_config(Path("x"), turned=50.0), faces=data)
    asym = turn_asymmetry(data.landmarks)
    draws = Counter(int(i) for s in range(300) for i in task.draw(np.random.default_rng(s)))
    most, least = int(np.argmax(asym)), int(np.argmin(asym))
    assert asym[most] > asym[least] + 0.02 and draws[most] > 1.3 * draws[least], (asym, draws)
    plain = SegmenterTask(_config(Path("x")), faces=data)
    rng = np.random.default_rng(3)
    assert np.array_equal(plain.draw(np.random.default_rng(3)), rng.integers(0, len(data), 8))
    out = tmp_path / "run"
    Trainer(SegmenterTask(_config(Path("x")), faces=data), out, train_opts(1, save_every=1)).run()
    latest = out / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=False)
    del state["config"]["turned"]
    torch.save(state, latest)
    Trainer(SegmenterTask(_config(Path("x")), faces=data), out, train_opts(2)).run()
    assert len(loss_rows(out)) == 2

"""The trainers' settings without PyTorch: ``masquerade.training.configs`` and ``masquerade train``'s
options, choices, defaults and help, which must show the values the trainers use."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from masquerade.cli import train as train_cli
from masquerade.cli.main import build_parser
from masquerade.training.configs import (
    DEFAULT_PRESET,
    AutoencoderConfig,
    DiffusionConfig,
    GeneratorConfig,
    GeneratorTrainConfig,
    RefinerConfig,
    RefinerTrainConfig,
    autoencoder_preset,
    diffusion_preset,
    generator_preset,
    refiner_preset,
    segmenter_preset,
)

# option (argparse dest) → the config field it sets
FIELDS = {
    "variant": "model.variant",
    "resolution": "model.resolution",
    "shade": "model.shade",
    "batch": "batch_size",
    **{name: name for name in ("lr", "lr_d", "lr_floor", "same_ratio", "holdout", "template", "ema")},
    **{name: name for name in ("schedule",)},
    **{name: name for name in ("timesteps", "cond_drop", "sampling_steps", "guidance")},
    **{name: name for name in ("condition", "strength", "same_per_person", "different", "max_photos")},
    **{name: name for name in ("corrupt", "identity_samples", "no_occluder", "max_non_skin", "occluders")},
    "turned": "turned",
    "relight": "relight",
}
RUN_FIELDS = {"steps": "steps", "device": "device", "workers": "prefetch", "preview_every": "preview_every",
              "save_every": "save_every", "keep_checkpoints": "keep_checkpoints"}  # fmt: skip
NOT_SETTINGS = {"cache", "build_workers"}  # shown defaults that are not training settings (cache, processes)
PRESETS = {
    "autoencoder": autoencoder_preset, "generator": generator_preset, "diffusion": diffusion_preset,
    "refiner": refiner_preset, "segmenter": segmenter_preset,
}  # fmt: skip


def _subparser(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _shown(help_text: str | None) -> str | None:
    """The default a help line shows: ``… (default 64)``, ``(default X, why)`` or ``… (25)``; None when
    it shows none."""
    m = re.search(r"\(default ([^():,]+)[^():]*\)$|\((\d[\d.e-]*)\)$", help_text or "")
    return (m.group(1) or m.group(2)) if m else None


def _same(shown: str, value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(shown) == value
    return shown == str(value)


def _field(cfg: Any, name: str) -> Any:
    for part in name.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _run_of(kind: str, tmp_path: Path) -> tuple[argparse.ArgumentParser, argparse.Namespace, Any, int]:
    """(the trainer's parser, its arguments with every option left out, the config and seed it trains)."""
    data = ["--data", str(tmp_path)]
    if kind == "autoencoder":
        data = ["--a", str(tmp_path), "--b", str(tmp_path)]
    args = build_parser().parse_args(["train", kind, "-o", str(tmp_path / "run"), *data])
    cfg, seed = getattr(train_cli, f"_{kind}_config")(args, None)
    return _subparser("train", kind), args, cfg, seed


@pytest.mark.parametrize("kind", ["autoencoder", "generator", "diffusion", "refiner", "segmenter"])
def test_help_shows_the_values_the_trainer_uses(kind: str, tmp_path: Path) -> None:
    parser, args, cfg, seed = _run_of(kind, tmp_path)
    run = train_cli._run_options(args, args.device, seed)
    checked = set()
    for action in parser._actions:
        shown = _shown(action.help)
        if action.dest == "weight":  # "a loss weight (repeat): identity (10), reconstruction (10), …"
            weights = dict(re.findall(r"(\w+) \(([\d.e-]+)\)", action.help or ""))
            assert weights and weights.keys() == asdict(cfg.loss).keys(), action.help
            assert all(_same(weights[k], v) for k, v in asdict(cfg.loss).items()), (action.help, cfg.loss)
        elif shown is None or action.dest in NOT_SETTINGS:
            continue
        elif action.dest == "preset":
            assert shown == DEFAULT_PRESET and action.choices is not None and shown in action.choices
            if kind == "segmenter":  # (its crop size is no model setting)
                assert cfg.model == PRESETS[kind](shown)
            else:
                assert cfg.model == PRESETS[kind](shown, resolution=cfg.model.resolution)
        elif action.dest == "seed":
            assert _same(shown, seed)
        elif action.dest in RUN_FIELDS:
            assert _same(shown, getattr(run, RUN_FIELDS[action.dest])), (action.dest, shown, run)
            assert action.default == getattr(run, RUN_FIELDS[action.dest])
        else:
            assert action.dest in FIELDS, f"--{action.dest} shows a default no test checks"
            assert _same(shown, _field(cfg, FIELDS[action.dest])), (action.dest, shown, cfg)
        checked.add(action.dest)
    required = {"resolution", "preset", "batch", "lr", "seed", "steps", "workers"}
    assert required - ({"resolution"} if kind == "segmenter" else set()) <= checked


def test_pack_defaults_are_the_generators(tmp_path: Path) -> None:
    """``train pack`` aligns faces as a generator run with default options will want them."""
    _, _, cfg, _ = _run_of("generator", tmp_path)
    pack = _subparser("train", "pack")
    actions = {a.dest: a for a in pack._actions}
    for dest, field in (("holdout", "holdout"), ("template", "template"), ("resolution", "model.resolution")):
        assert actions[dest].default == _field(cfg, field)
        assert _same(_shown(actions[dest].help) or "", actions[dest].default)


def test_model_defaults_are_the_default_preset() -> None:
    assert AutoencoderConfig() == autoencoder_preset(DEFAULT_PRESET)
    assert GeneratorConfig() == generator_preset(DEFAULT_PRESET)
    assert DiffusionConfig() == diffusion_preset(DEFAULT_PRESET)
    assert RefinerConfig() == refiner_preset(DEFAULT_PRESET)
    assert GeneratorTrainConfig("x").model == generator_preset()
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose from tiny, small, medium"):
        generator_preset("huge")


def test_refiner_cool_down() -> None:
    """--lr-decay FROM:TO: the rate is --lr up to FROM, falls on a half cosine to --lr-floor × --lr at TO
    and stays there; without it, constant. A resumed run keeps the stored span unless given again."""
    cfg = RefinerTrainConfig(("x",), lr_decay=(100, 300), lr_floor=0.2)
    assert [cfg.lr_scale(s) for s in (1, 100, 200, 300, 10_000)] == pytest.approx([1, 1, 0.6, 0.2, 0.2])
    assert cfg.lr_scale(150) > cfg.lr_scale(160) > cfg.lr_scale(250)
    assert RefinerTrainConfig(("x",)).lr_scale(10**6) == 1.0
    as_json = cfg.to_dict() | {"lr_decay": [100, 300]}
    assert RefinerTrainConfig.from_dict(as_json) == cfg
    for bad in ((300, 100), (5, 5), (-1, 10)):
        with pytest.raises(ValueError, match="lr_decay"):
            RefinerTrainConfig(("x",), lr_decay=bad)
    parser = build_parser()
    args = parser.parse_args(["train", "refiner", "-o", "o", "--data", "d", "--lr-decay", "100:300"])
    stored = train_cli._refiner_config(args, None)[0].to_dict()
    assert stored["lr_decay"] == (100, 300)
    again = parser.parse_args(["train", "refiner", "-o", "o"])
    assert train_cli._refiner_config(again, {**stored, "seed": 0})[0].lr_decay == (100, 300)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "refiner", "-o", "o", "--lr-decay", "300:100"])


def test_segmenter_turned_from_the_command_line(tmp_path: Path) -> None:
    """--turned K reaches the config (and is kept when a run is resumed without it); out of range or not a
    number, argparse refuses it."""
    parser = build_parser()
    args = parser.parse_args(["train", "segmenter", "-o", "o", "--data", str(tmp_path), "--turned", "4"])
    stored = train_cli._segmenter_config(args, None)[0].to_dict()
    assert stored["turned"] == 4.0
    again = parser.parse_args(["train", "segmenter", "-o", "o"])
    assert train_cli._segmenter_config(again, {**stored, "seed": 0})[0].turned == 4.0
    for bad in ("-1", "101", "identity=2"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "segmenter", "-o", "o", "--turned", bad])


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="100")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_configs_and_train_help_need_no_torch() -> None:
    out = _python("import sys; import masquerade.training.configs; print('torch' in sys.modules)")
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from masquerade.cli.main import main\n"
        "for kind in ('autoencoder', 'generator', 'diffusion', 'pack'):\n"
        "    try:\n"
        "        main(['train', kind, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (kind, exc.code)\n"
        "print(main(['train', 'generator', '-o', 'unused', '--data', 'unused']))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "--weight NAME=VALUE" in out.stdout and "(default 0.8)" in out.stdout  # diffusion's same_ratio
    assert out.stdout.strip().endswith("2")  # training itself says what to install
    assert "training needs PyTorch" in out.stderr

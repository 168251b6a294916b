"""``masquerade train``: train learned swappers (needs PyTorch) and export them to ONNX.

Importing this module does not import torch, so the command line works (and says what to install)
without it: the options' choices, defaults and help come from the trainers' torch-free settings
(:mod:`masquerade.training.configs`), the values the trainers use.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError
from ..swappers.diffusion import SCHEDULES
from ..training import TORCH_HINT, require_torch
from ..training.configs import (
    AUTOENCODER_PRESETS,
    AUTOENCODER_STEPS,
    DEFAULT_PRESET,
    DIFFUSION_CONDITIONS,
    DIFFUSION_LOSS_NAMES,
    DIFFUSION_PRESETS,
    DIFFUSION_STEPS,
    GENERATOR_LOSS_NAMES,
    GENERATOR_PRESETS,
    GENERATOR_STEPS,
    REFINER_LOSS_NAMES,
    REFINER_PRESETS,
    REFINER_STEPS,
    SEGMENTER_OCCLUDERS,
    SEGMENTER_PRESETS,
    SEGMENTER_STEPS,
    SHIPPED_INIT,
    TEMPLATES,
    VARIANTS,
    AugmentConfig,
    AutoencoderTrainConfig,
    DiffusionLossConfig,
    DiffusionTrainConfig,
    GeneratorLossConfig,
    GeneratorTrainConfig,
    RefinerLossConfig,
    RefinerTrainConfig,
    SegmenterTrainConfig,
    TrainOptions,
    autoencoder_preset,
    diffusion_condition_preset,
    field_defaults,
    generator_preset,
    refiner_preset,
    resolve_path,
    segmenter_preset,
)


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _non_negative(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return v


def _resolution(text: str) -> int:
    v = int(text)
    if v < 32 or v % 16:
        raise argparse.ArgumentTypeError("must be a multiple of 16, at least 32")
    return v


def _lr(text: str) -> float:
    v = float(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return v


def _step_span(text: str) -> tuple[int, int]:
    try:
        start, end = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("must be two steps, FROM:TO") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError("FROM must be ≥ 0 and before TO")
    return start, end


def _ratio(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return v


def _draw_weight(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return v


def _duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``45m``, ``2h`` or ``1h30m``."""
    import re

    t = text.strip().lower()
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", t)
    if not t or m is None or not any(m.groups()):
        raise argparse.ArgumentTypeError("expected a duration such as 600, 90s, 45m, 2h or 1h30m")
    h, mins, secs = (float(g) if g else 0.0 for g in m.groups())
    v = 3600 * h + 60 * mins + secs
    if v <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return v


def _quality(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("must be 1 to 100")
    return v


def _weights_of(names: tuple[str, ...]) -> Any:
    """An argparse type for ``NAME=VALUE`` loss weights with NAME one of ``names``."""

    def parse(text: str) -> tuple[str, float]:
        name, sep, value = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in names:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(names)}")
        try:
            v = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not v >= 0:
            raise argparse.ArgumentTypeError("weights must be 0 or more")
        return name, v

    return parse


_weight = _weights_of(GENERATOR_LOSS_NAMES)
_diffusion_weight = _weights_of(DIFFUSION_LOSS_NAMES)
_refiner_weight = _weights_of(REFINER_LOSS_NAMES)


def _show(value: Any) -> str:
    """A default as the help text shows it (``5e-5``, ``0.8``, ``10``)."""
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _weights_help(weights: Any) -> str:
    """``identity (10), reconstruction (10), …``: each loss weight with its default."""
    return ", ".join(f"{name} ({_show(v)})" for name, v in asdict(weights).items())


def _add_run_options(p: argparse.ArgumentParser, model_file: str) -> None:
    """The options of how a run goes (device, threads, outputs), shared by every trainer."""
    run = TrainOptions()
    p.add_argument(
        "--device", default=run.device,
        help=f"auto (CUDA when available), cpu, cuda or cuda:N (default {run.device})",
    )  # fmt: skip
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument(
        "--time-limit", type=_duration, metavar="DURATION",
        help="stop after this much training in this session (e.g. 45m, 2h), save and export as if done; "
        "the same command continues later",
    )  # fmt: skip
    p.add_argument("--threads", type=_positive, help="CPU threads for PyTorch (default: all cores)")
    for flag, value, what in (
        ("--workers", run.prefetch, "threads preparing batches ahead, 0 = none"),
        ("--preview-every", run.preview_every, "steps between previews"),
        ("--save-every", run.save_every, "steps between checkpoints"),
        ("--keep-checkpoints", run.keep_checkpoints, "step checkpoints kept, 0 = all"),
    ):
        p.add_argument(flag, type=_non_negative, default=value, help=f"{what} ({value})")
    p.add_argument("--no-export", action="store_true", help=f"do not export {model_file} at the end")
    p.add_argument(
        "--force", action="store_true",
        help="start over in OUT even if it holds another run (its checkpoints are deleted) or other files",
    )  # fmt: skip


def _add_model_options(
    p: argparse.ArgumentParser, defaults: dict[str, Any], presets: dict[str, Any], steps: int, batch: str
) -> None:
    """--resolution, --preset, --steps and --batch, with the trainer's ``defaults``."""
    p.add_argument(
        "--resolution", type=_resolution,
        help=f"face size in pixels, multiple of 16 (default {defaults['model'].resolution})",
    )  # fmt: skip
    p.add_argument("--preset", choices=tuple(presets), help=f"model size (default {DEFAULT_PRESET})")
    p.add_argument("--steps", type=_non_negative, default=steps, help=f"total steps to reach ({steps})")
    p.add_argument("--batch", type=_positive, help=f"{batch} (default {defaults['batch_size']})")


def _add_identity_data_options(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """The data options of the trainers on identity-labelled faces (generator, diffusion)."""
    p.add_argument(
        "--data", type=Path, metavar="DIR|PACK",
        help="folder of person folders (LFW or ROOT/<id>/*.jpg), or an identity pack (masquerade train pack)",
    )  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="run folder")
    p.add_argument(
        "--people", "--lfw-people", dest="people", type=_positive, metavar="N",
        help="train on N people with two or more photos, drawn with a fixed seed (default: everyone)",
    )  # fmt: skip
    p.add_argument("--max-photos", type=_positive, metavar="N", help="at most N photos per person")
    p.add_argument(
        "--holdout", metavar="BENCHMARK|PAIRS|none",
        help=f"leave out the people of this benchmark or pairs file (default {defaults['holdout']}, the "
        "evaluation benchmark)",
    )  # fmt: skip
    p.add_argument("--template", choices=TEMPLATES, help=f"face alignment (default {defaults['template']})")
    p.add_argument(
        "--cache", type=Path, metavar="DIR",
        help="where aligned faces are cached (default $MASQUERADE_CACHE or ~/.cache/masquerade)",
    )  # fmt: skip


def _add_pair_data_options(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """The data options of the trainers on photo pairs and faces of person folders (refiner, segmenter)."""
    p.add_argument(
        "--data", type=Path, action="append", metavar="DIR",
        help="folder of person folders (CelebA, LFW or ROOT/<id>/*.jpg); repeat for several",
    )  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="run folder")
    p.add_argument(
        "--holdout", metavar="BENCHMARK|PAIRS|none",
        help=f"leave out the people of this benchmark or pairs file (default {defaults['holdout']}: every "
        "shipped benchmark's)",
    )  # fmt: skip
    p.add_argument(
        "--max-photos", type=_positive, metavar="N", help=f"photos per person ({defaults['max_photos']})"
    )
    p.add_argument(
        "--cache", type=Path, metavar="DIR",
        help="where analysed photos, warps and crops are cached (default $MASQUERADE_CACHE or "
        "~/.cache/masquerade)",
    )  # fmt: skip
    p.add_argument(
        "--build-workers", type=_positive, default=2, metavar="N",
        help="processes analysing photos and making warps (2)",
    )  # fmt: skip


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    seed = TrainOptions().seed
    t = sub.add_parser(
        "train",
        help=f"train a learned swapper on facesets (needs PyTorch: {TORCH_HINT})",
        description="Train learned swappers. Runs on the CPU (slowly, at small resolutions) or on a CUDA "
        "GPU with the same command. Checkpoints, previews and loss curves are written while training; "
        "running the same command again resumes.",
    )  # fmt: skip
    tsub = t.add_subparsers(dest="train_command", metavar="MODEL")
    ae = tsub.add_parser(
        "autoencoder",
        help="DeepFaceLab-style pair autoencoder (DF or LIAE) for one person A → one identity B",
        description="Train a pair autoencoder: a shared encoder with per-identity decoders (DF) or a "
        "shared decoder with separate inter layers (LIAE). A is the person whose face gets replaced, B "
        "the identity put on. Writes OUT/checkpoints/, OUT/previews/, OUT/loss.csv, OUT/loss.png and, "
        "when done, OUT/autoencoder.onnx + OUT/model.json. Options left out on a resumed run keep the "
        "run's values.",
    )  # fmt: skip
    d = field_defaults(AutoencoderTrainConfig)
    ae.add_argument("--a", type=Path, metavar="FACESET_A", help="faceset of the person to replace (target)")
    ae.add_argument("--b", type=Path, metavar="FACESET_B", help="faceset of the identity to put on")
    ae.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="run folder")
    ae.add_argument("--variant", choices=VARIANTS, help=f"architecture (default {d['model'].variant})")
    _add_model_options(ae, d, AUTOENCODER_PRESETS, AUTOENCODER_STEPS, "batch size per identity")
    ae.add_argument("--lr", type=_lr, help=f"Adam learning rate (default {_show(d['lr'])})")
    ae.add_argument("--seed", type=int, help=f"random seed (default {seed})")
    ae.add_argument("--no-augment", action="store_true", help="no flips, affine, colour jitter or warp")
    _add_run_options(ae, "ONNX")

    g = tsub.add_parser(
        "generator",
        help="one-shot identity-conditioned generator: swaps any source onto any target",
        description="Train the one-shot generator (SimSwap/FaceShifter family): a U-Net-like network "
        "takes an aligned target face and masquerade's 128-d dlib identity embedding of a source face "
        "and predicts the swapped face and its mask; a multi-scale patch discriminator trains with it. "
        "Data: a folder of people (LFW, or ROOT/<person>/*.jpg); faces are aligned once and cached. "
        "Writes OUT/checkpoints/, OUT/previews/ (source | target | swap | mask | recon), OUT/loss.csv, "
        "OUT/loss.png and, when done, OUT/generator.onnx + OUT/model.json for --swapper generator. "
        "Options left out on a resumed run keep the run's values.",
    )  # fmt: skip
    d = field_defaults(GeneratorTrainConfig)
    _add_identity_data_options(g, d)
    _add_model_options(g, d, GENERATOR_PRESETS, GENERATOR_STEPS, "batch size")
    g.add_argument("--lr", type=_lr, help=f"generator Adam learning rate (default {_show(d['lr'])})")
    g.add_argument("--lr-d", type=_lr, help=f"discriminator learning rate (default {_show(d['lr_d'])})")
    g.add_argument(
        "--same-ratio", type=_ratio,
        help=f"share of pairs whose source is the target's person (default {_show(d['same_ratio'])})",
    )  # fmt: skip
    g.add_argument(
        "--weight", type=_weight, action="append", metavar="NAME=VALUE",
        help=f"a loss weight (repeat): {_weights_help(GeneratorLossConfig())}",
    )  # fmt: skip
    g.add_argument("--seed", type=int, help=f"random seed (default {seed})")
    g.add_argument("--no-augment", action="store_true", help="no flips, affine or colour jitter of targets")
    _add_run_options(g, "generator.onnx")

    df = tsub.add_parser(
        "diffusion",
        help="diffusion swapper: a denoiser conditioned on identity and the target's attributes",
        description="Train the diffusion swapper (DDPM, sampled with DDIM): a U-Net predicts the noise of a "
        "noised target face, conditioned on the source's 128-d dlib identity embedding (FiLM; dropped at "
        "--cond-drop for classifier-free guidance) and on the target with its face blanked out, its face "
        "mask and landmarks (channels). Losses: denoising, identity of the predicted clean face, "
        "reconstruction. Same data as train generator. Writes OUT/checkpoints/, OUT/previews/ (source | "
        "target | condition | swap | self), OUT/loss.csv, OUT/loss.png and, when done, "
        "OUT/denoiser.onnx + OUT/model.json for --swapper diffusion. Options left out on a resumed run keep "
        "the run's values.",
    )  # fmt: skip
    d = field_defaults(DiffusionTrainConfig)
    _add_identity_data_options(df, d)
    _add_model_options(df, d, DIFFUSION_PRESETS, DIFFUSION_STEPS, "batch size")
    df.add_argument("--lr", type=_lr, help=f"Adam learning rate (default {_show(d['lr'])})")
    df.add_argument(
        "--ema", type=_ratio,
        help=f"decay of the weights' moving average, exported (default {_show(d['ema'])})",
    )  # fmt: skip
    df.add_argument(
        "--same-ratio", type=_ratio,
        help=f"share of pairs whose source is the target's person (default {_show(d['same_ratio'])})",
    )  # fmt: skip
    df.add_argument(
        "--condition", choices=tuple(DIFFUSION_CONDITIONS),
        help=f"what the denoiser sees besides identity: the target's attributes, or the 3-D warp (mesh3d's "
        f"composite; trained on the refiner's warp pairs, sampled from the warp) (default {d['condition']})",
    )  # fmt: skip
    df.add_argument(
        "--extra-data", type=Path, action="append", metavar="DIR",
        help="with --condition warp: another folder of people (repeat), as the refiner's --data",
    )  # fmt: skip
    df.add_argument(
        "--identity-samples", type=_positive, metavar="N",
        help="samples per step through the identity network (default: the whole batch)",
    )  # fmt: skip
    for flag, key, what in (
        ("--same-per-person", "same_per_person", "same-person pairs per person"),
        ("--different", "different", "different-person pairs"),
    ):
        df.add_argument(flag, type=_positive, metavar="N", help=f"with --condition warp: {what} ({d[key]})")
    df.add_argument(
        "--strength", type=_ratio,
        help=f"with --condition warp: how far up the schedule sampling starts from the warp "
        f"(default {_show(d['strength'])})",
    )  # fmt: skip
    df.add_argument("--schedule", choices=SCHEDULES, help=f"noise schedule (default {d['schedule']})")
    df.add_argument("--timesteps", type=_positive, help=f"diffusion timesteps T (default {d['timesteps']})")
    df.add_argument(
        "--cond-drop", type=_ratio, help=f"identity dropout for guidance (default {_show(d['cond_drop'])})"
    )
    df.add_argument(
        "--sampling-steps", type=_positive,
        help=f"DDIM steps for previews and the model's default ({d['sampling_steps']})",
    )  # fmt: skip
    df.add_argument(
        "--guidance", type=float, help=f"guidance for previews and the model's default ({d['guidance']})"
    )
    df.add_argument(
        "--weight", type=_diffusion_weight, action="append", metavar="NAME=VALUE",
        help=f"a loss weight (repeat): {_weights_help(DiffusionLossConfig())}; 0 skips the term",
    )  # fmt: skip
    df.add_argument("--seed", type=int, help=f"random seed (default {seed})")
    df.add_argument("--no-augment", action="store_true", help="no flips, affine or colour jitter of targets")
    _add_run_options(df, "denoiser.onnx")

    rf = tsub.add_parser(
        "refiner",
        help="the refiner: learns to correct the 3-D warp (relight, remove copied occluders, seams)",
        description="Train the refiner (--swapper refined): a small U-Net that adds a bounded correction to "
        "mesh3d's composite, on real photo pairs — same-person pairs (the real target is the ground truth) "
        "and different-person pairs (the source's identity must stay), each also from a corrupted source "
        "(occluder, blur, JPEG, colour cast). Photos are analysed and the warps made once, then cached. "
        "Writes OUT/checkpoints/, OUT/previews/ (target | input | refined | clean warp), OUT/loss.csv, "
        "OUT/loss.png and, when done, OUT/refiner.onnx + OUT/model.json. Options left out on a resumed run "
        "keep the run's values.",
    )  # fmt: skip
    d = field_defaults(RefinerTrainConfig)
    _add_pair_data_options(rf, d)
    rf.add_argument(
        "--same-per-person", type=_positive, metavar="N",
        help=f"same-person pairs per person ({d['same_per_person']})",
    )  # fmt: skip
    rf.add_argument(
        "--different", type=_positive, metavar="N", help=f"different-person pairs ({d['different']})"
    )
    _add_model_options(rf, d, REFINER_PRESETS, REFINER_STEPS, "batch size")
    rf.add_argument(
        "--shade", type=_non_negative, metavar="PX",
        help="the network also sees the target's own face blurred to PX×PX (its lighting; it must divide "
        "--resolution); 0: it sees only the composite (default 0). Measured at 16: it lets the target's "
        "identity back in (BENCHMARKS.md)",
    )  # fmt: skip
    rf.add_argument("--lr", type=_lr, help=f"Adam learning rate (default {_show(d['lr'])})")
    rf.add_argument("--lr-d", type=_lr, help=f"discriminator learning rate (default {_show(d['lr_d'])})")
    rf.add_argument(
        "--lr-decay", type=_step_span, metavar="FROM:TO",
        help="cool-down: from step FROM to step TO the refiner's learning rate falls on a half cosine to "
        "--lr-floor × --lr, then stays there (default: constant)",
    )  # fmt: skip
    rf.add_argument(
        "--lr-floor", type=_lr, metavar="F",
        help=f"the cool-down's end, a multiple of --lr (default {_show(d['lr_floor'])})",
    )  # fmt: skip
    rf.add_argument(
        "--corrupt",
        type=_ratio,
        help=f"share of inputs from a corrupted source (default {_show(d['corrupt'])})",
    )
    rf.add_argument(
        "--identity-samples", type=_non_negative, metavar="N",
        help=f"outputs per step through the identity network ({d['identity_samples']})",
    )  # fmt: skip
    rf.add_argument(
        "--weight", type=_refiner_weight, action="append", metavar="NAME=VALUE",
        help=f"a loss weight (repeat): {_weights_help(RefinerLossConfig())}; 0 skips the term",
    )  # fmt: skip
    rf.add_argument(
        "--init", metavar=f"DIR|{SHIPPED_INIT}",
        help=f"start from a trained refiner's weights: its model folder, or '{SHIPPED_INIT}' for the one in "
        "the package (a model from before the hidden-texels input gets zero weights for it); default: random",
    )  # fmt: skip
    rf.add_argument(
        "--relight", type=_ratio, metavar="S",
        help="the training pairs' warp is relit at this strength, as mesh3d's --relight (0 to 1); the "
        "model records it and --swapper refined swaps with it unless given --relight "
        f"(default {_show(d['relight'])})",
    )  # fmt: skip
    rf.add_argument("--seed", type=int, help=f"random seed (default {seed})")
    _add_run_options(rf, "refiner.onnx")

    sg = tsub.add_parser(
        "segmenter",
        help="the face-occlusion segmenter: which face pixels have something in front of them",
        description="Train the occlusion segmenter (--occlusion on): a small U-Net over face crops, learning "
        "from faces with synthetic occluders of known masks (hands, hair strands, microphones, glasses, "
        "patches of other photos). Same data folders and photo cache as train refiner. Writes "
        "OUT/checkpoints/, OUT/previews/ (input | label | predicted), OUT/loss.csv, OUT/loss.png and, when "
        "done, OUT/segmenter.onnx + OUT/model.json.",
    )  # fmt: skip
    d = field_defaults(SegmenterTrainConfig)
    _add_pair_data_options(sg, d)
    sg.add_argument(
        "--preset", choices=tuple(SEGMENTER_PRESETS), help=f"model size (default {DEFAULT_PRESET})"
    )
    sg.add_argument(
        "--steps",
        type=_non_negative,
        default=SEGMENTER_STEPS,
        help=f"total steps to reach ({SEGMENTER_STEPS})",
    )
    sg.add_argument("--batch", type=_positive, help=f"batch size (default {d['batch_size']})")
    sg.add_argument("--lr", type=_lr, help=f"Adam learning rate (default {_show(d['lr'])})")
    sg.add_argument(
        "--no-occluder",
        type=_ratio,
        help=f"share of faces shown without an occluder ({_show(d['no_occluder'])})",
    )
    sg.add_argument(
        "--turned",
        type=_draw_weight,
        metavar="K",
        help="draw turned faces more often: a face's weight is 1 + K × how far it is turned (the left-right "
        f"asymmetry of its landmarks, about 0.2 for the median face); 0: all alike ({_show(d['turned'])})",
    )
    sg.add_argument(
        "--max-non-skin", type=_ratio,
        help=f"leave out faces whose non-skin share is this or more: they look occluded already "
        f"({_show(d['max_non_skin'])})",
    )  # fmt: skip
    sg.add_argument(
        "--occluders", choices=tuple(SEGMENTER_OCCLUDERS),
        help="the synthetic occluders (may change when a run is resumed): "
        + "; ".join(f"{k}: {v}" for k, v in SEGMENTER_OCCLUDERS.items()) + f" (default {d['occluders']})",
    )  # fmt: skip
    sg.add_argument("--seed", type=int, help=f"random seed (default {seed})")
    _add_run_options(sg, "segmenter.onnx")

    d = field_defaults(GeneratorTrainConfig)
    pk = tsub.add_parser(
        "pack",
        help="align a folder of people once into one portable file for 'train generator --data'",
        description="Align the faces of a folder of people (as 'train generator' does, through the same "
        "cache) and write them to one identity pack: an .npz file of JPEG faces, masks, landmarks and "
        "identity embeddings. 'masquerade train generator --data PACK.npz' trains from it on a machine "
        "that has neither the photos nor the face-analysis models (a rented GPU, say). Needs no PyTorch.",
    )  # fmt: skip
    pk.add_argument(
        "--data", type=Path, required=True, metavar="DIR",
        help="folder of person folders (LFW or ROOT/<id>/*.jpg)",
    )  # fmt: skip
    pk.add_argument("-o", "--output", type=Path, required=True, metavar="PACK.npz", help="the pack to write")
    pk.add_argument(
        "--people", type=_positive, metavar="N",
        help="N people with two or more photos, drawn with a fixed seed (default: everyone)",
    )  # fmt: skip
    pk.add_argument("--max-photos", type=_positive, metavar="N", help="at most N photos per person")
    pk.add_argument(
        "--holdout", metavar="BENCHMARK|PAIRS|none", default=d["holdout"],
        help=f"leave out the people of this benchmark or pairs file (default {d['holdout']})",
    )  # fmt: skip
    pk.add_argument(
        "--template", choices=TEMPLATES, default=d["template"],
        help=f"face alignment (default {d['template']})",
    )  # fmt: skip
    pk.add_argument(
        "--resolution", type=_resolution, default=d["model"].resolution,
        help=f"face size in pixels, multiple of 16 (default {d['model'].resolution})",
    )  # fmt: skip
    pk.add_argument("--quality", type=_quality, default=90, help="JPEG quality of the faces (default 90)")
    pk.add_argument("--cache", type=Path, metavar="DIR", help="the aligned-face cache (as train generator's)")
    pk.add_argument("--force", action="store_true", help="replace PACK.npz if it exists")

    ex = tsub.add_parser(
        "export", help="export a run's latest checkpoint to OUT/<model>.onnx + model.json (any trainer)"
    )
    ex.add_argument("output", type=Path, metavar="OUT", help="run folder")
    ex.add_argument("--checkpoint", type=Path, help="another checkpoint than OUT/checkpoints/latest.pt")


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-:--:--"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _stored(cls: Any, stored: dict[str, Any] | None) -> Any:
    """The stored config of a resumed run as ``cls`` (None when there is none or it does not parse)."""
    if stored is None:
        return None
    try:
        return cls.from_dict({k: v for k, v in stored.items() if k not in ("trainer", "seed")})
    except (KeyError, TypeError, ValueError):
        return None


def _picker(base: Any, cls: Any) -> Callable[..., Any]:
    """``pick(name, value=None)``: an argument given (``value``) wins, else the resumed run's field
    ``name`` (``model.resolution``: a model field), else the default of ``cls``'s field."""
    defaults = field_defaults(cls)

    def pick(name: str, value: Any = None) -> Any:
        if value is not None:
            return value
        head, _, rest = name.partition(".")
        v = getattr(base, head) if base is not None else defaults[head]
        return getattr(v, rest) if rest else v

    return pick


def _seed(args: argparse.Namespace, base: Any, stored: dict[str, Any] | None) -> int:
    """The run's seed: --seed, else the resumed run's, else the default."""
    if args.seed is not None:
        return int(args.seed)
    seed: Any = stored.get("seed") if base is not None and stored is not None else TrainOptions().seed
    return int(seed)


def _model(args: argparse.Namespace, base: Any, preset: Callable[..., Any], **values: Any) -> Any:
    """The run's model config: ``preset`` (``--preset``, else the default) with ``values`` on a new
    run or when --preset is given, else the resumed run's with ``values``."""
    if args.preset is not None or base is None:
        return preset(args.preset or DEFAULT_PRESET, **values)
    return replace(base.model, **values)


def _augment(args: argparse.Namespace, pick: Callable[..., Any]) -> Any:
    return AugmentConfig(enabled=False) if args.no_augment else pick("augment")


def _loss(args: argparse.Namespace, pick: Callable[..., Any]) -> Any:
    loss = pick("loss")
    return replace(loss, **dict(args.weight)) if args.weight else loss


def _autoencoder_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    """The run's config from the arguments; on a resumed run, arguments left out keep stored values."""
    base = _stored(AutoencoderTrainConfig, stored)
    if base is None and (args.a is None or args.b is None):
        raise InputError(f"{args.output}: give --a and --b (the folder holds no run to resume)")
    pick = _picker(base, AutoencoderTrainConfig)
    model = _model(
        args,
        base,
        autoencoder_preset,
        variant=pick("model.variant", args.variant),
        resolution=pick("model.resolution", args.resolution),
    )
    cfg = AutoencoderTrainConfig(
        faceset_a=resolve_path(args.a) if args.a is not None else base.faceset_a,
        faceset_b=resolve_path(args.b) if args.b is not None else base.faceset_b,
        model=model,
        batch_size=pick("batch_size", args.batch),
        lr=pick("lr", args.lr),
        augment=_augment(args, pick),
        regions=pick("regions"),
        loss=pick("loss"),
        preview_faces=pick("preview_faces"),
    )
    return cfg, _seed(args, base, stored)


def _run_options(args: argparse.Namespace, device: Any, seed: int) -> TrainOptions:
    return TrainOptions(
        steps=args.steps,
        device=str(device),
        amp=args.amp,
        seed=seed,
        save_every=args.save_every,
        preview_every=args.preview_every,
        keep_checkpoints=args.keep_checkpoints,
        threads=args.threads,
        prefetch=args.workers,
        force=args.force,
        time_limit=args.time_limit,
    )


def _train(
    trainer: Any, start: int, args: argparse.Namespace, out: Console, err: Console, loss_text: Any
) -> int:
    """Run ``trainer`` with a progress bar (``loss_text(losses)`` → its loss column), then export."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..training.trainer import TrainProgress

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} · eta {task.fields[eta]} · {task.fields[loss]}"),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        job = bar.add_task("training", total=args.steps, completed=start, rate="", eta="-:--:--", loss="")

        def progress(p: TrainProgress) -> None:
            bar.update(
                job,
                completed=p.step,
                rate=f"{p.steps_per_second:.2f} steps/s",
                eta=_fmt_seconds(p.eta),
                loss=loss_text(p.losses),
            )

        trainer.progress = progress
        result = trainer.run()
        bar.update(job, completed=result.step)
    out.print(
        f"step {result.step} ({_fmt_seconds(result.seconds)} of training in all); "
        f"checkpoint {result.checkpoint}",
        highlight=False,
        markup=False,
    )
    if result.out_of_time:
        err.print(
            f"time limit reached at step {result.step} of {args.steps}; run the same command to continue",
            highlight=False,
            markup=False,
        )
    if result.interrupted:
        err.print(
            f"interrupted at step {result.step}; run the same command to continue, or "
            f"'masquerade train export {args.output}' to export this checkpoint",
            highlight=False,
            markup=False,
        )
        return 130
    if args.no_export:
        return 0
    return _export(args.output, None, out)


def _cmd_autoencoder(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..training.autoencoder import AutoencoderTask, build_autoencoder
    from ..training.common import model_parameters
    from ..training.trainer import Trainer, read_run, resolve_device

    device = resolve_device(args.device)
    run = None if args.force else read_run(args.output)
    cfg, seed = _autoencoder_config(args, run.get("config") if run else None)
    task = AutoencoderTask(cfg, seed=seed)
    trainer = Trainer(task, args.output, _run_options(args, device, seed))
    start = trainer.prepare()
    m = cfg.model
    params = model_parameters(build_autoencoder, m)
    out.print(
        f"autoencoder {m.variant.upper()} {m.resolution} px, {params / 1e6:.1f} M parameters, batch "
        f"{cfg.batch_size}, on {device}: A {len(task.faces_a)} faces, B {len(task.faces_b)} faces "
        f"→ {args.output}" + (f"; resuming at step {start}" if start else ""),
        highlight=False,
        markup=False,
    )

    def loss_text(losses: dict[str, float]) -> str:
        la, lb = losses.get("loss_a", float("nan")), losses.get("loss_b", float("nan"))
        return f"loss A {la:.4f} B {lb:.4f}"

    return _train(trainer, start, args, out, err, loss_text)


def _identity_run_fields(args: argparse.Namespace, base: Any, pick: Callable[..., Any]) -> dict[str, Any]:
    """The data fields shared by the generator and diffusion configs."""
    if base is None and args.data is None:
        raise InputError(f"{args.output}: give --data DIR (the folder holds no run to resume)")
    fields = {k: pick(k, getattr(args, k)) for k in ("people", "max_photos", "holdout", "template")}
    return {"data": resolve_path(args.data) if args.data is not None else base.data, **fields}


def _generator_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    """The generator run's config from the arguments; on a resumed run, arguments left out keep the
    stored values."""
    base = _stored(GeneratorTrainConfig, stored)
    pick = _picker(base, GeneratorTrainConfig)
    cfg = GeneratorTrainConfig(
        **_identity_run_fields(args, base, pick),
        model=_model(args, base, generator_preset, resolution=pick("model.resolution", args.resolution)),
        batch_size=pick("batch_size", args.batch),
        lr=pick("lr", args.lr),
        lr_d=pick("lr_d", args.lr_d),
        same_ratio=pick("same_ratio", args.same_ratio),
        augment=_augment(args, pick),
        loss=_loss(args, pick),
        regions=pick("regions"),
        preview_faces=pick("preview_faces"),
    )
    return cfg, _seed(args, base, stored)


def _diffusion_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    """The diffusion run's config from the arguments (resumed runs as for the generator)."""
    base = _stored(DiffusionTrainConfig, stored)
    pick = _picker(base, DiffusionTrainConfig)
    fields = _identity_run_fields(args, base, pick)
    own = ("schedule", "timesteps", "cond_drop", "sampling_steps", "guidance", "ema", "same_ratio", "lr")
    condition = pick("condition", args.condition)
    extra = tuple(resolve_path(x) for x in args.extra_data) if args.extra_data else pick("extra_data")

    def preset(name: str, resolution: int) -> Any:
        return diffusion_condition_preset(name, resolution, condition)

    try:
        if args.preset is None and base is not None and condition != base.condition:
            raise ValueError("--condition differs from the run's; give --preset too (a new model)")
        cfg = DiffusionTrainConfig(
            **fields,
            **{name: pick(name, getattr(args, name)) for name in own},
            condition=condition,
            extra_data=extra,
            strength=pick("strength", args.strength),
            same_per_person=pick("same_per_person", args.same_per_person),
            different=pick("different", args.different),
            identity_samples=pick("identity_samples", args.identity_samples),
            model=_model(args, base, preset, resolution=pick("model.resolution", args.resolution)),
            batch_size=pick("batch_size", args.batch),
            augment=_augment(args, pick),
            loss=_loss(args, pick),
            regions=pick("regions"),
            preview_faces=pick("preview_faces"),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return cfg, _seed(args, base, stored)


@contextlib.contextmanager
def _alignment_bar(err: Console) -> Iterator[Callable[[int, int, int], None]]:
    """A transient progress bar for aligning new photos; yields the ``progress(done, total, kept)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[kept]} faces"),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        job = bar.add_task("aligning new photos", total=None, kept=0)

        def aligned(done: int, total: int, kept: int) -> None:
            bar.update(job, completed=done, total=total, kept=kept)

        yield aligned


def _cmd_identity_trainer(args: argparse.Namespace, out: Console, err: Console, kind: str) -> int:
    """``train generator`` / ``train diffusion``: config, faces, a summary line, then :func:`_train`."""
    from ..training.trainer import Trainer, read_run, resolve_device

    device = resolve_device(args.device)
    run = None if args.force else read_run(args.output)
    stored = run.get("config") if run else None
    if kind == "generator":
        from ..training.generator import GeneratorTask, model_sizes

        cfg, seed = _generator_config(args, stored)
        task: Any = GeneratorTask(cfg, seed=seed, cache=args.cache)
        g_params, d_params = model_sizes(cfg.model)
        what = (
            f"generator {cfg.model.resolution} px ({cfg.template}), {g_params / 1e6:.1f} M parameters "
            f"(+ {d_params / 1e6:.1f} M discriminator)"
        )
    else:
        from ..training.diffusion import DiffusionTask, WarpDiffusionTask, model_size

        cfg, seed = _diffusion_config(args, stored)
        task = (WarpDiffusionTask if cfg.condition == "warp" else DiffusionTask)(
            cfg, seed=seed, cache=args.cache
        )
        what = (
            f"diffusion {cfg.model.resolution} px "
            f"({'conditioned on the 3-D warp' if cfg.condition == 'warp' else cfg.template}), "
            f"{model_size(cfg.model) / 1e6:.1f} M "
            f"parameters, {cfg.schedule} schedule T={cfg.timesteps}"
        )
    trainer = Trainer(task, args.output, _run_options(args, device, seed))
    start = trainer.prepare()  # (checks the folder and a resumed run's options before aligning faces)
    with _alignment_bar(err) as aligned:
        data = task.load_data(aligned)
    what_data = (
        task.summary
        if kind == "diffusion" and cfg.condition == "warp"
        else f"{len(data)} faces of {len(data.people)} people ({data.skipped} photos without a usable face)"
    )
    out.print(
        f"{what}, batch {cfg.batch_size}, on {device}: {what_data} → {args.output}"
        + (f"; resuming at step {start}" if start else ""),
        highlight=False,
        markup=False,
    )

    def loss_text(losses: dict[str, float]) -> str:
        nan = float("nan")
        if kind == "generator":
            head = f"G {losses.get('total', nan):.3f} D {losses.get('discriminator', nan):.3f}"
        else:
            head = f"loss {losses.get('total', nan):.3f} denoise {losses.get('denoise', nan):.3f}"
        return (
            f"{head} id {1 - losses.get('identity', nan):.3f} recon {losses.get('reconstruction', nan):.3f}"
        )

    return _train(trainer, start, args, out, err, loss_text)


def _cmd_pack(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..training.identity_data import (
        holdout_people,
        load_identity_faces,
        scan_identity_folder,
        write_identity_pack,
    )

    dest = args.output.expanduser()
    if dest.suffix.lower() != ".npz":
        raise InputError(f"{dest}: an identity pack is an .npz file (e.g. {dest.with_suffix('.npz').name})")
    if dest.exists() and not args.force:
        raise InputError(f"{dest} exists (use --force to replace it)")
    if dest.is_dir():
        raise InputError(f"{dest} is a folder")
    folder = scan_identity_folder(args.data, args.people, args.max_photos, holdout_people(args.holdout))
    with _alignment_bar(err) as aligned:
        data = load_identity_faces(folder, args.resolution, args.template, cache=args.cache, progress=aligned)
    info = write_identity_pack(data, dest, args.quality, holdout=str(args.holdout), force=args.force)
    out.print(
        f"{info.faces} faces of {info.people} people ({args.resolution} px, {args.template}; "
        f"{data.skipped} photos without a usable face, {folder.held_out} people held out), "
        f"{info.bytes / 2**20:.1f} MiB → {info.path}",
        highlight=False,
        markup=False,
    )
    return 0


def _refiner_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    """The refiner run's config from the arguments (resumed runs as for the generator)."""
    base = _stored(RefinerTrainConfig, stored)
    if base is None and not args.data:
        raise InputError(f"{args.output}: give --data DIR (the folder holds no run to resume)")
    pick = _picker(base, RefinerTrainConfig)
    if args.init is not None and args.init != SHIPPED_INIT:
        args.init = resolve_path(args.init)
    own = (
        "holdout",
        "max_photos",
        "same_per_person",
        "different",
        "lr",
        "lr_d",
        "lr_decay",
        "lr_floor",
        "corrupt",
        "identity_samples",
        "init",
        "relight",
    )
    try:
        cfg = RefinerTrainConfig(
            data=tuple(resolve_path(d) for d in args.data) if args.data else base.data,
            **{name: pick(name, getattr(args, name)) for name in own},
            model=_model(
                args,
                base,
                refiner_preset,
                resolution=pick("model.resolution", args.resolution),
                shade=pick("model.shade", args.shade),
            ),
            batch_size=pick("batch_size", args.batch),
            loss=_loss(args, pick),
            preview_faces=pick("preview_faces"),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if cfg.init:
        from ..training.refiner import init_onnx

        init_onnx(cfg.init)  # a missing or wrong model folder fails now, not after the data are made
    return cfg, _seed(args, base, stored)


def _cmd_pair_trainer(
    args: argparse.Namespace, out: Console, err: Console, config: Callable[..., tuple[Any, int]],
    task_class: Any, load: Callable[..., tuple[Any, str]], what: Callable[[Any], str],
    losses: tuple[tuple[str, str], ...],
) -> int:  # fmt: skip
    """The trainers on the refiner's photo pairs and faces (refiner, segmenter): config, data (made or
    read from the cache, with a progress bar), a summary line, then :func:`_train`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..training.trainer import Trainer, read_run, resolve_device

    device = resolve_device(args.device)
    run = None if args.force else read_run(args.output)
    cfg, seed = config(args, run.get("config") if run else None)
    task = task_class(cfg, seed=seed)
    trainer = Trainer(task, args.output, _run_options(args, device, seed))
    start = trainer.prepare()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        job = bar.add_task("analysing photos", total=None)

        def stage(name: str, done: int, total: int) -> None:
            bar.update(job, description=name, completed=done, total=total)

        data, summary = load(cfg, seed, args.cache, args.build_workers, stage)
    task.use_data(data)
    out.print(
        f"{what(cfg)}, batch {cfg.batch_size}, on {device}: {summary} → {args.output}"
        + (f"; resuming at step {start}" if start else ""),
        highlight=False,
        markup=False,
    )

    def loss_text(values: dict[str, float]) -> str:
        return " ".join(f"{label} {values.get(key, float('nan')):.3f}" for key, label in losses)

    return _train(trainer, start, args, out, err, loss_text)


def _cmd_refiner(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..training.common import model_parameters
    from ..training.refiner import RefinerTask, build_refiner
    from ..training.warp_data import load_warp_pairs

    if args.resolution is not None and args.resolution % 32:
        raise InputError("--resolution must be a multiple of 32 for the refiner")

    def what(cfg: Any) -> str:
        params = model_parameters(build_refiner, cfg.model)
        return f"refiner {cfg.model.resolution} px, {params / 1e6:.2f} M parameters"

    losses = (("reconstruction", "recon"), ("clean", "clean"), ("identity", "id"))
    return _cmd_pair_trainer(args, out, err, _refiner_config, RefinerTask, load_warp_pairs, what, losses)


def _segmenter_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    base = _stored(SegmenterTrainConfig, stored)
    if base is None and not args.data:
        raise InputError(f"{args.output}: give --data DIR (the folder holds no run to resume)")
    pick = _picker(base, SegmenterTrainConfig)
    own = ("holdout", "max_photos", "lr", "no_occluder", "max_non_skin", "occluders", "turned")
    try:
        cfg = SegmenterTrainConfig(
            data=tuple(resolve_path(d) for d in args.data) if args.data else base.data,
            **{name: pick(name, getattr(args, name)) for name in own},
            model=segmenter_preset(args.preset or DEFAULT_PRESET)
            if args.preset or base is None
            else base.model,
            batch_size=pick("batch_size", args.batch),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return cfg, _seed(args, base, stored)


def _cmd_segmenter(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..training.common import model_parameters
    from ..training.segmenter import SegmenterNet, SegmenterTask, load_segmenter_faces

    def what(cfg: Any) -> str:
        params = model_parameters(SegmenterNet, cfg.model)
        return f"segmenter {cfg.resolution} px, {params / 1e6:.2f} M parameters"

    losses = (("bce", "bce"), ("dice", "dice"))
    return _cmd_pair_trainer(
        args, out, err, _segmenter_config, SegmenterTask, load_segmenter_faces, what, losses
    )


def _export(output: Path, checkpoint: Path | None, out: Console) -> int:
    from ..training.export import export_run

    res = export_run(output, checkpoint)
    out.print(
        f"exported step {res.steps}: {res.onnx} (onnxruntime = PyTorch within {res.max_abs_diff:.1e}), "
        f"{res.model_json}",
        highlight=False,
        markup=False,
    )
    return 0


def cmd_train(args: argparse.Namespace, out: Console, err: Console) -> int:
    if getattr(args, "train_command", None) is None:
        raise InputError(
            "choose what to train: masquerade train autoencoder|generator … (or masquerade train "
            "pack|export …)"
        )
    if args.train_command == "pack":
        return _cmd_pack(args, out, err)
    require_torch()
    if args.train_command == "export":
        if not args.output.is_dir():
            raise InputError(f"{args.output}: run folder not found")
        return _export(args.output, args.checkpoint, out)
    if args.train_command in ("generator", "diffusion"):
        return _cmd_identity_trainer(args, out, err, args.train_command)
    if args.train_command == "refiner":
        return _cmd_refiner(args, out, err)
    if args.train_command == "segmenter":
        return _cmd_segmenter(args, out, err)
    return _cmd_autoencoder(args, out, err)

"""``masquerade train``: train learned swappers (needs PyTorch) and export them to ONNX.

Importing this module does not import torch, so the command line works (and says what to install)
without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import InputError
from . import TORCH_HINT, require_torch

# mirrors of masquerade.training.autoencoder's VARIANTS / PRESETS (that module imports torch)
VARIANT_CHOICES = ("df", "liae")
PRESET_CHOICES = ("tiny", "small", "medium")
DEFAULTS: dict[str, Any] = {
    "variant": "df",
    "resolution": 64,
    "preset": "small",
    "batch": 8,
    "lr": 5e-5,
    "seed": 0,
}


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


def add_train_parser(sub: argparse._SubParsersAction) -> None:
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
    ae.add_argument("--a", type=Path, metavar="FACESET_A", help="faceset of the person to replace (target)")
    ae.add_argument("--b", type=Path, metavar="FACESET_B", help="faceset of the identity to put on")
    ae.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="run folder")
    ae.add_argument("--variant", choices=VARIANT_CHOICES, help="architecture (default df)")
    ae.add_argument("--resolution", type=_resolution, help="face size in pixels, multiple of 16 (default 64)")
    ae.add_argument("--preset", choices=PRESET_CHOICES, help="model size (default small)")
    ae.add_argument("--steps", type=_non_negative, default=10000, help="total steps to reach (10000)")
    ae.add_argument("--batch", type=_positive, help="batch size per identity (default 8)")
    ae.add_argument("--lr", type=_lr, help="Adam learning rate (default 5e-5)")
    ae.add_argument("--seed", type=int, help="random seed (default 0)")
    ae.add_argument("--no-augment", action="store_true", help="no flips, affine, colour jitter or warp")
    ae.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)"
    )
    ae.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    ae.add_argument("--threads", type=_positive, help="CPU threads for PyTorch (default: all cores)")
    ae.add_argument(
        "--workers", type=_non_negative, default=2, help="threads preparing batches ahead, 0 = none (2)"
    )
    ae.add_argument("--preview-every", type=_non_negative, default=100, help="steps between previews (100)")
    ae.add_argument("--save-every", type=_non_negative, default=500, help="steps between checkpoints (500)")
    ae.add_argument(
        "--keep-checkpoints", type=_non_negative, default=3, help="step checkpoints kept, 0 = all (3)"
    )
    ae.add_argument("--no-export", action="store_true", help="do not export ONNX at the end")
    ae.add_argument(
        "--force", action="store_true",
        help="start over in OUT even if it holds another run (its checkpoints are deleted) or other files",
    )  # fmt: skip

    ex = tsub.add_parser(
        "export", help="export a run's latest checkpoint to OUT/autoencoder.onnx + model.json"
    )
    ex.add_argument("output", type=Path, metavar="OUT", help="run folder")
    ex.add_argument("--checkpoint", type=Path, help="another checkpoint than OUT/checkpoints/latest.pt")


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-:--:--"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _autoencoder_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> tuple[Any, int]:
    """The run's config from the arguments; on a resumed run, arguments left out keep stored values."""
    from .autoencoder import AutoencoderConfig, AutoencoderTrainConfig, preset_config, resolve_faceset_path
    from .data import AugmentConfig

    base = None
    if stored is not None:
        try:
            base = AutoencoderTrainConfig.from_dict(
                {k: v for k, v in stored.items() if k not in ("trainer", "seed")}
            )
        except (KeyError, TypeError, ValueError):
            base = None
    if base is None and (args.a is None or args.b is None):
        raise InputError(f"{args.output}: give --a and --b (the folder holds no run to resume)")

    def pick(name: str, value: Any, old: Any) -> Any:
        return value if value is not None else (old if base is not None else DEFAULTS[name])

    variant = pick("variant", args.variant, base.model.variant if base else None)
    resolution = pick("resolution", args.resolution, base.model.resolution if base else None)
    if args.preset is not None or base is None:
        model = preset_config(args.preset or DEFAULTS["preset"], variant, resolution)
    else:
        model = AutoencoderConfig(**{**vars(base.model), "variant": variant, "resolution": resolution})
    augment = AugmentConfig(enabled=False) if args.no_augment else (base.augment if base else AugmentConfig())
    cfg = AutoencoderTrainConfig(
        faceset_a=resolve_faceset_path(args.a) if args.a is not None else base.faceset_a,  # type: ignore[union-attr]
        faceset_b=resolve_faceset_path(args.b) if args.b is not None else base.faceset_b,  # type: ignore[union-attr]
        model=model,
        batch_size=pick("batch", args.batch, base.batch_size if base else None),
        lr=pick("lr", args.lr, base.lr if base else None),
        augment=augment,
        **(
            {"regions": base.regions, "loss": base.loss, "preview_faces": base.preview_faces}
            if base is not None
            else {}
        ),
    )
    seed = pick("seed", args.seed, stored.get("seed") if stored else None)
    return cfg, int(seed)


def _cmd_autoencoder(args: argparse.Namespace, out: Console, err: Console) -> int:
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .autoencoder import AutoencoderTask, build_autoencoder, parameter_count
    from .trainer import Trainer, TrainOptions, TrainProgress, read_run, resolve_device

    device = resolve_device(args.device)
    run = None if args.force else read_run(args.output)
    cfg, seed = _autoencoder_config(args, run.get("config") if run else None)
    task = AutoencoderTask(cfg, seed=seed)
    opts = TrainOptions(
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
    )
    trainer = Trainer(task, args.output, opts)
    start = trainer.prepare()
    m = cfg.model
    with torch.device("meta"):
        params = parameter_count(build_autoencoder(m))
    out.print(
        f"autoencoder {m.variant.upper()} {m.resolution} px, {params / 1e6:.1f} M parameters, batch "
        f"{cfg.batch_size}, on {device}: A {len(task.faces_a)} faces, B {len(task.faces_b)} faces "
        f"→ {args.output}" + (f"; resuming at step {start}" if start else ""),
        highlight=False,
        markup=False,
    )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} · eta {task.fields[eta]} · {task.fields[loss]}"),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        job = bar.add_task("training", total=args.steps, completed=start, rate="", eta="-:--:--", loss="")

        def progress(p: TrainProgress) -> None:
            la, lb = p.losses.get("loss_a", float("nan")), p.losses.get("loss_b", float("nan"))
            loss = f"loss A {la:.4f} B {lb:.4f}"
            bar.update(
                job,
                completed=p.step,
                rate=f"{p.steps_per_second:.2f} steps/s",
                eta=_fmt_seconds(p.eta),
                loss=loss,
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


def _export(output: Path, checkpoint: Path | None, out: Console) -> int:
    from .export import export_autoencoder

    res = export_autoencoder(output, checkpoint)
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
            "choose what to train: masquerade train autoencoder … (or masquerade train export OUT)"
        )
    require_torch()
    if args.train_command == "export":
        if not args.output.is_dir():
            raise InputError(f"{args.output}: run folder not found")
        return _export(args.output, args.checkpoint, out)
    return _cmd_autoencoder(args, out, err)

"""Helpers shared by the trainers' tests (autoencoder, generator, diffusion)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def train_opts(steps: int, **kw: Any) -> Any:
    """CPU TrainOptions for ``steps`` steps, without checkpoints or previews unless asked for."""
    from masquerade.training.trainer import TrainOptions

    kw.setdefault("save_every", 0)
    kw.setdefault("preview_every", 0)
    return TrainOptions(steps=steps, device="cpu", **kw)


def loss_rows(out: Path) -> list[dict[str, str]]:
    """The rows of a run's loss.csv."""
    with (out / "loss.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def one_line_error(capsys: Any, code: int, rc: int, needle: str = "") -> str:
    """The CLI exited with ``code`` and printed one ``error:`` line (containing ``needle``)."""
    err = capsys.readouterr().err.strip()
    assert rc == code and err.startswith("error: ") and "\n" not in err, (rc, err)
    assert needle.lower() in err.lower(), err
    return err

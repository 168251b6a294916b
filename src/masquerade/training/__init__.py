"""Training of learned swappers (optional: needs PyTorch, ``pip install torch==2.13.0``).

Shared pieces, reusable by every trainer:

- :mod:`.data` — faceset reading (:func:`~.data.read_faceset`), in-memory face arrays at the model
  resolution, augmentations (flip, rotation/scale/translation, colour jitter, DeepFaceLab-style random
  warp), eye/mouth loss-weight maps and a step-seeded sampler (numpy only, no torch);
- :mod:`.losses` — DSSIM, L1/MSE and mask losses with per-pixel weights;
- :mod:`.trainer` — the loop: device, optimisers, AMP, atomic resumable checkpoints, previews, loss log
  and plot, progress callbacks, Ctrl-C handling (a :class:`~.trainer.TrainTask` supplies the model);
- :mod:`.autoencoder` / :mod:`.export` — the DeepFaceLab-style pair autoencoder (DF and LIAE) and its
  ONNX export; :mod:`.cli` — ``masquerade train``;
- :mod:`.identity_data` / :mod:`.generator` — identity-labelled face folders (LFW layout) aligned once
  and cached, same/different-person pair batches, and the one-shot identity-conditioned generator with
  its multi-scale discriminator and losses (exported by :mod:`.export` too).

Nothing outside this subpackage imports it, so masquerade itself works without PyTorch.
"""

from __future__ import annotations

from ..errors import MasqueradeError

TORCH_HINT = "pip install torch==2.13.0"


class MissingDependencyError(MasqueradeError):
    """An optional dependency (PyTorch) is not installed."""


def require_torch() -> None:
    """Raise a one-line :class:`MissingDependencyError` when PyTorch cannot be imported."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"training needs PyTorch, which is not installed: {TORCH_HINT}") from exc


__all__ = ["TORCH_HINT", "MissingDependencyError", "require_torch"]

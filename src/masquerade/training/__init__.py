"""Training of learned swappers (optional: needs PyTorch, ``pip install torch==2.13.0``).

Shared pieces, reusable by every trainer:

- :mod:`.configs` — what each trainer trains and how a run goes: the settings (frozen dataclasses),
  model presets and defaults of every trainer, without torch (``masquerade train`` builds its options
  and help from them);
- :mod:`.data` — faceset reading (:func:`~.data.read_faceset`), in-memory face arrays at the model
  resolution, augmentations (flip, rotation/scale/translation, colour jitter, DeepFaceLab-style random
  warp), eye/mouth loss-weight maps and a step-seeded sampler (numpy only, no torch);
- :mod:`.losses` — DSSIM, L1/MSE and mask losses with per-pixel weights;
- :mod:`.trainer` — the loop: device, optimisers, AMP, atomic resumable checkpoints, previews, loss log
  and plot, progress callbacks, Ctrl-C handling (a :class:`~.trainer.TrainTask` supplies the model);
- :mod:`.common` — the torch pieces trainers share: parameter counts, the preview grid, the upscale
  layer, and for the trainers on identity-labelled faces the pair task, its batches on the device and
  the identity loss;
- :mod:`.identity_data` — identity-labelled face folders (LFW layout) aligned once and cached, identity
  packs, same/different-person pair batches (numpy only).

The trainers: :mod:`.autoencoder` (the DeepFaceLab-style pair autoencoder, DF and LIAE),
:mod:`.generator` (the one-shot identity-conditioned generator with its multi-scale discriminator) and
:mod:`.diffusion` (the diffusion swapper's denoiser); :mod:`.export` writes each one's ONNX model and
``model.json``; ``masquerade train`` is :mod:`masquerade.cli.train`.

Nothing outside this subpackage imports its torch modules until it trains (``masquerade train`` builds
its options from :mod:`.configs`), so masquerade itself works without PyTorch.
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

"""PyTorch versions of masquerade's networks (optional: needs ``pip install masquerade[train]``).

Nothing in the core package imports this subpackage, so masquerade works without PyTorch.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("masquerade.nn needs PyTorch: pip install 'masquerade[train]'") from exc

from .dlib_resnet import Affine, DlibResNet, export_onnx

__all__ = ["Affine", "DlibResNet", "export_onnx"]

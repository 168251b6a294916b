"""dlib's face-recognition ResNet (``anet_type``) as a differentiable PyTorch module.

Built from the weights :mod:`masquerade.identity.dlibnet` reads from dlib's ``.dat`` file; the layers mirror
dlib's one for one (``con`` → :class:`torch.nn.Conv2d`, ``affine`` → :class:`Affine`, ``relu``,
``max_pool``/``avg_pool``, the ``tag``/``skip``/``add_prev`` residual wiring with dlib's zero-padded sums
of different-sized tensors, ``fc_no_bias``). Outputs equal dlib's descriptors to float rounding.

Input convention of :meth:`DlibResNet.forward`: float tensor N×3×150×150, RGB, channels first, pixel
values in ``[0, input_range]`` — ``input_range=255`` (default) for raw pixel values, ``1.0`` for images
scaled to [0, 1]. The network normalises internally exactly as dlib does, ``(pixel − avg) / 256`` with
``pixel`` in 0..255. Everything is differentiable, so gradients flow from the 128-d embedding back to
the input pixels (identity losses, adversarial tests, fine-tuning).

Example::

    from masquerade.identity.torch_net import DlibResNet
    net = DlibResNet().eval()
    x = torch.from_numpy(chip).permute(2, 0, 1)[None].float().requires_grad_()
    emb = net(x)                      # 1×128
    emb.norm().backward()             # x.grad: 1×3×150×150
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("masquerade.identity.torch_net needs PyTorch: pip install 'masquerade[train]'") from exc

from . import dlibnet
from .dlibnet import DlibNet


class Affine(nn.Module):
    """dlib's ``affine_`` layer (a frozen batch-norm): ``x · gamma[c] + beta[c]``."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(gamma.clone())
        self.bias = nn.Parameter(beta.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class _Wire(nn.Module):
    """Placeholder for dlib's tag/skip/add_prev (the wiring lives in :meth:`DlibResNet.forward`)."""

    def __init__(self, kind: str, tag: int) -> None:
        super().__init__()
        self.kind, self.tag = kind, tag

    def extra_repr(self) -> str:
        return f"{self.kind}{self.tag}"


def _pad_to(x: torch.Tensor, c: int, h: int, w: int) -> torch.Tensor:
    dc, dh, dw = c - x.shape[1], h - x.shape[2], w - x.shape[3]
    if dc == 0 and dh == 0 and dw == 0:
        return x
    return F.pad(x, (0, dw, 0, dh, 0, dc))


class DlibResNet(nn.Module):
    """dlib's 29-layer face ResNet; ``forward`` maps N×3×150×150 float RGB to N×128 descriptors."""

    def __init__(
        self, net: DlibNet | str | os.PathLike[str] | None = None, input_range: float = 255.0
    ) -> None:
        super().__init__()
        if not isinstance(net, DlibNet):
            net = dlibnet.load(net)
        self.input_range = float(input_range)
        self.input_size = net.input_size
        self.register_buffer("avg_rgb", torch.from_numpy(net.avg_rgb.astype(np.float32)).view(1, 3, 1, 1))
        self.input_scale = float(net.input.attrs["scale"])
        layers: list[nn.Module] = []
        channels = 3
        for op in net.ops[1:]:
            a = op.attrs
            if op.kind == "conv":
                w = torch.from_numpy(op.arrays["weight"].copy())
                conv = nn.Conv2d(
                    channels,
                    w.shape[0],
                    tuple(w.shape[2:]),
                    stride=tuple(a["stride"]),
                    padding=tuple(a["pad"]),
                )
                with torch.no_grad():
                    conv.weight.copy_(w)
                    conv.bias.copy_(torch.from_numpy(op.arrays["bias"].copy()))
                channels = w.shape[0]
                layers.append(conv)
            elif op.kind == "affine":
                layers.append(
                    Affine(
                        torch.from_numpy(op.arrays["gamma"].copy()),
                        torch.from_numpy(op.arrays["beta"].copy()),
                    )
                )
            elif op.kind == "relu":
                layers.append(nn.ReLU())
            elif op.kind in ("max_pool", "avg_pool"):
                if a["size"][0] == 0:
                    layers.append(
                        nn.AdaptiveMaxPool2d(1) if op.kind == "max_pool" else nn.AdaptiveAvgPool2d(1)
                    )
                elif op.kind == "max_pool":
                    layers.append(nn.MaxPool2d(tuple(a["size"]), tuple(a["stride"]), tuple(a["pad"])))
                else:
                    if any(a["pad"]):
                        raise NotImplementedError("padded avg_pool is not used by dlib's anet_type")
                    layers.append(nn.AvgPool2d(tuple(a["size"]), tuple(a["stride"])))
            elif op.kind in ("tag", "skip", "add_prev"):
                layers.append(_Wire(op.kind, int(a["id"])))
            elif op.kind == "fc":
                w = torch.from_numpy(op.arrays["weight"].copy())  # (inputs, outputs)
                fc = nn.Linear(w.shape[0], w.shape[1], bias="bias" in op.arrays)
                with torch.no_grad():
                    fc.weight.copy_(w.t())
                    if fc.bias is not None:
                        fc.bias.copy_(torch.from_numpy(op.arrays["bias"].copy()))
                layers.append(fc)
            else:
                raise NotImplementedError(op.kind)
        self.layers = nn.ModuleList(layers)
        self.out_dim = net.out_dim

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's input layer: pixel values (in ``[0, input_range]``) → ``(p·255/range − avg) / 256``."""
        if self.input_range != 255.0:
            x = x * (255.0 / self.input_range)
        return (x - self.avg_rgb) * self.input_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×150×150 RGB float in ``[0, input_range]`` → N×128 descriptors (differentiable)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N×3×H×W RGB, got {tuple(x.shape)}")
        x = self.normalise(x)
        tags: dict[int, torch.Tensor] = {}
        for layer in self.layers:
            if isinstance(layer, _Wire):
                if layer.kind == "tag":
                    tags[layer.tag] = x
                elif layer.kind == "skip":
                    x = tags[layer.tag]
                else:  # add_prev: dlib zero-pads both operands to the larger shape
                    t = tags[layer.tag]
                    c, h, w = (max(int(p), int(q)) for p, q in zip(x.shape[1:], t.shape[1:], strict=True))
                    x = _pad_to(x, c, h, w) + _pad_to(t, c, h, w)
            elif isinstance(layer, nn.Linear):
                x = layer(torch.flatten(x, 1))
            else:
                x = layer(x)
        return x

    @staticmethod
    def to_tensor(chips: np.ndarray, device: Any = None) -> torch.Tensor:
        """uint8 N×H×W×3 (or H×W×3) RGB chips → float N×3×H×W tensor in [0, 255]."""
        arr = np.asarray(chips)
        if arr.ndim == 3:
            arr = arr[None]
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().to(device)

    @torch.no_grad()
    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors of uint8 RGB chips as a float32 numpy array (no gradients)."""
        x = self.to_tensor(chips, device=self.avg_rgb.device)
        if self.input_range != 255.0:
            x = x * (self.input_range / 255.0)
        return self(x).float().cpu().numpy()


def export_onnx(module: DlibResNet, path: str | os.PathLike[str], opset: int = 17) -> Path:
    """Export ``module`` with ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``).

    The exported graph takes float N×3×150×150 RGB in ``[0, module.input_range]`` (input ``"x"``,
    dynamic batch) and returns ``"descriptors"``. :mod:`masquerade.identity.onnx_net` builds a leaner graph
    (uint8 NHWC input, batch-norms folded) without torch; this export is for modules you changed.
    """
    import warnings

    path = Path(path)
    was_training = module.training
    module.eval()
    h, w = module.input_size
    dummy = torch.full((1, 3, h, w), 0.5 * module.input_range, device=module.avg_rgb.device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is deprecated
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are fixed (150×150)
            torch.onnx.export(
                module,
                (dummy,),
                str(path),
                dynamo=False,
                input_names=["x"],
                output_names=["descriptors"],
                dynamic_axes={"x": {0: "N"}, "descriptors": {0: "N"}},
                opset_version=opset,
            )
    finally:
        module.train(was_training)
    return path

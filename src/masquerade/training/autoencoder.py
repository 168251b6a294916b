"""DeepFaceLab-style pair autoencoder (SAEHD's DF and LIAE architectures) and its training task.

Naming: **A** is the person whose face gets replaced (the target video), **B** the identity put on.
Swapping decodes A's face "as B".

- **DF**: a shared encoder and inter (dense bottleneck) → per-identity decoders ``dec_a``, ``dec_b``.
  Swap A→B = ``dec_b(inter(enc(a)))``.
- **LIAE**: a shared encoder ``E``, ``inter_ab`` (both identities), ``inter_a`` (A only) and one shared
  decoder ``D``; recon A = ``D(inter_a(E a) ‖ inter_ab(E a))``, recon B = ``D(inter_ab(E b) ‖
  inter_ab(E b))``, swap A→B = ``D(inter_ab(E a) ‖ inter_ab(E a))``.

Layers follow SAEHD: 5×5 stride-2 convolutions down to R/16, a dense bottleneck of ``ae_dims``
reshaped to R/16 and upscaled to R/8, decoder upscales (3×3 convolution + pixel shuffle) with
residual blocks back to R, a sigmoid RGB head and a separate, thinner mask branch with a sigmoid head.
Every decoder outputs ``(rgb N×3×R×R, mask N×1×R×R)`` in [0, 1].
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .common import Upscale, on_device, preview_grid
from .configs import AutoencoderConfig, AutoencoderTrainConfig
from .data import (
    Batch,
    EpochSampler,
    FaceArrays,
    clean_batch,
    load_face_arrays,
    make_batch,
    preview_indices,
    read_faceset,
)
from .losses import reconstruction_loss
from .trainer import StepContext, TrainTask


def _lrelu(x: torch.Tensor, slope: float = 0.1) -> torch.Tensor:
    return F.leaky_relu(x, slope)


class Downscale(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.conv(x))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(_lrelu(self.conv1(x), 0.2))
        return _lrelu(x + y, 0.2)


class Encoder(nn.Module):
    """Four 5×5 stride-2 blocks (e, 2e, 4e, 8e channels): N×3×R×R → N×(8e·(R/16)²), flattened."""

    def __init__(self, enc_dims: int) -> None:
        super().__init__()
        chans = [3, enc_dims, enc_dims * 2, enc_dims * 4, enc_dims * 8]
        self.blocks = nn.Sequential(*(Downscale(a, b) for a, b in itertools.pairwise(chans)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.blocks(x), 1)


class Inter(nn.Module):
    """Dense bottleneck: flat features → ``ae_dims`` → ``out_ch``×(R/16)² → upscale to ``out_ch``×R/8."""

    def __init__(self, in_features: int, ae_dims: int, out_ch: int, low_res: int) -> None:
        super().__init__()
        self.out_ch, self.low_res = out_ch, low_res
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, low_res * low_res * out_ch)
        self.upscale = Upscale(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(x))
        return self.upscale(x.view(-1, self.out_ch, self.low_res, self.low_res))


class Decoder(nn.Module):
    """R/8 features → (RGB N×3×R×R, mask N×1×R×R), both sigmoid."""

    def __init__(self, in_ch: int, dec_dims: int, mask_dims: int) -> None:
        super().__init__()
        d, m = dec_dims, mask_dims
        self.up = nn.ModuleList([Upscale(in_ch, d * 8), Upscale(d * 8, d * 4), Upscale(d * 4, d * 2)])
        self.res = nn.ModuleList([ResidualBlock(d * 8), ResidualBlock(d * 4), ResidualBlock(d * 2)])
        self.rgb = nn.Conv2d(d * 2, 3, 1)
        self.mask_up = nn.Sequential(Upscale(in_ch, m * 8), Upscale(m * 8, m * 4), Upscale(m * 4, m * 2))
        self.mask = nn.Conv2d(m * 2, 1, 1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = z
        for up, res in zip(self.up, self.res, strict=True):
            x = res(up(x))
        return torch.sigmoid(self.rgb(x)), torch.sigmoid(self.mask(self.mask_up(z)))


Output = tuple[torch.Tensor, torch.Tensor]


class PairAutoencoder(nn.Module):
    """Common interface: :meth:`recon_a`, :meth:`recon_b`, :meth:`swap` (A→B), each → (rgb, mask)."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.low_res = config.resolution // 16
        self.encoder = Encoder(config.enc_dims)
        self.enc_features = config.enc_dims * 8 * self.low_res**2

    def recon_a(self, a: torch.Tensor) -> Output:
        raise NotImplementedError

    def recon_b(self, b: torch.Tensor) -> Output:
        raise NotImplementedError

    def swap(self, a: torch.Tensor) -> Output:
        raise NotImplementedError

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[Output, Output]:
        return self.recon_a(a), self.recon_b(b)


class DFAutoencoder(PairAutoencoder):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        c = config
        self.inter = Inter(self.enc_features, c.ae_dims, c.ae_dims, self.low_res)
        self.dec_a = Decoder(c.ae_dims, c.dec_dims, c.mask_dims)
        self.dec_b = Decoder(c.ae_dims, c.dec_dims, c.mask_dims)

    def _code(self, x: torch.Tensor) -> torch.Tensor:
        return self.inter(self.encoder(x))

    def recon_a(self, a: torch.Tensor) -> Output:
        return self.dec_a(self._code(a))

    def recon_b(self, b: torch.Tensor) -> Output:
        return self.dec_b(self._code(b))

    def swap(self, a: torch.Tensor) -> Output:
        return self.dec_b(self._code(a))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[Output, Output]:
        # one encoder pass for both identities (same result as two, fewer kernel launches)
        code = self._code(torch.cat([a, b]))
        ca, cb = code[: len(a)], code[len(a) :]
        return self.dec_a(ca), self.dec_b(cb)


class LIAEAutoencoder(PairAutoencoder):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        c = config
        self.inter_ab = Inter(self.enc_features, c.ae_dims, c.ae_dims * 2, self.low_res)
        self.inter_a = Inter(self.enc_features, c.ae_dims, c.ae_dims * 2, self.low_res)
        self.decoder = Decoder(c.ae_dims * 4, c.dec_dims, c.mask_dims)

    def recon_a(self, a: torch.Tensor) -> Output:
        e = self.encoder(a)
        return self.decoder(torch.cat([self.inter_a(e), self.inter_ab(e)], 1))

    def recon_b(self, b: torch.Tensor) -> Output:
        ab = self.inter_ab(self.encoder(b))
        return self.decoder(torch.cat([ab, ab], 1))

    def swap(self, a: torch.Tensor) -> Output:
        ab = self.inter_ab(self.encoder(a))
        return self.decoder(torch.cat([ab, ab], 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[Output, Output]:
        e = self.encoder(torch.cat([a, b]))
        ea, eb = e[: len(a)], e[len(a) :]
        ab_b = self.inter_ab(eb)
        za = torch.cat([self.inter_a(ea), self.inter_ab(ea)], 1)
        zb = torch.cat([ab_b, ab_b], 1)
        (rgb, mask) = self.decoder(torch.cat([za, zb]))
        n = len(a)
        return (rgb[:n], mask[:n]), (rgb[n:], mask[n:])


def build_autoencoder(config: AutoencoderConfig) -> PairAutoencoder:
    return (DFAutoencoder if config.variant == "df" else LIAEAutoencoder)(config)


class SwapNet(nn.Module):
    """The exported network: face A (N×3×R×R RGB in [0, 1]) → (face as B, mask), both in [0, 1]."""

    def __init__(self, model: PairAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: torch.Tensor) -> Output:
        return self.model.swap(face)


@dataclass(frozen=True)
class TensorBatch:
    """A :class:`~masquerade.training.data.Batch` on the training device."""

    inputs: torch.Tensor
    targets: torch.Tensor
    masks: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def from_numpy(cls, batch: Batch, device: torch.device) -> TensorBatch:
        return on_device(cls, batch, device)


class AutoencoderTask(TrainTask):
    """:class:`~masquerade.training.trainer.TrainTask` training a DF/LIAE pair autoencoder on two facesets."""

    name: ClassVar[str] = "autoencoder"
    artifacts: ClassVar[tuple[str, ...]] = ("model.json", "autoencoder.onnx")
    changeable: ClassVar[tuple[str, ...]] = ("faceset_a", "faceset_b")  # moved or grown facesets

    def __init__(
        self,
        config: AutoencoderTrainConfig,
        seed: int = 0,
        faces_a: FaceArrays | None = None,
        faces_b: FaceArrays | None = None,
    ) -> None:
        self.cfg = config
        self.seed = int(seed)
        r = config.model.resolution
        if faces_a is None or faces_b is None:
            sets = [read_faceset(config.faceset_a), read_faceset(config.faceset_b)]
            for fs in sets:
                if fs.template != config.template:
                    raise InputError(
                        f"{fs.path}: faceset aligned with the {fs.template!r} template, "
                        f"not {config.template!r}"
                    )
            faces_a, faces_b = (load_face_arrays(fs, r) for fs in sets)
        self.faces_a, self.faces_b = faces_a, faces_b
        self.sampler_a = EpochSampler(len(self.faces_a), self.seed, 0)
        self.sampler_b = EpochSampler(len(self.faces_b), self.seed, 1)
        self._lock = threading.Lock()
        self.model: PairAutoencoder | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def build(self, device: torch.device) -> None:
        self.model = build_autoencoder(self.cfg.model).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, betas=(0.5, 0.999))

    def modules(self) -> dict[str, nn.Module]:
        assert self.model is not None
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.optimizer is not None
        return {"main": self.optimizer}

    def batch(self, step: int) -> tuple[Batch, Batch]:
        n, c = self.cfg.batch_size, self.cfg
        with self._lock:  # the samplers' permutation caches
            ia, ib = self.sampler_a.indices(step - 1, n), self.sampler_b.indices(step - 1, n)
        a = make_batch(self.faces_a, ia, self.sampler_a.rng(step), c.augment, c.regions)
        b = make_batch(self.faces_b, ib, self.sampler_b.rng(step), c.augment, c.regions)
        return a, b

    def losses(self, a: TensorBatch, b: TensorBatch) -> dict[str, torch.Tensor]:
        assert self.model is not None
        (ra, ma), (rb, mb) = self.model(a.inputs, b.inputs)
        la = reconstruction_loss(ra, ma, a.targets, a.masks, a.weights, self.cfg.loss)
        lb = reconstruction_loss(rb, mb, b.targets, b.masks, b.weights, self.cfg.loss)
        return {
            "loss_a": la["total"],
            "loss_b": lb["total"],
            "dssim": (la["dssim"] + lb["dssim"]) / 2,
            "mask": (la["mask"] + lb["mask"]) / 2,
            "total": la["total"] + lb["total"],
        }

    def train_step(self, batch: tuple[Batch, Batch], ctx: StepContext) -> dict[str, float]:
        a, b = (TensorBatch.from_numpy(x, ctx.device) for x in batch)
        with ctx.autocast():
            terms = self.losses(a, b)
        ctx.backward_step(terms["total"])
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def preview(self, device: torch.device) -> np.ndarray:
        assert self.model is not None
        k = self.cfg.preview_faces
        a = clean_batch(self.faces_a, preview_indices(len(self.faces_a), k))
        b = clean_batch(self.faces_b, preview_indices(len(self.faces_b), k))
        was_training = self.model.training
        self.model.eval()
        try:
            xa = torch.from_numpy(a.inputs).to(device)
            xb = torch.from_numpy(b.inputs).to(device)
            (ra, ma), (rb, mb) = self.model(xa, xb)
            sa, sm = self.model.swap(xa)
        finally:
            self.model.train(was_training)
        columns = [
            ("A", a.inputs),
            ("A recon", ra),
            ("A mask", ma),
            ("A>B swap", sa),
            ("swap mask", sm),
            ("B", b.inputs),
            ("B recon", rb),
            ("B mask", mb),
        ]
        return preview_grid(columns)

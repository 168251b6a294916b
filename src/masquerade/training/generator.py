"""The one-shot identity-conditioned generator (SimSwap / FaceShifter family) and its training task.

One network swaps any pair: it takes the **target** face (aligned crop, R×R RGB in [0, 1]) and the
**identity** to put on it (masquerade's 128-d dlib embedding of a source photo, L2-normalised) and
predicts the swapped face and the face mask.

**Generator** (U-Net-like): an encoder (3×3 stem at R, then ``downs`` 4×4 stride-2 convolutions with
instance norm, channels ``channels``·2^k up to ``max_channels``) whose features at every scale are
kept as attributes; ``id_blocks`` AdaIN residual blocks at the bottleneck (SimSwap's ID blocks: instance
norm, then a per-channel scale and shift predicted from the identity); a decoder that doubles the
resolution ``downs`` times (3×3 convolution + pixel shuffle) and merges each encoder scale through an
AAD residual block (FaceShifter's adaptive attentional denormalisation: a learned per-pixel gate
chooses between attribute-modulated features — scale and shift predicted spatially from the encoder
features — and identity-modulated ones). The identity passes through a two-layer mapping MLP first.
Heads: sigmoid RGB and sigmoid mask at R; the output is ``mask·rgb + (1 − mask)·target``, so the
background stays the target's. The mask is detached in that blend: it learns the target's face region
from the mask loss only, so the generator cannot fall back on copying the target by shrinking it.

**Discriminator**: multi-scale PatchGAN (pix2pixHD): ``disc_scales`` discriminators on the image
average-pooled by 2^k, each 4×4 convolutions (stride 2, then two stride 1) with spectral norm and
leaky ReLU; hinge loss. Their intermediate features give the feature-matching loss.

**Losses** (:class:`~.configs.GeneratorLossConfig`, weights configurable, defaults in brackets):

* ``identity`` [10]: 1 − cosine between the source embedding and the dlib embedding of the generated
  face, computed by :class:`masquerade.identity.torch_net.DlibResNet` (frozen, differentiable to the
  pixels) on the
  150-px dlib chip cut out of the generated crop with a sampling grid (the per-face crop → chip
  matrix from the data, see :func:`~masquerade.training.identity_data.chip_theta`); both embeddings
  are centred on the data's mean embedding first (raw dlib descriptors of two different people are
  typically at cosine 0.8–0.9, which would leave the loss little range);
* ``reconstruction`` [10]: L1 + DSSIM (:mod:`masquerade.training.losses`; eyes ×3 and mouth ×2 via
  the region weights) between output and target on pairs whose source is the target's person;
* ``feature_matching`` [10]: SimSwap's weak feature matching: L1 between the discriminators' last two
  intermediate feature maps of output and target (all pairs);
* ``adversarial`` [1]: hinge, generator side;
* ``eyes`` [2]: DSSIM of the luminance inside the eye regions (from the 68 landmarks) between output
  and target: the target's gaze and eyelids;
* ``mask`` [5]: MSE between the predicted mask and the target's face mask;
* ``attribute`` [0: off]: FaceShifter's attribute loss, MSE between the encoder features of output and
  target (SimSwap's weak feature matching plays this part by default).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .common import (
    IDENTITY_DIM,
    IdentityLoss,
    IdentityPairTask,
    TensorPairs,
    Upscale,
    model_parameters,
    preview_grid,
)
from .configs import GeneratorConfig, GeneratorTrainConfig
from .identity_data import IdentityFaces, PairBatch, clean_pair_batch, preview_pairs
from .losses import dssim, l1, luma, mse, ssim_window_size
from .trainer import StepContext

FM_LAYERS = 2  # intermediate discriminator features used by feature matching (the last ones)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class AdaIN(nn.Module):
    """Instance norm, then a per-channel scale ``1 + γ(w)`` and shift ``β(w)`` from the identity code."""

    def __init__(self, ch: int, id_dims: int) -> None:
        super().__init__()
        self.style = nn.Linear(id_dims, 2 * ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        g, b = self.style(w)[:, :, None, None].chunk(2, 1)
        return F.instance_norm(x) * (1 + g) + b


class IdBlock(nn.Module):
    """SimSwap's ID block: conv → AdaIN → leaky ReLU → conv → AdaIN, plus the input."""

    def __init__(self, ch: int, id_dims: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm1 = AdaIN(ch, id_dims)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2 = AdaIN(ch, id_dims)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = _lrelu(self.norm1(self.conv1(x), w))
        return x + self.norm2(self.conv2(y), w)


class AAD(nn.Module):
    """FaceShifter's adaptive attentional denormalisation: ``A = IN(h)·(1+γa(a)) + βa(a)`` (spatial,
    from the attributes ``a``), ``I = IN(h)·(1+γi(w)) + βi(w)`` (from the identity), and a gate
    ``M = σ(conv(IN(h)))``: ``(1 − M)·A + M·I``."""

    def __init__(self, ch: int, attr_ch: int, id_dims: int) -> None:
        super().__init__()
        self.attr = nn.Conv2d(attr_ch, 2 * ch, 3, padding=1)
        self.style = nn.Linear(id_dims, 2 * ch)
        self.gate = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, h: torch.Tensor, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        hn = F.instance_norm(h)
        ga, ba = self.attr(a).chunk(2, 1)
        gi, bi = self.style(w)[:, :, None, None].chunk(2, 1)
        att = hn * (1 + ga) + ba
        ident = hn * (1 + gi) + bi
        m = torch.sigmoid(self.gate(hn))
        return att + m * (ident - att)


class AADBlock(nn.Module):
    def __init__(self, ch: int, attr_ch: int, id_dims: int) -> None:
        super().__init__()
        self.aad1 = AAD(ch, attr_ch, id_dims)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.aad2 = AAD(ch, attr_ch, id_dims)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, h: torch.Tensor, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = self.conv1(_lrelu(self.aad1(h, a, w)))
        return h + self.conv2(_lrelu(self.aad2(y, a, w)))


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
        self.norm = nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.norm(self.conv(x)))


class Generator(nn.Module):
    """``forward(target N×3×R×R, identity N×128) → (swapped N×3×R×R, mask N×1×R×R)``, all in [0, 1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = c = config
        ch = c.widths()
        self.mapping = nn.Sequential(
            nn.Linear(IDENTITY_DIM, c.id_dims),
            nn.LeakyReLU(0.2),
            nn.Linear(c.id_dims, c.id_dims),
            nn.LeakyReLU(0.2),
        )
        self.stem = nn.Conv2d(3, ch[0], 3, padding=1)
        self.downs = nn.ModuleList(Down(a, b) for a, b in itertools.pairwise(ch))
        self.id_blocks = nn.ModuleList(IdBlock(ch[-1], c.id_dims) for _ in range(c.id_blocks))
        # decoder step k: R/2^(k+1) → R/2^k, merging encoder features of that scale
        self.ups = nn.ModuleList(Upscale(ch[k + 1], ch[k]) for k in reversed(range(c.downs)))
        self.merges = nn.ModuleList(AADBlock(ch[k], ch[k], c.id_dims) for k in reversed(range(c.downs)))
        self.rgb = nn.Conv2d(ch[0], 3, 3, padding=1)
        self.mask = nn.Conv2d(ch[0], 1, 3, padding=1)

    def identity_code(self, identity: torch.Tensor) -> torch.Tensor:
        return self.mapping(F.normalize(identity, dim=1))

    def encode(self, target: torch.Tensor) -> list[torch.Tensor]:
        """Attribute features at R, R/2, …, R/2^downs."""
        feats = [_lrelu(self.stem(target))]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats

    def decode(
        self, feats: list[torch.Tensor], w: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = feats[-1]
        for block in self.id_blocks:
            h = block(h, w)
        for up, merge, a in zip(self.ups, self.merges, reversed(feats[:-1]), strict=True):
            h = merge(up(h), a, w)
        rgb = torch.sigmoid(self.rgb(h))
        mask = torch.sigmoid(self.mask(h))
        return target + mask.detach() * (rgb - target), mask

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.encode(target), self.identity_code(identity), target)


class PatchDiscriminator(nn.Module):
    """4×4 convolutions with spectral norm: ``layers`` of stride 2, one of stride 1, a 1-channel map."""

    def __init__(self, ch: int, layers: int, size: int) -> None:
        super().__init__()
        layers = max(1, min(layers, int(np.log2(size)) - 3))  # keep the last maps at least 2×2
        chans = [3] + [min(ch * 2**k, ch * 8) for k in range(layers + 1)]
        convs = [
            spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1)) for a, b in itertools.pairwise(chans[:-1])
        ]
        convs.append(spectral_norm(nn.Conv2d(chans[-2], chans[-1], 4, stride=1, padding=1)))
        self.convs = nn.ModuleList(convs)
        self.out = spectral_norm(nn.Conv2d(chans[-1], 1, 4, stride=1, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for conv in self.convs:
            x = _lrelu(conv(x))
            feats.append(x)
        feats.append(self.out(x))
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``forward(x) → [features of scale 0, scale 1, …]``, each a list ending with the logit map."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        c = config
        self.scales = nn.ModuleList(
            PatchDiscriminator(c.disc_channels, c.disc_layers, c.resolution // 2**k)
            for k in range(c.disc_scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def build_generator(config: GeneratorConfig) -> Generator:
    return Generator(config)


def build_discriminator(config: GeneratorConfig) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(config)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class GeneratorTask(IdentityPairTask):
    """:class:`~masquerade.training.trainer.TrainTask` for the one-shot generator (optimisers ``G`` and
    ``D``; one discriminator step, then one generator step, per training step)."""

    name: ClassVar[str] = "generator"
    artifacts: ClassVar[tuple[str, ...]] = ("model.json", "generator.onnx")

    def __init__(
        self,
        config: GeneratorTrainConfig,
        seed: int = 0,
        data: IdentityFaces | None = None,
        cache: str | Path | None = None,
    ) -> None:
        super().__init__(config, seed, data, cache)
        self.generator: Generator | None = None
        self.discriminator: MultiScaleDiscriminator | None = None
        self.identity: IdentityLoss | None = None
        self.opt_g: torch.optim.Optimizer | None = None
        self.opt_d: torch.optim.Optimizer | None = None

    def build(self, device: torch.device) -> None:
        c = self.cfg
        self.load_data()
        self.generator = build_generator(c.model).to(device)
        self.discriminator = build_discriminator(c.model).to(device)
        self.identity = IdentityLoss(self.data.mean_embedding).to(device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=(0.0, 0.99))

    def modules(self) -> dict[str, nn.Module]:
        assert self.generator is not None and self.discriminator is not None
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.opt_g is not None and self.opt_d is not None
        return {"G": self.opt_g, "D": self.opt_d}

    # -- losses -----------------------------------------------------------------------------------
    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        assert self.discriminator is not None
        d_real, d_fake = self.discriminator(real), self.discriminator(fake.detach())
        return sum(
            (
                F.relu(1 - r[-1].float()).mean() + F.relu(1 + f[-1].float()).mean()
                for r, f in zip(d_real, d_fake, strict=True)
            ),
            torch.zeros((), device=real.device),
        )

    def generator_losses(
        self, b: TensorPairs, out: torch.Tensor, mask: torch.Tensor, feats: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Every generator loss term (unweighted) and ``total`` (weighted sum)."""
        assert self.generator is not None and self.discriminator is not None and self.identity is not None
        w = self.cfg.loss
        zero = torch.zeros((), device=out.device)
        d_fake = self.discriminator(out)
        with torch.no_grad():
            d_real = self.discriminator(b.target)
        adv = sum((-f[-1].float().mean() for f in d_fake), zero)
        fm = zero
        for f_scale, r_scale in zip(d_fake, d_real, strict=True):
            for f, r in zip(f_scale[:-1][-FM_LAYERS:], r_scale[:-1][-FM_LAYERS:], strict=True):
                fm = fm + l1(f.float(), r.float())
        emb = self.identity(out, b.theta)
        ident = (1 - (emb * b.id_target).sum(1)).mean()
        with torch.autocast(device_type=out.device.type, enabled=False):
            o, t = out.float(), b.target.float()
            window = ssim_window_size(t.shape[-1])
            same_w = b.weights * b.same[:, None, None, None]
            recon = l1(o, t, same_w) + dssim(o, t, same_w, window)
            eyes = dssim(luma(o), luma(t), b.eyes, window)
            mask_l = mse(mask.float(), b.mask)
        attr = zero
        if w.attribute > 0:
            out_feats = self.generator.encode(out)
            attr = sum(
                (mse(a.float(), f.detach().float()) for a, f in zip(out_feats, feats, strict=True)), zero
            )
        terms = {
            "identity": ident,
            "reconstruction": recon,
            "feature_matching": fm,
            "adversarial": adv,
            "eyes": eyes,
            "mask": mask_l,
            "attribute": attr,
        }
        terms["total"] = sum((getattr(w, k) * v for k, v in terms.items()), zero)
        return terms

    def train_step(self, batch: PairBatch, ctx: StepContext) -> dict[str, float]:
        assert self.generator is not None and self.discriminator is not None
        b = TensorPairs.from_numpy(batch, ctx.device)
        g, d = self.generator, self.discriminator
        with ctx.autocast():
            feats = g.encode(b.target)
            out, mask = g.decode(feats, g.identity_code(b.identity), b.target)
        _set_requires_grad(d, True)
        with ctx.autocast():
            d_loss = self.discriminator_loss(b.target, out)
        ctx.backward_step(d_loss, "D")
        _set_requires_grad(d, False)
        try:
            with ctx.autocast():
                terms = self.generator_losses(b, out, mask, feats)
            ctx.backward_step(terms["total"], "G")
        finally:
            _set_requires_grad(d, True)
        losses = {k: float(v.detach()) for k, v in terms.items()}
        losses["discriminator"] = float(d_loss.detach())
        losses["same_pairs"] = float(batch.same.mean())
        return losses

    @torch.no_grad()
    def evaluate(self, source: np.ndarray, target: np.ndarray, device: torch.device) -> dict[str, float]:
        """The identity, reconstruction, eyes and mask losses (unweighted, no augmentation) of the
        current generator on data faces ``source`` → ``target`` (indices); reconstruction counts the
        same-person pairs only, identity all pairs."""
        assert self.generator is not None and self.identity is not None
        b = TensorPairs.from_numpy(clean_pair_batch(self.data, source, target), device)
        was_training = self.generator.training
        self.generator.eval()
        try:
            out, mask = self.generator(b.target, b.identity)
            emb = self.identity(out, b.theta)
        finally:
            self.generator.train(was_training)
        window = ssim_window_size(out.shape[-1])
        same_w = b.weights * b.same[:, None, None, None]
        terms = {
            "identity": (1 - (emb * b.id_target).sum(1)).mean(),
            "reconstruction": l1(out, b.target, same_w) + dssim(out, b.target, same_w, window),
            "eyes": dssim(luma(out), luma(b.target), b.eyes, window),
            "mask": mse(mask, b.mask),
        }
        return {k: float(v) for k, v in terms.items()}

    # -- previews ---------------------------------------------------------------------------------
    @torch.no_grad()
    def swap_faces(
        self, source: np.ndarray, target: np.ndarray, device: torch.device
    ) -> tuple[PairBatch, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(clean batch, swap, mask, self-swap) of data faces ``source`` → ``target`` (indices)."""
        assert self.generator is not None
        b = clean_pair_batch(self.data, source, target)
        was_training = self.generator.training
        self.generator.eval()
        try:
            x = torch.from_numpy(b.target).to(device)
            swap, mask = self.generator(x, torch.from_numpy(b.identity).to(device))
            own = torch.from_numpy(self.data.unit_embeddings[target]).to(device)
            recon, _ = self.generator(x, own)
        finally:
            self.generator.train(was_training)
        return b, swap, mask, recon

    def preview(self, device: torch.device) -> np.ndarray:
        src, tgt = preview_pairs(self.data, self.cfg.preview_faces)
        b, swap, mask, recon = self.swap_faces(src, tgt, device)
        sources = self.data.faces.images[src].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return preview_grid(
            [("source", sources), ("target", b.target), ("swap", swap), ("mask", mask), ("recon", recon)]
        )


class GeneratorNet(nn.Module):
    """The exported network: ``(target N×3×R×R, identity N×128) → (swapped, mask)``."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, target: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.generator(target, identity)


def model_sizes(config: GeneratorConfig) -> tuple[int, int]:
    """(generator, discriminator) parameter counts, without allocating the weights."""
    return model_parameters(build_generator, config), model_parameters(build_discriminator, config)

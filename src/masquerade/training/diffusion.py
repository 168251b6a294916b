"""The diffusion swapper's denoiser and its training (``masquerade train diffusion``).

A DDPM (Ho et al. 2020) over aligned face crops in [−1, 1], conditioned as in DiffSwap / DiffFace:

* **target attributes** by channel concatenation: :func:`masquerade.swappers.diffusion.attribute_condition`
  (the target face with its face region blanked, the face mask and a 68-landmark heatmap) joins the
  noisy image at the input;
* **identity** by FiLM: the source's 128-d dlib embedding (unit vector; all zeros = none) goes through an
  MLP, is added to the timestep embedding, and every residual block scales and shifts its features by
  a projection of that sum. During training the identity is dropped (zeros) with probability
  ``cond_drop``, so the sampler can use classifier-free guidance on identity.

The network (:class:`DiffusionUNet`): an ADM-style U-Net — residual blocks (GroupNorm, SiLU, 3×3 convs,
FiLM), ``res_blocks`` per level at widths ``channels × mults``, stride-2 downsampling, self-attention at
the bottleneck, skip connections, zero-initialised output (the untrained model predicts zero noise).

Training (:class:`DiffusionTask`, the shared :class:`~masquerade.training.trainer.Trainer`): batches are
the generator's identity pairs (:mod:`.identity_data`: target face, source identity, same-person flag).
Per sample a timestep t (uniform) and noise ε are drawn from the step's seed; the target is noised to
x_t and the network predicts ε. Losses:

* **denoise**: MSE(ε̂, ε) on same-person pairs (for the others there is no ground truth: the target is
  not the source's person);
* **identity**: 1 − cosine between the dlib embedding of the predicted clean face x̂₀ (the
  differentiable identity network, as in the generator's loss) and the source's, both centred on the
  data's mean, weighted per sample by ᾱ_t (clean predictions count more), on pairs with an identity;
* **reconstruction**: L1 of x̂₀ against the target on same-person pairs, eyes and mouth weighted, also
  weighted by ᾱ_t.

An exponential moving average of the weights (``ema``) is kept and exported. Sampling (previews, the
swapper): deterministic DDIM with classifier-free guidance,
:func:`~masquerade.swappers.diffusion.ddim_sample`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..swappers.diffusion import (
    IDENTITY_DIM,
    alphas_cumprod,
    attribute_condition,
    ddim_sample,
    warp_condition,
)
from ..swappers.mesh3d import Mesh3DOptions
from .common import IdentityLoss, IdentityPairTask, TensorPairs, model_parameters, preview_grid
from .configs import DiffusionConfig, DiffusionTrainConfig
from .identity_data import IdentityFaces, PairBatch, clean_pair_batch, preview_pairs
from .losses import l1
from .trainer import StepContext


# ------------------------------------------------------------------------------------ the network
def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, ch)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of float timesteps (N) → N×dim."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, FiLM from the embedding, GroupNorm → SiLU → conv (zero-initialised), skip."""

    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.film(e).chunk(2, dim=1)
        h = self.n2(h) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(h))


class SelfAttention(nn.Module):
    """Single-head self-attention over positions (zero-initialised output projection)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm, self.qkv, self.out = _norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.scale = ch**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).flatten(2).chunk(3, dim=1)  # N×C×HW each
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=-1)  # N×HW×HW
        h = torch.bmm(v, w.transpose(1, 2)).reshape(x.shape)
        return x + self.out(h)


class DiffusionUNet(nn.Module):
    """ε̂ = f(x_t, t, condition, identity) (see the module docstring)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        c, emb = config.channels, 4 * config.channels
        self.time = nn.Sequential(nn.Linear(c, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.ident = nn.Sequential(nn.Linear(IDENTITY_DIM, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(3 + config.condition_channels, c, 3, padding=1)
        widths = [c * m for m in config.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, ch = [c], c
        for i, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks):
                blocks.append(ResBlock(ch, w, emb))
                ch = w
                skips.append(ch)
            self.down.append(blocks)
            last = i == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            if not last:
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, emb)
        self.attn = SelfAttention(ch) if config.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks + 1):
                blocks.append(ResBlock(ch + skips.pop(), w, emb))
                ch = w
            self.up.append(blocks)
            self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1) if i > 0 else nn.Identity())
        self.out_norm = _norm(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor, identity: torch.Tensor
    ) -> torch.Tensor:
        e = F.silu(self.time(timestep_embedding(t, self.config.channels)) + self.ident(identity))
        h = self.inp(torch.cat([x, condition.to(x.dtype)], dim=1))
        hs = [h]
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for block in blocks:
                h = block(h, e)
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        h = self.mid2(self.attn(self.mid1(h, e)), e)
        for blocks, up in zip(self.up, self.upsample, strict=True):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), e)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


def build_unet(config: DiffusionConfig) -> DiffusionUNet:
    return DiffusionUNet(config)


def model_size(config: DiffusionConfig) -> int:
    return model_parameters(build_unet, config)


# ------------------------------------------------------------------------------------- the task
@dataclass(frozen=True)
class DiffusionBatch:
    pairs: PairBatch
    condition: np.ndarray  # N×5×R×R
    t: np.ndarray  # N int64 timesteps
    noise: np.ndarray  # N×3×R×R
    has_identity: np.ndarray  # N float32: 0 where the identity is dropped


def conditions_of(pairs: PairBatch) -> np.ndarray:
    """The attribute conditions (N×5×R×R) of a batch's (augmented) targets."""
    return np.stack(
        [
            attribute_condition(pairs.target[i].transpose(1, 2, 0), pairs.mask[i, 0], pairs.landmarks[i])
            for i in range(len(pairs.target))
        ]
    )


class DiffusionTask(IdentityPairTask):
    """:class:`~masquerade.training.trainer.TrainTask` for the diffusion denoiser (optimiser ``main``)."""

    name: ClassVar[str] = "diffusion"
    artifacts: ClassVar[tuple[str, ...]] = ("model.json", "denoiser.onnx")

    def __init__(
        self,
        config: DiffusionTrainConfig,
        seed: int = 0,
        data: IdentityFaces | None = None,
        cache: str | Path | None = None,
    ) -> None:
        super().__init__(config, seed, data, cache)
        self.abar = alphas_cumprod(config.schedule, config.timesteps)
        self.unet: DiffusionUNet | None = None
        self.ema: DiffusionUNet | None = None
        self.identity: IdentityLoss | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.updates = 0

    def build(self, device: torch.device) -> None:
        c = self.cfg
        self.load_data()
        self.unet = build_unet(c.model).to(device)
        self.ema = build_unet(c.model).to(device)
        self.ema.load_state_dict(self.unet.state_dict())
        self.ema.requires_grad_(False)
        self.identity = IdentityLoss(self.identity_centre()).to(device)
        self.opt = torch.optim.Adam(self.unet.parameters(), lr=c.lr)
        self._abar_t = torch.from_numpy(self.abar.astype(np.float32)).to(device)

    def identity_centre(self) -> np.ndarray:
        """What the identity loss centres embeddings on: the data's mean embedding."""
        return self.data.mean_embedding

    def modules(self) -> dict[str, nn.Module]:
        assert self.unet is not None and self.ema is not None
        return {"unet": self.unet, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        assert self.opt is not None
        return {"main": self.opt}

    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": self.updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state.get("ema_updates", 0))

    def batch(self, step: int) -> DiffusionBatch:
        pairs, rng = self.pair_batch(step)
        n, r = len(pairs.target), self.cfg.model.resolution
        return DiffusionBatch(
            pairs=pairs,
            condition=conditions_of(pairs),
            t=rng.integers(0, self.cfg.timesteps, n).astype(np.int64),
            noise=rng.standard_normal((n, 3, r, r)).astype(np.float32),
            has_identity=(rng.random(n) >= self.cfg.cond_drop).astype(np.float32),
        )

    def losses(
        self, batch: DiffusionBatch, device: torch.device, net: DiffusionUNet | None = None
    ) -> dict[str, torch.Tensor]:
        """Every loss term (unweighted) and ``total`` of ``batch`` through ``net`` (default :attr:`unet`)."""
        assert self.unet is not None and self.identity is not None
        net = net or self.unet
        b = TensorPairs.from_numpy(batch.pairs, device)
        w = self.cfg.loss

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x)).to(device)

        t, noise, keep = tensor(batch.t), tensor(batch.noise), tensor(batch.has_identity)
        ab = self._abar_t[t][:, None, None, None]
        x0 = b.target * 2 - 1
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        eps = net(xt, t.float(), tensor(batch.condition), b.identity * keep[:, None]).float()
        zero = torch.zeros((), device=device)
        same = b.same
        per = ((eps - noise) ** 2).mean(dim=(1, 2, 3))
        denoise = (per * same).sum() / same.sum().clamp(min=1.0)
        pred = ((xt - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        img = (pred + 1) / 2
        weight = ab.flatten()
        identity = zero
        if w.identity > 0:
            k = self.cfg.identity_samples or len(img)  # the dlib network is the costly part on a CPU
            emb = self.identity(img[:k], b.theta[:k])
            cos = (emb * b.id_target[:k]).sum(1)
            iw = (weight * keep)[:k]
            identity = ((1 - cos) * iw).sum() / iw.sum().clamp(min=1e-6)
        recon = zero
        if w.reconstruction > 0:
            recon = l1(img, b.target, b.weights * (same * weight)[:, None, None, None])
        terms = {"denoise": denoise, "identity": identity, "reconstruction": recon}
        terms["total"] = sum((getattr(w, k) * v for k, v in terms.items()), zero)
        return terms

    def train_step(self, batch: DiffusionBatch, ctx: StepContext) -> dict[str, float]:
        assert self.unet is not None and self.ema is not None
        with ctx.autocast():
            terms = self.losses(batch, ctx.device)
        ctx.backward_step(terms["total"], "main")
        self.updates += 1
        decay = min(self.cfg.ema, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.unet.parameters(), strict=True):
                pe.lerp_(p.detach(), 1 - decay)
            for be, b in zip(self.ema.buffers(), self.unet.buffers(), strict=True):
                be.copy_(b)
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["same_pairs"] = float(batch.pairs.same.mean())
        return out

    @torch.no_grad()
    def evaluate(self, step: int, device: torch.device, use_ema: bool = False) -> dict[str, float]:
        """The loss terms of batch ``step`` (fixed pairs, augmentation, timesteps and noise) through the
        current network (or its EMA), without training."""
        assert self.unet is not None and self.ema is not None
        net = self.ema if use_ema else self.unet
        was = net.training
        net.eval()
        try:
            terms = self.losses(self.batch(step), device, net)
        finally:
            net.train(was)
        return {k: float(v) for k, v in terms.items()}

    @torch.no_grad()
    def sample(
        self,
        source: np.ndarray,
        target: np.ndarray,
        device: torch.device,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        use_ema: bool = True,
    ) -> tuple[PairBatch, np.ndarray]:
        """DDIM swaps of data faces ``source`` → ``target`` (indices): (clean batch, N×3×R×R in [0, 1])."""
        assert self.unet is not None and self.ema is not None
        net = self.ema if use_ema else self.unet
        was = net.training
        net.eval()
        b = clean_pair_batch(self.data, source, target)
        try:
            x0 = ddim_sample(
                numpy_denoiser(net, device),
                conditions_of(b),
                b.identity,
                self.abar,
                steps or self.cfg.sampling_steps,
                self.cfg.guidance if guidance is None else guidance,
                seed,
            )
        finally:
            net.train(was)
        return b, (x0 + 1) / 2

    def preview(self, device: torch.device) -> np.ndarray:
        src, tgt = preview_pairs(self.data, self.cfg.preview_faces)
        b, swap = self.sample(src, tgt, device)
        _, own = self.sample(tgt, tgt, device)
        sources = self.data.faces.images[src].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        cond = conditions_of(b)
        masked = (cond[:, :3] + 1) / 2
        return preview_grid(
            [("source", sources), ("target", b.target), ("condition", masked), ("swap", swap), ("self", own)]
        )


def numpy_denoiser(net: DiffusionUNet, device: torch.device) -> Any:
    """``net`` as the sampler calls a denoiser: numpy arrays in and out."""

    def denoise(x: np.ndarray, t: np.ndarray, cond: np.ndarray, ident: np.ndarray) -> np.ndarray:
        def d(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)

        return net(d(x), d(t), d(cond), d(ident)).float().cpu().numpy()

    return denoise


class DenoiserNet(nn.Module):
    """The exported network: ``(x, t, condition, identity) → eps``."""

    def __init__(self, unet: DiffusionUNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor, identity: torch.Tensor
    ) -> torch.Tensor:
        return self.unet(x, t, condition, identity)


# ------------------------------------------------------------------- conditioned on the 3-D warp
class _WarpView:
    """A diffusion config seen as the refiner's pair settings (the same pairs, the same cache)."""

    def __init__(self, cfg: DiffusionTrainConfig, size: int) -> None:
        from types import SimpleNamespace

        self.data = (cfg.data, *cfg.extra_data)
        self.holdout = cfg.holdout
        self.max_photos = cfg.max_photos or 6
        self.same_per_person = cfg.same_per_person
        self.different = cfg.different
        self.model = SimpleNamespace(resolution=size)
        self.relight = Mesh3DOptions.relight  # the warp as mesh3d relights it by default


WARP_SIZE = 128  # the warp pairs' crop (the refiner's); the denoiser works on them downsampled


def _downsample(x: np.ndarray, r: int) -> np.ndarray:
    """N×S×S×C uint8 → N×C×r×r float32 in [0, 1] (box filter; S a multiple of r)."""
    n, s = x.shape[0], x.shape[1]
    k = s // r
    c = x.shape[3] if x.ndim == 4 else 1
    y = x.reshape(n, r, k, r, k, c).astype(np.float32).mean((2, 4)) / 255.0
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


class WarpDiffusionTask(DiffusionTask):
    """The diffusion denoiser conditioned on the 3-D warp (``condition="warp"``): trained on the refiner's
    warp pairs (:mod:`.warp_data`). The condition is mesh3d's composite crop (clean or, for a ``corrupt``
    share, from a corrupted source), its mask and the target's eyes/irises/mouth; the clean image x₀ is
    the real target on same-person pairs (denoising and reconstruction losses) and the clean composite on
    different-person pairs (only the identity loss reads them). Sampling starts from the composite
    noised to ``strength`` (SDEdit), as the swapper does."""

    def __init__(
        self, config: DiffusionTrainConfig, seed: int = 0, data: Any = None, cache: Any = None
    ) -> None:
        super().__init__(config, seed, None, cache)
        self._pairs = data
        self._centre: np.ndarray | None = None
        self.summary = "" if data is None else f"{len(data)} warp pairs"

    def load_data(self, progress: Any = None, workers: int = 1) -> Any:  # type: ignore[override]
        if self._pairs is None:
            from .warp_data import load_warp_pairs

            stage = None if progress is None else (lambda name, done, total: progress(done, total, 0))
            self._pairs, self.summary = load_warp_pairs(
                _WarpView(self.cfg, WARP_SIZE), 0, self.cache, workers, stage
            )
        return self._pairs

    @property
    def pairs(self) -> Any:
        return self.load_data()

    @property
    def centre(self) -> np.ndarray:
        if self._centre is None:
            self._centre = self.pairs.source_emb.astype(np.float64).mean(0).astype(np.float32)
        return self._centre

    def identity_centre(self) -> np.ndarray:
        return self.centre

    def warp_batch(
        self, index: np.ndarray, rng: np.random.Generator, corrupt: float
    ) -> tuple[PairBatch, np.ndarray]:
        """The (pairs, 7×R×R conditions) of warp pairs ``index``."""
        d, r = self.pairs, self.cfg.model.resolution
        n = len(index)
        bad = (rng.random(n) < corrupt) & (d.corruption[index] > 0)
        clean, worse = _downsample(d.out[index], r), _downsample(d.out_corrupt[index], r)
        comp = np.where(bad[:, None, None, None], worse, clean)
        mask = _downsample(d.mask[index][..., None], r)
        parts = _downsample(d.parts[index], r)
        same = d.same[index].astype(np.float32)
        x0 = np.where(same[:, None, None, None] > 0, _downsample(d.target[index], r), clean)
        src = d.source_emb[index].astype(np.float32)
        unit = src / np.maximum(np.linalg.norm(src, axis=1, keepdims=True), 1e-8)
        centred = src - self.centre
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
        pairs = PairBatch(
            target=x0, mask=mask, weights=1.0 + 2.0 * parts[:, :2].max(1, keepdims=True) + parts[:, 2:],
            eyes=parts[:, :1], theta=d.theta[index].astype(np.float32),
            landmarks=np.zeros((n, 68, 2), np.float32), identity=unit, id_target=centred.astype(np.float32),
            same=same, source_index=index.astype(np.int64), target_index=index.astype(np.int64),
        )  # fmt: skip
        return pairs, warp_condition(comp, mask, parts)

    def batch(self, step: int) -> DiffusionBatch:
        rng = np.random.default_rng([self.seed, step])
        n, r = self.cfg.batch_size, self.cfg.model.resolution
        held = set(self.preview_index.tolist())
        index = np.array([i for i in rng.integers(0, len(self.pairs), 2 * n) if i not in held][:n])
        pairs, cond = self.warp_batch(index, rng, self.cfg.corrupt)
        # sampling starts from the warp noised to ``strength``: the steps above it are never run
        top = int(round(self.cfg.strength * (self.cfg.timesteps - 1)))  # as ddim_sample's start
        return DiffusionBatch(
            pairs=pairs, condition=cond, t=rng.integers(0, top + 1, n).astype(np.int64),
            noise=rng.standard_normal((n, 3, r, r)).astype(np.float32),
            has_identity=(rng.random(n) >= self.cfg.cond_drop).astype(np.float32),
        )  # fmt: skip

    @property
    def preview_index(self) -> np.ndarray:
        d, k = self.pairs, self.cfg.preview_faces
        same = np.flatnonzero(d.same & (d.corruption > 0))[: (k + 1) // 2]
        diff = np.flatnonzero(~d.same & (d.corruption > 0))[: k // 2]
        return np.concatenate([same, diff]).astype(np.int64)

    @torch.no_grad()
    def sample_warp(
        self, index: np.ndarray, device: torch.device, use_ema: bool = True
    ) -> tuple[PairBatch, np.ndarray, np.ndarray]:
        """(pairs, conditions, N×3×R×R samples in [0, 1]) of warp pairs ``index``, from their corrupted
        composites."""
        assert self.unet is not None and self.ema is not None
        net = self.ema if use_ema else self.unet
        was = net.training
        net.eval()
        pairs, cond = self.warp_batch(index, np.random.default_rng(0), 1.0)
        try:
            x0 = ddim_sample(
                numpy_denoiser(net, device), cond, pairs.identity, self.abar, self.cfg.sampling_steps,
                self.cfg.guidance, 0, start=cond[:, :3], strength=self.cfg.strength,
            )  # fmt: skip
        finally:
            net.train(was)
        return pairs, cond, (x0 + 1) / 2

    def preview(self, device: torch.device) -> np.ndarray:
        _, cond, out = self.sample_warp(self.preview_index, device)
        real = _downsample(self.pairs.target[self.preview_index], self.cfg.model.resolution)
        return preview_grid([("target", real), ("warp", (cond[:, :3] + 1) / 2), ("sampled", out)])

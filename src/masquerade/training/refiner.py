"""The refiner (``masquerade train refiner``): a small U-Net that corrects what the training-free 3-D warp
gets wrong, trained on real photo pairs (:mod:`.warp_data`).

The warp carries identity and geometry; the network only learns what the warp cannot do: relight to the
target, remove what a bad source photo brings (occluders, blur, colour casts), soften seams, fix eyes and
mouth. It sees the target's own inner face at most blurred to ``shade``×``shade`` px (the config's
``shade``: the light on the face, its shadows; 0, the default: not at all, the composite replaces it),
never its detail (measured at 16 px: still enough of the target's identity for the network to paint it
back, BENCHMARKS.md), and its output is a bounded additive correction of the composite (``max_correction``)
inside the composite's mask grown by ``seam`` pixels — zero-initialised, so an untrained refiner is
exactly the warp. Corrections are predicted on a ``resolution``-px crop and, at swap time, resampled to
the face's full size and added there: the warp's own detail stays at the photo's resolution.

**Inputs** (crop, [0, 1]): the mesh3d composite (3; made with occlusion handling on, as swaps are by
default), its mask (1), the target's eyes, irises and mouth (3), where the source's own texels were
hidden (1: filled from the other side of the face or left to the target), with ``shade`` the target's own
crop before the swap, averaged over blocks to ``shade`` px and bilinearly back (3, inside the network: the
ONNX input ``target`` is the plain crop); the source's dlib embedding (128, as FiLM at the bottleneck).
``init`` starts from a trained refiner's weights (its ONNX file; an input that model lacks — the
hidden texels, the target's shading — gets zero weights, so it starts as exactly that model).

**Losses** (:class:`~masquerade.training.configs.RefinerLossConfig`), per sample:

* same-person pairs — ``reconstruction``: L1 + DSSIM to the real target photo in the corrected region;
  ``detail``: as ``structure`` below, so that matching the real photo (never aligned to the pixel) does
  not blur away the warp's detail;
* different-person pairs — ``clean``: from a corrupted source, L1 + DSSIM to the clean source's composite
  (the copied occluder, blur or cast removed); ``structure``: L1 of the high frequencies (minus a 2-px
  Gaussian) to the warp's, so no new features are painted (relighting stays free); ``colour``: smooth L1
  of the output's chroma (each channel minus the luma) to the clean source's composite's, so the identity
  term cannot buy dlib's verdict with colour the photos do not have (tints, green blotches) — the light
  may still change;
* all — ``identity``: 1 − cosine of the output's dlib embedding (differentiable network) and the source's,
  centred on the data's mean embedding; ``adversarial``: hinge loss of a patch discriminator (real:
  target photos).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .common import IdentityLoss, parameter_count, preview_grid
from .configs import SHIPPED_INIT, RefinerConfig, RefinerTrainConfig
from .losses import luma, ssim_map
from .trainer import StepContext, TrainTask
from .warp_data import WarpPairs

log = logging.getLogger(__name__)

IN_CHANNELS = 8  # composite (3), mask (1), eyes / irises / mouth (3), hidden source texels (1)
SHADE_CHANNELS = 3  # with ``shade``: the target's blurred crop (RGB), after the others
BLOCK = 4  # the network works on BLOCK×BLOCK pixel blocks
EMBED_DIM = 128


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(_conv(cin, cout, stride), nn.LeakyReLU(0.2), _conv(cout, cout), nn.LeakyReLU(0.2))


class RefinerNet(nn.Module):
    """Composite crop (+ mask, parts map, source embedding) → bounded correction, zero-initialised.

    A U-Net that starts from 4×4 pixel blocks (space-to-depth) at R/4 and ends with depth-to-space back to
    R: full-resolution output at a fraction of a full-resolution network's cost (this trains on a CPU)."""

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        self.e0 = _Block(BLOCK * BLOCK * self.in_channels, c0)  # R/4
        self.e1 = _Block(c0, c1, 2)  # R/8
        self.e2 = _Block(c1, c2, 2)  # R/16
        self.e3 = _Block(c2, c3, 2)  # R/32
        self.film = nn.Linear(EMBED_DIM, 2 * c3)
        self.d2 = _Block(c3 + c2, c2)
        self.d1 = _Block(c2 + c1, c1)
        self.d0 = _Block(c1 + c0, config.head)
        self.out = nn.Conv2d(config.head, 3 * BLOCK * BLOCK, 3, 1, 1)  # 4×4 blocks of RGB
        for mod in self.modules():  # He init for leaky ReLUs: activations keep their scale through the net
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(mod.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    @property
    def in_channels(self) -> int:
        return IN_CHANNELS + (SHADE_CHANNELS if self.config.shade else 0)

    def shading(self, target: torch.Tensor) -> torch.Tensor:
        """The target's crop averaged over blocks to ``shade``×``shade`` and bilinearly back to R×R."""
        r = target.shape[-1]
        low = F.avg_pool2d(target, r // self.config.shade)
        return F.interpolate(low, size=target.shape[-2:], mode="bilinear", align_corners=False)

    def region(self, mask: torch.Tensor) -> torch.Tensor:
        """Where the correction applies: the composite's mask, grown by ``seam`` px and softened."""
        r = self.config.seam
        grown = F.max_pool2d(F.max_pool2d(mask, (1, 2 * r + 1), 1, (0, r)), (2 * r + 1, 1), 1, (r, 0))
        return F.avg_pool2d(grown, 3, 1, 1)

    def correction(
        self, image: torch.Tensor, mask: torch.Tensor, parts: torch.Tensor, identity: torch.Tensor,
        hidden: torch.Tensor, target: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """The correction to add to ``image`` (N×3×R×R, zero outside :meth:`region`); ``target``: the
        target's own crop before the swap (used only with ``shade``; None there: ``image``'s)."""
        inputs = [image, mask, parts, hidden]
        if self.config.shade:
            inputs.append(self.shading(image if target is None else target))
        x = F.pixel_unshuffle(torch.cat(inputs, 1), BLOCK)
        a = self.e0(x)
        b = self.e1(a)
        c = self.e2(b)
        d = self.e3(c)
        gamma, beta = self.film(identity).chunk(2, 1)
        d = d * (1 + gamma[..., None, None]) + beta[..., None, None]

        def up(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)

        c = self.d2(torch.cat([up(d, c), c], 1))
        b = self.d1(torch.cat([up(c, b), b], 1))
        h = self.d0(torch.cat([up(b, a), a], 1))
        delta = torch.tanh(F.pixel_shuffle(self.out(h), BLOCK)) * self.config.max_correction
        return delta * self.region(mask)

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, parts: torch.Tensor, identity: torch.Tensor,
        hidden: torch.Tensor, target: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """The refined composite (clamped to [0, 1])."""
        return (image + self.correction(image, mask, parts, identity, hidden, target)).clamp(0.0, 1.0)


class CorrectionNet(nn.Module):
    """What is exported: (image, mask, parts, identity, hidden[, target with ``shade``]) → correction."""

    def __init__(self, net: RefinerNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, parts: torch.Tensor, identity: torch.Tensor,
        hidden: torch.Tensor, target: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        return self.net.correction(image, mask, parts, identity, hidden, target)


def load_onnx_weights(net: RefinerNet, onnx_path: str | Path) -> None:
    """Set ``net``'s weights from a trained refiner's ONNX file (its initialisers keep the PyTorch names).
    Inputs that model lacks (the hidden texels of a 7-channel model, the target's shading) get zero
    weights: ``net`` then computes exactly what that model does. One-line
    :class:`InputError` when the sizes differ (another ``--preset``) or a weight is not there by its name
    (the exporter gives equal tensors one name: only an untrained model has those, e.g. zero biases)."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as exc:  # onnx raises several kinds for a bad file
        raise InputError(f"{onnx_path}: not a readable ONNX model ({exc})") from None
    weights = {
        i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in graph.initializer
    }
    own = net.state_dict()
    first = "e0.0.weight"
    w = weights.get(first)
    fewer = w is not None and w.ndim == 4 and w.shape[1] < own[first].shape[1]
    if fewer and w.shape[1] in (BLOCK * BLOCK * (IN_CHANNELS - 1), BLOCK * BLOCK * IN_CHANNELS):
        grown = torch.zeros(own[first].shape, dtype=w.dtype)
        grown[:, : w.shape[1]] = w  # pixel_unshuffle puts each input channel's 16 block pixels together
        weights[first] = grown
    missing = [k for k in own if k not in weights or weights[k].shape != own[k].shape]
    if missing:
        raise InputError(
            f"{onnx_path}: its weights do not fit this refiner ({', '.join(missing[:3])}…; another --preset?)"
        )
    net.load_state_dict({k: weights[k] for k in own})


class PatchDiscriminator(nn.Module):
    """A small hinge-loss patch discriminator on the crops."""

    def __init__(self, ch: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ch, 4 * ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * ch, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.avg_pool2d(x, 2) * 2 - 1)  # at half resolution: realism, cheaply


def build_refiner(config: RefinerConfig) -> RefinerNet:
    return RefinerNet(config)


def high_pass(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """``x`` minus its Gaussian blur (σ px)."""
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    gx, gy = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    blur = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), gx, groups=c)
    blur = F.conv2d(F.pad(blur, (0, 0, r, r), mode="replicate"), gy, groups=c)
    return x - blur


def chroma(x: torch.Tensor) -> torch.Tensor:
    """N×3 RGB → N×3: each channel minus the Rec. 601 luma (zero for any grey; brightening or darkening
    scales it, a tint moves it)."""
    return x - luma(x)


@dataclass
class RefinerBatch:
    image: torch.Tensor  # N×3×R×R the composite the network refines (clean or corrupted source)
    clean: torch.Tensor  # N×3×R×R the clean source's composite
    target: torch.Tensor  # N×3×R×R the real target photo
    mask: torch.Tensor  # N×1×R×R the input composite's
    parts: torch.Tensor  # N×3×R×R
    hidden: torch.Tensor  # N×1×R×R the input composite's hidden source texels
    identity: torch.Tensor  # N×128 unit source embeddings (the network's input)
    id_target: torch.Tensor  # N×128 centred unit source embeddings (the identity loss's target)
    theta: torch.Tensor  # N×2×3 crop → dlib chip
    same: torch.Tensor  # N float: 1 same person
    corrupt: torch.Tensor  # N float: 1 the input is the corrupted-source composite

    def to(self, device: torch.device) -> RefinerBatch:
        return RefinerBatch(**{k: v.to(device, non_blocking=True) for k, v in self.__dict__.items()})


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def make_batch(
    data: WarpPairs, index: np.ndarray, rng: np.random.Generator, corrupt: float, centre: np.ndarray
) -> RefinerBatch:
    """The samples ``index`` as tensors: a random horizontal flip and brightness/contrast jitter (the same
    for input and targets), the corrupted input for a ``corrupt`` share of them."""
    n = len(index)
    use_bad = (rng.random(n) < corrupt) & (data.corruption[index] > 0)
    flip = rng.random(n) < 0.5

    def img(a: np.ndarray) -> np.ndarray:
        x = a[index].astype(np.float32) / 255.0
        x[flip] = x[flip, :, ::-1]
        return np.ascontiguousarray(np.moveaxis(x, -1, 1) if x.ndim == 4 else x[:, None])

    gain = rng.uniform(0.85, 1.15, (n, 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-0.05, 0.05, (n, 1, 1, 1)).astype(np.float32)

    def jitter(x: np.ndarray) -> np.ndarray:
        return np.clip(x * gain + bias, 0.0, 1.0)

    clean = jitter(img(data.out))
    bad = jitter(img(data.out_corrupt))
    image = np.where(use_bad[:, None, None, None], bad, clean)
    mask = np.where(use_bad[:, None, None, None], img(data.mask_corrupt), img(data.mask))
    hidden = np.where(use_bad[:, None, None, None], img(data.hidden_corrupt), img(data.hidden))
    theta = data.theta[index].astype(np.float32).copy()
    theta[flip, 0] *= -1  # the chip of a mirrored crop (dlib embeds a mirrored face almost alike)
    src = data.source_emb[index]
    return RefinerBatch(
        image=torch.from_numpy(image), clean=torch.from_numpy(clean),
        target=torch.from_numpy(jitter(img(data.target))),
        mask=torch.from_numpy(mask), parts=torch.from_numpy(img(data.parts)),
        hidden=torch.from_numpy(hidden),
        identity=torch.from_numpy(_unit(src)), id_target=torch.from_numpy(_unit(src - centre)),
        theta=torch.from_numpy(theta), same=torch.from_numpy(data.same[index].astype(np.float32)),
        corrupt=torch.from_numpy(use_bad.astype(np.float32)),
    )  # fmt: skip


CHARBONNIER = 0.01  # ε of the pixel losses (about 2.5 grey levels)


def charbonnier(x: torch.Tensor) -> torch.Tensor:
    """A smooth L1 (√(x² + ε²) − ε): L1's robustness, without its kink at zero — where most corrections
    should stay (an L1 there sends a full-size gradient of random sign for any tiny change, which drowns
    the signal of the pixels that do need correcting)."""
    return torch.sqrt(x * x + CHARBONNIER**2) - CHARBONNIER


def _per_sample(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean over C×H×W per sample."""
    w = w.expand_as(x)
    return (x * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-6)


def ssim_per_sample(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _per_sample((1.0 - ssim_map(x, y, 7, 1.5)) * 0.5, w)


class RefinerTask(TrainTask):
    name: ClassVar[str] = "refiner"
    changeable: ClassVar[tuple[str, ...]] = ("data",)
    # runs from before --shade, the colour and detail terms and the cool-down
    added_defaults: ClassVar[dict[str, Any]] = {
        "model.shade": 0, "loss.colour": 0.0, "loss.detail": 0.0, "lr_decay": [0, 0], "lr_floor": 0.1
    }  # fmt: skip

    def __init__(self, config: RefinerTrainConfig, seed: int = 0, data: WarpPairs | None = None) -> None:
        self.cfg = config
        self.seed = int(seed)
        self._data = data
        self._lock = threading.Lock()
        self.net: RefinerNet | None = None
        self.disc: PatchDiscriminator | None = None
        self.idloss: IdentityLoss | None = None
        self._opt: dict[str, torch.optim.Optimizer] = {}
        self._preview_index: np.ndarray | None = None

    def use_data(self, data: WarpPairs) -> None:
        if data.size != self.cfg.model.resolution:
            raise InputError(f"pairs are {data.size} px, the model {self.cfg.model.resolution} px")
        self._data = data
        self._preview_index = None

    @property
    def data(self) -> WarpPairs:
        if self._data is None:
            raise InputError(
                "the refiner's training pairs are not loaded (masquerade train refiner makes them)"
            )
        return self._data

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    @property
    def centre(self) -> np.ndarray:
        return self.data.source_emb.astype(np.float64).mean(0).astype(np.float32)

    def build(self, device: torch.device) -> None:
        net = build_refiner(self.cfg.model)
        if self.cfg.init:
            load_onnx_weights(net, init_onnx(self.cfg.init))
        self.net = net.to(device)
        self.disc = PatchDiscriminator().to(device)
        self.idloss = IdentityLoss(self.centre).to(device)
        self._opt = {
            "main": torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr, betas=(0.9, 0.99)),
            "disc": torch.optim.Adam(self.disc.parameters(), lr=self.cfg.lr_d, betas=(0.5, 0.99)),
        }
        log.info("refiner: %d parameters", parameter_count(self.net))

    def modules(self) -> dict[str, nn.Module]:
        assert self.net is not None and self.disc is not None
        return {"refiner": self.net, "disc": self.disc}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def batch(self, step: int) -> RefinerBatch:
        rng = np.random.default_rng([self.seed, step])
        n = len(self.data)
        held = self.preview_index
        index = rng.integers(0, n, self.cfg.batch_size * 2)
        index = np.array([i for i in index if i not in set(held.tolist())][: self.cfg.batch_size])
        return make_batch(self.data, index, rng, self.cfg.corrupt, self.centre)

    @property
    def preview_index(self) -> np.ndarray:
        """Pairs kept out of training for the previews: half same-person, half different."""
        if self._preview_index is None:
            d = self.data
            k = self.cfg.preview_faces
            same = np.flatnonzero(d.same & (d.corruption > 0))[: (k + 1) // 2]
            diff = np.flatnonzero(~d.same & (d.corruption > 0))[: k // 2]
            self._preview_index = np.concatenate([same, diff]).astype(np.int64)
        return self._preview_index

    def losses(self, b: RefinerBatch, out: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self.net is not None
        lw = self.cfg.loss
        region = self.net.region(b.mask)
        same, diff = b.same, 1.0 - b.same
        rec_l = _per_sample(charbonnier(out - b.target), region) + ssim_per_sample(out, b.target, region)
        clean_l = _per_sample(charbonnier(out - b.clean), region) + ssim_per_sample(out, b.clean, region)
        struct_l = _per_sample(charbonnier(high_pass(out) - high_pass(b.clean)), region)
        parts = {
            "reconstruction": (rec_l * same).sum() / same.sum().clamp_min(1.0),
            "clean": (clean_l * diff * b.corrupt).sum() / (diff * b.corrupt).sum().clamp_min(1.0),
            "structure": (struct_l * diff).sum() / diff.sum().clamp_min(1.0),
        }
        if lw.colour:  # (only then: runs without it keep their loss log's columns)
            colour_l = _per_sample(charbonnier(chroma(out) - chroma(b.clean)), region)
            parts["colour"] = (colour_l * diff).sum() / diff.sum().clamp_min(1.0)
        if lw.detail:  # (likewise)
            parts["detail"] = (struct_l * same).sum() / same.sum().clamp_min(1.0)
        return {k: v * getattr(lw, k) for k, v in parts.items()}

    def train_step(self, batch: RefinerBatch, ctx: StepContext) -> dict[str, float]:
        assert self.net is not None and self.disc is not None and self.idloss is not None
        b = batch.to(ctx.device)
        lw = self.cfg.loss
        for group in self._opt["main"].param_groups:
            group["lr"] = self.cfg.lr * self.cfg.lr_scale(ctx.step)
        with ctx.autocast():
            out = self.net(b.image, b.mask, b.parts, b.identity, b.hidden, b.target)
            terms = self.losses(b, out)
            k = min(self.cfg.identity_samples, len(out))
            if lw.identity > 0 and k:
                emb = self.idloss(out[:k], b.theta[:k])
                terms["identity"] = lw.identity * (1.0 - (emb * b.id_target[:k]).sum(1)).mean()
            if lw.adversarial > 0:
                terms["adversarial"] = lw.adversarial * -self.disc(out).mean()
            total = torch.stack(list(terms.values())).sum()
        ctx.backward_step(total, "main")
        losses = {k: float(v.detach()) for k, v in terms.items()}
        losses["total"] = float(total.detach())
        if lw.adversarial > 0:
            with ctx.autocast():
                real = self.disc(b.target)
                fake = self.disc(out.detach())
                d_loss = F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
            ctx.backward_step(d_loss, "disc")
            losses["disc"] = float(d_loss.detach())
        return losses

    @torch.no_grad()
    def preview(self, device: torch.device) -> np.ndarray:
        """Rows: held-out pairs; columns: real target, composite from the corrupted source, refined, clean
        composite."""
        assert self.net is not None
        idx = self.preview_index
        rng = np.random.default_rng(0)
        b = make_batch(self.data, idx, rng, 1.0, self.centre)
        bd = b.to(device)
        was = self.net.training
        self.net.eval()
        out = self.net(bd.image, bd.mask, bd.parts, bd.identity, bd.hidden, bd.target).cpu()
        self.net.train(was)
        return preview_grid(
            [("target", b.target), ("input", b.image), ("refined", out), ("clean warp", b.clean)]
        )

    @torch.no_grad()
    def objective(self, device: torch.device, seed: int = 1) -> float:
        """The pixel losses (reconstruction, clean, structure, colour; weighted) on a fixed batch of every
        pair: what training lowers, without the noise of sampling, identity and the discriminator."""
        assert self.net is not None
        rng = np.random.default_rng(seed)
        b = make_batch(self.data, np.arange(len(self.data)), rng, self.cfg.corrupt, self.centre).to(device)
        was = self.net.training
        self.net.eval()
        out = self.net(b.image, b.mask, b.parts, b.identity, b.hidden, b.target)
        self.net.train(was)
        return float(sum(self.losses(b, out).values()))

    @torch.no_grad()
    def evaluate(self, device: torch.device, count: int = 256) -> dict[str, float]:
        """Mean L1 (×255) to the real target on same-person pairs, input vs refined (a quick check)."""
        assert self.net is not None
        d = self.data
        idx = np.flatnonzero(d.same)[:count]
        b = make_batch(d, idx, np.random.default_rng(1), 0.0, self.centre).to(device)
        out = self.net(b.image, b.mask, b.parts, b.identity, b.hidden, b.target)
        w = self.net.region(b.mask)
        return {
            "input_l1": float(_per_sample((b.image - b.target).abs(), w).mean() * 255),
            "refined_l1": float(_per_sample((out - b.target).abs(), w).mean() * 255),
        }


def init_onnx(init: str) -> Path:
    """The ONNX file of ``init``: ``shipped`` (the refiner in the package) or a refiner model folder."""
    from ..swappers.refined import read_refiner_info

    return Path(read_refiner_info(None if init == SHIPPED_INIT else init).onnx)


def export_state(model: RefinerNet) -> CorrectionNet:
    return CorrectionNet(model).eval()


__all__ = [
    "CorrectionNet",
    "RefinerNet",
    "RefinerTask",
    "build_refiner",
    "make_batch",
]

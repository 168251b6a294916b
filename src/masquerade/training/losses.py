"""Image losses with per-pixel weights: DSSIM (gaussian-window SSIM), L1, MSE, and the mask loss.

All images are float tensors N×C×H×W in [0, 1]; weights are N×1×H×W (broadcast over channels).
:func:`reconstruction_loss` combines them the way DeepFaceLab's SAEHD does: DSSIM and a pixel loss on
the face (the background counts ``background`` as much), eyes and mouth weighted higher, plus an MSE on
the predicted mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .configs import LossConfig


def luma(x: torch.Tensor) -> torch.Tensor:
    """N×3 RGB → N×1 Rec. 601 luma (float32)."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).float()


def ssim_window_size(resolution: int, configured: int = 0) -> int:
    if configured:
        return int(configured) | 1
    return max(5, int(resolution / 11.6) | 1)


def gaussian_window(size: int, sigma: float, device: torch.device | None = None) -> torch.Tensor:
    """Normalised 1-D gaussian of odd ``size``."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable depthwise gaussian blur with reflect padding (output size = input size)."""
    c, k = x.shape[1], g.numel()
    p = k // 2
    x = F.pad(x, (p, p, p, p), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k).to(x.dtype), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1).to(x.dtype), groups=c)


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, max_val: float = 1.0
) -> torch.Tensor:
    """Per-pixel SSIM (N×C×H×W) with a gaussian window (Wang et al. 2004 constants)."""
    g = gaussian_window(window, sigma, x.device)
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of N×C×H×W ``values`` under N×1×H×W ``weights`` (plain mean when None)."""
    if weights is None:
        return values.mean()
    w = weights.expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(1e-8)


def dssim(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor | None = None,
    window: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural dissimilarity ``(1 − SSIM) / 2``, weighted mean over pixels."""
    return weighted_mean((1.0 - ssim_map(x, y, window, sigma)) * 0.5, weights)


def l1(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    return weighted_mean((x - y).abs(), weights)


def mse(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    return weighted_mean((x - y) ** 2, weights)


def reconstruction_loss(
    pred: torch.Tensor,
    pred_mask: torch.Tensor,
    target: torch.Tensor,
    target_mask: torch.Tensor,
    region_weights: torch.Tensor,
    cfg: LossConfig,
) -> dict[str, torch.Tensor]:
    """DSSIM + pixel loss (face-masked, eyes/mouth weighted) + mask MSE; ``total`` is their weighted sum.

    Computed in float32 even under autocast (SSIM's variances cancel badly in half precision)."""
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred, pred_mask = pred.float(), pred_mask.float()
        target, target_mask = target.float(), target_mask.float()
        w = region_weights.float() * (cfg.background + (1.0 - cfg.background) * target_mask)
        window = ssim_window_size(target.shape[-1], cfg.ssim_window)
        terms = {
            "dssim": dssim(pred, target, w, window, cfg.ssim_sigma),
            "pixel": (mse if cfg.pixel_loss == "mse" else l1)(pred, target, w),
            "mask": mse(pred_mask, target_mask),
        }
        terms["total"] = cfg.dssim * terms["dssim"] + cfg.pixel * terms["pixel"] + cfg.mask * terms["mask"]
    return terms

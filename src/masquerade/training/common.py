"""The torch pieces several trainers share.

- :func:`parameter_count`, :func:`model_parameters` (without allocating the weights),
  :func:`preview_grid` (the labelled preview image) and :func:`on_device` (a batch's arrays as
  tensors on the training device): every trainer;
- :class:`Upscale` (3×3 convolution + pixel shuffle): the autoencoder's and the generator's decoders;
- the trainers on identity-labelled faces (the generator, the diffusion denoiser):
  :func:`load_training_faces` (the run's faces), :class:`IdentityPairTask` (faces, pair sampler,
  batches), :class:`TensorPairs` (a pair batch on the device) and :class:`IdentityLoss` (the frozen,
  differentiable dlib embedding of generated faces).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .configs import DiffusionTrainConfig, GeneratorTrainConfig
from .identity_data import (
    CHIP_SIZE,
    IdentityFaces,
    PairBatch,
    PairSampler,
    ProgressFn,
    holdout_people,
    is_identity_pack,
    load_identity_faces,
    load_identity_pack,
    make_pair_batch,
    scan_identity_folder,
)
from .trainer import TrainTask

IDENTITY_DIM = 128  # masquerade's dlib identity embedding
IdentityTrainConfig = GeneratorTrainConfig | DiffusionTrainConfig
C = TypeVar("C")
T = TypeVar("T")


# ------------------------------------------------------------------------------------ every trainer
def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_parameters(build: Callable[[C], nn.Module], config: C) -> int:
    """The parameter count of ``build(config)``, without allocating the weights."""
    with torch.device("meta"):
        return parameter_count(build(config))


def on_device(cls: type[T], arrays: Any, device: torch.device) -> T:
    """``cls``, a dataclass of tensors, from the numpy arrays of the same names in ``arrays`` (a batch),
    on ``device``."""

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device, non_blocking=True)

    return cls(**{f.name: tensor(getattr(arrays, f.name)) for f in fields(cls)})  # type: ignore[arg-type]


def _to_hwc(x: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def preview_grid(columns: list[tuple[str, np.ndarray | torch.Tensor]], min_cell: int = 96) -> np.ndarray:
    """Labelled grid: one column per (title, N×C×R×R images in [0, 1]), one row per sample."""
    cols = [(title, _to_hwc(x)) for title, x in columns]
    n, r = cols[0][1].shape[0], cols[0][1].shape[1]
    cell = max(r, min_cell)
    head, gap = 18, 2
    w = len(cols) * (cell + gap) + gap
    h = head + n * (cell + gap) + gap
    out = np.full((h, w, 3), 32, np.uint8)
    for j, (title, imgs) in enumerate(cols):
        x0 = gap + j * (cell + gap)
        cv2.putText(out, title, (x0 + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (235, 235, 235), 1, cv2.LINE_AA)
        for i in range(n):
            y0 = head + gap + i * (cell + gap)
            img = imgs[i] if cell == r else cv2.resize(imgs[i], (cell, cell), interpolation=cv2.INTER_NEAREST)
            out[y0 : y0 + cell, x0 : x0 + cell] = img
    return out


# ------------------------------------------------------------------------------------ layers
class Upscale(nn.Module):
    """3×3 convolution to 4× channels, leaky ReLU, pixel shuffle (×2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.leaky_relu(self.conv(x), 0.1), 2)


# ------------------------------------------------------------------------------------ identity pairs
def load_training_faces(
    cfg: IdentityTrainConfig, cache: str | Path | None = None, progress: ProgressFn | None = None
) -> IdentityFaces:
    """The run's faces: scan ``cfg.data`` (people, photos, hold-out), align and cache; or, when
    ``cfg.data`` is a file, read that identity pack."""
    if is_identity_pack(cfg.data):
        data = load_identity_pack(cfg.data, cfg.people, cfg.max_photos, holdout_people(cfg.holdout))
        if data.resolution != cfg.model.resolution or data.template != cfg.template:
            raise InputError(
                f"{cfg.data}: the pack holds {data.resolution} px faces aligned with {data.template!r}; "
                f"train with --resolution {data.resolution} --template {data.template}"
            )
        return data
    folder = scan_identity_folder(cfg.data, cfg.people, cfg.max_photos, holdout_people(cfg.holdout))
    return load_identity_faces(folder, cfg.model.resolution, cfg.template, cache=cache, progress=progress)


@dataclass(frozen=True)
class TensorPairs:
    """A :class:`~masquerade.training.identity_data.PairBatch` on the training device."""

    target: torch.Tensor
    mask: torch.Tensor
    weights: torch.Tensor
    eyes: torch.Tensor
    theta: torch.Tensor
    identity: torch.Tensor
    id_target: torch.Tensor
    same: torch.Tensor

    @classmethod
    def from_numpy(cls, b: PairBatch, device: torch.device) -> TensorPairs:
        return on_device(cls, b, device)


class IdentityLoss(nn.Module):
    """dlib embeddings of faces, through the 150-px chip cut out with ``theta`` (frozen network), centred
    on ``centre`` (the data's mean embedding) and L2-normalised."""

    def __init__(self, centre: np.ndarray | None = None) -> None:
        super().__init__()
        from ..identity.torch_net import DlibResNet

        self.net = DlibResNet(input_range=1.0).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        c = np.zeros(IDENTITY_DIM, np.float32) if centre is None else np.asarray(centre, np.float32)
        self.register_buffer("centre", torch.from_numpy(c.copy()).view(1, -1))

    def chips(self, faces: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(
            theta.to(faces.dtype), [len(faces), 3, CHIP_SIZE, CHIP_SIZE], align_corners=False
        )
        return F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def forward(self, faces: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(self.chips(faces, theta)).float() - self.centre, dim=1)


class IdentityPairTask(TrainTask):
    """What the trainers on identity-labelled faces share (the generator, the diffusion model): the
    run's faces (:func:`load_training_faces`), the pair sampler and :meth:`pair_batch`. ``config``
    is a :class:`~masquerade.training.configs.GeneratorTrainConfig` or
    :class:`~masquerade.training.configs.DiffusionTrainConfig` (the fields that name the data,
    ``model.resolution``, ``same_ratio``, ``batch_size``, ``augment``, ``regions`` and ``to_dict()``)."""

    changeable: ClassVar[tuple[str, ...]] = ("data",)  # a moved data folder

    def __init__(
        self,
        config: Any,
        seed: int = 0,
        data: IdentityFaces | None = None,
        cache: str | Path | None = None,
    ) -> None:
        """``data``: the faces, when already loaded; else :meth:`load_data` (or :meth:`build`) reads them
        from ``config.data`` through the face cache ``cache``."""
        self.cfg = config
        self.seed = int(seed)
        self.cache = cache
        self._data: IdentityFaces | None = None
        self.sampler: PairSampler | None = None
        if data is not None:
            self._use(data)
        self._lock = threading.Lock()

    def _use(self, data: IdentityFaces) -> None:
        c = self.cfg
        if data.resolution != c.model.resolution:
            raise InputError(f"faces are {data.resolution} px, the model {c.model.resolution} px")
        if data.template != c.template:
            raise InputError(f"faces aligned with {data.template!r}, the run uses {c.template!r}")
        self._data = data
        self.sampler = PairSampler(data, self.seed, c.same_ratio)

    def load_data(self, progress: ProgressFn | None = None) -> IdentityFaces:
        """The run's faces (scanned, aligned and cached on first use; see :mod:`.identity_data`)."""
        if self._data is None:
            self._use(load_training_faces(self.cfg, self.cache, progress))
        assert self._data is not None
        return self._data

    @property
    def data(self) -> IdentityFaces:
        return self.load_data()

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def pair_batch(self, step: int) -> tuple[PairBatch, np.random.Generator]:
        """The step's pairs, augmented, and the step's random generator (for any further draws)."""
        assert self.sampler is not None, "load_data() or build() first"
        rng = self.sampler.rng(step)
        with self._lock:  # the target sampler's permutation cache
            src, tgt, same = self.sampler.pairs(step, self.cfg.batch_size, rng)
        return make_pair_batch(self.data, src, tgt, same, rng, self.cfg.augment, self.cfg.regions), rng

    def batch(self, step: int) -> Any:
        return self.pair_batch(step)[0]

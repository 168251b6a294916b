"""What the trainers train and how a run goes: every trainer's settings, presets and defaults.

Frozen dataclasses and preset tables only; importing this module does not import torch, so
``masquerade train`` builds its options, choices, defaults and help from them without PyTorch, and the
torch modules (:mod:`.autoencoder`, :mod:`.generator`, :mod:`.diffusion`, :mod:`.trainer`) import them.
A run's config (``…TrainConfig``) is stored in its checkpoints and must match to resume;
:class:`TrainOptions` (steps, device, checkpoints) may change between sessions.

- shared: :class:`AugmentConfig`, :class:`RegionWeights`, :class:`TrainOptions`, :data:`DEFAULT_PRESET`;
- the pair autoencoder: :class:`LossConfig`, :class:`AutoencoderConfig`, :data:`AUTOENCODER_PRESETS`,
  :class:`AutoencoderTrainConfig`;
- the one-shot generator: :class:`GeneratorConfig`, :data:`GENERATOR_PRESETS`,
  :class:`GeneratorLossConfig`, :class:`GeneratorTrainConfig` (its data fields are shared by diffusion);
- the diffusion denoiser: :class:`DiffusionConfig`, :data:`DIFFUSION_PRESETS`,
  :class:`DiffusionLossConfig`, :class:`DiffusionTrainConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from ..swappers.diffusion import SCHEDULES
from ..swappers.mesh3d import Mesh3DOptions

DEFAULT_PRESET = "small"  # every trainer's default model size (its model config's defaults)


def field_defaults(cls: type) -> dict[str, Any]:
    """The default of every field of the dataclass ``cls`` that has one (default factories called)."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def resolve_path(path: str | Path) -> str:
    """The absolute path a config stores for a faceset or data folder."""
    return str(Path(path).expanduser().resolve())


def _check_choice(kind: str, name: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if name not in choices:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(choices)}")


def _check_weights(weights: Any) -> None:
    bad = [k for k, v in asdict(weights).items() if not v >= 0]
    if bad:
        raise ValueError(f"loss weights must be ≥ 0: {', '.join(bad)}")


# ------------------------------------------------------------------------------------ shared
@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations. Geometry and colour apply to input and target alike; the random warp
    deforms only the input, so the network learns to produce the clean face (DeepFaceLab)."""

    enabled: bool = True
    flip: float = 0.5  # probability of a horizontal flip
    rotate: float = 10.0  # max rotation, degrees
    scale: float = 0.05  # max relative scale change
    translate: float = 0.05  # max shift, fraction of the resolution
    colour: float = 0.1  # colour jitter strength (brightness, contrast, saturation, white balance)
    warp: bool = True  # random grid warp of the input


@dataclass(frozen=True)
class RegionWeights:
    """Per-pixel loss weights: eyes and mouth count more (DeepFaceLab's eyes/mouth priority)."""

    eyes: float = 3.0
    mouth: float = 2.0


@dataclass(frozen=True)
class TrainOptions:
    """How to run (not what to train: that is the task's config, which must match to resume)."""

    steps: int = 1000  # total number of steps to reach (a resumed run continues up to it)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # mixed precision on CUDA
    seed: int = 0
    save_every: int = 500
    preview_every: int = 100
    keep_checkpoints: int = 3  # step_*.pt files kept besides latest.pt (0: keep all)
    threads: int | None = None  # torch CPU threads (None: torch's default)
    prefetch: int = 2  # batches prepared ahead by as many worker threads (0: inline)
    force: bool = False  # start over in a folder that holds another run or other files
    time_limit: float | None = None  # seconds of training in this session, then stop as if done


# ------------------------------------------------------------------------------------ autoencoder
Variant = Literal["df", "liae"]
VARIANTS: tuple[str, ...] = ("df", "liae")
AUTOENCODER_STEPS = 10_000  # what ``masquerade train autoencoder`` trains to unless told

# (enc_dims, ae_dims, dec_dims, mask_dims); "medium" is SAEHD's default size
AUTOENCODER_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (16, 64, 16, 8),
    "small": (32, 128, 32, 12),
    "medium": (64, 256, 64, 22),
}

PixelLoss = Literal["mse", "l1"]


@dataclass(frozen=True)
class LossConfig:
    """The autoencoder's reconstruction loss (:func:`masquerade.training.losses.reconstruction_loss`)."""

    dssim: float = 10.0  # weight of DSSIM
    pixel: float = 10.0  # weight of the pixel loss
    pixel_loss: PixelLoss = "mse"
    mask: float = 10.0  # weight of the predicted-mask MSE
    background: float = 0.1  # relative weight of pixels outside the face mask
    ssim_window: int = 0  # odd window size; 0: about resolution / 11.6 (DeepFaceLab), at least 5
    ssim_sigma: float = 1.5


@dataclass(frozen=True)
class AutoencoderConfig:
    variant: Variant = "df"
    resolution: int = 64  # multiple of 16
    enc_dims: int = 32  # channels of the first encoder block (×2 per block, 4 blocks)
    ae_dims: int = 128  # bottleneck width
    dec_dims: int = 32  # decoder channels (×8, ×4, ×2 over its three upscales)
    mask_dims: int = 12  # mask-branch channels (same multipliers)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        if self.resolution < 32 or self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16 and at least 32, not {self.resolution}")
        if min(self.enc_dims, self.ae_dims, self.dec_dims, self.mask_dims) < 1:
            raise ValueError("model dimensions must be positive")


def autoencoder_preset(
    preset: str = DEFAULT_PRESET, variant: Variant | str = "df", resolution: int = 64
) -> AutoencoderConfig:
    _check_choice("preset", preset, AUTOENCODER_PRESETS)
    e, a, d, m = AUTOENCODER_PRESETS[preset]
    return AutoencoderConfig(variant, resolution, e, a, d, m)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    """Everything that defines an autoencoder run (stored in checkpoints; must match to resume)."""

    faceset_a: str
    faceset_b: str
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    batch_size: int = 8
    lr: float = 5e-5
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    regions: RegionWeights = field(default_factory=RegionWeights)
    loss: LossConfig = field(default_factory=LossConfig)
    preview_faces: int = 4
    template: str = "ffhq"  # alignment template of the facesets (the swapper aligns faces the same way)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoencoderTrainConfig:
        d = dict(d)
        return cls(
            faceset_a=str(d.pop("faceset_a")),
            faceset_b=str(d.pop("faceset_b")),
            model=AutoencoderConfig(**d.pop("model")),
            augment=AugmentConfig(**d.pop("augment", {})),
            regions=RegionWeights(**d.pop("regions", {})),
            loss=LossConfig(**d.pop("loss", {})),
            **{k: v for k, v in d.items() if k in ("batch_size", "lr", "preview_faces", "template")},
        )


def with_model(config: AutoencoderTrainConfig, **changes: Any) -> AutoencoderTrainConfig:
    """``config`` with model fields replaced (e.g. ``variant="liae"``)."""
    return replace(config, model=replace(config.model, **changes))


# ------------------------------------------------------------------------------------ generator
TEMPLATES: tuple[str, ...] = ("ffhq", "arcface_v2")  # alignments the identity-data trainers support
# the evaluation benchmarks (lfw_swap_v1, lfw_swap_v2, celeba_swap_v1), whose people are left out of training
DEFAULT_HOLDOUT = "shipped"
GENERATOR_STEPS = 100_000  # what ``masquerade train generator`` trains to unless told

# channels, max_channels, downs, id_blocks, id_dims, disc_channels
GENERATOR_PRESETS: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny": (16, 128, 3, 2, 128, 16),
    "small": (32, 256, 3, 4, 256, 32),
    "medium": (64, 512, 4, 6, 512, 64),
}


@dataclass(frozen=True)
class GeneratorConfig:
    resolution: int = 128  # multiple of 16
    channels: int = 32  # encoder stem width (×2 per downsampling, up to max_channels)
    max_channels: int = 256
    downs: int = 3  # stride-2 encoder steps: the bottleneck is at R / 2^downs
    id_blocks: int = 4  # AdaIN residual blocks at the bottleneck
    id_dims: int = 256  # width of the identity mapping
    disc_channels: int = 32
    disc_scales: int = 2
    disc_layers: int = 3  # stride-2 layers per discriminator (fewer on small inputs)

    def __post_init__(self) -> None:
        if self.resolution < 32 or self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16 and at least 32, not {self.resolution}")
        if not 1 <= self.downs <= 5 or self.resolution % 2**self.downs:
            raise ValueError(f"downs must be 1..5 and divide the resolution, not {self.downs}")
        if min(self.channels, self.max_channels, self.id_dims, self.disc_channels, self.disc_scales) < 1:
            raise ValueError("model dimensions must be positive")
        if self.id_blocks < 0 or self.disc_layers < 1:
            raise ValueError("id_blocks must be ≥ 0 and disc_layers ≥ 1")

    def widths(self) -> list[int]:
        """Encoder channels at R, R/2, …, R/2^downs."""
        return [min(self.channels * 2**k, self.max_channels) for k in range(self.downs + 1)]


def generator_preset(preset: str = DEFAULT_PRESET, resolution: int = 128) -> GeneratorConfig:
    _check_choice("preset", preset, GENERATOR_PRESETS)
    c, m, d, b, i, dc = GENERATOR_PRESETS[preset]
    return GeneratorConfig(resolution, c, m, d, b, i, dc)


@dataclass(frozen=True)
class GeneratorLossConfig:
    """Loss weights (see :mod:`masquerade.training.generator`)."""

    identity: float = 10.0
    reconstruction: float = 10.0
    feature_matching: float = 10.0
    adversarial: float = 1.0
    eyes: float = 2.0
    mask: float = 5.0
    attribute: float = 0.0

    def __post_init__(self) -> None:
        _check_weights(self)


GENERATOR_LOSS_NAMES: tuple[str, ...] = tuple(GeneratorLossConfig.__dataclass_fields__)


def generator_augment() -> AugmentConfig:
    """Target augmentation: flips, small rotation/scale/shift and colour jitter; no random warp (the
    target's geometry is what the output must keep)."""
    return AugmentConfig(warp=False, rotate=5.0)


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """Everything that defines a generator run (stored in checkpoints; must match to resume)."""

    data: str  # folder of person folders (LFW or ROOT/<id>/*.jpg), or an identity pack file
    people: int | None = None  # use this many people (with ≥ 2 photos), drawn with a fixed seed
    max_photos: int | None = None  # per person
    holdout: str = DEFAULT_HOLDOUT  # benchmark (or pairs file) whose people are left out; "none"
    template: str = "ffhq"  # alignment of the crops (the swapper aligns the same way)
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    batch_size: int = 8
    lr: float = 2e-4  # generator (Adam, betas 0, 0.99)
    lr_d: float = 2e-4  # discriminator
    same_ratio: float = 0.2  # share of pairs whose source is the target's person
    augment: AugmentConfig = field(default_factory=generator_augment)
    regions: RegionWeights = field(default_factory=RegionWeights)
    loss: GeneratorLossConfig = field(default_factory=GeneratorLossConfig)
    preview_faces: int = 4

    def __post_init__(self) -> None:
        _check_choice("template", self.template, TEMPLATES)
        if not 0.0 <= self.same_ratio <= 1.0:
            raise ValueError("same_ratio must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorTrainConfig:
        d = dict(d)
        return cls(
            data=str(d.pop("data")),
            model=GeneratorConfig(**d.pop("model")),
            augment=AugmentConfig(**d.pop("augment", asdict(generator_augment()))),
            regions=RegionWeights(**d.pop("regions", {})),
            loss=GeneratorLossConfig(**d.pop("loss", {})),
            **{k: v for k, v in d.items() if k in cls.__dataclass_fields__},
        )


# ------------------------------------------------------------------------------------ diffusion
DIFFUSION_STEPS = 100_000  # what ``masquerade train diffusion`` trains to unless told

# preset → (channels, mults, res_blocks)
DIFFUSION_PRESETS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "tiny": (32, (1, 2, 2), 1),
    "small": (64, (1, 2, 4), 2),
    "medium": (128, (1, 2, 3, 4), 2),
}


@dataclass(frozen=True)
class DiffusionConfig:
    resolution: int = 64  # multiple of 2^(len(mults) − 1)
    channels: int = 64
    mults: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 2
    attention: bool = True  # self-attention at the bottleneck
    condition_channels: int = 5  # 5: target attributes; 7: the 3-D warp's composite, mask, parts

    def __post_init__(self) -> None:
        object.__setattr__(self, "mults", tuple(int(m) for m in self.mults))
        if self.channels % 8 or self.channels < 8:
            raise ValueError("channels must be a multiple of 8")
        if self.resolution % (2 ** (len(self.mults) - 1)):
            raise ValueError(f"resolution must be a multiple of {2 ** (len(self.mults) - 1)}")


def diffusion_preset(preset: str = DEFAULT_PRESET, resolution: int = 64) -> DiffusionConfig:
    _check_choice("preset", preset, DIFFUSION_PRESETS)
    c, mults, blocks = DIFFUSION_PRESETS[preset]
    return DiffusionConfig(resolution, c, mults, blocks)


@dataclass(frozen=True)
class DiffusionLossConfig:
    denoise: float = 1.0
    identity: float = 0.5
    reconstruction: float = 0.5

    def __post_init__(self) -> None:
        _check_weights(self)


DIFFUSION_LOSS_NAMES: tuple[str, ...] = tuple(DiffusionLossConfig.__dataclass_fields__)
# what the denoiser is conditioned on besides identity: the target's attributes (masked face, mask,
# landmarks; identity-labelled faces) or the 3-D warp (mesh3d's composite; the refiner's warp pairs)
DIFFUSION_CONDITIONS: dict[str, int] = {"attributes": 5, "warp": 7}


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """Everything that defines a diffusion run (stored in checkpoints; must match to resume). The data
    fields are the generator's (:class:`GeneratorTrainConfig`)."""

    data: str
    people: int | None = None
    max_photos: int | None = None
    holdout: str = DEFAULT_HOLDOUT
    template: str = "ffhq"
    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    schedule: str = "cosine"
    timesteps: int = 1000
    cond_drop: float = 0.1  # identity dropped (zeros) for classifier-free guidance
    sampling_steps: int = 25  # DDIM steps of previews and the exported model's default
    guidance: float = 2.0  # classifier-free guidance of previews and the exported model's default
    batch_size: int = 8
    lr: float = 1e-4
    ema: float = 0.999
    same_ratio: float = 0.8
    augment: AugmentConfig = field(default_factory=generator_augment)
    regions: RegionWeights = field(default_factory=RegionWeights)
    loss: DiffusionLossConfig = field(default_factory=DiffusionLossConfig)
    preview_faces: int = 4
    condition: str = "attributes"  # or "warp" (see DIFFUSION_CONDITIONS)
    extra_data: tuple[str, ...] = ()  # "warp": more folders of people, as the refiner's --data
    same_per_person: int = 6  # "warp": the refiner's pairs (the same cache)
    different: int = 6000
    corrupt: float = 0.5  # "warp": share of conditions from a corrupted source
    strength: float = 0.6  # "warp": sampling starts from the warp noised this far up the schedule
    identity_samples: int | None = None  # samples per step through the identity network (None: all)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_data", tuple(str(d) for d in self.extra_data))
        _check_choice("condition", self.condition, DIFFUSION_CONDITIONS)
        if self.model.condition_channels != DIFFUSION_CONDITIONS[self.condition]:
            raise ValueError(
                f"a {self.condition}-conditioned model has {DIFFUSION_CONDITIONS[self.condition]} condition "
                f"channels, not {self.model.condition_channels}"
            )
        if self.extra_data and self.condition != "warp":
            raise ValueError("several data folders need condition 'warp'")
        if not 0 < self.strength <= 1 or not 0 <= self.corrupt <= 1:
            raise ValueError("strength must be in (0, 1] and corrupt in [0, 1]")
        _check_choice("template", self.template, TEMPLATES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        for name in ("same_ratio", "cond_drop", "ema"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 1 <= self.sampling_steps <= self.timesteps:
            raise ValueError(f"sampling_steps must be 1 to {self.timesteps}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiffusionTrainConfig:
        d = dict(d)
        return cls(
            data=str(d.pop("data")),
            model=DiffusionConfig(**d.pop("model")),
            augment=AugmentConfig(**d.pop("augment")),
            regions=RegionWeights(**d.pop("regions")),
            loss=DiffusionLossConfig(**d.pop("loss")),
            extra_data=tuple(d.pop("extra_data", ())),
            **{k: v for k, v in d.items() if k in cls.__dataclass_fields__},
        )


def diffusion_condition_preset(preset: str, resolution: int, condition: str) -> DiffusionConfig:
    """:func:`diffusion_preset` for a condition (its number of condition channels)."""
    _check_choice("condition", condition, DIFFUSION_CONDITIONS)
    return replace(diffusion_preset(preset, resolution), condition_channels=DIFFUSION_CONDITIONS[condition])


# ------------------------------------------------------------------------------------ refiner
REFINER_STEPS = 10_000  # what ``masquerade train refiner`` trains to unless told

# channels at 1/4, 1/8, 1/16, 1/32 of the crop; width of the last block (at 1/4)
REFINER_PRESETS: dict[str, tuple[tuple[int, int, int, int], int]] = {
    "tiny": ((24, 48, 64, 96), 24),
    "small": ((32, 64, 96, 128), 32),
    "medium": ((48, 96, 128, 192), 48),
}


@dataclass(frozen=True)
class RefinerConfig:
    """The refiner network (:mod:`masquerade.training.refiner`): a U-Net over the mesh3d composite crop."""

    resolution: int = 128  # crop side, multiple of 32
    channels: tuple[int, int, int, int] = (32, 64, 96, 128)
    head: int = 32
    max_correction: float = 0.5  # largest change per channel, in [0, 1] image units
    seam: int = 5  # px the correction may reach beyond the composite's mask (fixes the seam)
    # the network also sees the target's own crop blurred to shade×shade px (its lighting); 0: not at all
    shade: int = 0

    def __post_init__(self) -> None:
        if self.resolution < 64 or self.resolution % 32:
            raise ValueError(f"resolution must be a multiple of 32 and at least 64, not {self.resolution}")
        r = self.resolution
        if self.shade and (self.shade < 4 or self.shade > r // 2 or r % self.shade):
            raise ValueError(
                f"shade must be 0 or divide the resolution ({self.resolution}) into blocks of 2+ px, "
                f"and be at least 4, not {self.shade}"
            )
        if len(self.channels) != 4 or min(*self.channels, self.head) < 1:
            raise ValueError("channels must be four positive widths and head positive")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


def refiner_preset(preset: str = DEFAULT_PRESET, resolution: int = 128, shade: int = 0) -> RefinerConfig:
    _check_choice("preset", preset, REFINER_PRESETS)
    channels, head = REFINER_PRESETS[preset]
    return RefinerConfig(resolution=resolution, channels=channels, head=head, shade=shade)


@dataclass(frozen=True)
class RefinerLossConfig:
    """Loss weights (see :mod:`masquerade.training.refiner`)."""

    reconstruction: float = 1.0  # same-person pairs: smooth L1 + DSSIM to the real target in the face
    clean: float = 2.0  # different-person pairs from a corrupted source: smooth L1 + DSSIM to the clean swap
    structure: float = 1.0  # different-person pairs: high frequencies of the output stay the warp's
    identity: float = 0.1  # 1 − cosine of the output's dlib embedding to the source's (centred)
    adversarial: float = 0.01  # hinge GAN on the crops (real: target photos)
    colour: float = 0.0  # different-person pairs: the output's chroma stays the (clean) warp's
    detail: float = 0.0  # same-person pairs: high frequencies of the output stay the (clean) warp's

    def __post_init__(self) -> None:
        _check_weights(self)


REFINER_LOSS_NAMES: tuple[str, ...] = tuple(RefinerLossConfig.__dataclass_fields__)


SHIPPED_INIT = "shipped"  # RefinerTrainConfig.init: the refiner in the package


@dataclass(frozen=True)
class RefinerTrainConfig:
    """Everything that defines a refiner run (stored in checkpoints; must match to resume)."""

    data: tuple[str, ...]  # folders of person folders (CelebA, LFW, ROOT/<id>/*.jpg)
    holdout: str = DEFAULT_HOLDOUT  # benchmark (or pairs file) whose people are left out; "none"
    max_photos: int = 6  # per person
    same_per_person: int = 6  # ordered same-person pairs per person
    different: int = 6000  # different-person pairs
    model: RefinerConfig = field(default_factory=RefinerConfig)
    loss: RefinerLossConfig = field(default_factory=RefinerLossConfig)
    batch_size: int = 12
    identity_samples: int = 2  # outputs per step that go through the identity network
    corrupt: float = 0.5  # share of samples whose input is the corrupted-source composite
    lr: float = 5e-4
    lr_d: float = 2e-4
    # cool-down: from step lr_decay[0] to lr_decay[1] the refiner's learning rate falls from lr to
    # lr × lr_floor on a half cosine, then stays there ((0, 0): constant)
    lr_decay: tuple[int, int] = (0, 0)
    lr_floor: float = 0.1
    preview_faces: int = 6
    init: str = ""  # start from this trained refiner's weights: a model folder or SHIPPED_INIT ("": random)
    # the training pairs' warp is relit at this strength (mesh3d's --relight), which the exported model
    # records and the refined swapper then uses unless told otherwise
    relight: float = Mesh3DOptions.relight

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        if not 0.0 <= self.relight <= 1.0:
            raise ValueError(f"relight must be 0 to 1, got {self.relight:g}")
        object.__setattr__(self, "lr_decay", tuple(int(s) for s in self.lr_decay))
        if len(self.lr_decay) != 2:
            raise ValueError("lr_decay must be two steps, the first before the second")
        start, end = self.lr_decay
        if start < 0 or (end <= start and (start, end) != (0, 0)):
            raise ValueError("lr_decay must be two steps, the first before the second")
        if not 0.0 < self.lr_floor <= 1.0:
            raise ValueError("lr_floor must be above 0 and at most 1")
        if not self.data:
            raise ValueError("the refiner needs at least one data folder")
        if not 0.0 <= self.corrupt <= 1.0:
            raise ValueError("corrupt must be between 0 and 1")
        if self.batch_size < 2 or self.identity_samples < 0:
            raise ValueError("batch_size must be ≥ 2 and identity_samples ≥ 0")

    def lr_scale(self, step: int) -> float:
        """The refiner's learning rate at ``step`` (1-based), as a multiple of ``lr``."""
        start, end = self.lr_decay
        if end == 0 or step <= start:
            return 1.0
        t = min(1.0, (step - start) / (end - start))
        return self.lr_floor + (1.0 - self.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RefinerTrainConfig:
        d = dict(d)
        return cls(
            data=tuple(d.pop("data")),
            model=RefinerConfig(**d.pop("model")),
            loss=RefinerLossConfig(**d.pop("loss", {})),
            **{k: v for k, v in d.items() if k in cls.__dataclass_fields__},
        )


# ------------------------------------------------------------------------------------ occlusion segmenter
SEGMENTER_OCCLUDERS: dict[str, str] = {
    "basic": "the benchmarks' five synthetic kinds",
    "realistic": "eight kinds, weighted to bangs, palms and sunglasses, with photo augmentation",
    "hands": "the realistic mix with real hands, cut out of the training photos, for most drawn hands",
}
SEGMENTER_STEPS = 3_000  # what ``masquerade train segmenter`` trains to unless told
SEGMENTER_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (16, 24, 32, 48),
    "small": (24, 32, 48, 64),
    "medium": (32, 48, 64, 96),
}


@dataclass(frozen=True)
class SegmenterConfig:
    """The occlusion segmenter (:mod:`masquerade.training.segmenter`): channels at 1/4 … 1/32 of the crop."""

    channels: tuple[int, int, int, int] = (24, 32, 48, 64)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ValueError("channels must be four positive widths")


def segmenter_preset(preset: str = DEFAULT_PRESET) -> SegmenterConfig:
    _check_choice("preset", preset, SEGMENTER_PRESETS)
    return SegmenterConfig(SEGMENTER_PRESETS[preset])


@dataclass(frozen=True)
class SegmenterTrainConfig:
    """Everything that defines a segmenter run (stored in checkpoints; must match to resume)."""

    data: tuple[str, ...]  # folders of person folders (as the refiner's)
    holdout: str = DEFAULT_HOLDOUT
    max_photos: int = 6
    resolution: int = 128  # the face crop, multiple of 32
    model: SegmenterConfig = field(default_factory=SegmenterConfig)
    batch_size: int = 24
    lr: float = 1e-3
    no_occluder: float = 0.15  # share of samples without an occluder
    max_non_skin: float = 0.08  # faces that look occluded already are left out
    # "basic": the benchmarks' five occluder kinds, evenly; "realistic": all eight kinds weighted towards
    # bangs, skin-toned palms and sunglasses, plus shadows, blur and JPEG on every sample; "hands": the
    # realistic mix with hands cut out of the training photos instead of most drawn ones
    occluders: str = "realistic"
    # turned faces drawn more often: a face's weight is 1 + turned × the left-right asymmetry of its
    # landmarks in the crop (0: every face alike); against bare chins and cheeks taken for hands
    turned: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        if not self.data:
            raise ValueError("the segmenter needs at least one data folder")
        if not 0 <= self.turned <= 100:
            raise ValueError(f"turned must be in [0, 100], not {self.turned}")
        _check_choice("occluders", self.occluders, SEGMENTER_OCCLUDERS)
        if self.resolution < 64 or self.resolution % 32:
            raise ValueError(f"resolution must be a multiple of 32 and at least 64, not {self.resolution}")
        if not 0 <= self.no_occluder <= 1 or not 0 < self.max_non_skin <= 1:
            raise ValueError("no_occluder must be in [0, 1] and max_non_skin in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmenterTrainConfig:
        d = dict(d)
        return cls(
            data=tuple(d.pop("data")),
            model=SegmenterConfig(**d.pop("model")),
            occluders=d.pop("occluders", "basic"),  # runs from before the choice used the basic five
            **{k: v for k, v in d.items() if k in cls.__dataclass_fields__},
        )

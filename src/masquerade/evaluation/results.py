"""Results: what is evaluated (:class:`SwapperSpec`, the baselines) and what is measured, per pair,
per video clip and per swapper, with their JSON form."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ..pipeline import SwapOptions

BASELINES: dict[str, str] = {
    "none": "baseline: output = target unchanged",
    "source": "baseline: output = the source photo itself",
}


def _shown(value: Any) -> bool:
    """Whether an option goes into the report: not unset, not identity embeddings."""
    if value is None or isinstance(value, np.ndarray):
        return False
    return not isinstance(value, tuple) or (bool(value) and not isinstance(value[0], np.ndarray))


def _plain(value: Any) -> Any:
    """An option as JSON takes it (a swapper's options dataclass as its fields)."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


@dataclass(frozen=True)
class SwapperSpec:
    """What to evaluate: a registry swapper run through the image pipeline with ``options``, or a
    baseline (``none``, ``source``). ``label`` names the report column (default: ``name``)."""

    name: str
    options: SwapOptions | None = None
    label: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def is_baseline(self) -> bool:
        return self.name in BASELINES

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "label": self.title}
        if self.is_baseline:
            d["baseline"] = BASELINES[self.name]
        else:
            o = self.options or SwapOptions(swapper=self.name)
            d["options"] = {f.name: _plain(v) for f in fields(o) if _shown(v := getattr(o, f.name))}
            if o.model is not None:
                from ..swappers import read_swapper_model

                try:
                    d["model"] = read_swapper_model(self.name, o.model, verify=False).describe()
                except ModelError as exc:  # gone since the run: say so rather than fail the report
                    d["model"] = {"name": Path(o.model).name, "path": str(o.model), "error": str(exc)}
        return d

    def title_long(self) -> str:
        """How the report names it: the baseline's meaning, or the swapper (and its model: folder name
        and sha256 prefix)."""
        if self.is_baseline:
            return BASELINES[self.name]
        m = self.describe().get("model")
        if not m:
            return f"swapper {self.name}"
        sha = f", sha256 `{m['sha256'][:12]}…`" if m.get("sha256") else ""
        return f"swapper {self.name} (model `{m['name']}`{sha})"


def swapper_spec(item: str | SwapOptions | SwapperSpec, model: str | None = None) -> SwapperSpec:
    """Normalise a swapper given by name, by :class:`SwapOptions` or as a :class:`SwapperSpec`;
    ``model`` is the model (folder or card) of a swapper that needs one (checked now, sha256 included)."""
    from ..job import check_swapper
    from ..swappers import SWAPPERS, read_swapper_model

    if isinstance(item, SwapperSpec):
        spec = item
    elif isinstance(item, SwapOptions):
        spec = SwapperSpec(item.swapper, item)
    else:
        spec = SwapperSpec(str(item))
    if spec.name not in SWAPPERS and spec.name not in BASELINES:
        raise InputError(f"unknown swapper {spec.name!r}; choose from {', '.join([*SWAPPERS, *BASELINES])}")
    if not spec.is_baseline:
        opts = spec.options or SwapOptions()
        spec = replace(spec, options=replace(opts, swapper=spec.name, model=model or opts.model))
        assert spec.options is not None
        if check_swapper(spec.name, spec.options.model).takes_a_model and spec.options.model is not None:
            read_swapper_model(spec.name, spec.options.model)
    elif model is not None:
        raise InputError(f"the {spec.name} baseline takes no model")
    return spec


@dataclass
class PairMetrics:
    """Everything measured on one pair for one swapper (None: not measured; see ``failure``)."""

    index: int
    kind: str
    source: str
    target: str
    source_id: str
    failure: str | None = None
    swap_ms: float | None = None
    cos_src: float | None = None
    cos_tgt: float | None = None
    dist_src: float | None = None
    dist_tgt: float | None = None
    dist_src_tgt: float | None = None
    cos_src_other: float | None = None
    dist_src_other: float | None = None
    closer_to_source: bool = False
    rank: int | None = None
    top1: bool = False
    top5: bool = False
    rank_other: int | None = None
    top1_other: bool = False
    top5_other: bool = False
    pose_err: float | None = None
    pose_err_ypr: list[float] | None = None
    expr_err: float | None = None
    expr_measures_err: float | None = None
    ssim: float | None = None
    ssim_face: float | None = None
    psnr: float | None = None
    psnr_face: float | None = None
    lpips_onnx: float | None = None
    gaze_err: float | None = None  # eye widths between the irises' places in output and target eyes
    # same-person cross-photo pairs (and self pairs): output vs the real target inside the target's face
    ssim_region: float | None = None
    psnr_region: float | None = None
    colour_err: float | None = None  # mean CIE76 ΔE
    sharpness: float | None = None  # high-frequency energy ratio output / target (1 = as sharp)
    # synthetic occluders: on the target, the share that survives (1 kept, 0 painted over); on the source,
    # the mean |difference| (grey levels) inside the target face from the swap of the clean source
    occ_survival: float | None = None
    occ_source_err: float | None = None
    occluder: str | None = None
    tags: list[str] = field(default_factory=list)
    embedding: np.ndarray | None = field(default=None, repr=False)
    model_features: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("embedding", "model_features")
        }
        return _jsonable(d)


@dataclass
class VideoPairSpec:
    source: Path
    target: Path


@dataclass
class VideoMetrics:
    source: str
    target: str
    failure: str | None = None
    skipped: str | None = None  # why the swapper was not run on video (not a failure)
    frames: int | None = None
    frames_swapped: int | None = None
    jitter_input: float | None = None
    jitter_output: float | None = None
    jitter_ratio: float | None = None
    flicker_input: float | None = None
    flicker_output: float | None = None
    flicker_ratio: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class SwapperReport:
    spec: SwapperSpec
    pairs: list[PairMetrics] = field(default_factory=list)
    video: list[VideoMetrics] = field(default_factory=list)
    aggregate: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    measured_with: dict[str, Any] = field(default_factory=dict)
    # face crops (source, target, output) of the pairs the picture grids show, by pair index
    crops: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.spec.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "swapper": self.spec.describe(),
            "seconds": round(self.seconds, 2),
            "measured_with": self.measured_with,
            "aggregate": _jsonable(self.aggregate),
            "pairs": [p.to_dict() for p in self.pairs],
            "video": [v.to_dict() for v in self.video],
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return round(f, 6) if math.isfinite(f) else None
    if isinstance(v, Path):
        return str(v)
    return v

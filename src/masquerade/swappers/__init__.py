"""Swappers and their registry: name → swapper class, each declaring its :class:`SwapperInfo`.

Adding a swapper means one module (a class with an ``info`` record and a ``swap`` method, see
:mod:`.base`) and one line in :data:`SWAPPERS`. Everything else — the CLI's ``--swapper`` choices and
per-swapper options, the web server, ``evaluate``, the model checks and their messages — reads the
records.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

from ..errors import InputError, ModelError
from .autoencoder import AutoencoderSwapper
from .base import SwapPatch, Swapper, SwapperInfo, SwapperOption
from .diffusion import DiffusionOptions, DiffusionSwapper
from .external import ExternalOnnxSwapper
from .generator import GeneratorSwapper
from .mesh3d import Mesh3DOptions, Mesh3DSwapper
from .refined import RefinedOptions, RefinedSwapper

_REGISTERED: tuple[type[Swapper], ...] = (
    Mesh3DSwapper,
    RefinedSwapper,
    AutoencoderSwapper,
    GeneratorSwapper,
    DiffusionSwapper,
    ExternalOnnxSwapper,
)
SWAPPERS: MappingProxyType[str, type[Swapper]] = MappingProxyType({c.info.name: c for c in _REGISTERED})


def swapper_info(name: str) -> SwapperInfo:
    """The named swapper's record; one-line :class:`InputError` for an unknown name."""
    try:
        return SWAPPERS[name].info
    except KeyError:
        raise InputError(f"unknown swapper {name!r}; choose from {', '.join(SWAPPERS)}") from None


def model_users() -> list[str]:
    """The swappers that take a ``--model`` (needed or optional)."""
    return [n for n, cls in SWAPPERS.items() if cls.info.takes_a_model]


def swapper_needs_source(name: str) -> bool:
    """Whether the swapper takes its identity from a source photo (False: the identity is built in)."""
    return swapper_info(name).needs_source


def swapper_needs_model(name: str) -> bool:
    """Whether the swapper is created from a model folder (``model=``)."""
    return swapper_info(name).needs_model


def swapper_takes_model(name: str, model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` is the kind of model the swapper takes (a folder, or a model card file)."""
    info = swapper_info(name)
    return info.takes_a_model and bool(info.takes_model(model))


def read_swapper_model(name: str, model: str | os.PathLike[str], verify: bool = True) -> Any:
    """The swapper's checked model description (``.describe()``, ``.summary()``): autoencoder's
    ``model.json``, onnx's model card; with ``verify`` its files' sha256 too (one-line
    :class:`ModelError` otherwise)."""
    info = swapper_info(name)
    if not info.takes_a_model:
        raise InputError(f"the {name} swapper takes no model")
    if info.read_model is None:
        raise ModelError(f"the {name} swapper cannot describe its model")
    return info.read_model(model, verify=verify)


def swapper_options(name: str, values: dict[str, Any]) -> Any:
    """The swapper's options dataclass from ``{option: value}`` (None values left out; None when nothing
    is given); a one-line :class:`InputError` for an option the swapper does not take, or a value of
    another kind (:meth:`SwapperOption.value`; the dataclass checks the values themselves)."""
    info = swapper_info(name)
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return None
    known = {o.name for o in info.options}
    unknown = [k for k in given if k not in known]
    if unknown or info.options_type is None:
        flags = "/".join("--" + k.replace("_", "-") for k in (unknown or given))
        owners = [n for n, c in SWAPPERS.items() if set(unknown or given) <= {o.name for o in c.info.options}]
        verb = "goes" if len(unknown or given) == 1 else "go"
        where = f"--swapper {owners[0]}" if owners else "no swapper"
        raise InputError(f"{flags} {verb} with {where}, not --swapper {name}")
    declared = {o.name: o for o in info.options}
    return info.options_type(**{k: declared[k].value(v) for k, v in given.items()})


def create_swapper(
    name: str, model: str | os.PathLike[str] | None = None, options: Any = None, **kwargs: object
) -> Swapper:
    """The named swapper; ``model`` (a model folder) goes to the swappers that need one, and only to
    them, ``options`` (its options dataclass) to those that have options (one-line :class:`ModelError` /
    :class:`InputError` otherwise)."""
    info = swapper_info(name)
    if info.needs_model and model is None:
        raise ModelError(f"the {name} swapper needs --model {info.model_help}")
    if info.takes_a_model:
        if model is not None:
            kwargs["model"] = model
    elif model is not None:
        raise InputError(f"the {name} swapper takes no model (--model is for: {', '.join(model_users())})")
    if options is not None:
        if info.options_type is None or not isinstance(options, info.options_type):
            raise InputError(f"the {name} swapper does not take {type(options).__name__}")
        kwargs["options"] = options
    return SWAPPERS[name](**kwargs)


__all__ = [
    "SWAPPERS",
    "AutoencoderSwapper",
    "DiffusionOptions",
    "DiffusionSwapper",
    "ExternalOnnxSwapper",
    "GeneratorSwapper",
    "Mesh3DOptions",
    "Mesh3DSwapper",
    "RefinedOptions",
    "RefinedSwapper",
    "SwapPatch",
    "Swapper",
    "SwapperInfo",
    "SwapperOption",
    "create_swapper",
    "model_users",
    "read_swapper_model",
    "swapper_info",
    "swapper_needs_model",
    "swapper_needs_source",
    "swapper_options",
    "swapper_takes_model",
]

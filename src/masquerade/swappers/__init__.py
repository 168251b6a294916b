"""Swapper registry: name → factory.

A factory may declare ``needs_source = False`` (the identity is built in, e.g. a trained autoencoder:
no source photo is needed) and ``needs_model = True`` (it takes ``model=``: a model folder, or for
``onnx`` a model card file). Such a factory may also give ``model_help`` (what ``--model`` takes, for
messages), ``read_model(model, verify)`` (the checked model description, with ``describe()``) and
``takes_model(model)`` (whether a path is its kind of model; default: not a file, i.e. a folder), and
``options_type`` (a dataclass of its own options, given as ``options=``: the diffusion sampler's).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import InputError, ModelError
from .autoencoder import AutoencoderSwapper
from .base import SwapPatch, Swapper
from .diffusion import DiffusionOptions, DiffusionSwapper
from .external import ExternalOnnxSwapper
from .generator import GeneratorSwapper
from .mesh3d import Mesh3DOptions, Mesh3DSwapper

SWAPPERS: MappingProxyType[str, Callable[..., Swapper]] = MappingProxyType(
    {
        "mesh3d": Mesh3DSwapper,
        "autoencoder": AutoencoderSwapper,
        "generator": GeneratorSwapper,
        "diffusion": DiffusionSwapper,
        "onnx": ExternalOnnxSwapper,
    }
)


def _factory(name: str) -> Callable[..., Swapper]:
    try:
        return SWAPPERS[name]
    except KeyError:
        raise ValueError(f"unknown swapper {name!r}; choose from {', '.join(SWAPPERS)}") from None


def swapper_needs_source(name: str) -> bool:
    """Whether the swapper takes its identity from a source photo (False: the identity is built in)."""
    return bool(getattr(_factory(name), "needs_source", True))


def swapper_needs_model(name: str) -> bool:
    """Whether the swapper is created from a model folder (``model=``)."""
    return bool(getattr(_factory(name), "needs_model", False))


def swapper_model_help(name: str) -> str:
    """What ``--model`` takes for the swapper, for messages (e.g. "DIR (a trained model folder)")."""
    return str(getattr(_factory(name), "model_help", "DIR (a trained model folder)"))


def swapper_takes_model(name: str, model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` is the kind of model the swapper takes (a folder, or a model card file)."""
    if not swapper_needs_model(name):
        return False
    takes = getattr(_factory(name), "takes_model", None)
    return bool(takes(model)) if takes is not None else not Path(model).is_file()


def read_swapper_model(name: str, model: str | os.PathLike[str], verify: bool = True) -> Any:
    """The swapper's checked model description (``.describe()``, ``.summary()``): autoencoder's
    ``model.json``, onnx's model card; with ``verify`` its files' sha256 too (one-line
    :class:`ModelError` otherwise)."""
    factory = _factory(name)
    if not swapper_needs_model(name):
        raise InputError(f"the {name} swapper takes no model")
    reader = getattr(factory, "read_model", None)
    if reader is None:
        raise ModelError(f"the {name} swapper cannot describe its model")
    return reader(model, verify=verify)


def create_swapper(name: str, model: str | os.PathLike[str] | None = None, **kwargs: object) -> Swapper:
    """The named swapper; ``model`` (a model folder) goes to the swappers that need one, and only to
    them (one-line :class:`ModelError` / :class:`InputError` otherwise)."""
    factory = _factory(name)
    if swapper_needs_model(name):
        if model is None:
            raise ModelError(f"the {name} swapper needs --model {swapper_model_help(name)}")
        kwargs["model"] = model
    elif model is not None:
        users = ", ".join(n for n in SWAPPERS if swapper_needs_model(n))
        raise InputError(f"the {name} swapper takes no model (--model is for: {users})")
    return factory(**kwargs)


__all__ = [
    "SWAPPERS",
    "AutoencoderSwapper",
    "DiffusionOptions",
    "DiffusionSwapper",
    "ExternalOnnxSwapper",
    "GeneratorSwapper",
    "Mesh3DOptions",
    "Mesh3DSwapper",
    "SwapPatch",
    "Swapper",
    "create_swapper",
    "read_swapper_model",
    "swapper_model_help",
    "swapper_needs_model",
    "swapper_needs_source",
    "swapper_takes_model",
]

"""Swapper registry: name → factory. Later swappers (generator, diffusion) register here.

A factory may declare ``needs_source = False`` (the identity is built in, e.g. a trained autoencoder:
no source photo is needed) and ``needs_model = True`` (it takes ``model=``, a model folder).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import MappingProxyType

from ..errors import InputError, ModelError
from .autoencoder import AutoencoderSwapper
from .base import SwapPatch, Swapper
from .mesh3d import Mesh3DOptions, Mesh3DSwapper

SWAPPERS: MappingProxyType[str, Callable[..., Swapper]] = MappingProxyType(
    {"mesh3d": Mesh3DSwapper, "autoencoder": AutoencoderSwapper}
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


def create_swapper(name: str, model: str | os.PathLike[str] | None = None, **kwargs: object) -> Swapper:
    """The named swapper; ``model`` (a model folder) goes to the swappers that need one, and only to
    them (one-line :class:`ModelError` / :class:`InputError` otherwise)."""
    factory = _factory(name)
    if swapper_needs_model(name):
        if model is None:
            raise ModelError(f"the {name} swapper needs a trained model folder (--model DIR)")
        kwargs["model"] = model
    elif model is not None:
        users = ", ".join(n for n in SWAPPERS if swapper_needs_model(n))
        raise InputError(f"the {name} swapper takes no model (--model is for: {users})")
    return factory(**kwargs)


__all__ = [
    "SWAPPERS",
    "AutoencoderSwapper",
    "Mesh3DOptions",
    "Mesh3DSwapper",
    "SwapPatch",
    "Swapper",
    "create_swapper",
    "swapper_needs_model",
    "swapper_needs_source",
]

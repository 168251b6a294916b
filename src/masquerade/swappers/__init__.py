"""Swapper registry: name → factory. Later swappers (autoencoder, generator, diffusion) register here."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from .base import SwapPatch, Swapper
from .mesh3d import Mesh3DOptions, Mesh3DSwapper

SWAPPERS: MappingProxyType[str, Callable[..., Swapper]] = MappingProxyType({"mesh3d": Mesh3DSwapper})


def create_swapper(name: str, **kwargs: object) -> Swapper:
    try:
        factory = SWAPPERS[name]
    except KeyError:
        raise ValueError(f"unknown swapper {name!r}; choose from {', '.join(SWAPPERS)}") from None
    return factory(**kwargs)


__all__ = ["SWAPPERS", "Mesh3DOptions", "Mesh3DSwapper", "SwapPatch", "Swapper", "create_swapper"]

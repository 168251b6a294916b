"""Bundled public-domain sample photos (see ``samples/README.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_NAMES: tuple[str, ...] = ("astronaut", "grace_hopper")


def sample_path(name: str) -> Path:
    """Path of a bundled sample photo by name (``astronaut`` or ``grace_hopper``)."""
    if name not in SAMPLE_NAMES:
        raise KeyError(f"unknown sample {name!r}; choose from {', '.join(SAMPLE_NAMES)}")
    return Path(str(resources.files("masquerade") / "samples" / f"{name}.jpg"))

"""Random photos of a dataset, their first faces and a sheet of tiles (shared by the benchmark scripts
that scan random faces: ``bench_frames.py``, ``bench_facing.py``)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from masquerade import FaceAnalyzer, load_image
from masquerade.face import Face


def random_photos(root: Path, count: int, seed: int) -> list[Path]:
    """``count`` photos of ``root/images/<person>/*.jpg`` drawn at random (``random.seed(seed)`` then
    ``random.sample`` of the sorted paths; all of them when there are fewer)."""
    files = sorted((root / "images").glob("*/*.jpg"))
    random.seed(seed)
    return random.sample(files, min(count, len(files)))


def first_faces(files: Iterable[Path]) -> Iterator[tuple[Path, np.ndarray, Face]]:
    """(path, RGB, its first face) for each photo whose first face has a face mesh."""
    with FaceAnalyzer(identity=False) as fa:
        for p in files:
            rgb = load_image(p).rgb
            detected = fa.get(rgb)
            if detected and detected[0].mesh is not None:
                yield p, rgb, detected[0]


def tile_sheet(tiles: list[np.ndarray], cols: int) -> np.ndarray | None:
    """The tiles (same size) in rows of ``cols``, the last row padded with black; None for none."""
    if not tiles:
        return None
    tiles = tiles + [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    return np.concatenate([np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)], 0)

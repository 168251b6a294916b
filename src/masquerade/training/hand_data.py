"""The segmenter's bank of real hands (``--occluders hands``): every hand mediapipe's hand landmarker
finds in the training photos that is as large as a hand in front of the photo's face would be, cut out
(:func:`masquerade.occlusion.hand_cutouts.cut_out_hand`), made once with worker processes and cached
beside the segmenter's faces. The evaluation people are left out with the photos they are in."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from ..files import atomic_write_bytes
from ..occlusion.hand_cutouts import CUT_SIZE, HandCutouts, cut_out_hand, hand_in_front
from .warp_data import PhotoFace, _cache_root, _iod, _pool

HANDS_VERSION = 2  # 2: cut-outs kept near the landmarks' silhouette
CHUNK = 200  # photos per worker job


def _hands_chunk(jobs: list[tuple[str, float]]) -> HandCutouts:
    """Worker: the cut-outs of the hands in front of each (photo, its face's eye distance)."""
    from ..analysis.hands import HandDetector
    from ..imageio import load_image

    found: list[HandCutouts] = []
    with HandDetector(max_hands=2) as detector:
        for path, iod in jobs:
            rgb = load_image(path).rgb
            for points in detector.get(rgb):
                if hand_in_front(points, iod):
                    cut = cut_out_hand(rgb, points)
                    if cut is not None:
                        found.append(cut)
    return HandCutouts.concat(found)


def load_hand_cutouts(
    photos: Sequence[PhotoFace], cache: str | os.PathLike[str] | None = None, workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> HandCutouts:  # fmt: skip
    """The cut-outs of the hands in ``photos`` (made once, then read from the cache)."""
    key = json.dumps(["hand-cutouts", HANDS_VERSION, CUT_SIZE, sorted(p.path for p in photos)])
    dest = _cache_root(cache) / "hand-cutouts" / hashlib.sha256(key.encode()).hexdigest()[:16] / "hands.npz"
    if not dest.is_file():
        jobs = [(p.path, _iod(p.face)) for p in photos]
        chunks = [jobs[i : i + CHUNK] for i in range(0, len(jobs), CHUNK)]
        parts: list[HandCutouts] = []
        done = 0
        with _pool(workers) as pool:
            for chunk, part in zip(chunks, pool.map(_hands_chunk, chunks), strict=True):
                parts.append(part)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(jobs))
        bank = HandCutouts.concat(parts)
        buf = io.BytesIO()
        np.savez_compressed(buf, rgba=bank.rgba, landmarks=bank.landmarks)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, buf.getvalue())
    with np.load(dest, allow_pickle=False) as z:
        return HandCutouts(z["rgba"], z["landmarks"])

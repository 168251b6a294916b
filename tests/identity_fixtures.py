"""Helpers for the identity-data trainers' tests (generator, diffusion): a tiny folder of people."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from masquerade import load_image, sample_path

PEOPLE = ("astronaut", "grace_hopper")
COPIES = 4
RES = 32  # the crop size of the ``faces`` fixture (conftest.py)


def make_people(root: Path, copies: int = COPIES) -> Path:
    """``root/<person>/<person>_000k.png``: each sample photo and jittered copies of it (rotation,
    scale, shift, brightness/contrast), so each person has several different "photos"."""
    for i, name in enumerate(PEOPLE):
        rgb = load_image(sample_path(name)).rgb
        rng = np.random.default_rng(i + 1)
        h, w = rgb.shape[:2]
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(copies):
            t = cv2.getRotationMatrix2D(
                (w / 2, h / 2), rng.uniform(-8, 8) * (k > 0), rng.uniform(0.9, 1.05) if k else 1
            )
            t[:, 2] += rng.uniform(-12, 12, 2) * (k > 0)
            img = cv2.warpAffine(rgb, t, (w, h), borderMode=cv2.BORDER_REPLICATE)
            if k:
                img = np.clip(img * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{name}_{k:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root

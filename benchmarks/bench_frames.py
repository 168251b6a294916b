"""How often the clear-glasses finder (masquerade.occlusion.frames) fires on random photos, and a sheet of
the faces it fires on, to tell by eye who wears glasses (the datasets carry no such label).

    python benchmarks/bench_frames.py --lfw ../shared/data/lfw --celeba ../shared/data/celeba --out report/

For each dataset: ``--count`` photos drawn at random (``random.seed(seed)`` then ``random.sample`` of the
sorted photo paths; LFW seed 1, CelebA seed 2), the first face of each; ``frames-<dataset>.jpg`` shows
every face found wearing glasses with its mask in green, and ``frames.json`` lists them.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import cv2
import numpy as np

from masquerade import FaceAnalyzer, load_image
from masquerade.occlusion.frames import frames_mask
from masquerade.occlusion.segmenter import face_crop

R = 128


def scan(files: list[Path]) -> tuple[int, list[tuple[str, np.ndarray]]]:
    faces, found = 0, []
    with FaceAnalyzer(identity=False) as fa:
        for p in files:
            rgb = load_image(p).rgb
            detected = fa.get(rgb)
            if not detected or detected[0].mesh is None:
                continue
            faces += 1
            mask = frames_mask(rgb, detected[0], R)
            if mask is None:
                continue
            crop, _ = face_crop(rgb, detected[0], R)
            shown = crop.copy()
            shown[mask > 0] = (0.4 * shown[mask > 0] + 0.6 * np.array([0, 255, 0])).astype(np.uint8)
            found.append((str(p), np.concatenate([crop, shown], 1)))
    return faces, found


def sheet(tiles: list[np.ndarray], path: Path, cols: int = 4) -> None:
    if not tiles:
        return
    blank = np.zeros_like(tiles[0])
    tiles = tiles + [blank] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path)
    ap.add_argument("--celeba", type=Path)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("report"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    for name, root, seed in (("lfw", args.lfw, 1), ("celeba", args.celeba, 2)):
        if root is None:
            continue
        random.seed(seed)
        files = random.sample(sorted((root / "images").glob("*/*.jpg")), args.count)
        faces, found = scan(files)
        sheet([t for _, t in found], args.out / f"frames-{name}.jpg")
        report[name] = {"photos": len(files), "faces": faces, "found": [p for p, _ in found]}
        print(f"{name}: glasses found on {len(found)} of {faces} faces ({len(files)} photos)")
        for p, _ in found:
            print("  ", p)
    (args.out / "frames.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

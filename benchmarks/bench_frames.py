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
from pathlib import Path

import cv2
import numpy as np
from face_scan import first_faces, random_photos, tile_sheet

from masquerade.occlusion.frames import frames_mask
from masquerade.occlusion.segmenter import face_crop

R = 128


def scan(files: list[Path]) -> tuple[int, list[tuple[str, np.ndarray]]]:
    faces, found = 0, []
    for p, rgb, face in first_faces(files):
        faces += 1
        mask = frames_mask(rgb, face, R)
        if mask is None:
            continue
        crop, _ = face_crop(rgb, face, R)
        shown = crop.copy()
        shown[mask > 0] = (0.4 * shown[mask > 0] + 0.6 * np.array([0, 255, 0])).astype(np.uint8)
        found.append((str(p), np.concatenate([crop, shown], 1)))
    return faces, found


def sheet(tiles: list[np.ndarray], path: Path, cols: int = 4) -> None:
    picture = tile_sheet(tiles, cols)
    if picture is not None:
        cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


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
        files = random_photos(root, args.count, seed)
        faces, found = scan(files)
        sheet([t for _, t in found], args.out / f"frames-{name}.jpg")
        report[name] = {"photos": len(files), "faces": faces, "found": [p for p, _ in found]}
        print(f"{name}: glasses found on {len(found)} of {faces} faces ({len(files)} photos)")
        for p, _ in found:
            print("  ", p)
    (args.out / "frames.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

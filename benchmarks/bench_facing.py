"""How much of a face the photo shows as the face turns (``CanonicalMesh.seen_share``: each triangle of its
mesh, its area in the photo against its area facing the camera), and how often a swap's source would be
warned about as turned away, hidden or too small (``Occlusion.clean_source``'s advice).

    python benchmarks/bench_facing.py --lfw ../shared/data/lfw --celeba ../shared/data/celeba --out report/

For each dataset: ``--count`` photos drawn at random (``random.seed(seed)`` then ``random.sample`` of the
sorted photo paths; LFW seed 1, CelebA seed 2), the first face of each: the seen share by band of |yaw|,
and the faces the advice would name (the share out of view above ``WARN_HIDDEN``, turned away or covered;
fewer than ``TINY_IOD`` px between the eyes). ``facing.json`` holds every face's figures and
``facing-<dataset>.jpg`` shows the faces warned about, with what for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from face_scan import first_faces, random_photos, tile_sheet

from masquerade.analysis.geometry import CanonicalMesh
from masquerade.occlusion.handling import TINY_IOD, WARN_HIDDEN, Occlusion

BANDS = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 90))
TILE = 160


def scan(files: list[Path], occlusion: Occlusion, canonical: CanonicalMesh) -> list[dict]:
    rows = []
    for p, rgb, face in first_faces(files):
        pose, _ = canonical.pose(face.mesh)
        seen, visible = occlusion.shares(rgb, face, occlusion.crop_mask(rgb, face)[0])
        iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0]))
        hidden, turned = 1.0 - visible, 1.0 - seen
        advice = []
        if hidden > WARN_HIDDEN:
            advice.append("turned away" if turned >= hidden - turned else "covered")
        if iod < TINY_IOD:
            advice.append("too small")
        x0, y0, x1, y1 = (int(v) for v in face.box)
        m = int(0.3 * max(x1 - x0, y1 - y0))
        crop = rgb[max(0, y0 - m) : y1 + m, max(0, x0 - m) : x1 + m]
        rows.append({
            "photo": str(p), "yaw": round(pose.yaw, 1), "pitch": round(pose.pitch, 1),
            "seen": round(seen, 3), "visible": round(visible, 3), "iod": round(iod, 1), "advice": advice,
            "_crop": crop,
        })  # fmt: skip
    return rows


def sheet(rows: list[dict]) -> np.ndarray | None:
    tiles = []
    for r in rows:
        if not r["advice"]:
            continue
        t = cv2.resize(r["_crop"], (TILE, TILE), interpolation=cv2.INTER_AREA)
        t = cv2.cvtColor(t, cv2.COLOR_RGB2BGR)
        text = f"{', '.join(r['advice'])} {r['visible']:.2f}"
        cv2.putText(t, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    return tile_sheet(tiles, 6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path)
    ap.add_argument("--celeba", type=Path)
    ap.add_argument("--count", type=int, default=300, help="photos per dataset")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/facing"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    occlusion, canonical = Occlusion(), CanonicalMesh()
    report: dict[str, list[dict]] = {}
    for name, root, seed in (("lfw", args.lfw, 1), ("celeba", args.celeba, 2)):
        if root is None:
            continue
        rows = scan(random_photos(root, args.count, seed), occlusion, canonical)
        picture = sheet(rows)
        if picture is not None:
            cv2.imwrite(str(args.out / f"facing-{name}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
        report[name] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        print(f"\n{name}: {len(rows)} faces")
        print("| |yaw| | faces | seen share, mean (min-max) | warned: turned away |")
        print("|---|---|---|---|")
        for lo, hi in BANDS:
            band = [r for r in rows if lo <= abs(r["yaw"]) < hi]
            if band:
                s = np.array([r["seen"] for r in band])
                warned = sum("turned away" in r["advice"] for r in band)
                spread = f"{s.mean():.3f} ({s.min():.3f}-{s.max():.3f})"
                print(f"| {lo}-{hi}° | {len(band)} | {spread} | {warned} |")
        for what in ("turned away", "covered", "too small"):
            print(f"{what}: {sum(what in r['advice'] for r in rows)} of {len(rows)}")
    occlusion.close()
    (args.out / "facing.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

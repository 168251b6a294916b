"""Build ``src/masquerade/data/canonical_mesh.npz`` from LFW.

Runs masquerade's detector + mediapipe mesh on a seeded sample of LFW photos, aligns all meshes with
generalised Procrustes analysis, orients the mean so the average LFW face has zero yaw/pitch/roll,
symmetrises it, and stores: vertices (478×3), rigid vertex indices (used for pose), a triangulation
covering eyes and mouth, and the left/right mirror map.

    python scripts/build_canonical_mesh.py --lfw ../shared/data/lfw --count 1500
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay, cKDTree

from masquerade.analysis.alignment import umeyama
from masquerade.analysis.detection import FaceDetector
from masquerade.analysis.landmarks import MeshLandmarker
from masquerade.imageio import load_image

LIPS = {0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
        267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415}  # fmt: skip
LIDS = {7, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
        249, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466}  # fmt: skip
BROWS = {46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336}


def project_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", default="../shared/data/lfw")
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="src/masquerade/data/canonical_mesh.npz")
    args = ap.parse_args()

    files = sorted(Path(args.lfw, "images").glob("*/*.jpg"))
    random.Random(args.seed).shuffle(files)
    det, lm = FaceDetector(), MeshLandmarker()
    meshes = []
    for f in files:
        if len(meshes) >= args.count:
            break
        rgb = load_image(f).rgb
        dets = det.detect(rgb)
        if not dets:
            continue
        d = max(dets, key=lambda d: (d.box[2] - d.box[0]) - abs((d.box[0] + d.box[2]) / 2 - 125))
        m = lm.get(rgb, d.box)
        if m is not None:
            meshes.append(m)
    x = np.stack(meshes)
    print(f"meshes: {len(x)}")

    mean = x[0] - x[0].mean(0)
    for _ in range(8):
        aligned = []
        for m in x:
            s, r, t = umeyama(m, mean)
            aligned.append(s * m @ r.T + t)
        new = np.mean(aligned, 0)
        new -= new.mean(0)
        new /= np.linalg.norm(new) / np.sqrt(len(new))
        s, r, t = umeyama(new, mean)
        mean = s * new @ r.T + t
    # orient: the average rotation of the data (canonical → observed) becomes the identity
    rots = [umeyama(mean, m)[1] for m in x]
    rbar = project_rotation(np.sum(rots, 0))
    mean = mean @ rbar.T
    # scale so the inter-ocular distance (outer corners) is 1, centre at the nose bridge
    mean /= np.linalg.norm(mean[263] - mean[33])
    mean -= mean[168]
    # mirror map and symmetrisation across the plane x = 0
    mirrored = mean * np.array([-1.0, 1.0, 1.0])
    _, mirror = cKDTree(mean[:468]).query(mirrored[:468])
    _, iris_map = cKDTree(mean[468:]).query(mirrored[468:])  # the two irises map onto each other
    mirror = np.concatenate([mirror, 468 + iris_map])
    sym = 0.5 * (mean + mirrored[mirror])
    tri = Delaunay(sym[:468, :2]).simplices.astype(np.int32)
    nose_y = sym[1, 1]
    rigid = np.array(
        [i for i in range(468) if i not in LIPS | LIDS | BROWS and sym[i, 1] <= nose_y + 0.05], dtype=np.int32
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, vertices=sym.astype(np.float32), rigid=rigid, triangles=tri, mirror=mirror.astype(np.int32)
    )
    print(f"rigid: {len(rigid)}  triangles: {len(tri)}  nose z: {sym[1, 2]:.3f}")
    print("sha256", hashlib.sha256(Path(args.out).read_bytes()).hexdigest())


if __name__ == "__main__":
    main()

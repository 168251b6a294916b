"""How far dlib's identity embedding moves when a face is only relit: no swap, the same person.

mesh3d's relighting (``--relight``) puts the target's light on the swapped face, and the evaluation's
identity figures (dlib's embedding, closer to the source than to the target, retrieval) fall as the
strength rises. This measures how much of that is dlib reading light rather than features: each source
photo of a benchmark's different-person pairs is relit to its target's light with the swapper's own
estimate (the ratio of the target's light to the source's on the source's own normals, the source's own
geometry, inside its face outline, feathered), and the cosine between the relit photo's embedding and
the photo's own is reported. The person, the features and the pixels' positions are unchanged.

    python benchmarks/bench_relight_identity.py --benchmark celeba_swap_v1 --strength 1 0.5

Prints, per strength, the mean and median drop of cosine similarity (1 − cos) over the pairs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from envinfo import environment

from masquerade import FaceAnalyzer, load_image
from masquerade.analysis.regions import FACE_OVAL, idx
from masquerade.evaluation import load_benchmark
from masquerade.face import Face
from masquerade.swappers.mesh3d import Mesh3DSwapper
from masquerade.swappers.relight import face_lighting, ratio_canvas, ratio_image, skin_vertices, vertex_ratio


def largest(fa: FaceAnalyzer, rgb: np.ndarray) -> Face | None:
    faces = fa.get(rgb)
    return max(faces, key=lambda f: float(np.prod(f.box[2:] - f.box[:2]))) if faces else None


def relit_photo(sw: Mesh3DSwapper, src: np.ndarray, sf: Face, tgt: np.ndarray, tf: Face, strength: float):
    """``src`` with its face relit to ``tgt``'s light (None where a light cannot be estimated)."""
    assert sf.mesh is not None and tf.mesh is not None
    tri, skin = sw.canonical.triangles, skin_vertices(sw.canonical.vertices)
    light_s, n_s = face_lighting(src, sf.mesh, tri, skin)
    light_t, _ = face_lighting(tgt, tf.mesh, tri, skin)
    if light_s is None or light_t is None:
        return None
    ratio = vertex_ratio(light_t, n_s, light_s, n_s, skin, strength)
    h, w = src.shape[:2]
    ids, pts = ratio_canvas(sf.mesh, tri, (w, h))
    gain = ratio_image(ratio, ids, pts, tri, (w, h))
    oval = np.zeros((h, w), np.float32)
    cv2.fillPoly(oval, [np.round(sf.mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1.0)
    oval = cv2.GaussianBlur(oval, (0, 0), 3.0)
    g = 1.0 + (gain - 1.0) * oval
    return np.clip(src * g[..., None] + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="celeba_swap_v1")
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--strength", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/relight_identity.json"))
    args = ap.parse_args()

    bench = load_benchmark(args.benchmark, args.lfw, args.celeba)
    sw = Mesh3DSwapper()
    drops: dict[float, list[float]] = {s: [] for s in args.strength}
    t0 = time.perf_counter()
    with FaceAnalyzer() as fa:
        for p in (p for p in bench.pairs if p.kind == "swap"):
            src, tgt = load_image(p.source).rgb, load_image(p.target).rgb
            sf, tf = largest(fa, src), largest(fa, tgt)
            if sf is None or tf is None or sf.embedding is None or sf.mesh is None or tf.mesh is None:
                continue
            e0 = sf.embedding / np.linalg.norm(sf.embedding)
            for s in args.strength:
                relit = relit_photo(sw, src, sf, tgt, tf, s)
                fr = None if relit is None else largest(fa, relit)
                if fr is None or fr.embedding is None:
                    continue
                drops[s].append(1.0 - float(e0 @ (fr.embedding / np.linalg.norm(fr.embedding))))
    rows = {
        str(s): {"pairs": len(d), "mean": float(np.mean(d)), "median": float(np.median(d))}
        for s, d in drops.items()
        if d
    }
    for s, r in rows.items():
        print(f"strength {s}: {r['pairs']} source photos relit to their targets' light, 1 − cosine to "
              f"the photo as it was: mean {r['mean']:.4f}, median {r['median']:.4f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(), "benchmark": args.benchmark, "seconds": time.perf_counter() - t0}
    args.out.write_text(json.dumps(report | {"figures": rows}, indent=1) + "\n")
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()

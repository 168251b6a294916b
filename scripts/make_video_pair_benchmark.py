"""Build an evaluation pairs file for one (target person A, identity B) pair, e.g. to compare a trained
autoencoder with the default swapper on the same target frames.

    python scripts/make_video_pair_benchmark.py --a ../shared/data/videos/talking_512_d6.mp4 \\
        --b ../shared/data/videos/source_s18.mp4 --lfw ../shared/data/lfw --out /tmp/pair_bench

Writes into ``--out`` (a new folder): ``targets/`` (``--n`` frames of A, evenly spaced, PNG),
``sources/`` (``--n`` frames of B, evenly spaced), ``gallery/`` and ``pairs.tsv``:

* ``swap`` rows: source = B frame i, target = A frame i, source_other = B frame i + n/2 (another photo
  of B), ids ``B`` / ``A``. Swappers that take the identity from a photo (mesh3d) use the B frame; a
  trained autoencoder ignores it (B is in the model).
* ``gallery`` rows: ``--a-gallery`` further A frames (not among the targets) as identity ``A`` — so
  retrieval asks whether the output is taken for B rather than for the person it was made from — and
  one photo each of ``--distractors`` LFW people (chosen with ``numpy.random.default_rng(--seed)``)
  as distractors.

Frames are taken in order of decoding; the frame indices are written as comments in ``pairs.tsv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from masquerade import save_image
from masquerade.video.probe import iter_frames, probe


def frames_at(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    want = set(indices)
    got: dict[int, np.ndarray] = {}
    for i, (rgb, _t) in enumerate(iter_frames(video)):
        if i in want:
            got[i] = rgb
            if len(got) == len(want):
                break
    return got


def spaced(count: int, total: int, offset: float = 0.0) -> list[int]:
    return sorted({min(total - 1, int((k + offset) * total / count)) for k in range(count)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", type=Path, required=True, help="video of the person whose face is replaced")
    ap.add_argument("--b", type=Path, required=True, help="video of the identity put on")
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"), help="LFW root (distractors)")
    ap.add_argument("--n", type=int, default=40, help="swap pairs")
    ap.add_argument("--a-gallery", type=int, default=10, help="other A frames in the gallery")
    ap.add_argument("--distractors", type=int, default=50, help="LFW people in the gallery")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        ap.error(f"{args.out} exists and is not empty")
    for sub in ("targets", "sources", "gallery"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)

    na, nb = probe(args.a).frames, probe(args.b).frames
    if not na or not nb:
        ap.error("cannot tell the videos' frame counts")
    t_idx = spaced(args.n, na)
    gap = max(1, na // (2 * len(t_idx)))  # half the spacing of the targets: frames between them
    g_idx = sorted({min(na - 1, t_idx[k] + gap) for k in spaced(args.a_gallery, len(t_idx))} - set(t_idx))
    s_idx = spaced(args.n, nb)
    a_frames = frames_at(args.a, t_idx + g_idx)
    b_frames = frames_at(args.b, s_idx)
    for i in t_idx:
        save_image(args.out / "targets" / f"a_{i:05d}.png", a_frames[i])
    for i in g_idx:
        save_image(args.out / "gallery" / f"a_{i:05d}.png", a_frames[i])
    for i in s_idx:
        save_image(args.out / "sources" / f"b_{i:05d}.png", b_frames[i])

    rows = [
        f"# pair benchmark: A = {args.a.name} (targets, frames {t_idx[0]}..{t_idx[-1]}), "
        f"B = {args.b.name} (sources), seed {args.seed}",
        f"# built by: python scripts/make_video_pair_benchmark.py {' '.join(sys.argv[1:])}",
        "kind\tsource\ttarget\tsource_other\tsource_id\ttarget_id",
    ]
    half = len(s_idx) // 2
    for k, ti in enumerate(t_idx):
        si, so = s_idx[k % len(s_idx)], s_idx[(k + half) % len(s_idx)]
        rows.append(f"swap\tsources/b_{si:05d}.png\ttargets/a_{ti:05d}.png\tsources/b_{so:05d}.png\tB\tA")
    for gi in g_idx:
        rows.append(f"gallery\tgallery/a_{gi:05d}.png\t-\t-\tA")
    images = args.lfw / "images" if (args.lfw / "images").is_dir() else args.lfw
    if args.distractors and images.is_dir():
        people = sorted(d for d in images.iterdir() if d.is_dir())
        rng = np.random.default_rng(args.seed)
        for d in rng.choice(len(people), size=min(args.distractors, len(people)), replace=False):
            photo = sorted(people[int(d)].glob("*.jpg"))[0]
            rows.append(f"gallery\t{photo.resolve()}\t-\t-\tlfw:{people[int(d)].name}")
    (args.out / "pairs.tsv").write_text("\n".join(rows) + "\n")
    print(f"{args.out / 'pairs.tsv'}: {len(t_idx)} swap pairs, {len(rows) - 3 - len(t_idx)} gallery photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

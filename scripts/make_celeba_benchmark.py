"""Build ``src/masquerade/data/benchmarks/celeba_swap_v1.tsv``, the in-the-wild swap benchmark.

    python scripts/make_celeba_benchmark.py --celeba ../shared/data/celeba --seed 0

Deterministic for a given CelebA copy and seed: ``--held-out`` people (a quarter of the 239) are drawn
with NumPy ``default_rng(seed)`` from the sorted identity folders; they are the evaluation people, left
out of every trainer's data by default. Their photos are analysed once (mediapipe face mesh and hands,
largest face) and photos without a face are left out (in-the-wild photos where no face is found are
detector failures, not swapper failures). From them:

* ``swap`` (200): different-person pairs; the source person has a second photo (``source_other``);
* ``same`` (200): two different photos of one person: a perfect swapper reproduces the target photo,
  so the output is compared with the real target inside the target's face (ground-truth realism);
* ``occ_target`` (100) and ``occ_source`` (100): different-person pairs with a synthetic occluder
  (``KIND:SEED``, :mod:`masquerade.occlusion.synthetic`) pasted on the target or on the source.

Every row is tagged with its subsets (large pose, open mouth, small face, source/target occluded; see
:mod:`masquerade.evaluation.attributes`). Paths are relative to CelebA's ``images/`` folder.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from masquerade.evaluation.building import COLUMNS, analyse_photos, draw_pairs, subset_header, tagged

HEADER = """\
# {name}: masquerade's in-the-wild face-swap evaluation benchmark, built from a CelebA subset (Liu et al.
# 2015, CUHK; in-the-wild photos, longest side <= 384 px; NON-COMMERCIAL RESEARCH USE ONLY).
# dataset: celeba
# Built deterministically by:
#   python scripts/make_celeba_benchmark.py --celeba ../shared/data/celeba --seed {seed}
# Held-out people: {held} of {people} (drawn with numpy.random.default_rng({seed}) from the sorted identity
# folders); trainers leave them out by default. {photos} of their photos have a face ({dropped} without one
# were left out). Subsets (attributes from masquerade.evaluation.attributes):
{subsets}
#
# Rows: {counts}. 'same': two different photos of one person (output compared with the real target).
# 'occ_target' / 'occ_source': a synthetic occluder KIND:SEED pasted on the target / the source.
# Per kind and subset: {per_subset}
#
# Columns (tab-separated): kind, source, target, source_other, source_id, target_id, occluder, tags.
# Paths are relative to CelebA's images/ folder; '-' means none. Ids are CelebA identity numbers.
"""


def build(celeba: Path, seed: int, held_out: int, counts: dict[str, int], name: str) -> str:
    images = celeba / "images"
    if not images.is_dir():
        raise SystemExit(f"error: {images} is not a folder (give the CelebA root with --celeba)")
    folders = sorted((p.name for p in images.iterdir() if p.is_dir()), key=lambda s: (len(s), s))
    rng = np.random.default_rng(seed)
    held = sorted((folders[i] for i in rng.choice(len(folders), held_out, replace=False)), key=int)
    photos = {p: sorted(f"{p}/{f.name}" for f in (images / p).glob("*.jpg")) for p in held}

    def tick(i: int, n: int) -> None:
        if i % 50 == 0 or i == n:
            print(f"analysed {i}/{n} photos", file=sys.stderr)

    attrs = analyse_photos(images, [ph for v in photos.values() for ph in v], tick)
    usable = {p: [ph for ph in v if attrs[ph] is not None] for p, v in photos.items()}
    usable = {p: v for p, v in usable.items() if v}
    seen: set[tuple[str, str]] = set()
    rows = []
    next_occ = 0
    for kind, n in counts.items():
        occ = None
        if kind.startswith("occ_"):
            occ, next_occ = next_occ, next_occ + n
        rows += [tagged(r, attrs) for r in draw_pairs(usable, rng, n, kind, seen, occ)]
    n_ok = sum(len(v) for v in usable.values())
    n_all = sum(len(v) for v in photos.values())
    header = HEADER.format(
        name=name, seed=seed, held=held_out, people=len(folders), photos=n_ok, dropped=n_all - n_ok,
        counts=", ".join(f"{n} '{k}'" for k, n in counts.items()), **subset_header(rows),
    )  # fmt: skip
    return header + COLUMNS + "\n" + "\n".join(r.line() for r in rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--held-out", type=int, default=60, help="evaluation people (default 60 of 239)")
    ap.add_argument("--swap", type=int, default=200)
    ap.add_argument("--same", type=int, default=200)
    ap.add_argument("--occ", type=int, default=100, help="occ_target and occ_source pairs each")
    ap.add_argument("--name", default="celeba_swap_v1")
    ap.add_argument("--out", type=Path, default=None, help="default src/masquerade/data/benchmarks/NAME.tsv")
    args = ap.parse_args()
    out = (
        args.out
        or Path(__file__).resolve().parents[1] / "src/masquerade/data/benchmarks" / f"{args.name}.tsv"
    )
    counts = {"swap": args.swap, "same": args.same, "occ_target": args.occ, "occ_source": args.occ}
    text = build(args.celeba, args.seed, args.held_out, counts, args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} (sha256 {hashlib.sha256(text.encode()).hexdigest()})")


if __name__ == "__main__":
    main()

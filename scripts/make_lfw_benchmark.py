"""Build ``src/masquerade/data/benchmarks/lfw_swap_v1.tsv``, the fixed LFW swap-evaluation benchmark.

    python scripts/make_lfw_benchmark.py --lfw ../shared/data/lfw --seed 0

Deterministic for a given LFW copy and seed (NumPy ``default_rng(seed)`` over the sorted list of
person folders), and independent of any model: no photo is filtered by a face detector, so a photo on
which a detector fails counts as a failure of the swapper under test, never as a silently dropped pair.

* ``--swap`` (100) different-person pairs: the source people are drawn from the people with at least
  two photos (so each source has an ``source_other`` photo: the fairer identity test, since a swap
  copies the source photo's pixels); the target people from everybody else. All source and target
  people are distinct, so every pair is two different people and no person appears twice.
* ``--self`` (50) self pairs: further distinct people (any photo count), source = target = one photo.

Paths are relative to LFW's ``images/`` folder (``Name/Name_NNNN.jpg``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

HEADER = """\
# {name}: masquerade's face-swap evaluation benchmark, built from LFW (Labeled Faces in the Wild,
# deep-funneled, 250x250 JPEG; research use, news photos of public figures).
# Built deterministically by: python scripts/make_lfw_benchmark.py --lfw ../shared/data/lfw --seed {seed}
# from {people} people ({multi} with two or more photos, {photos} photos).
#
# Rows: {n_swap} 'swap' pairs (source and target are different people) and {n_self} 'self' pairs
# (source = target = the same photo: the output is compared with the target pixel by pixel).
# Every person appears in at most one row. Source people of swap pairs have two or more photos;
# 'source_other' is another photo of the source person (the fairer identity test: it shares no pixels
# with the output). People and photos are drawn with numpy.random.default_rng({seed}) from the sorted
# person folders; no face detector was used to filter them, so a photo without a usable face counts as
# a failure of the swapper under test.
#
# Columns (tab-separated): kind, source, target, source_other, source_id, target_id.
# Paths are relative to LFW's images/ folder; '-' means none. Ids name the person.
# User pairs files use the same format; only kind, source and target are required (see
# masquerade.evaluation.load_pairs).
"""


def photos_by_person(images: Path) -> dict[str, list[str]]:
    people: dict[str, list[str]] = {}
    for d in sorted(p for p in images.iterdir() if p.is_dir()):
        files = sorted(f.name for f in d.glob("*.jpg"))
        if files:
            people[d.name] = files
    return people


def build(lfw: Path, seed: int, n_swap: int, n_self: int, name: str) -> str:
    images = lfw / "images"
    if not images.is_dir():
        raise SystemExit(f"error: {images} is not a folder (give the LFW root with --lfw)")
    people = photos_by_person(images)
    names = sorted(people)
    multi = [n for n in names if len(people[n]) >= 2]
    rng = np.random.default_rng(seed)

    src_people = [multi[i] for i in rng.choice(len(multi), n_swap, replace=False)]
    used = set(src_people)
    rest = [n for n in names if n not in used]
    tgt_people = [rest[i] for i in rng.choice(len(rest), n_swap, replace=False)]
    used |= set(tgt_people)
    rest = [n for n in names if n not in used]
    self_people = [rest[i] for i in rng.choice(len(rest), n_self, replace=False)]

    def rel(person: str, photo: str) -> str:
        return f"{person}/{photo}"

    rows = ["kind\tsource\ttarget\tsource_other\tsource_id\ttarget_id"]
    for s, t in zip(src_people, tgt_people, strict=True):
        s_photos = people[s]
        i, j = rng.choice(len(s_photos), 2, replace=False)
        tp = people[t][int(rng.integers(len(people[t])))]
        rows.append(f"swap\t{rel(s, s_photos[i])}\t{rel(t, tp)}\t{rel(s, s_photos[j])}\t{s}\t{t}")
    for p in self_people:
        ph = people[p][int(rng.integers(len(people[p])))]
        rows.append(f"self\t{rel(p, ph)}\t{rel(p, ph)}\t-\t{p}\t{p}")
    header = HEADER.format(
        name=name, seed=seed, people=len(names), multi=len(multi),
        photos=sum(len(v) for v in people.values()), n_swap=n_swap, n_self=n_self,
    )  # fmt: skip
    return header + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"), help="LFW root (with images/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--swap", type=int, default=100, help="different-person pairs")
    ap.add_argument("--self", dest="n_self", type=int, default=50, help="self pairs")
    ap.add_argument("--name", default="lfw_swap_v1")
    ap.add_argument("--out", type=Path, default=None, help="default src/masquerade/data/benchmarks/NAME.tsv")
    args = ap.parse_args()
    out = (
        args.out
        or Path(__file__).resolve().parents[1] / "src/masquerade/data/benchmarks" / f"{args.name}.tsv"
    )
    text = build(args.lfw, args.seed, args.swap, args.n_self, args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} (sha256 {hashlib.sha256(text.encode()).hexdigest()})")


if __name__ == "__main__":
    main()

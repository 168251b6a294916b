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

``--v2`` builds ``lfw_swap_v2``: v1's rows (the same draw) with their subset tags, plus ``--same`` (100)
pairs of two different photos of one further person (the output is compared with the real target:
ground-truth realism, which self pairs cannot give), and v1's first 50 swap pairs again with a synthetic
occluder on the target (``occ_target``) and the next 50 with one on the source (``occ_source``). Tags
come from the analyzer (:mod:`masquerade.evaluation.attributes`), so v2 needs the face models.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from masquerade.evaluation.building import (
    COLUMNS,
    Row,
    analyse_photos,
    draw_pairs,
    occluder_spec,
    subset_header,
    tagged,
)

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


V2_HEADER = """\
#
# v2 adds: {n_same} 'same' pairs (two different photos of one further person with two or more photos: the
# output is compared with the real target photo), {n_occ} 'occ_target' and {n_occ} 'occ_source' rows (v1's
# first swap pairs with a synthetic occluder KIND:SEED on the target / the source), and the subset tags
# of every row (attributes from masquerade.evaluation.attributes, largest face):
{subsets}
# Per kind and subset: {per_subset}
# Columns 7 and 8: occluder, tags. Built by: python scripts/make_lfw_benchmark.py --v2 --seed {seed}
"""


def build(lfw: Path, seed: int, n_swap: int, n_self: int, name: str, n_same: int = 0, n_occ: int = 0) -> str:
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

    rows: list[Row] = []
    for s, t in zip(src_people, tgt_people, strict=True):
        s_photos = people[s]
        i, j = rng.choice(len(s_photos), 2, replace=False)
        tp = people[t][int(rng.integers(len(people[t])))]
        rows.append(Row("swap", rel(s, s_photos[i]), rel(t, tp), rel(s, s_photos[j]), s, t))
    for p in self_people:
        ph = people[p][int(rng.integers(len(people[p])))]
        rows.append(Row("self", rel(p, ph), rel(p, ph), None, p, p))
    header = HEADER.format(
        name=name, seed=seed, people=len(names), multi=len(multi),
        photos=sum(len(v) for v in people.values()), n_swap=n_swap, n_self=n_self,
    )  # fmt: skip
    if not n_same and not n_occ:
        return (
            header
            + "kind\tsource\ttarget\tsource_other\tsource_id\ttarget_id\n"
            + "".join("\t".join(r.line().split("\t")[:6]) + "\n" for r in rows)
        )
    used = {r.source_id for r in rows} | {r.target_id for r in rows}
    rest = {n: [rel(n, ph) for ph in people[n]] for n in multi if n not in used}
    rows += draw_pairs(rest, rng, n_same, "same", set())
    swaps = [r for r in rows if r.kind == "swap"]
    for k, r in enumerate(swaps[: 2 * n_occ]):
        kind = "occ_target" if k < n_occ else "occ_source"
        rows.append(replace(r, kind=kind, occluder=occluder_spec(k)))
    attrs = analyse_photos(images, [q for r in rows for q in (r.source, r.target)])
    rows = [tagged(r, attrs) for r in rows]
    header += V2_HEADER.format(
        n_same=n_same, n_occ=n_occ, seed=seed, **subset_header(rows),
    )  # fmt: skip
    return header + COLUMNS + "\n" + "\n".join(r.line() for r in rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"), help="LFW root (with images/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--swap", type=int, default=100, help="different-person pairs")
    ap.add_argument("--self", dest="n_self", type=int, default=50, help="self pairs")
    ap.add_argument("--v2", action="store_true", help="lfw_swap_v2: v1 + same-person, occlusion pairs, tags")
    ap.add_argument("--same", type=int, default=100, help="with --v2: same-person cross-photo pairs")
    ap.add_argument("--occ", type=int, default=50, help="with --v2: occ_target and occ_source pairs each")
    ap.add_argument("--name", default=None, help="default lfw_swap_v1 (lfw_swap_v2 with --v2)")
    ap.add_argument("--out", type=Path, default=None, help="default src/masquerade/data/benchmarks/NAME.tsv")
    args = ap.parse_args()
    name = args.name or ("lfw_swap_v2" if args.v2 else "lfw_swap_v1")
    out = args.out or Path(__file__).resolve().parents[1] / "src/masquerade/data/benchmarks" / f"{name}.tsv"
    extra = (args.same, args.occ) if args.v2 else (0, 0)
    text = build(args.lfw, args.seed, args.swap, args.n_self, name, *extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} (sha256 {hashlib.sha256(text.encode()).hexdigest()})")


if __name__ == "__main__":
    main()

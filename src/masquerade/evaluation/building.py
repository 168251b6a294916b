"""Building benchmark files: analyse the photos once, tag each pair with its subsets, draw pairs.

Used by ``scripts/make_celeba_benchmark.py`` and ``scripts/make_lfw_benchmark.py``; deterministic for a
given data folder and seed (the analyzer is deterministic on a CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.analyzer import FaceAnalyzer
from ..analysis.hands import HandDetector
from ..imageio import load_image
from ..occlusion.synthetic import OCCLUDER_KINDS
from .attributes import FaceAttributes, face_attributes, pair_tags

log = logging.getLogger(__name__)

COLUMNS = "kind\tsource\ttarget\tsource_other\tsource_id\ttarget_id\toccluder\ttags"


def analyse_photos(
    root: Path, photos: Iterable[str], progress: Callable[[int, int], None] | None = None
) -> dict[str, FaceAttributes | None]:
    """The largest face's attributes of each photo (path relative to ``root``), None without a face."""
    todo = list(dict.fromkeys(photos))
    out: dict[str, FaceAttributes | None] = {}
    with FaceAnalyzer(identity=False) as fa, HandDetector() as hd:
        for i, rel in enumerate(todo):
            rgb = load_image(root / rel).rgb
            faces = fa.get(rgb, identity=False)
            out[rel] = face_attributes(rgb, faces[0], hd.get(rgb)) if faces else None
            if progress is not None:
                progress(i + 1, len(todo))
    return out


@dataclass(frozen=True)
class Row:
    kind: str
    source: str
    target: str
    source_other: str | None
    source_id: str
    target_id: str
    occluder: str | None = None
    tags: tuple[str, ...] = ()

    def line(self) -> str:
        cells = [
            self.kind, self.source, self.target, self.source_other or "-", self.source_id, self.target_id,
            self.occluder or "-", ",".join(self.tags) or "-",
        ]  # fmt: skip
        return "\t".join(cells)


def tagged(row: Row, attrs: dict[str, FaceAttributes | None]) -> Row:
    """``row`` with the subsets its two photos put it in (none when a face is missing)."""
    s, t = attrs.get(row.source), attrs.get(row.target)
    if s is None or t is None:
        return row
    return Row(**{**row.__dict__, "tags": pair_tags(s, t)})


def occluder_spec(k: int) -> str:
    """The k-th occluder of a benchmark: the kinds in turn, seeded by k."""
    return f"{OCCLUDER_KINDS[k % len(OCCLUDER_KINDS)]}:{k}"


def subset_counts(rows: Sequence[Row]) -> dict[str, dict[str, int]]:
    """How many rows of each kind are in each subset."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        for tag in r.tags:
            out.setdefault(r.kind, {}).setdefault(tag, 0)
            out[r.kind][tag] += 1
    return out


def subset_header(rows: Sequence[Row]) -> dict[str, str]:
    """The header fields a benchmark file states its subsets with: ``subsets`` (one ``#`` line per subset
    and its definition) and ``per_subset`` (the rows of each kind in each subset)."""
    from .attributes import SUBSETS

    return {
        "subsets": "\n".join(f"#   {k}: {v}" for k, v in SUBSETS.items()),
        "per_subset": "; ".join(
            f"{k}: " + ", ".join(f"{t} {c}" for t, c in sorted(v.items()))
            for k, v in subset_counts(rows).items()
        ),
    }


def draw_pairs(
    people: dict[str, list[str]], rng: np.random.Generator, n: int, kind: str,
    seen: set[tuple[str, str]], occluders_from: int | None = None,
) -> list[Row]:  # fmt: skip
    """``n`` rows of ``kind``: ``same`` draws two different photos of one person; the others a source
    person with two or more photos (its ``source_other`` is a second photo) and a different target
    person. ``people`` maps a person id to photo paths; ``seen`` (updated) avoids repeating a (source,
    target) pair; ``occluders_from`` numbers the rows' occluders (``occ_*`` kinds)."""
    multi = sorted(p for p, ph in people.items() if len(ph) >= 2)
    names = sorted(people)
    rows: list[Row] = []
    tries = 0
    while len(rows) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct {kind} pairs from {len(names)} people")
        s = multi[int(rng.integers(len(multi)))]
        i, j = rng.choice(len(people[s]), 2, replace=False)
        if kind == "same":
            src, tgt, other, t = people[s][int(i)], people[s][int(j)], None, s
        else:
            t = names[int(rng.integers(len(names)))]
            if t == s:
                continue
            src, other = people[s][int(i)], people[s][int(j)]
            tgt = people[t][int(rng.integers(len(people[t])))]
        if (src, tgt) in seen or (kind == "same" and (tgt, src) in seen):
            continue
        seen.add((src, tgt))
        occ = occluder_spec(occluders_from + len(rows)) if occluders_from is not None else None
        rows.append(Row(kind, src, tgt, other, s, t, occ))
    return rows

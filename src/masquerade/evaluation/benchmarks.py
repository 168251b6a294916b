"""Benchmarks: pairs files (format in :mod:`masquerade.evaluation`) and the shipped benchmarks."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..models import file_sha256
from ..occlusion.synthetic import parse_occluder

PairKind = Literal["swap", "self", "same", "occ_target", "occ_source"]
PAIR_KINDS: tuple[str, ...] = ("swap", "self", "same", "occ_target", "occ_source")
# kinds whose source and target are different people (identity is measured on them)
DIFFERENT_PERSON_KINDS: tuple[str, ...] = ("swap", "occ_target", "occ_source")
DATASETS: tuple[str, ...] = ("lfw", "celeba")  # the data folders shipped benchmarks are built from
GALLERY_KIND = "gallery"  # a benchmark row adding a photo to the retrieval galleries only
BENCHMARKS_PACKAGE = "data/benchmarks"


@dataclass(frozen=True)
class PairSpec:
    """One benchmark row. ``source_name``/``target_name`` are the paths as written in the file."""

    index: int
    kind: PairKind
    source: Path
    target: Path
    source_other: Path | None = None
    source_id: str = ""
    target_id: str = ""
    source_name: str = ""
    target_name: str = ""
    line: int = 0
    occluder: str | None = None  # KIND:SEED of a synthetic occluder (occ_target, occ_source)
    tags: tuple[str, ...] = ()  # the subsets the pair belongs to (evaluation.attributes.SUBSETS)


@dataclass(frozen=True)
class GalleryEntry:
    """A ``gallery`` row: one photo of ``identity`` for the retrieval galleries (not swapped)."""

    identity: str
    path: Path
    line: int = 0


@dataclass(frozen=True)
class Benchmark:
    name: str
    path: Path | None
    sha256: str | None
    root: Path | None
    pairs: list[PairSpec]
    gallery: list[GalleryEntry] = field(default_factory=list)
    dataset: str | None = None  # a shipped benchmark's data folder kind (lfw, celeba)

    def counts(self) -> dict[str, int]:
        """Pairs per kind: swap and self always, the other kinds where the benchmark has them."""
        n = {k: sum(p.kind == k for p in self.pairs) for k in PAIR_KINDS}
        return {k: v for k, v in n.items() if v or k in ("swap", "self")}

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "file": None if self.path is None else str(self.path),
            "sha256": self.sha256,
            "root": None if self.root is None else str(self.root),
            "pairs": self.counts(),
        }
        if self.dataset:
            d["dataset"] = self.dataset
        if self.gallery:
            d["gallery_photos"] = len(self.gallery)
            d["gallery_identities"] = len({g.identity for g in self.gallery})
        return d


def shipped_benchmarks() -> list[str]:
    folder = resources.files("masquerade") / BENCHMARKS_PACKAGE
    try:
        return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".tsv"))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _resolve(text: str, root: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else root / p


def load_pairs(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, name: str | None = None
) -> Benchmark:
    """Read a pairs file (format in :mod:`masquerade.evaluation`); relative paths resolve against ``root``
    (default: the file's folder). Raises :class:`InputError` naming the file and line on a malformed
    row, and listing missing image files."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such pairs file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the pairs file ({exc})") from None
    base = Path(root) if root is not None else p.parent
    if not base.is_dir():
        raise InputError(f"{base}: root folder does not exist")
    pairs: list[PairSpec] = []
    gallery: list[GalleryEntry] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text), delimiter="\t"), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if cells[0].lower() == "kind":
            continue
        if len(cells) < 3 or len(cells) > 8:
            raise InputError(
                f"{p}:{lineno}: expected 3 to 8 tab-separated columns "
                "(kind, source, target[, source_other, source_id, target_id, occluder, tags]), "
                f"got {len(cells)}"
            )
        cells += [""] * (8 - len(cells))
        kind, src, tgt, other, sid, tid, occ, tags = cells
        if kind == GALLERY_KIND:
            if not src:
                raise InputError(f"{p}:{lineno}: empty gallery photo path")
            gallery.append(GalleryEntry(sid if sid not in ("", "-") else src, _resolve(src, base), lineno))
            continue
        if kind not in PAIR_KINDS:
            kinds = ", ".join(PAIR_KINDS)
            raise InputError(f"{p}:{lineno}: kind must be one of {kinds} or gallery, got {kind!r}")
        if not src or not tgt:
            raise InputError(f"{p}:{lineno}: empty source or target path")
        occ = None if occ in ("", "-") else occ
        if kind.startswith("occ_"):
            if occ is None:
                raise InputError(f"{p}:{lineno}: a {kind} row needs an occluder (KIND:SEED) in column 7")
            try:
                parse_occluder(occ)
            except InputError as exc:
                raise InputError(f"{p}:{lineno}: {exc}") from None
        elif occ is not None:
            raise InputError(f"{p}:{lineno}: only occ_target and occ_source rows take an occluder")
        sid = sid if sid not in ("", "-") else src
        tid = tid if tid not in ("", "-") else (sid if kind == "self" else tgt)
        pairs.append(
            PairSpec(
                index=len(pairs), kind=kind,  # type: ignore[arg-type]
                source=_resolve(src, base), target=_resolve(tgt, base),
                source_other=None if other in ("", "-") else _resolve(other, base),
                source_id=sid, target_id=tid, source_name=src, target_name=tgt, line=lineno,
                occluder=occ, tags=tuple(t for t in tags.split(",") if t and t != "-"),
            )
        )  # fmt: skip
    if not pairs:
        raise InputError(f"{p}: no pairs in the file")
    missing = sorted(
        {
            str(q)
            for pr in pairs
            for q in (pr.source, pr.target, pr.source_other)
            if q is not None and not q.is_file()
        }
        | {str(g.path) for g in gallery if not g.path.is_file()}
    )
    if missing:
        raise InputError(
            f"{p}: {len(missing)} image file(s) missing under {base}, first: {missing[0]}"
            + (" (is --lfw/--root the right folder?)" if len(missing) > 1 else "")
        )
    head = text.splitlines()[:40]
    dataset = next((ln.split(":", 1)[1].strip() for ln in head if ln.startswith("# dataset:")), None)
    return Benchmark(
        name=name or p.stem, path=p, sha256=file_sha256(p), root=base, pairs=pairs, gallery=gallery,
        dataset=dataset,
    )  # fmt: skip


def shipped_dataset(name: str) -> str:
    """The data folder a shipped benchmark is built from (its ``# dataset:`` line; LFW by default)."""
    res = resources.files("masquerade") / BENCHMARKS_PACKAGE / f"{name}.tsv"
    for line in res.read_text(encoding="utf-8").splitlines()[:40]:
        if line.startswith("# dataset:"):
            return line.split(":", 1)[1].strip()
    return "lfw"


def load_benchmark(
    name_or_path: str | os.PathLike[str], lfw_root: str | os.PathLike[str] | None = None,
    celeba_root: str | os.PathLike[str] | None = None,
) -> Benchmark:  # fmt: skip
    """A shipped benchmark by name (``lfw_swap_v1``, ``lfw_swap_v2`` — paths under ``lfw_root/images`` —
    or ``celeba_swap_v1`` — under ``celeba_root/images``) or a pairs file by path (relative paths
    resolve under ``lfw_root`` if given, else the file's folder)."""
    text = os.fspath(name_or_path)
    if text in shipped_benchmarks():
        dataset = shipped_dataset(text)
        given = {"lfw": lfw_root, "celeba": celeba_root}.get(dataset)
        label = {"lfw": "LFW", "celeba": "CelebA"}.get(dataset, dataset)
        if given is None:
            raise InputError(f"benchmark {text} needs the {label} folder (--{dataset} DIR, holding images/)")
        root = Path(given)
        if not root.is_dir():
            raise InputError(f"{root}: {label} folder does not exist")
        images = root / "images" if (root / "images").is_dir() else root
        res = resources.files("masquerade") / BENCHMARKS_PACKAGE / f"{text}.tsv"
        with resources.as_file(res) as f:
            return replace(load_pairs(f, images, name=text), dataset=dataset)
    p = Path(text)
    if not p.exists():
        known = ", ".join(shipped_benchmarks()) or "none"
        raise InputError(f"{text}: neither a pairs file nor a shipped benchmark (shipped: {known})")
    return load_pairs(p, lfw_root, name=p.stem)


def limit_pairs(bench: Benchmark, limit: int | None) -> Benchmark:
    """The first ``limit`` pairs of each kind, in file order."""
    if limit is None:
        return bench
    seen = dict.fromkeys(PAIR_KINDS, 0)
    keep = []
    for p in bench.pairs:
        if seen[p.kind] < limit:
            seen[p.kind] += 1
            keep.append(p)
    return replace(bench, pairs=keep)

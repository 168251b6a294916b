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

PairKind = Literal["swap", "self"]
PAIR_KINDS: tuple[str, ...] = ("swap", "self")
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

    def counts(self) -> dict[str, int]:
        return {k: sum(p.kind == k for p in self.pairs) for k in PAIR_KINDS}

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "file": None if self.path is None else str(self.path),
            "sha256": self.sha256,
            "root": None if self.root is None else str(self.root),
            "pairs": self.counts(),
        }
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
        if len(cells) < 3 or len(cells) > 6:
            raise InputError(
                f"{p}:{lineno}: expected 3 to 6 tab-separated columns "
                "(kind, source, target[, source_other, source_id, target_id]), got {len(cells)}"
            )
        cells += [""] * (6 - len(cells))
        kind, src, tgt, other, sid, tid = cells
        if kind == GALLERY_KIND:
            if not src:
                raise InputError(f"{p}:{lineno}: empty gallery photo path")
            gallery.append(GalleryEntry(sid if sid not in ("", "-") else src, _resolve(src, base), lineno))
            continue
        if kind not in PAIR_KINDS:
            raise InputError(f"{p}:{lineno}: kind must be 'swap', 'self' or 'gallery', got {kind!r}")
        if not src or not tgt:
            raise InputError(f"{p}:{lineno}: empty source or target path")
        sid = sid if sid not in ("", "-") else src
        tid = tid if tid not in ("", "-") else (sid if kind == "self" else tgt)
        pairs.append(
            PairSpec(
                index=len(pairs), kind=kind,  # type: ignore[arg-type]
                source=_resolve(src, base), target=_resolve(tgt, base),
                source_other=None if other in ("", "-") else _resolve(other, base),
                source_id=sid, target_id=tid, source_name=src, target_name=tgt, line=lineno,
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
    return Benchmark(
        name=name or p.stem, path=p, sha256=file_sha256(p), root=base, pairs=pairs, gallery=gallery
    )


def load_benchmark(
    name_or_path: str | os.PathLike[str], lfw_root: str | os.PathLike[str] | None = None
) -> Benchmark:
    """A shipped benchmark by name (``lfw_swap_v1``; its paths resolve under ``lfw_root/images``) or a
    pairs file by path (relative paths resolve under ``lfw_root`` if given, else the file's folder)."""
    text = os.fspath(name_or_path)
    if text in shipped_benchmarks():
        if lfw_root is None:
            raise InputError(f"benchmark {text} needs the LFW folder (--lfw DIR, holding images/)")
        root = Path(lfw_root)
        if not root.is_dir():
            raise InputError(f"{root}: LFW folder does not exist")
        images = root / "images" if (root / "images").is_dir() else root
        res = resources.files("masquerade") / BENCHMARKS_PACKAGE / f"{text}.tsv"
        with resources.as_file(res) as f:
            return load_pairs(f, images, name=text)
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

"""Identity-labelled face data for the one-shot generator (``masquerade train generator``); numpy only.

**Input**: a folder of people, one sub-folder per person holding that person's photos: LFW's layout
(``LFW/images/<Name>/<Name>_0001.jpg``; the folder or its ``images/`` may be given) or any
``ROOT/<id>/*.{jpg,png,webp,…}``. :func:`scan_identity_folder` lists it, leaves out held-out people
(by default everyone in the shipped evaluation benchmarks, so a model is never evaluated on
people it was trained on), keeps at most ``max_photos`` photos per person and, with ``people=N``,
``N`` people drawn (with a fixed seed, the same for every run) from those with two or more photos.

**Alignment, once, cached**: :func:`load_identity_faces` analyses every photo with masquerade's
:class:`~masquerade.analysis.analyzer.FaceAnalyzer` (the largest faces; of those, the one nearest the photo's
centre, as LFW centres its person), aligns it with :func:`masquerade.analysis.alignment.align_face`
(``template``, ``size``: the swapper aligns target faces the same way) and stores the crop with

* its face mask (the mesh outline, as in facesets), the 68 landmarks in crop pixels,
* the 128-d dlib embedding of the face in the photo (:class:`masquerade.identity.encoder.IdentityEncoder`:
  exactly what the swapper computes from a source photo), and
* the 2×3 matrix from crop pixels to dlib's 150-px identity chip
  (:meth:`~masquerade.identity.encoder.IdentityEncoder.chip_matrix`), so the identity loss can cut the
  chip out of a generated face differentiably (:func:`chip_theta`).

The cache is a folder ``$MASQUERADE_CACHE/identity-faces/<key>/`` (default ``~/.cache/masquerade``;
``key`` hashes the folder, template, size and format version) of ``part-<random>.npz`` files, each
holding up to 512 newly analysed photos and written atomically: a stopped build keeps what it did,
adding people analyses only the new photos. Photos are keyed by relative path, size and mtime;
photos without a usable face are remembered as such.

**Identity packs** (:func:`write_identity_pack`, ``masquerade train pack``): the aligned faces of a
folder in one portable ``.npz`` file (JPEG faces, PNG masks, landmarks, embeddings, chip matrices,
people), so a GPU machine without the photos or the face-analysis models can train from it
(``--data PACK.npz``; :func:`load_identity_pack` applies the same choice of people).

**Batches** (:class:`PairSampler`, :func:`make_pair_batch`): each sample pairs a *target* face (the
attributes: pose, expression, lighting, background) with a *source* identity. Targets go through the
faces in shuffled passes (:class:`~masquerade.training.data.EpochSampler`); with probability
``same_ratio`` the source is the same person (another photo of them when there is one: the
reconstruction pairs), else a photo of another person drawn uniformly over people. Targets are
augmented with :func:`~masquerade.training.data.augment_geometry` and
:func:`~masquerade.training.data.colour_jitter`; the source identity is the cached embedding of the
source photo. Everything depends only on (seed, step), so a resumed run continues exactly.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.alignment import align_face
from ..errors import InputError
from ..imageio import IMAGE_EXTENSIONS, load_image
from .data import (
    AugmentConfig,
    EpochSampler,
    FaceArrays,
    RegionWeights,
    augment_geometry,
    colour_jitter,
    region_weight_map,
)

log = logging.getLogger(__name__)

CACHE_FORMAT = "masquerade-identity-faces"
CACHE_VERSION = 1
PART_SIZE = 512  # photos per cache part
MIN_FACE = 40.0  # face size in the photo (geometric mean of the box sides), pixels
SELECT_SEED = 0x1D5E7  # fixed seed of the people drawn by ``people=N``
CHIP_SIZE = 150  # dlib's identity chip
EYES_ONLY = RegionWeights(eyes=2.0, mouth=1.0)  # region_weight_map(…) − 1: the eye regions in [0, 1]

ProgressFn = Callable[[int, int, int], None]  # (photos done, photos to analyse, faces kept)


# ------------------------------------------------------------------------------------ the folder
@dataclass(frozen=True)
class Person:
    name: str
    files: tuple[str, ...]  # paths relative to the people folder


@dataclass(frozen=True)
class IdentityFolder:
    """People and their photos (paths relative to ``root``, the folder holding the person folders)."""

    root: Path
    people: tuple[Person, ...]
    held_out: int = 0  # people left out as held out

    @property
    def photos(self) -> int:
        return sum(len(p.files) for p in self.people)


def people_root(path: str | os.PathLike[str]) -> Path:
    """The folder holding the person folders: ``path/images`` (LFW) when it exists, else ``path``."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(f"{p}: no such data folder (give a folder of person folders, e.g. LFW)")
    return p / "images" if (p / "images").is_dir() else p


def _images_in(folder: Path) -> list[str]:
    try:
        names = sorted(
            f.name for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
        )
    except OSError:
        return []
    return [f"{folder.name}/{n}" for n in names]


def holdout_people(spec: str | os.PathLike[str] | None) -> frozenset[str]:
    """The people of a benchmark (a shipped one by name, e.g. ``lfw_swap_v1``, or a pairs file): the
    person folders of its photos and its id columns. ``"shipped"``: the people of every shipped
    benchmark (the default). ``None``, ``""`` or ``"none"``: nobody."""
    if spec is None or str(spec) in ("", "none"):
        return frozenset()
    text = os.fspath(spec)
    if text == "shipped":  # every shipped benchmark: the evaluation people of lfw_swap_v*, celeba_swap_v1
        from ..evaluation.benchmarks import shipped_benchmarks

        return frozenset().union(*(holdout_people(name) for name in shipped_benchmarks()))
    shipped = resources.files("masquerade") / "data" / "benchmarks" / f"{text}.tsv"
    if shipped.is_file():
        content = shipped.read_text(encoding="utf-8")
    else:
        p = Path(text).expanduser()
        if not p.is_file():
            raise InputError(f"--holdout {text}: neither a shipped benchmark nor a pairs file")
        try:
            content = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{p}: cannot read ({exc})") from None
    names: set[str] = set()
    for line in content.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if not cells or not cells[0] or cells[0].startswith("#") or cells[0].lower() == "kind":
            continue
        for c in cells[1:4]:
            if c and c != "-":
                parent = Path(c).parent.name
                if parent:
                    names.add(parent)
        names.update(c for c in cells[4:6] if c and c != "-")
    return frozenset(names)


def scan_identity_folder(
    path: str | os.PathLike[str],
    people: int | None = None,
    max_photos: int | None = None,
    holdout: Iterable[str] = (),
) -> IdentityFolder:
    """List the people and photos to train on (see the module docstring)."""
    root = people_root(path)
    held = frozenset(holdout)
    found: list[Person] = []
    left_out = 0
    for d in sorted(root.iterdir(), key=lambda q: q.name):
        if not d.is_dir() or d.name.startswith("."):
            continue
        files = _images_in(d)
        if not files:
            continue
        if d.name in held:
            left_out += 1
            continue
        found.append(Person(d.name, tuple(files[:max_photos] if max_photos else files)))
    found = select_people(found, people, root, left_out)
    return IdentityFolder(root=root, people=tuple(found), held_out=left_out)


def select_people(found: list[Person], people: int | None, where: object, left_out: int = 0) -> list[Person]:
    """``people`` of ``found`` with two or more photos, drawn with the fixed seed (all with ``None``);
    fails with a one-line error when fewer than two people remain."""
    if people is not None:
        several = [p for p in found if len(p.files) >= 2]
        if len(several) < people:
            raise InputError(
                f"{where}: {people} people asked for, but only {len(several)} have two or more photos"
                + (f" ({left_out} held out)" if left_out else "")
            )
        pick = np.random.default_rng(SELECT_SEED).choice(len(several), people, replace=False)
        found = [several[i] for i in sorted(pick)]
    if len(found) < 2:
        raise InputError(
            f"{where}: training needs at least 2 people (folders of photos), found {len(found)}"
            + (f" ({left_out} held out)" if left_out else "")
        )
    return found


# ------------------------------------------------------------------------------------ the faces
@dataclass(frozen=True)
class IdentityFaces:
    """Aligned faces with identities, at the training resolution (``faces.ids``: relative paths)."""

    faces: FaceArrays
    embeddings: np.ndarray  # N×128 float32 dlib descriptors (as computed, not normalised)
    chips: np.ndarray  # N×2×3 float64, crop pixels → dlib chip pixels
    person: np.ndarray  # N int, index into ``people``
    people: tuple[str, ...]
    template: str
    root: str = ""
    skipped: int = 0  # photos without a usable face

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def resolution(self) -> int:
        return self.faces.resolution

    @cached_property
    def by_person(self) -> tuple[np.ndarray, ...]:
        order = np.argsort(self.person, kind="stable")
        bounds = np.searchsorted(self.person[order], np.arange(len(self.people) + 1))
        return tuple(order[bounds[i] : bounds[i + 1]] for i in range(len(self.people)))

    @cached_property
    def unit_embeddings(self) -> np.ndarray:
        """The embeddings L2-normalised: the generator's identity input."""
        return normalise(self.embeddings)

    @cached_property
    def mean_embedding(self) -> np.ndarray:
        """The mean of the embeddings. dlib's descriptors share a large common component (two different
        people are typically at cosine 0.8–0.9), so the identity loss compares them centred on this."""
        return self.embeddings.astype(np.float64).mean(0).astype(np.float32)

    def centred(self, index: np.ndarray) -> np.ndarray:
        """Unit vectors of ``embeddings[index] − mean_embedding`` (the identity loss's targets)."""
        return normalise(self.embeddings[index] - self.mean_embedding)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def _cache_folder(cache: Path | None, root: Path, template: str, size: int) -> Path:
    if cache is None:
        from ..identity.dlibnet import cache_dir

        cache = cache_dir() / "identity-faces"
    key = json.dumps([CACHE_FORMAT, CACHE_VERSION, str(root.resolve()), template, int(size), MIN_FACE])
    return Path(cache) / f"{template}-{size}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def photo_key(path: Path, name: str) -> str:
    """A photo's cache key: ``name``, size and a digest of its bytes (not its modification time, which a
    copy or a re-extracted archive changes)."""
    data = path.read_bytes()
    return f"{name}|{len(data)}|{hashlib.blake2b(data, digest_size=8).hexdigest()}"


def _load_parts(folder: Path) -> tuple[dict[str, tuple[int, int]], list[dict[str, np.ndarray]], set[str]]:
    """(key → (part, row), the parts' arrays, keys of photos without a usable face)."""
    index: dict[str, tuple[int, int]] = {}
    parts: list[dict[str, np.ndarray]] = []
    failed: set[str] = set()
    for f in sorted(folder.glob("part-*.npz")) if folder.is_dir() else []:
        try:
            with np.load(f, allow_pickle=False) as z:
                part = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache part, ignored (%s)", f, exc)
            continue
        k = len(parts)
        parts.append(part)
        for row, key in enumerate(part["keys"].tolist()):
            index[key] = (k, row)
        failed.update(part["failed"].tolist())
    return index, parts, failed


def _save_part(folder: Path, records: list[dict[str, Any]], failed: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"part-{uuid.uuid4().hex[:16]}.npz"  # unique: two runs may fill one cache at once
    size = records[0]["image"].shape[0] if records else 1

    def stack(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.stack([r[name] for r in records]).astype(dtype) if records else np.zeros((0, *shape), dtype)

    buf = io.BytesIO()
    np.savez(
        buf,
        keys=np.array([r["key"] for r in records], dtype=str).reshape(-1),
        failed=np.array(failed, dtype=str).reshape(-1),
        images=stack("image", (size, size, 3), np.uint8),
        masks=stack("mask", (size, size), np.uint8),
        landmarks=stack("landmarks", (68, 2), np.float32),
        embeddings=stack("embedding", (128,), np.float32),
        chips=stack("chip", (2, 3), np.float64),
    )
    from ..files import atomic_write_bytes

    atomic_write_bytes(dest, buf.getvalue())


def analyse_photo(analyzer: Any, rgb: np.ndarray, size: int, template: str) -> dict[str, Any] | None:
    """Crop, mask, landmarks, embedding and chip matrix of the photo's face, or None without one."""
    from ..faceset.extract import crop_face_mask, face_px

    faces = analyzer.get(rgb, identity=False, small_faces=False)
    if not faces:
        return None
    centre = np.array([rgb.shape[1] / 2, rgb.shape[0] / 2])
    big = [f for f in faces if f.area >= 0.5 * faces[0].area]
    face = min(big, key=lambda f: float(np.linalg.norm(f.center - centre)))
    if face_px(face) < MIN_FACE:
        return None
    crop, m = align_face(rgb, face.landmarks_5, size, template)
    enc = analyzer.identity
    to_chip = np.vstack([enc.chip_matrix(rgb, face.landmarks_68, CHIP_SIZE), [0, 0, 1]])
    from_crop = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    return {
        "image": crop,
        "mask": crop_face_mask(face, m, size),
        "landmarks": face.landmarks_68 @ m[:, :2].T + m[:, 2],
        "embedding": enc.embed(rgb, face.landmarks_68),
        "chip": (to_chip @ from_crop)[:2],
    }


def load_identity_faces(
    folder: IdentityFolder,
    resolution: int,
    template: str = "ffhq",
    cache: str | os.PathLike[str] | None = None,
    analyzer: Any = None,
    progress: ProgressFn | None = None,
) -> IdentityFaces:
    """The aligned faces of ``folder``'s photos at ``resolution`` (analysing the photos the cache does
    not hold yet; see the module docstring). ``cache``: the cache root (default under
    :func:`masquerade.identity.dlibnet.cache_dir`)."""
    root = folder.root
    where = _cache_folder(Path(cache) if cache is not None else None, root, template, resolution)
    index, parts, failed = _load_parts(where)
    wanted: list[tuple[int, str, str]] = []  # (person, rel, key)
    unreadable = 0
    for i, person in enumerate(folder.people):
        for rel in person.files:
            try:
                wanted.append((i, rel, photo_key(root / rel, rel)))
            except OSError:
                unreadable += 1
    todo = [w for w in wanted if w[2] not in index and w[2] not in failed]
    if todo:
        own = analyzer is None
        if own:
            from ..analysis.analyzer import FaceAnalyzer

            analyzer = FaceAnalyzer(identity=False)
        records: list[dict[str, Any]] = []
        new_failed: list[str] = []
        kept = 0
        try:
            for n, (_, rel, key) in enumerate(todo, 1):
                rec = None
                try:
                    rgb = load_image(root / rel).rgb
                    rec = analyse_photo(analyzer, rgb, resolution, template)
                except InputError as exc:
                    log.info("%s: skipped (%s)", rel, exc)
                if rec is None:
                    new_failed.append(key)
                else:
                    rec["key"] = key
                    records.append(rec)
                    kept += 1
                if len(records) + len(new_failed) >= PART_SIZE:
                    _save_part(where, records, new_failed)
                    records, new_failed = [], []
                if progress is not None:
                    progress(n, len(todo), kept)
        finally:
            if records or new_failed:
                _save_part(where, records, new_failed)
            if own:
                analyzer.close()
        index, parts, failed = _load_parts(where)
    rows = [(i, rel, index[key]) for i, rel, key in wanted if key in index]
    if not rows:
        raise InputError(f"{root}: no usable face in {len(wanted)} photos")
    n, r = len(rows), int(resolution)
    images = np.empty((n, r, r, 3), np.uint8)
    masks = np.empty((n, r, r), np.uint8)
    landmarks = np.empty((n, 68, 2), np.float32)
    embeddings = np.empty((n, 128), np.float32)
    chips = np.empty((n, 2, 3), np.float64)
    for j, (_, _, (k, row)) in enumerate(rows):
        part = parts[k]
        images[j], masks[j] = part["images"][row], part["masks"][row]
        landmarks[j], embeddings[j], chips[j] = (
            part["landmarks"][row],
            part["embeddings"][row],
            part["chips"][row],
        )
    # people without a usable face drop out; indices are renumbered
    used = sorted({i for i, _, _ in rows})
    renumber = {old: new for new, old in enumerate(used)}
    if len(used) < 2:
        raise InputError(f"{root}: usable faces of only {len(used)} person; training needs at least 2 people")
    return IdentityFaces(
        faces=FaceArrays(
            images=images, masks=masks, landmarks=landmarks, ids=tuple(rel for _, rel, _ in rows)
        ),
        embeddings=embeddings,
        chips=chips,
        person=np.array([renumber[i] for i, _, _ in rows], np.int64),
        people=tuple(folder.people[i].name for i in used),
        template=template,
        root=str(root),
        skipped=len(wanted) - n + unreadable,
    )


# ------------------------------------------------------------------------------------ packs
PACK_FORMAT = "masquerade-identity-pack"
PACK_VERSION = 1


@dataclass(frozen=True)
class PackInfo:
    path: Path
    faces: int
    people: int
    bytes: int


def _encode_rows(rows: np.ndarray, ext: str, params: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every row encoded (``cv2.imencode``) into one uint8 buffer, with N+1 offsets."""
    import cv2

    blobs = []
    for x in rows:
        ok, buf = cv2.imencode(ext, x, params)
        if not ok:
            raise InputError(f"could not encode a face as {ext}")
        blobs.append(buf.reshape(-1))
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    return data.astype(np.uint8, copy=False), offsets


def write_identity_pack(
    data: IdentityFaces,
    dest: str | os.PathLike[str],
    quality: int = 90,
    holdout: str = "",
    force: bool = False,
) -> PackInfo:
    """Write ``data`` as one self-contained file (an *identity pack*: JPEG faces at ``quality``, PNG
    masks, landmarks, embeddings, chip matrices, people) that ``masquerade train generator --data``
    reads on a machine without the photos or the face models. Written atomically; an existing file is
    replaced only with ``force``."""
    import cv2

    from ..files import atomic_write_bytes

    p = Path(dest).expanduser()
    if p.suffix.lower() != ".npz":
        raise InputError(f"{p}: an identity pack is an .npz file (name it e.g. {p.with_suffix('.npz').name})")
    if p.exists() and not force:
        raise InputError(f"{p} exists (use --force to replace it)")
    if not 1 <= int(quality) <= 100:
        raise InputError(f"JPEG quality {quality}: give 1 to 100")
    bgr = data.faces.images[..., ::-1]
    jpeg, jpeg_offsets = _encode_rows(bgr, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    png, png_offsets = _encode_rows(data.faces.masks, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9])
    meta = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "template": data.template,
        "resolution": data.resolution,
        "quality": int(quality),
        "source": data.root,
        "holdout": holdout,
        "skipped": int(data.skipped),
    }
    buf = io.BytesIO()
    np.savez_compressed(  # (the arrays and names shrink; the JPEG bytes do not)
        buf,
        meta=np.array(json.dumps(meta)),
        people=np.array(data.people, dtype=str).reshape(-1),
        person=data.person.astype(np.int32),
        ids=np.array(data.faces.ids, dtype=str).reshape(-1),
        jpeg=jpeg,
        jpeg_offsets=jpeg_offsets,
        png=png,
        png_offsets=png_offsets,
        landmarks=data.faces.landmarks.astype(np.float32),
        embeddings=data.embeddings.astype(np.float32),
        chips=data.chips.astype(np.float64),
    )
    blob = buf.getvalue()
    atomic_write_bytes(p, blob)
    return PackInfo(path=p, faces=len(data), people=len(data.people), bytes=len(blob))


def is_identity_pack(path: str | os.PathLike[str]) -> bool:
    """A file (not a folder of people): ``--data`` then names an identity pack."""
    return Path(path).expanduser().is_file()


def load_identity_pack(
    path: str | os.PathLike[str],
    people: int | None = None,
    max_photos: int | None = None,
    holdout: Iterable[str] = (),
) -> IdentityFaces:
    """The faces of an identity pack (:func:`write_identity_pack`), with the same choice of people as
    for a folder: held-out people left out, at most ``max_photos`` each, ``people`` drawn."""
    import cv2

    p = Path(path).expanduser()
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{p}: not an identity pack ({why})") from None
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
        raise InputError(f"{p}: not an identity pack (make one with: masquerade train pack)")
    if int(meta.get("version", 0)) > PACK_VERSION:
        raise InputError(f"{p}: identity pack version {meta.get('version')} is newer than this masquerade")
    names = [str(n) for n in arrays["people"].tolist()]
    person = arrays["person"].astype(np.int64)
    ids = [str(i) for i in arrays["ids"].tolist()]
    n = len(ids)
    if not (len(person) == n and len(arrays["jpeg_offsets"]) == n + 1 and len(arrays["embeddings"]) == n):
        raise InputError(f"{p}: damaged identity pack (array lengths disagree)")
    held = frozenset(holdout)
    rows_of: dict[int, list[int]] = {}
    for i, q in enumerate(person.tolist()):
        rows_of.setdefault(q, []).append(i)
    found: list[Person] = []
    left_out = 0
    for q in sorted(rows_of, key=lambda k: names[k]):
        if names[q] in held:
            left_out += 1
            continue
        rows = rows_of[q][:max_photos] if max_photos else rows_of[q]
        found.append(Person(names[q], tuple(str(r) for r in rows)))
    chosen = select_people(found, people, p, left_out)
    rows = np.array([int(r) for pp in chosen for r in pp.files], np.int64)
    new_person = np.array([k for k, pp in enumerate(chosen) for _ in pp.files], np.int64)
    r = int(meta["resolution"])
    images = np.empty((len(rows), r, r, 3), np.uint8)
    masks = np.empty((len(rows), r, r), np.uint8)
    jpeg, jo = arrays["jpeg"], arrays["jpeg_offsets"]
    png, po = arrays["png"], arrays["png_offsets"]
    for j, i in enumerate(rows.tolist()):
        img = cv2.imdecode(jpeg[jo[i] : jo[i + 1]], cv2.IMREAD_COLOR)
        mask = cv2.imdecode(png[po[i] : po[i + 1]], cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None or img.shape[:2] != (r, r) or mask.shape != (r, r):
            raise InputError(f"{p}: damaged identity pack (face {ids[i]} does not decode)")
        images[j] = img[..., ::-1]
        masks[j] = mask
    return IdentityFaces(
        faces=FaceArrays(
            images=images,
            masks=masks,
            landmarks=arrays["landmarks"][rows].astype(np.float32),
            ids=tuple(ids[i] for i in rows.tolist()),
        ),
        embeddings=arrays["embeddings"][rows].astype(np.float32),
        chips=arrays["chips"][rows].astype(np.float64),
        person=new_person,
        people=tuple(pp.name for pp in chosen),
        template=str(meta["template"]),
        root=str(p),
        skipped=int(meta.get("skipped", 0)),
    )


# ---------------------------------------------------------------------------------------- batches
def chip_theta(crop_to_chip: np.ndarray, crop_size: int, chip_size: int = CHIP_SIZE) -> np.ndarray:
    """``torch.nn.functional.affine_grid`` parameters (``align_corners=False``) that sample the
    ``chip_size`` chip out of a ``crop_size`` crop, given the 2×3 crop-pixel → chip-pixel matrix."""
    inv = np.linalg.inv(np.vstack([np.asarray(crop_to_chip, np.float64), [0, 0, 1]]))
    c, r = float(chip_size), float(crop_size)
    out_px = np.array([[c / 2, 0, (c - 1) / 2], [0, c / 2, (c - 1) / 2], [0, 0, 1]])
    in_norm = np.array([[2 / r, 0, 1 / r - 1], [0, 2 / r, 1 / r - 1], [0, 0, 1]])
    return (in_norm @ inv @ out_px)[:2].astype(np.float32)


@dataclass(frozen=True)
class PairBatch:
    """Network-ready arrays (float32, N×C×R×R in [0, 1] unless said otherwise)."""

    target: np.ndarray  # N×3×R×R, augmented target faces (the attributes)
    mask: np.ndarray  # N×1×R×R, their face masks
    weights: np.ndarray  # N×1×R×R, region weights (≥ 1: eyes, mouth)
    eyes: np.ndarray  # N×1×R×R, the eye regions in [0, 1]
    theta: np.ndarray  # N×2×3, target crop → identity chip (see chip_theta)
    landmarks: np.ndarray  # N×68×2 float32, the augmented targets' landmarks (crop pixels)
    identity: np.ndarray  # N×128, L2-normalised source embeddings (the generator's input)
    id_target: np.ndarray  # N×128, the source embeddings centred (see IdentityFaces.centred)
    same: np.ndarray  # N, 1.0 where source and target are one person
    source_index: np.ndarray  # N int64
    target_index: np.ndarray  # N int64


class PairSampler:
    """(source, target, same-person) index triples as a function of (seed, step)."""

    def __init__(self, data: IdentityFaces, seed: int, same_ratio: float) -> None:
        self.data = data
        self.seed = int(seed)
        self.same_ratio = float(same_ratio)
        self.targets = EpochSampler(len(data), self.seed, 0)

    def rng(self, step: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 7, int(step)])

    def pairs(self, step: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draws of ``step`` (1-based); ``rng`` is :meth:`rng` of the step (also used for augmentation)."""
        tgt = self.targets.indices(step - 1, n)
        same = rng.random(n) < self.same_ratio
        by, people = self.data.by_person, len(self.data.people)
        src = np.empty(n, np.int64)
        for k, t in enumerate(tgt):
            p = int(self.data.person[t])
            if same[k]:
                photos = by[p][by[p] != t]
                src[k] = photos[rng.integers(len(photos))] if len(photos) else t
            else:
                q = int(rng.integers(people - 1))
                q += q >= p
                src[k] = by[q][rng.integers(len(by[q]))]
        return src, tgt.astype(np.int64), same


def make_pair_batch(
    data: IdentityFaces,
    source: np.ndarray,
    target: np.ndarray,
    same: np.ndarray,
    rng: np.random.Generator,
    augment: AugmentConfig,
    regions: RegionWeights,
) -> PairBatch:
    """Augment the targets (geometry and colour; no random warp) and gather the source identities."""
    r = data.resolution
    f = data.faces
    imgs, masks, weights, eyes, thetas, marks = [], [], [], [], [], []
    for t in target:
        img, mask, lm, m = augment_geometry(f.images[t], f.masks[t], f.landmarks[t], rng, augment)
        x = img.astype(np.float32) * np.float32(1 / 255)
        if augment.enabled:
            x = colour_jitter(x, rng, augment.colour)
        imgs.append(x)
        masks.append(mask.astype(np.float32)[..., None] * np.float32(1 / 255))
        weights.append(region_weight_map(lm, r, regions)[..., None])
        eyes.append(region_weight_map(lm, r, EYES_ONLY)[..., None] - 1.0)
        marks.append(lm)
        undo = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        thetas.append(chip_theta((np.vstack([data.chips[t], [0, 0, 1]]) @ undo)[:2], r))

    def nchw(xs: list[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2), np.float32)

    return PairBatch(
        target=nchw(imgs),
        mask=nchw(masks),
        weights=nchw(weights),
        eyes=nchw(eyes),
        theta=np.stack(thetas).astype(np.float32),
        landmarks=np.stack(marks).astype(np.float32),
        identity=data.unit_embeddings[source],
        id_target=data.centred(source),
        same=same.astype(np.float32),
        source_index=np.asarray(source, np.int64),
        target_index=np.asarray(target, np.int64),
    )


def clean_pair_batch(data: IdentityFaces, source: np.ndarray, target: np.ndarray) -> PairBatch:
    """Un-augmented batch (previews, evaluation)."""
    same = data.person[source] == data.person[target]
    return make_pair_batch(
        data, source, target, same, np.random.default_rng(0), AugmentConfig(enabled=False), RegionWeights()
    )


def preview_pairs(data: IdentityFaces, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` fixed (source, target) pairs of different people, spread over the data."""
    by = data.by_person
    people = len(data.people)
    steps = (
        np.round(np.linspace(0, people - 1, count)).astype(int)
        if people >= count
        else np.arange(count) % people
    )
    src, tgt = [], []
    for k, p in enumerate(steps):
        q = (p + max(1, people // 2)) % people
        if q == p:
            q = (p + 1) % people
        src.append(by[p][k % len(by[p])])
        tgt.append(by[q][(k + 1) % len(by[q])])
    return np.array(src, np.int64), np.array(tgt, np.int64)

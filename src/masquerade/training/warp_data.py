"""Training data for the refiner (``masquerade train refiner``): 3-D warps of real photo pairs, made once
and cached; numpy only.

**People** come from one or more folders of person folders (LFW, CelebA, or any ``ROOT/<id>/*.jpg``;
:func:`~masquerade.training.identity_data.scan_identity_folder`), the evaluation people left out (by
default everyone in the shipped benchmarks). Every photo is analysed once (the largest face: mediapipe
mesh, 68 and 5 points, pose, expression, dlib embedding) and remembered in a cache.

**Pairs** (:func:`plan_pairs`, deterministic in the seed): *same-person* pairs (two different photos of
one person: the real target is the ground truth of a perfect swap) and *different-person* pairs (the
identity must stay the source's). For each pair the target gets exactly what ``--swapper mesh3d``
produces with the default options (:class:`~masquerade.swappers.mesh3d.Mesh3DSwapper` warp, mask,
``shading`` colour, feather blend, occlusion handling: what covers the source is left out and filled,
what is in front of the target is kept) — the refiner's input — and once more from a **corrupted
source** (a synthetic occluder pasted on it, blur, JPEG or a colour cast, applied *before* warping
through the same maps), so the refiner learns to undo what a bad source photo brings and what the
occlusion handling misses. Crops of ``size`` pixels are cut around the target face (the ``refine``
template of :mod:`masquerade.analysis.alignment`) and stored with each composite's mask and hidden
source texels (the patch's ``hidden``), a map of the target's eyes, irises and mouth, the warped source
occluder's alpha, the crop → dlib-chip transform and both embeddings.

The warp is relit (:mod:`masquerade.swappers.relight`) at the config's ``relight`` strength (mesh3d's
default unless told otherwise): the strength the refined swapper then swaps with by default.

**Cache**: ``$MASQUERADE_CACHE/refiner-pairs/<key>/part-*.npz`` (``key`` hashes the folders, the size,
the relighting strength and the format version), each part written atomically; a stopped build keeps its
parts, a new one makes only the missing pairs, with ``workers`` processes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..errors import InputError, SkipFace
from ..face import Face, Pose
from ..files import atomic_write_bytes
from ..imageio import load_image
from ..occlusion.synthetic import OCCLUDER_KINDS, make_occluder
from ..swappers.mesh3d import Mesh3DOptions
from ..swappers.refined import crop_matrix, parts_map, target_crop
from .identity_data import photo_key

if TYPE_CHECKING:
    from ..identity.encoder import IdentityEncoder
    from ..occlusion.handling import Occlusion
    from ..pipeline import SwapOptions
    from ..swappers.mesh3d import Mesh3DSwapper

log = logging.getLogger(__name__)

# 2: occlusion handling on; masks and hidden texels of both composites; 3: highlights knee; 4: mesh3d relit;
# 5: the relighting bounded per triangle, the eyes' own hue half kept, eyes too narrow left to the target;
# 6: the warp's maps bounded per triangle (a closed mouth's gap no longer reaches into the teeth);
# 7: a much darker skin's shine not scaled with its lightness gain (colour correction); 8: the frames of a
# target's clear glasses kept (occlusion handling)
FORMAT_VERSION = 8
DEFAULT_RELIGHT = Mesh3DOptions.relight  # the pairs' relighting unless a config says otherwise
PHOTOS_VERSION = 2  # 2: photos keyed by content, not modification time
PART_SIZE = 256
EXPRESSION_KEYS = (
    "mouth_open", "mouth_width", "smile", "eye_open_left", "eye_open_right", "brow_raise_left",
    "brow_raise_right", "jaw_drop",
)  # fmt: skip
CORRUPTIONS = ("none", "occluder", "blur", "jpeg", "colour")
CORRUPTION_P = (0.0, 0.55, 0.2, 0.15, 0.1)  # when a pair's source is corrupted: which way


# ------------------------------------------------------------------------------------ photos
@dataclass(frozen=True)
class PhotoFace:
    """A photo's analysed largest face, as stored in the cache."""

    path: str  # absolute
    person: str
    face: Face


def _face_arrays(face: Face) -> dict[str, np.ndarray]:
    assert face.mesh is not None and face.pose is not None and face.embedding is not None
    return {
        "box": np.asarray(face.box, np.float32),
        "lm68": np.asarray(face.landmarks_68, np.float32),
        "lm5": np.asarray(face.landmarks_5, np.float32),
        "mesh": np.asarray(face.mesh, np.float32),
        "pose": face.pose.as_array().astype(np.float32),
        "expr": np.array([face.expression.get(k, 0.0) for k in EXPRESSION_KEYS], np.float32),
        "emb": np.asarray(face.embedding, np.float32),
    }


def _face_from(z: dict[str, np.ndarray], i: int) -> Face:
    return Face(
        box=z["box"][i].astype(np.float64), score=1.0, landmarks_68=z["lm68"][i].astype(np.float64),
        landmarks_5=z["lm5"][i].astype(np.float64), mesh=z["mesh"][i].astype(np.float64),
        pose=Pose(*z["pose"][i].astype(float).tolist()),
        expression={k: float(v) for k, v in zip(EXPRESSION_KEYS, z["expr"][i], strict=True)},
        embedding=z["emb"][i].astype(np.float64),
    )  # fmt: skip


def _cache_root(cache: str | os.PathLike[str] | None) -> Path:
    if cache is not None:
        return Path(cache)
    from ..identity.dlibnet import cache_dir

    return cache_dir()


def _read_parts(folder: Path) -> list[dict[str, np.ndarray]]:
    parts = []
    for f in sorted(folder.glob("part-*.npz")) if folder.is_dir() else []:
        try:
            with np.load(f, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache part, ignored (%s)", f, exc)
    return parts


def _write_part(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / f"part-{uuid.uuid4().hex[:16]}.npz", buf.getvalue())


class _Inline:
    """A one-worker stand-in for a process pool: runs in this process."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)


def _pool(workers: int) -> Any:
    """``workers`` processes, started fresh ("spawn": the face models and PyTorch's threads of this
    process must not be forked), or this process alone for one worker."""
    if workers <= 1:
        return _Inline()
    import multiprocessing

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _analyse_chunk(paths: list[str]) -> dict[str, np.ndarray]:
    """Worker: analyse photos (largest face, identity) → arrays for a cache part (keys, ok, faces)."""
    from ..analysis.analyzer import FaceAnalyzer

    rows: list[dict[str, np.ndarray]] = []
    keys, ok = [], []
    with FaceAnalyzer(identity=True) as fa:
        for p in paths:
            face = None
            try:
                rgb = load_image(p).rgb
                faces = fa.get(rgb, identity=False, small_faces=False)
                if faces and faces[0].mesh is not None and _iod(faces[0]) >= MIN_IOD:
                    face = fa.embed(rgb, faces[0])
            except InputError as exc:
                log.info("%s: skipped (%s)", p, exc)
            keys.append(_photo_key(p))
            ok.append(face is not None)
            if face is not None:
                rows.append(_face_arrays(face))
    out = {"keys": np.array(keys, dtype=str), "ok": np.array(ok, bool)}
    for name in ("box", "lm68", "lm5", "mesh", "pose", "expr", "emb"):
        out[name] = np.stack([r[name] for r in rows]) if rows else np.zeros((0,), np.float32)
    return out


MIN_IOD = 20.0  # pixels between the eye centres: smaller faces are not used for training


def _iod(face: Face) -> float:
    return float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0]))


def analyse_photos(
    people: Sequence[tuple[str, Sequence[str]]], cache: str | os.PathLike[str] | None = None,
    workers: int = 1, progress: Callable[[int, int], None] | None = None,
) -> list[PhotoFace]:  # fmt: skip
    """The analysed face of every photo of ``people`` (person, absolute paths) that has a usable one
    (largest face with a mesh, ≥ :data:`MIN_IOD` px between the eyes), analysing only what the cache
    lacks."""
    folder = _cache_root(cache) / "refiner-photos" / f"v{PHOTOS_VERSION}"
    wanted = [(person, p, _photo_key(p)) for person, paths in people for p in paths]
    known: dict[str, tuple[int, int] | None] = {}
    parts = _read_parts(folder)
    for k, part in enumerate(parts):
        row = 0
        for key, good in zip(part["keys"].tolist(), part["ok"].tolist(), strict=True):
            known[key] = (k, row) if good else None
            row += int(good)
    todo = [p for _, p, key in wanted if key not in known]
    if todo:
        chunks = [todo[i : i + PART_SIZE // 4] for i in range(0, len(todo), PART_SIZE // 4)]
        done = 0
        with _pool(workers) as pool:
            for arrays in pool.map(_analyse_chunk, chunks):
                _write_part(folder, arrays)
                done += len(arrays["keys"])
                if progress is not None:
                    progress(done, len(todo))
        return analyse_photos(people, cache, workers)
    out = []
    for person, p, key in wanted:
        where = known.get(key)
        if where is not None:
            out.append(PhotoFace(p, person, _face_from(parts[where[0]], where[1])))
    return out


def _photo_key(path: str) -> str:
    p = Path(path)
    return photo_key(p, str(p.resolve()))


# ------------------------------------------------------------------------------------ pairs
@dataclass(frozen=True)
class PairPlan:
    target: int  # index into the photos
    source: int
    same: bool
    corruption: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.target}|{self.source}|{self.corruption}|{self.seed}"


def plan_pairs(
    photos: Sequence[PhotoFace], same_per_person: int, different: int, seed: int
) -> list[PairPlan]:
    """Same-person pairs (up to ``same_per_person`` ordered pairs of different photos per person) and
    ``different`` different-person pairs (target photos in shuffled passes, sources from other people),
    each with a source corruption drawn from :data:`CORRUPTIONS`."""
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[int]] = {}
    for i, ph in enumerate(photos):
        by_person.setdefault(ph.person, []).append(i)
    names = sorted(by_person)
    plans: list[tuple[int, int, bool]] = []
    for name in names:
        idxs = by_person[name]
        ordered = [(a, b) for a in idxs for b in idxs if a != b]
        if not ordered:
            continue
        pick = rng.choice(len(ordered), min(same_per_person, len(ordered)), replace=False)
        plans += [(ordered[j][1], ordered[j][0], True) for j in sorted(pick)]
    n = len(photos)
    order = rng.permutation(n)
    k = 0
    while sum(not s for _, _, s in plans) < different and len(names) > 1:
        t = int(order[k % n])
        k += 1
        other = names[int(rng.integers(len(names)))]
        if other == photos[t].person:
            continue
        plans.append((t, int(rng.choice(by_person[other])), False))
    kinds = rng.choice(len(CORRUPTIONS), len(plans), p=CORRUPTION_P)
    seeds = rng.integers(0, 2**31, len(plans))
    return [
        PairPlan(t, s, same, CORRUPTIONS[int(c)], int(sd))
        for (t, s, same), c, sd in zip(plans, kinds, seeds, strict=True)
    ]


def corrupt_source(
    rgb: np.ndarray, face: Face, kind: str, seed: int, texture: np.ndarray, texture_box: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The source photo made worse before warping, and the occluder's alpha (``occluder`` only)."""
    rng = np.random.default_rng(seed)
    if kind == "occluder":
        occ = OCCLUDER_KINDS[int(rng.integers(len(OCCLUDER_KINDS)))]
        layer = make_occluder(
            occ, int(rng.integers(2**31)), face.landmarks_68, rgb.shape, texture, texture_box
        )
        return layer.over(rgb), layer.alpha
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(1.0, 2.5))), None
    if kind == "jpeg":
        q = int(rng.integers(12, 35))
        _, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), None
    if kind == "colour":
        h, w = rgb.shape[:2]
        gain = rng.uniform(0.7, 1.3, 3)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = 1.0 + rng.uniform(0.1, 0.5) * ((np.cos(ang) * xx / w + np.sin(ang) * yy / h) - 0.5)
        out = rgb.astype(np.float32) * gain[None, None, :] * ramp[..., None]
        return np.clip(out, 0, 255).astype(np.uint8), None
    return rgb, None


def _make_pairs(args: tuple[list[PairPlan], list[PhotoFace], int, float]) -> dict[str, np.ndarray]:
    """Worker: the crops of some pairs (see the module docstring), the warp relit at ``relight``."""
    from ..identity.encoder import IdentityEncoder
    from ..occlusion.handling import Occlusion, source_warnings_off
    from ..pipeline import SwapOptions
    from ..swappers.mesh3d import Mesh3DSwapper

    plans, photos, size, relight = args
    swapper = Mesh3DSwapper(Mesh3DOptions(relight=relight))
    options = SwapOptions()
    enc = IdentityEncoder()
    occlusion = Occlusion()
    try:
        with source_warnings_off():  # hidden source faces are the point here (corrupted sources)
            return _pairs(plans, photos, size, swapper, options, enc, occlusion)
    finally:
        enc.close()
        occlusion.close()


def _pairs(
    plans: list[PairPlan], photos: list[PhotoFace], size: int, swapper: Mesh3DSwapper, options: SwapOptions,
    enc: IdentityEncoder, occlusion: Occlusion,
) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`_make_pairs`' work, given its models."""
    from ..compose.composite import composite, hidden_mask, mouth_policy
    from ..swappers.refined import mask_crop
    from .identity_data import CHIP_SIZE, chip_theta

    images: dict[str, np.ndarray] = {}

    def rgb_of(i: int) -> np.ndarray:
        p = photos[i].path
        if p not in images:
            if len(images) > 64:
                images.clear()
            images[p] = load_image(p).rgb
        return images[p]

    rows: dict[str, list[Any]] = {k: [] for k in (
        "keys", "target", "out", "out_corrupt", "mask", "mask_corrupt", "hidden", "hidden_corrupt", "parts",
        "occluder", "theta", "source_emb", "target_emb", "same", "corruption", "target_person",
        "source_person")}  # fmt: skip
    failed = []
    for plan in plans:
        tf, sf = photos[plan.target].face, photos[plan.source].face
        t_rgb, s_rgb = rgb_of(plan.target), rgb_of(plan.source)
        try:
            maps, mirror = swapper.fill_maps(sf, tf, t_rgb.shape, holes=True)
        except SkipFace:
            failed.append(plan.key)
            continue
        mouth = mouth_policy(sf, tf)
        held = occlusion.target_mask(t_rgb, tf)
        m = crop_matrix(tf.landmarks_5, size)

        bad, alpha = corrupt_source(s_rgb, sf, plan.corruption, plan.seed, t_rgb, tf.box)
        made = []  # what the occlusion-aware mesh3d swap makes (as the pipeline does) of each source
        for src in (s_rgb, bad) if bad is not s_rgb else (s_rgb,):
            holes = occlusion.source_holes(src, sf)
            clean = occlusion.clean_source(src, sf)
            patch = swapper.swap_through(maps, mirror, clean, sf, t_rgb, tf, holes)
            composed, used = composite(t_rgb, patch, tf, options, mouth, keep=held)
            hidden = hidden_mask(patch)
            gone = np.zeros((size, size), np.float32) if hidden is None else mask_crop(hidden, m, size)
            made.append((composed, used, gone))
        (out, mask, hidden_crop), (out2, mask2, hidden2) = made[0], made[-1]

        def crop(img: np.ndarray, m: np.ndarray = m) -> np.ndarray:
            return target_crop(img, m, size)

        occ = np.zeros((size, size), np.uint8)
        if alpha is not None:
            warped = cv2.remap(alpha, maps.map_x, maps.map_y, cv2.INTER_LINEAR) * maps.coverage
            full = np.zeros(t_rgb.shape[:2], np.float32)
            h, w = warped.shape
            full[maps.y0 : maps.y0 + h, maps.x0 : maps.x0 + w] = warped
            occ = _u8(crop(full * mask.full(full.shape)))
        to_chip = np.vstack([enc.chip_matrix(t_rgb, tf.landmarks_68, CHIP_SIZE), [0, 0, 1]])
        from_crop = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        rows["keys"].append(plan.key)
        rows["target"].append(crop(t_rgb))
        rows["out"].append(crop(out))
        rows["out_corrupt"].append(crop(out2))
        rows["mask"].append(_u8(mask_crop(mask, m, size)))
        rows["mask_corrupt"].append(_u8(mask_crop(mask2, m, size)))
        rows["hidden"].append(_u8(hidden_crop))
        rows["hidden_corrupt"].append(_u8(hidden2))
        assert tf.mesh is not None
        rows["parts"].append(parts_map(tf.mesh, m, size))
        rows["occluder"].append(occ)
        rows["theta"].append(chip_theta((to_chip @ from_crop)[:2], size))
        rows["source_emb"].append(sf.embedding)
        rows["target_emb"].append(tf.embedding)
        rows["same"].append(plan.same)
        rows["corruption"].append(CORRUPTIONS.index(plan.corruption))
        rows["target_person"].append(photos[plan.target].person)
        rows["source_person"].append(photos[plan.source].person)
    arrays = {k: np.array(v) for k, v in rows.items()}
    arrays["keys"] = np.array(rows["keys"], dtype=str).reshape(-1)
    arrays["failed"] = np.array(failed, dtype=str).reshape(-1)
    return arrays


def _u8(x: np.ndarray) -> np.ndarray:
    """A 0..1 float map stored as uint8."""
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class WarpPairs:
    """The cached pairs, in memory (uint8 images N×size×size×C)."""

    target: np.ndarray
    out: np.ndarray
    out_corrupt: np.ndarray
    mask: np.ndarray
    mask_corrupt: np.ndarray
    hidden: np.ndarray  # the source's hidden texels in the clean source's composite (occlusion handling)
    hidden_corrupt: np.ndarray  # … in the corrupted source's
    parts: np.ndarray
    occluder: np.ndarray
    theta: np.ndarray
    source_emb: np.ndarray
    target_emb: np.ndarray
    same: np.ndarray
    corruption: np.ndarray
    target_person: np.ndarray
    source_person: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    @property
    def size(self) -> int:
        return int(self.target.shape[1])

    def subset(self, index: np.ndarray) -> WarpPairs:
        return replace(self, **{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def pairs_cache_folder(
    cache: str | os.PathLike[str] | None, roots: Sequence[str], size: int, relight: float = DEFAULT_RELIGHT
) -> Path:  # fmt: skip
    parts: list[Any] = ["refiner-pairs", FORMAT_VERSION, sorted(str(Path(r).resolve()) for r in roots), size]
    if relight != DEFAULT_RELIGHT:  # mesh3d's default keeps the folder it had before the option existed
        parts.append(round(float(relight), 4))
    key = json.dumps(parts)
    return _cache_root(cache) / "refiner-pairs" / hashlib.sha256(key.encode()).hexdigest()[:16]


def build_pairs(
    photos: Sequence[PhotoFace], plans: Sequence[PairPlan], size: int, folder: Path, workers: int = 1,
    progress: Callable[[int, int], None] | None = None, relight: float = DEFAULT_RELIGHT,
) -> WarpPairs:  # fmt: skip
    """Make the crops of the ``plans`` the cache ``folder`` lacks (the warp relit at ``relight``), then
    load all of them."""
    photo_ids = [f"{ph.path}" for ph in photos]

    def gkey(p: PairPlan) -> str:  # independent of the photos' order in this run
        raw = f"{photo_ids[p.target]}|{photo_ids[p.source]}|{p.corruption}|{p.seed}"
        return f"{zlib.crc32(raw.encode()):08x}-{hashlib.sha1(raw.encode()).hexdigest()[:16]}"

    done = {k for part in _read_parts(folder) for k in (*part["keys"].tolist(), *part["failed"].tolist())}
    todo = [p for p in plans if gkey(p) not in done]
    if todo:
        jobs = []
        for i in range(0, len(todo), PART_SIZE):
            chunk = todo[i : i + PART_SIZE]
            used = sorted({j for p in chunk for j in (p.target, p.source)})
            local = {j: k for k, j in enumerate(used)}
            mine = [replace(p, target=local[p.target], source=local[p.source]) for p in chunk]
            names = {q.key: gkey(p) for q, p in zip(mine, chunk, strict=True)}
            jobs.append(((mine, [photos[j] for j in used], size, relight), names))
        finished = 0
        with _pool(workers) as pool:
            for (job, names), arrays in zip(jobs, pool.map(_make_pairs, [j for j, _ in jobs]), strict=True):
                for field in ("keys", "failed"):
                    arrays[field] = np.array([names[k] for k in arrays[field].tolist()], dtype=str).reshape(
                        -1
                    )
                _write_part(folder, arrays)
                finished += len(job[0])
                if progress is not None:
                    progress(finished, len(todo))
    wanted = {gkey(p) for p in plans}
    chunks: dict[str, list[np.ndarray]] = {}
    for part in _read_parts(folder):
        keep = np.array([k in wanted for k in part["keys"].tolist()], bool)
        if not keep.any():
            continue
        for name in WarpPairs.__dataclass_fields__:
            chunks.setdefault(name, []).append(part[name][keep])
    if not chunks:
        raise InputError("no usable training pair could be made")
    return WarpPairs(**{k: np.concatenate(v) for k, v in chunks.items()})


MIN_PHOTOS = 2  # people with fewer photos are not used (they give no same-person pair)


def training_people(cfg: Any) -> list[tuple[str, list[str]]]:
    """(person, absolute photo paths) of every data folder of a refiner config: people with at least
    :data:`MIN_PHOTOS` photos, at most ``max_photos`` each, the held-out people left out."""
    from .identity_data import holdout_people, scan_identity_folder

    held = holdout_people(cfg.holdout)
    people: list[tuple[str, list[str]]] = []
    for folder in cfg.data:
        found = scan_identity_folder(folder, None, cfg.max_photos, held)
        people += [
            (p.name, [str(found.root / f) for f in p.files])
            for p in found.people
            if len(p.files) >= MIN_PHOTOS
        ]
    return people


def load_warp_pairs(
    cfg: Any, seed: int, cache: str | os.PathLike[str] | None = None, workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[WarpPairs, str]:  # fmt: skip
    """A refiner config's training pairs (analysed, planned and made as needed; see the module docstring)
    and a one-line summary."""
    people = training_people(cfg)
    if len(people) < 2:
        raise InputError(f"{', '.join(cfg.data)}: training needs at least 2 people with {MIN_PHOTOS}+ photos")

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    photos = analyse_photos(people, cache, workers, stage("analysing photos"))
    plans = plan_pairs(photos, cfg.same_per_person, cfg.different, seed)
    size = cfg.model.resolution
    relight = float(cfg.relight)
    folder = pairs_cache_folder(cache, cfg.data, size, relight)
    data = build_pairs(photos, plans, size, folder, workers, stage("making warps"), relight)
    n_people = len({ph.person for ph in photos})
    n_photos = sum(len(p) for _, p in people)
    summary = (
        f"{len(data)} pairs ({int(data.same.sum())} same-person) from {len(photos)} faces of {n_people} "
        f"people ({n_photos - len(photos)} photos without a usable face)"
    )
    return data, summary

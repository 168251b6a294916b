"""The faceset format (a folder of aligned face crops with an index) and its reader.

:mod:`masquerade.faceset.extract` (``masquerade extract``) writes facesets; trainers read them with
:func:`load_faceset`.

Format version 1, a folder::

    faceset.json                  the index below
    faces/000000.png              aligned RGB crop, size×size
    faces/000000_mask.png         uint8 face mask, size×size, 255 inside
    summary.txt, pose.png         human-readable summary and a yaw/pitch scatter plot

``faceset.json``: ``format`` ("masquerade-faceset"), ``version`` (1), ``size``, ``template`` ("ffhq"),
``created`` (ISO-8601 UTC), ``tool``, ``settings`` (the extraction options), ``sources`` (the inputs),
``faces`` (a list of: ``id``, ``image``, ``mask`` (paths relative to the folder), ``source`` (the video
or image file), ``frame`` and ``time`` (video frame index and seconds, else null), ``matrix`` (2×3,
original image → crop), ``box`` ([x1, y1, x2, y2] in the original), ``landmarks_5`` and
``landmarks_68`` (crop pixels), ``pose`` ({yaw, pitch, roll} degrees, see :class:`masquerade.face.Pose`),
``blur``, ``face_px``, ``identity_distance`` (null without a reference)), ``summary`` (count, per-input
counts, yaw/pitch/roll/face_px/blur statistics, a yaw histogram) and ``rejected`` (``no_face``,
``too_small``, ``blurry``, ``duplicate``, ``other_person``).

Loading::

    fs = load_faceset("faceset/")       # InputError on a missing/invalid folder or an unknown version
    len(fs), fs.size, fs.template
    for i, face in enumerate(fs.faces): # FacesetFace records (numpy arrays for the geometry)
        rgb = fs.read_image(i)          # size×size×3 uint8 RGB
        mask = fs.read_mask(i)          # size×size uint8, 255 inside the face
        face.landmarks_5, face.pose["yaw"], face.matrix
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError

FORMAT = "masquerade-faceset"
VERSION = 1
TEMPLATE = "ffhq"
REJECT_REASONS: tuple[str, ...] = ("no_face", "too_small", "blurry", "duplicate", "other_person")


@dataclass(frozen=True)
class FacesetFace:
    """One face of a faceset; geometry as numpy arrays, paths relative to the faceset folder."""

    id: str
    image: str
    mask: str
    source: str
    frame: int | None
    time: float | None
    matrix: np.ndarray  # 2×3, original image → crop
    box: np.ndarray  # x1, y1, x2, y2 in the original image
    landmarks_5: np.ndarray  # 5×2 crop pixels
    landmarks_68: np.ndarray  # 68×2 crop pixels
    pose: dict[str, float] | None  # yaw, pitch, roll in degrees
    blur: float
    face_px: float
    identity_distance: float | None


@dataclass(frozen=True)
class Faceset:
    """A loaded faceset (:func:`load_faceset`); images are read on demand."""

    path: Path
    size: int
    template: str
    faces: list[FacesetFace]
    settings: dict[str, Any]
    sources: list[str]
    summary: dict[str, Any]
    rejected: dict[str, int]
    created: str
    tool: str

    def __len__(self) -> int:
        return len(self.faces)

    def _face(self, item: int | FacesetFace) -> FacesetFace:
        return self.faces[item] if isinstance(item, int) else item

    def read_image(self, item: int | FacesetFace) -> np.ndarray:
        """The aligned crop as size×size×3 uint8 RGB."""
        f = self._face(item)
        bgr = _read_png(self.path / f.image, cv2.IMREAD_COLOR)
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if img.shape[:2] != (self.size, self.size):
            raise InputError(f"{self.path / f.image}: is {img.shape[1]}x{img.shape[0]}, not {self.size}²")
        return img

    def read_mask(self, item: int | FacesetFace) -> np.ndarray:
        """The face mask as size×size uint8 (255 inside the face)."""
        f = self._face(item)
        m = _read_png(self.path / f.mask, cv2.IMREAD_GRAYSCALE)
        if m.shape != (self.size, self.size):
            raise InputError(f"{self.path / f.mask}: is {m.shape[1]}x{m.shape[0]}, not {self.size}²")
        return m


def _read_png(path: Path, flags: int) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return img


def _arr(v: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(v, np.float64)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}, expected {shape}")
    return a


def _opt(d: dict[str, Any], key: str, kind: type) -> Any:
    v = d.get(key)
    return None if v is None else kind(v)


def _face_from_dict(i: int, d: dict[str, Any]) -> FacesetFace:
    pose = d.get("pose")
    return FacesetFace(
        id=str(d["id"]), image=str(d["image"]), mask=str(d["mask"]), source=str(d["source"]),
        frame=_opt(d, "frame", int), time=_opt(d, "time", float),
        matrix=_arr(d["matrix"], (2, 3), f"face {i} matrix"), box=_arr(d["box"], (4,), f"face {i} box"),
        landmarks_5=_arr(d["landmarks_5"], (5, 2), f"face {i} landmarks_5"),
        landmarks_68=_arr(d["landmarks_68"], (68, 2), f"face {i} landmarks_68"),
        pose=None if pose is None else {k: float(pose[k]) for k in ("yaw", "pitch", "roll")},
        blur=float(d["blur"]), face_px=float(d["face_px"]),
        identity_distance=_opt(d, "identity_distance", float),
    )  # fmt: skip


def load_faceset(path: str | os.PathLike[str], check_files: bool = True) -> Faceset:
    """Read and validate a faceset folder (or its ``faceset.json``); ``check_files`` also checks that
    every crop and mask file exists. Raises :class:`InputError` with a one-line reason."""
    p = Path(path)
    if p.is_file() and p.name == "faceset.json":
        p = p.parent
    index = p / "faceset.json"
    if not p.exists():
        raise InputError(f"{p}: no such faceset folder")
    if not p.is_dir():
        raise InputError(f"{p}: not a faceset folder")
    if not index.is_file():
        raise InputError(f"{p}: not a faceset (no faceset.json; make one with masquerade extract)")
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{index}: unreadable faceset index ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{index}: not a masquerade faceset (format is not {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise InputError(
            f"{index}: faceset version {doc.get('version')!r} is not supported (this masquerade reads "
            f"version {VERSION})"
        )
    try:
        size = int(doc["size"])
        faces = [_face_from_dict(i, d) for i, d in enumerate(doc["faces"])]
        fs = Faceset(
            path=p, size=size, template=str(doc["template"]), faces=faces,
            settings=dict(doc.get("settings") or {}), sources=[str(s) for s in doc.get("sources") or []],
            summary=dict(doc.get("summary") or {}), rejected=dict(doc.get("rejected") or {}),
            created=str(doc.get("created", "")), tool=str(doc.get("tool", "")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        why = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"{index}: malformed faceset index ({why})") from None
    if size < 1:
        raise InputError(f"{index}: malformed faceset index (size {size})")
    if check_files:
        missing = [n for f in faces for n in (f.image, f.mask) if not (p / n).is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InputError(f"{p}: faceset file {missing[0]} is missing{more}")
    return fs


def dump_index(doc: dict[str, Any]) -> str:
    """``faceset.json`` text: indented, with one line per face record."""
    parts = []
    for key, value in doc.items():
        if key == "faces":
            rows = ",\n  ".join(json.dumps(r, ensure_ascii=False) for r in value)
            text = f"[\n  {rows}\n ]" if value else "[]"
        else:
            text = json.dumps(value, indent=1, ensure_ascii=False).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"

"""The model card of an external ONNX swapper (``--swapper onnx --model CARD.toml``): schema and reader.

masquerade ships no third-party swapper weights: the user brings the ONNX file (for example an
inswapper-style model: 128×128 aligned crop + 512-d identity embedding), its licence, and a small TOML
model card that says how to feed it. Nothing is downloaded; every file the card names is checked
against the sha256 written in the card. (A ``.yaml``/``.yml`` card with the same fields is read when
PyYAML happens to be installed; TOML is the documented format.)

The model card (paths are relative to the card's folder, or absolute)::

    [model]
    name = "my-swapper"              # free text (default: the card's file name)
    onnx = "swapper.onnx"            # required
    sha256 = "<64 hex digits>"       # required; `sha256sum swapper.onnx`
    licence = "..."                  # free text, shown in reports
    source = "..."                   # free text: where the weights came from

    [input]                          # how the target face is fed
    crop_size = 128                  # required; aligned square crop, checked against the ONNX input
    template = "arcface_v2"          # masquerade.analysis.alignment.TEMPLATES: arcface | arcface_v2 | ffhq
    colour = "rgb"                   # rgb | bgr
    layout = "nchw"                  # nchw | nhwc
    mean = [0.0, 0.0, 0.0]           # x = (pixel / 255 - mean) / std, per channel in the model's
    std = [1.0, 1.0, 1.0]            #   colour order, on the 0..1 scale (a number is used for all 3)
    target = "target"                # input tensor names (default: the rank-4 input / the other one)
    identity = "source"

    [identity]                       # how the source identity vector is made
    kind = "onnx"                    # "dlib128": masquerade's own 128-d dlib embedding
                                     # "onnx": your embedding model, fed like [input] with its keys:
    onnx = "arcface.onnx"            #   required with kind = "onnx"
    sha256 = "<64 hex digits>"       #   required with kind = "onnx"
    crop_size = 112                  #   its aligned crop
    template = "arcface"
    colour = "rgb"
    layout = "nchw"
    mean = [0.5, 0.5, 0.5]
    std = [0.5, 0.5, 0.5]
    output = "embedding"             #   its output (default: the first)
    dim = 512                        # the embedding's size (required; 128 for dlib128)
    normalise = "l2"                 # l2 | none, applied to the embedding
    emap = "emap.npy"                # optional dim×K projection (latent = embedding @ emap) ...
    emap_sha256 = "<64 hex digits>"  #   ... with its sha256, or instead:
    # emap_initializer = "last"      #   a (dim×K) initializer of the swapper ONNX, by name or "last"
                                     #   (inswapper keeps its emap there)
    emap_normalise = "l2"            # l2 | none after the projection (default: as `normalise`)

    [output]
    name = "output"                  # the swapped face (default: the only rank-4, 3-channel output)
    colour = "rgb"                   # rgb | bgr
    layout = "nchw"                  # nchw | nhwc
    mean = [0.0, 0.0, 0.0]           # pixel = 255 · (y · std + mean), clipped to 0..255
    std = [1.0, 1.0, 1.0]
    mask = "mask"                    # optional 1-channel output in 0..1: where the model's face is
    edge_feather = 0.06              # fade the crop's edges over this fraction of its size (0: none)

Every key but those marked required has the default shown (``[input]``: arcface_v2, rgb, nchw, mean 0,
std 1; ``[identity]``: kind dlib128, normalise l2, the ``[input]``-style keys default to arcface 112,
rgb, nchw, mean 0.5, std 0.5; ``[output]``: rgb, nchw, mean 0, std 1, no mask, 0.06). Unknown keys are
errors (they are usually typos). The identity input of the model must take ``dim`` values, or K with an
emap; the image input must be ``crop_size`` square; the face output may be larger or smaller than the
input crop (it covers the same aligned region).

:func:`read_model_card` checks a card (and the sha256 of every file it names) into a :class:`ModelCard`;
the runtime that feeds the model as the card says is :mod:`masquerade.swappers.external`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.alignment import TEMPLATES, align_face
from ..errors import ModelError
from ..face import Face
from ..models import file_sha256
from .aligned import first_line

CARD_SUFFIXES = (".toml", ".yaml", ".yml")
IDENTITY_KINDS = ("dlib128", "onnx")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")

_PRE_KEYS = ("crop_size", "template", "colour", "layout", "mean", "std")
_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("name", "onnx", "sha256", "licence", "license", "source"),
    "input": (*_PRE_KEYS, "target", "identity"),
    "identity": (
        "kind", "onnx", "sha256", *_PRE_KEYS, "output", "dim", "normalise", "normalize",
        "emap", "emap_sha256", "emap_initializer", "emap_normalise", "emap_normalize",
    ),
    "output": ("name", "colour", "layout", "mean", "std", "mask", "edge_feather"),
}  # fmt: skip


@dataclass(frozen=True)
class ImageCodec:
    """How an aligned RGB crop becomes a model tensor (and a model tensor a crop): square
    ``crop_size`` with ``template``; ``colour`` rgb|bgr; ``layout`` nchw|nhwc; ``x = (pixel/255 - mean)
    / std`` per channel in the model's colour order."""

    crop_size: int
    template: str
    colour: str = "rgb"
    layout: str = "nchw"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def align(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The crop (S×S×3 uint8 RGB) of ``face`` and its 2×3 image→crop matrix."""
        return align_face(rgb, face.landmarks_5, self.crop_size, self.template)

    def encode(self, crops: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """N×S×S×3 (or one S×S×3) RGB crops in 0..255 → the model's input tensor."""
        x = np.asarray(crops, np.float32)
        if x.ndim == 3:
            x = x[None]
        if self.colour == "bgr":
            x = x[..., ::-1]
        x = (x * np.float32(1 / 255) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """The model's N×3×S×S / N×S×S×3 output → N×S×S×3 float32 RGB in 0..255."""
        y = np.asarray(y, np.float32)
        if self.layout == "nchw":
            y = y.transpose(0, 2, 3, 1)
        y = (y * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)) * np.float32(255)
        if self.colour == "bgr":
            y = y[..., ::-1]
        return np.ascontiguousarray(np.clip(y, 0.0, 255.0), np.float32)

    def shape(self) -> tuple[int, int, int]:
        s = self.crop_size
        return (3, s, s) if self.layout == "nchw" else (s, s, 3)

    def describe(self) -> dict[str, Any]:
        return {
            "crop_size": self.crop_size, "template": self.template, "colour": self.colour,
            "layout": self.layout, "mean": list(self.mean), "std": list(self.std),
        }  # fmt: skip


@dataclass(frozen=True)
class IdentitySpec:
    """The ``[identity]`` table: how the source face becomes the model's identity vector."""

    kind: str
    dim: int
    normalise: str = "l2"
    onnx: Path | None = None
    sha256: str | None = None
    codec: ImageCodec | None = None
    output: str | None = None
    emap: Path | None = None
    emap_sha256: str | None = None
    emap_initializer: str | None = None
    emap_normalise: str = "l2"


@dataclass(frozen=True)
class ModelCard:
    """A checked model card (see the module docstring)."""

    path: Path
    name: str
    onnx: Path
    sha256: str
    licence: str | None
    source: str | None
    input: ImageCodec
    target_input: str | None
    identity_input: str | None
    identity: IdentitySpec
    output: ImageCodec
    output_name: str | None
    mask_name: str | None
    edge_feather: float
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        """What a report should say about the model: name, card, file, sha256, licence, inputs."""
        idn = self.identity
        ident: dict[str, Any] = {"kind": idn.kind, "dim": idn.dim, "normalise": idn.normalise}
        if idn.onnx is not None:
            ident.update(onnx=str(idn.onnx), sha256=idn.sha256)
        if idn.emap is not None or idn.emap_initializer is not None:
            ident["emap"] = str(idn.emap) if idn.emap is not None else f"initializer {idn.emap_initializer}"
        return {
            "name": self.name, "path": str(self.path), "onnx": str(self.onnx), "sha256": self.sha256,
            "licence": self.licence, "source": self.source, "input": self.input.describe(),
            "identity": ident,
        }  # fmt: skip

    def summary(self) -> str:
        return f"{self.name} (sha256 {self.sha256[:12]}…)"


def verify_sha256(path: Path, expected: str, what: str, card: Path) -> None:
    """Check ``path`` against ``expected``: a one-line :class:`ModelError` when it differs or is missing."""
    if not path.is_file():
        raise ModelError(f"{card}: the {what} {path} is missing")
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ModelError(
            f"{path}: sha256 {actual[:16]}… does not match the model card {card.name} "
            f"({expected.lower()[:16]}…); the file is damaged, another version or another model"
        )


def _load_card(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if not path.exists():
        raise ModelError(f"{path}: no such model card")
    if path.is_dir():
        raise ModelError(f"{path}: a folder; --swapper onnx --model takes a model card file (CARD.toml)")
    if suffix not in CARD_SUFFIXES:
        raise ModelError(f"{path}: a model card is a .toml file (or .yaml with PyYAML installed)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ModelError(f"{path}: not valid TOML ({first_line(exc)})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise ModelError(
                f"{path}: YAML model cards need PyYAML (pip install pyyaml); or use TOML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ModelError(f"{path}: not valid YAML ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: a model card is a table of [model], [input], [identity], [output]")
    return data


class _Table:
    """One table of the card, with typed, one-line-error getters."""

    def __init__(self, card: Path, data: dict[str, Any], name: str, required: bool = True) -> None:
        self.card, self.name = card, name
        value = data.get(name)
        if value is None:
            if required:
                raise ModelError(f"{card}: the [{name}] table is missing")
            value = {}
        if not isinstance(value, dict):
            raise ModelError(f"{card}: [{name}] must be a table")
        unknown = [k for k in value if k not in _KEYS[name]]
        if unknown:
            raise ModelError(
                f"{card}: unknown key {unknown[0]!r} in [{name}] (known: {', '.join(_KEYS[name])})"
            )
        self.d = value

    def where(self, key: str) -> str:
        return f"{self.card}: [{self.name}] {key}"

    def has(self, key: str) -> bool:
        return key in self.d

    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        v = self.d.get(key, default)
        if v is None:
            if required:
                raise ModelError(f"{self.where(key)} is required")
            return None
        if not isinstance(v, str) or not v:
            raise ModelError(f"{self.where(key)} must be a non-empty string, got {v!r}")
        return v

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        v = self.text(key, default)
        assert v is not None
        if v.lower() not in options:
            raise ModelError(f"{self.where(key)} must be one of {', '.join(options)}, got {v!r}")
        return v.lower()

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        v = self.d.get(key, default)
        if v is None:
            raise ModelError(f"{self.where(key)} is required")
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ModelError(f"{self.where(key)} must be an integer from {lo} to {hi}, got {v!r}")
        return v

    def number(self, key: str, lo: float, hi: float, default: float) -> float:
        v = self.d.get(key, default)
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise ModelError(f"{self.where(key)} must be a number from {lo} to {hi}, got {v!r}")
        return float(v)

    def triple(self, key: str, default: float, positive: bool = False) -> tuple[float, float, float]:
        v = self.d.get(key, default)
        vals = [v] * 3 if isinstance(v, int | float) and not isinstance(v, bool) else v
        ok = isinstance(vals, list) and len(vals) == 3
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in vals)
        if not ok or (positive and min(vals) <= 0):
            what = "positive numbers" if positive else "numbers"
            raise ModelError(f"{self.where(key)} must be a number or a list of 3 {what}, got {v!r}")
        return (float(vals[0]), float(vals[1]), float(vals[2]))

    def sha(self, key: str, file_key: str) -> str:
        v = self.text(key, required=True)
        assert v is not None
        if not _HEX64.match(v):
            raise ModelError(f"{self.where(key)} must be the 64 hex digits of the {file_key} file")
        return v.lower()

    def path(self, key: str, required: bool = False) -> Path | None:
        v = self.text(key, required=required)
        if v is None:
            return None
        p = Path(v).expanduser()
        return p if p.is_absolute() else self.card.parent / p

    def codec(self, size: int | None, template: str, mean: float, std: float) -> ImageCodec:
        tmpl = self.choice("template", tuple(TEMPLATES), template)
        return ImageCodec(
            crop_size=self.integer("crop_size", 8, 4096, size), template=tmpl,
            colour=self.choice("colour", ("rgb", "bgr"), "rgb"),
            layout=self.choice("layout", ("nchw", "nhwc"), "nchw"),
            mean=self.triple("mean", mean), std=self.triple("std", std, positive=True),
        )  # fmt: skip


def read_model_card(path: str | os.PathLike[str], verify: bool = True) -> ModelCard:
    """Read and check a model card (and, with ``verify``, the sha256 of every file it names); every
    problem is a :class:`ModelError` with a one-line message."""
    card = Path(path).expanduser()
    data = _load_card(card)
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise ModelError(f"{card}: unknown table [{unknown[0]}] (known: {', '.join(_KEYS)})")
    m = _Table(card, data, "model")
    inp = _Table(card, data, "input")
    idt = _Table(card, data, "identity", required=False)
    out = _Table(card, data, "output", required=False)

    onnx = m.path("onnx", required=True)
    assert onnx is not None
    sha = m.sha("sha256", "model's ONNX")
    licence = m.text("licence") or m.text("license")

    kind = idt.choice("kind", IDENTITY_KINDS, "dlib128")
    norm_key = "normalize" if idt.has("normalize") and not idt.has("normalise") else "normalise"
    normalise = idt.choice(norm_key, ("l2", "none"), "l2")
    emap_key = "emap_normalise"
    if idt.has("emap_normalize") and not idt.has("emap_normalise"):
        emap_key = "emap_normalize"
    if kind == "dlib128":
        for k in ("onnx", "sha256", *_PRE_KEYS, "output"):
            if idt.has(k):
                raise ModelError(f'{idt.where(k)} is for kind = "onnx" (dlib128 is masquerade\'s own)')
        dim = idt.integer("dim", 1, 1 << 16, 128)
        if dim != 128:
            raise ModelError(f"{idt.where('dim')} is {dim}, but dlib128 embeddings have 128 values")
        id_onnx, id_sha, id_codec, id_out = None, None, None, None
    else:
        id_onnx = idt.path("onnx", required=True)
        id_sha = idt.sha("sha256", "embedding model's ONNX")
        id_codec = idt.codec(112, "arcface", 0.5, 0.5)
        id_out = idt.text("output")
        dim = idt.integer("dim", 1, 1 << 16)
    emap = idt.path("emap")
    emap_init = idt.text("emap_initializer")
    if emap is not None and emap_init is not None:
        raise ModelError(f"{idt.where('emap')}: give emap or emap_initializer, not both")
    emap_sha = idt.sha("emap_sha256", "emap .npy") if emap is not None else None
    if emap is None and idt.has("emap_sha256"):
        raise ModelError(f'{idt.where("emap_sha256")} goes with emap = "FILE.npy"')
    identity = IdentitySpec(
        kind=kind, dim=dim, normalise=normalise, onnx=id_onnx, sha256=id_sha, codec=id_codec,
        output=id_out, emap=emap, emap_sha256=emap_sha, emap_initializer=emap_init,
        emap_normalise=idt.choice(emap_key, ("l2", "none"), normalise),
    )  # fmt: skip

    info = ModelCard(
        path=card, name=m.text("name", card.stem) or card.stem, onnx=onnx, sha256=sha, licence=licence,
        source=m.text("source"), input=inp.codec(None, "arcface_v2", 0.0, 1.0),
        target_input=inp.text("target"), identity_input=inp.text("identity"), identity=identity,
        output=ImageCodec(  # (crop size and template unused: the output's size is the tensor's)
            crop_size=1, template="arcface", colour=out.choice("colour", ("rgb", "bgr"), "rgb"),
            layout=out.choice("layout", ("nchw", "nhwc"), "nchw"),
            mean=out.triple("mean", 0.0), std=out.triple("std", 1.0, positive=True),
        ),
        output_name=out.text("name"), mask_name=out.text("mask"),
        edge_feather=out.number("edge_feather", 0.0, 0.5, 0.06), meta=data,
    )  # fmt: skip
    if verify:
        verify_sha256(onnx, sha, "model file", card)
        if id_onnx is not None and id_sha is not None:
            verify_sha256(id_onnx, id_sha, "embedding model file", card)
        if emap is not None and emap_sha is not None:
            verify_sha256(emap, emap_sha, "emap file", card)
    elif not onnx.is_file():
        raise ModelError(f"{card}: the model file {onnx} is missing")
    return info


def is_model_card(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a model card (by its suffix): what ``--swapper onnx --model`` takes."""
    return Path(path).suffix.lower() in CARD_SUFFIXES

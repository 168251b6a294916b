"""External one-shot ONNX swappers, described by a model card (``--swapper onnx --model CARD.toml``).

masquerade ships no third-party swapper weights: the user brings the ONNX file, its licence, and a
model card that says how to feed it (:mod:`masquerade.swappers.model_card`: the card's fields and the
reader that checks them, and the sha256 of every file they name).

:meth:`ExternalOnnxSwapper.swap` aligns the target face with the card's template, computes the source
identity once per source face, runs the model and warps its face back over the target
(:func:`masquerade.analysis.alignment.warp_back`, coverage = the crop, feathered at its edges, × the mask
output);
the patch keeps the target's mesh, so the common mask / colour / blend and video paths composite it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from ..errors import ModelError
from ..face import Face
from .aligned import check_swap_inputs, crop_patch, first_line, onnx_session
from .base import SwapPatch, SwapperInfo
from .model_card import is_model_card, read_model_card

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _dtype(node: Any, where: Path) -> Any:
    try:
        return _DTYPES[node.type]
    except KeyError:
        raise ModelError(
            f"{where}: {node.name!r} is {node.type}; expected float, float16 or double"
        ) from None


def _static(v: Any) -> int | None:
    return v if isinstance(v, int) and v > 0 else None


def _l2(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def edge_taper(size: int, fraction: float) -> np.ndarray:
    """S×S float32: 1 inside, falling linearly to 0 at the crop's border over ``fraction`` of S."""
    if fraction <= 0:
        return np.ones((size, size), np.float32)
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / max(fraction * size, 1e-6)
    ramp = np.minimum(1.0, np.minimum(ramp, ramp[::-1]))
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


class ExternalOnnxSwapper:
    """A user-supplied one-shot ONNX swapper described by a model card (see :mod:`.model_card`)."""

    info: ClassVar[SwapperInfo] = SwapperInfo(
        name="onnx",
        summary="onnx (your own ONNX swapper described by a model card, --model CARD.toml, needs --source)",
        needs_model=True,
        model_help="CARD.toml (a model card describing your ONNX swapper)",
        read_model=read_model_card,
        takes_model=is_model_card,
    )
    cache_size = 8  # identities kept (one per source face)

    def __init__(self, model: str | os.PathLike[str], providers: list[str] | None = None) -> None:
        self.card = read_model_card(model)
        self.providers = providers
        self.session = onnx_session(self.card.onnx, providers, "the swapper model")
        self._id_session: Any = None
        self._encoder: Any = None  # masquerade's dlib identity encoder (kind dlib128), made on first use
        self._cache: list[tuple[np.ndarray, Face, np.ndarray]] = []
        if self.card.identity.kind == "onnx":
            assert self.card.identity.onnx is not None
            self._id_session = onnx_session(self.card.identity.onnx, providers, "the embedding model")
        self.emap = self._load_emap()
        self._bind()

    # ---- setup
    def _load_emap(self) -> np.ndarray | None:
        idn, card = self.card.identity, self.card.path
        if idn.emap is not None:
            try:
                arr = np.load(idn.emap, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ModelError(f"{idn.emap}: not a readable .npy array ({first_line(exc)})") from None
        elif idn.emap_initializer is not None:
            arr = self._initializer(idn.emap_initializer)
        else:
            return None
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[0] != idn.dim or not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(
                f"{card}: the emap is {arr.dtype} {arr.shape}; expected a float {idn.dim}×K matrix "
                f"([identity] dim = {idn.dim})"
            )
        return arr.astype(np.float32)

    def _initializer(self, name: str) -> np.ndarray:
        import onnx
        from onnx import numpy_helper

        try:
            model = onnx.load(str(self.card.onnx), load_external_data=False)
        except Exception as exc:  # protobuf / onnx errors
            raise ModelError(f"{self.card.onnx}: cannot read its initializers ({first_line(exc)})") from None
        inits = list(model.graph.initializer)
        if not inits:
            raise ModelError(f"{self.card.path}: emap_initializer: {self.card.onnx.name} has no initializers")
        if name == "last":
            return numpy_helper.to_array(inits[-1])
        for t in inits:
            if t.name == name:
                return numpy_helper.to_array(t)
        raise ModelError(f"{self.card.path}: emap_initializer {name!r} is not in {self.card.onnx.name}")

    def _bind(self) -> None:
        """Find the image / identity inputs and the face / mask outputs; check shapes against the card."""
        card, where = self.card, self.card.onnx
        ins = {i.name: i for i in self.session.get_inputs()}
        outs = {o.name: o for o in self.session.get_outputs()}
        if len(ins) != 2:
            raise ModelError(f"{where}: expected two inputs (target image, identity), found {list(ins)}")
        for key, name in (("target", card.target_input), ("identity", card.identity_input)):
            if name is not None and name not in ins:
                raise ModelError(
                    f"{card.path}: [input] {key} = {name!r} is not an input of {where.name} ({list(ins)})"
                )
        img = card.target_input
        if img is None:
            others = [n for n in ins if n != card.identity_input]
            rank4 = [n for n in others if len(ins[n].shape) == 4]
            if len(rank4) != 1:
                raise ModelError(
                    f"{where}: cannot tell the image input from the identity input; name them in [input]"
                )
            img = rank4[0]
        idn = card.identity_input or next(n for n in ins if n != img)
        if idn == img:
            raise ModelError(f"{card.path}: [input] target and identity name the same input {img!r}")
        shape = ins[img].shape
        want = card.input.shape()
        if len(shape) != 4 or any(_static(v) not in (None, w) for v, w in zip(shape[1:], want, strict=True)):
            raise ModelError(
                f"{where}: image input {img!r} has shape {shape}, but the card says crop_size "
                f"{card.input.crop_size} {card.input.layout} (N×{'×'.join(map(str, want))})"
            )
        k = self.emap.shape[1] if self.emap is not None else card.identity.dim
        ishape = ins[idn].shape
        if len(ishape) != 2 or _static(ishape[1]) not in (None, k):
            via = f" after the {card.identity.dim}×{k} emap" if self.emap is not None else ""
            raise ModelError(
                f"{where}: identity input {idn!r} has shape {ishape}, but the card's embedding has {k} "
                f"values{via} ([identity] dim = {card.identity.dim})"
            )
        self.image_input, self.identity_input = img, idn
        self._img_dtype, self._id_dtype = _dtype(ins[img], where), _dtype(ins[idn], where)

        face_name = card.output_name
        if face_name is None:
            c_axis = 1 if card.output.layout == "nchw" else 3

            def rgb_like(o: Any) -> bool:
                return len(o.shape) == 4 and _static(o.shape[c_axis]) in (3, None)

            cands = [n for n, o in outs.items() if n != card.mask_name and rgb_like(o)]
            if len(cands) != 1:
                raise ModelError(
                    f"{where}: cannot tell which output is the face ({list(outs)}); name it in [output]"
                )
            face_name = cands[0]
        for key, name in (("name", face_name), ("mask", card.mask_name)):
            if name is not None and name not in outs:
                raise ModelError(
                    f"{card.path}: [output] {key} = {name!r} is not an output of {where.name} ({list(outs)})"
                )
        if len(outs[face_name].shape) != 4:
            raise ModelError(
                f"{where}: face output {face_name!r} has shape {outs[face_name].shape}; expected rank 4"
            )
        self.face_output, self.mask_output = face_name, card.mask_name

        if self._id_session is not None:
            assert card.identity.codec is not None and card.identity.onnx is not None
            iw, codec = card.identity.onnx, card.identity.codec
            iins, iouts = self._id_session.get_inputs(), self._id_session.get_outputs()
            if len(iins) != 1:
                raise ModelError(
                    f"{iw}: an embedding model has one input (the aligned face), found {len(iins)}"
                )
            ishape, iwant = iins[0].shape, codec.shape()
            if len(ishape) != 4 or any(
                _static(v) not in (None, w) for v, w in zip(ishape[1:], iwant, strict=True)
            ):
                raise ModelError(
                    f"{iw}: input {iins[0].name!r} has shape {ishape}, but [identity] says crop_size "
                    f"{codec.crop_size} {codec.layout} (N×{'×'.join(map(str, iwant))})"
                )
            names = [o.name for o in iouts]
            oname = card.identity.output or names[0]
            if oname not in names:
                raise ModelError(
                    f"{card.path}: [identity] output = {oname!r} is not an output of {iw.name} ({names})"
                )
            oshape = iouts[names.index(oname)].shape
            last = [_static(v) for v in oshape[1:]]
            dims = [v for v in last if v is not None]
            if len(dims) == len(last) and int(np.prod(dims)) != card.identity.dim:
                raise ModelError(
                    f"{iw}: its output {oname!r} has shape {oshape}, but [identity] dim = {card.identity.dim}"
                )
            self._id_in, self._id_out = iins[0].name, oname
            self._id_in_dtype = _dtype(iins[0], iw)

    # ---- identity
    def embedding(self, source_rgb: np.ndarray, source: Face) -> np.ndarray:
        """The raw identity embedding of the source face (``dim`` values, before normalisation)."""
        idn = self.card.identity
        if idn.kind == "dlib128":
            if self._encoder is None:
                from ..identity.encoder import IdentityEncoder

                self._encoder = IdentityEncoder()
            vec = self._encoder.embed(source_rgb, source.landmarks_68)
        else:
            assert idn.codec is not None
            crop, _ = idn.codec.align(source_rgb, source)
            x = idn.codec.encode(crop, self._id_in_dtype)
            vec = self._id_session.run([self._id_out], {self._id_in: x})[0]
        vec = np.asarray(vec, np.float32).ravel()
        if vec.size != idn.dim:
            raise ModelError(
                f"{self.card.path}: the embedding has {vec.size} values, [identity] dim = {idn.dim}"
            )
        return vec

    def latent(self, source_rgb: np.ndarray, source: Face) -> np.ndarray:
        """The model's identity input (1×K float32) for the source face; cached per source face."""
        for rgb, face, vec in self._cache:
            if rgb is source_rgb and face is source:
                return vec
        idn = self.card.identity
        v = self.embedding(source_rgb, source)
        if idn.normalise == "l2":
            v = _l2(v)
        if self.emap is not None:
            v = v @ self.emap
            if idn.emap_normalise == "l2":
                v = _l2(v)
        vec = np.ascontiguousarray(v.reshape(1, -1), np.float32)
        self._cache = [(source_rgb, source, vec), *self._cache[: self.cache_size - 1]]
        return vec

    # ---- swapping
    def align(self, rgb: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The model's input crop of ``face`` (S×S RGB uint8) and the 2×3 image→crop matrix."""
        return self.card.input.align(rgb, face)

    def predict(self, crop: np.ndarray, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the model on one aligned crop (S×S×3 uint8 RGB) and identity (1×K): the swapped face
        (S'×S'×3 float32 RGB in 0..255) and the mask output (S'×S' float32 in 0..1, or None)."""
        feeds = {
            self.image_input: self.card.input.encode(crop, self._img_dtype),
            self.identity_input: np.asarray(latent, self._id_dtype).reshape(1, -1),
        }
        names = [self.face_output] + ([self.mask_output] if self.mask_output else [])
        res = self.session.run(names, feeds)
        y = np.asarray(res[0])
        c_axis = 1 if self.card.output.layout == "nchw" else 3
        if y.ndim != 4 or y.shape[c_axis] != 3 or y.shape[1 + (c_axis == 1)] != y.shape[2 + (c_axis == 1)]:
            raise ModelError(
                f"{self.card.onnx}: face output {self.face_output!r} is {y.shape}; expected a square "
                f"3-channel {self.card.output.layout} image"
            )
        face = self.card.output.decode(y)[0]
        if not self.mask_output:
            return face, None
        raw = np.asarray(res[1], np.float32)
        mk = np.squeeze(raw[0]) if raw.ndim >= 3 else raw
        if mk.ndim != 2:
            raise ModelError(
                f"{self.card.onnx}: mask output {self.mask_output!r} is {raw.shape}; expected one channel"
            )
        if mk.shape != face.shape[:2]:
            mk = cv2.resize(mk, face.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        return face, np.clip(mk, 0.0, 1.0).astype(np.float32)

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face
    ) -> SwapPatch:
        """The model's face for (source identity, target face) over the target face's region."""
        check_swap_inputs(self.info.name, source_rgb, source, target)
        assert source_rgb is not None and source is not None
        crop, m = self.align(target_rgb, target)
        face, mask = self.predict(crop, self.latent(source_rgb, source))
        return self.patch(face, mask, m, target_rgb.shape, target)

    def patch(
        self, face: np.ndarray, mask: np.ndarray | None, matrix: np.ndarray, shape: tuple[int, ...],
        target: Face,
    ) -> SwapPatch:  # fmt: skip
        """Warp one predicted face (S'×S'×3, 0..255) back over the target image as a patch; ``matrix``
        maps the image to the input crop (an output of another size covers the same region)."""
        assert target.mesh is not None
        size = face.shape[0]
        m = np.asarray(matrix, np.float64) * (size / self.card.input.crop_size)
        cover = edge_taper(size, self.card.edge_feather)
        if mask is not None:
            cover = cover * mask
        return crop_patch(face, cover, m, shape, target)

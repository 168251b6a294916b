"""The swapper contract: a swapper turns (source face, target face) into a patch + geometry, and declares
what it needs in a :class:`SwapperInfo` record (its ``info`` class attribute)."""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import InputError
from ..face import Face


@dataclass(frozen=True)
class SwapPatch:
    """A swapped face rendered over a region of the target image.

    ``image`` covers target pixels ``[y0:y0+h, x0:x0+w]``; ``coverage`` (float32 in 0..1) marks the pixels
    the swapper produced; ``mesh`` is the swapped face's geometry in target-image pixels (used for masks).
    ``hidden`` (float32 0..1, the patch's size, or None): where the source's own texels were hidden
    (occlusion handling: filled from the other side of the face or left to the target), for a refiner.
    """

    image: np.ndarray
    coverage: np.ndarray
    x0: int
    y0: int
    mesh: np.ndarray
    hidden: np.ndarray | None = None

    @property
    def roi(self) -> tuple[slice, slice]:
        h, w = self.image.shape[:2]
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


@dataclass(frozen=True)
class SwapperOption:
    """One of a swapper's own options as the CLI (``--flag``) and the HTTP API (``name``) take it: a field
    of the swapper's options dataclass. ``choices``: the values a ``str`` option takes (the options
    dataclass checks them; the CLI and ``GET /api/swappers`` list them)."""

    name: str  # the options dataclass field, and the HTTP/JSON key
    kind: type  # int, float or str
    help: str
    metavar: str = "X"
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def value(self, given: object) -> int | float | str:
        """``given`` (a JSON value) as this option's kind; one-line :class:`InputError` for a value of
        another kind (a word for a number, a number for a word, true/false)."""
        if self.kind is str:
            if isinstance(given, str):
                return given
            what = f" ({', '.join(self.choices)})" if self.choices else ""
            raise InputError(f"{self.flag} takes a word{what}, not {given!r}")
        if isinstance(given, numbers.Real) and not isinstance(given, bool):
            if self.kind is float:
                return float(given)
            if isinstance(given, numbers.Integral):
                return int(given)
            if float(given).is_integer():
                return int(float(given))
            raise InputError(f"{self.flag} takes a whole number, not {given!r}")
        raise InputError(f"{self.flag} takes a number, not {given!r}")


def _is_folder(model: str | os.PathLike[str]) -> bool:
    return not Path(model).is_file()


@dataclass(frozen=True)
class SwapperInfo:
    """What a swapper needs and takes, declared by the swapper itself (``Swapper.info``).

    ``needs_source``: False when the identity is built into the model (``swap`` then gets ``None`` for
    the source and the pipeline looks for no source face). ``needs_model``: created from ``model=`` (a
    model folder, or a model card file for ``onnx``); ``model_optional``: takes a ``model=`` but has one of
    its own (shipped in the package) without it; ``model_help`` says what ``--model`` takes,
    ``read_model(model, verify)`` returns the checked model description (``describe()``, ``summary()``)
    and ``takes_model(model)`` whether a path is its kind of model. ``options_type``: the dataclass of
    its own options (given to the factory as ``options=``), ``options`` those the CLI and the HTTP API
    expose, ``options_title`` their heading in ``--help``. ``refines``: after the composite, the pipeline
    calls the swapper's ``refine(image, source_rgb, source, target, blend_mask, state=None, keep=None)``,
    which corrects ``image`` in place around that face and returns the pixels it changed (a BlendMask,
    or None); video passes one ``state`` dict per tracked person; ``keep``: what the target keeps in
    front of its face (occlusion handling), which the correction leaves as it is."""

    name: str
    summary: str  # one line: what it is and what it needs (for --help and GET /api/swappers)
    needs_source: bool = True
    needs_model: bool = False
    model_optional: bool = False
    model_help: str = "DIR (a trained model folder)"
    read_model: Callable[..., Any] | None = None
    takes_model: Callable[[str | os.PathLike[str]], bool] = _is_folder
    options_type: type | None = None
    options: tuple[SwapperOption, ...] = ()
    options_title: str = ""
    refines: bool = False
    source_holes: bool = False  # swap(..., holes=) leaves the masked source texels out of its patch
    swap_state: bool = False  # swap(..., state=) takes video's dict per tracked person (steadier output)

    @property
    def takes_a_model(self) -> bool:
        """Whether ``--model`` goes with this swapper (needed or optional)."""
        return self.needs_model or self.model_optional

    def option_records(self) -> list[dict[str, Any]]:
        """Its own options as plain data (``GET /api/swappers``, :func:`masquerade.job.swapper_choices`):
        name, type, help, ``default`` (the options dataclass's; None where the model decides) and
        ``choices`` (None for a number or a free word)."""
        defaults: dict[str, Any] = {}
        if self.options_type is not None and dataclasses.is_dataclass(self.options_type):
            for f in dataclasses.fields(self.options_type):
                if f.default is not dataclasses.MISSING:
                    defaults[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    defaults[f.name] = f.default_factory()
        return [
            {"name": o.name, "type": o.kind.__name__, "help": o.help, "default": defaults.get(o.name),
             "choices": list(o.choices) or None}
            for o in self.options
        ]  # fmt: skip


class Swapper(Protocol):
    """A face swapper: ``info`` says what it needs; ``swap`` renders the source identity over one target
    face, or raises :class:`~masquerade.errors.SkipFace` to leave that face alone."""

    info: ClassVar[SwapperInfo]

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face
    ) -> SwapPatch: ...

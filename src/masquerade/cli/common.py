"""What the commands share: paths (``sample:NAME``), argument types, the swap options and their
translation into a :class:`~masquerade.job.SwapRequest`, provenance flags and progress bars."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import InputError
from ..files import check_output_path
from ..imageio import DEFAULT_MAX_PIXELS
from ..job import BLENDS, COLOURS, MASKS, SwapRequest
from ..provenance.credentials import SigningConfig
from ..provenance.stamp import OutputStamp, ProvenanceOptions
from ..samples import SAMPLE_NAMES, sample_path
from ..swappers import SWAPPERS

INTENDED_USE = (
    "Intended for consented media, research and film work; do not use it to deceive, "
    "harass or impersonate people."
)


def resolve(path: str) -> Path:
    """Accept ``sample:NAME`` for the bundled public-domain photos."""
    if path.startswith("sample:"):
        name = path.split(":", 1)[1]
        if name not in SAMPLE_NAMES:
            raise InputError(f"unknown sample {name!r}; choose from {', '.join(SAMPLE_NAMES)}")
        return sample_path(name)
    return Path(path)


def fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 0.3:
        raise argparse.ArgumentTypeError("must be between 0 and 0.3")
    return v


def quality(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return v


def one_line(text: str) -> str:
    """An error message as one line: control characters (a newline in a file name …) are escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def swapper_option_names() -> list[str]:
    """Every registered swapper's own options (one flag each, e.g. ``--steps``, ``--shape-strength``)."""
    names: list[str] = []
    for cls in SWAPPERS.values():
        names += [o.name for o in cls.info.options if o.name not in names]
    return names


def add_swapper_options(s: argparse.ArgumentParser) -> None:
    """Each registered swapper's own options, one group per swapper (as its ``SwapperInfo`` declares)."""
    seen: set[str] = set()
    for cls in SWAPPERS.values():
        info = cls.info
        fresh = [o for o in info.options if o.name not in seen]
        if not fresh:
            continue
        g = s.add_argument_group(info.options_title or f"--swapper {info.name}")
        for o in fresh:
            seen.add(o.name)
            g.add_argument(
                o.flag, dest=o.name, type=o.kind, metavar=o.metavar, help=o.help, choices=o.choices or None
            )


def given_swapper_options(args: argparse.Namespace) -> dict[str, Any]:
    """The swapper options given on the command line (``{name: value}``)."""
    return {k: v for k in swapper_option_names() if (v := getattr(args, k, None)) is not None}


def add_swap_options(s: argparse.ArgumentParser) -> None:
    """The options every swapping command takes: the swapper, its model and its own options (declared
    by each swapper's :class:`~masquerade.swappers.SwapperInfo`), faces, mask, colour, blend, provenance."""
    summaries = ", ".join(cls.info.summary for cls in SWAPPERS.values())
    s.add_argument(
        "--swapper", choices=list(SWAPPERS), default="mesh3d", help=f"swapping method: {summaries}"
    )
    users = [n for n, c in SWAPPERS.items() if c.info.takes_a_model]
    s.add_argument(
        "--model", type=Path, metavar="DIR|CARD",
        help="the model of --swapper " + ", ".join(f"{n}: {SWAPPERS[n].info.model_help}" for n in users),
    )  # fmt: skip
    add_swapper_options(s)
    s.add_argument(
        "--faces", choices=["largest", "all", "reference", "many"], default="largest",
        help="target faces to replace: the largest, all, those matching --reference, or 'many': several "
        "people, each given the --source at the same position as the --reference they match (or, "
        "without references, in order of appearance / left to right) (default largest)",
    )  # fmt: skip
    s.add_argument("--reference", action="append", help="photo of a target person (repeat with --faces many)")
    s.add_argument(
        "--not-reference", action="append", metavar="PHOTO",
        help="photo of a person not to swap (repeatable; with --reference): a face more like them than "
        "like its --reference is left alone (look-alikes in a group or a video)",
    )  # fmt: skip
    s.add_argument(
        "--source-face", choices=["largest", "reference"], default="largest",
        help="face of the source photo to use; 'reference' = the one matching --source-reference",
    )  # fmt: skip
    s.add_argument("--source-reference", help="photo picking the source face in a group photo")
    s.add_argument(
        "--mask", choices=MASKS, default="face",
        help="'face' replaces the whole face; 'skin' keeps the target's eyes and mouth (default face)",
    )  # fmt: skip
    s.add_argument("--mask-erode", type=fraction, default=0.03, help="mask erosion, fraction of face size")
    s.add_argument("--mask-blur", type=fraction, default=0.06, help="mask feathering, fraction of face size")
    s.add_argument(
        "--colour", choices=COLOURS, default="shading",
        help="colour correction: LAB statistics (reinhard) plus the target's lighting (shading, default)",
    )  # fmt: skip
    s.add_argument("--blend", choices=BLENDS, default="feather")
    s.add_argument(
        "--occlusion", choices=["on", "off"], default="on",
        help="on (default): what is in front of the target's face (fingers, hair, a microphone) stays, and "
        "what covers the source's face (a hand, sunglasses) is painted over before swapping, with the "
        "occlusion segmenter in the package; off: the whole face is swapped (faster)",
    )  # fmt: skip
    s.add_argument(
        "--occlusion-model", type=Path, metavar="DIR",
        help="use the occlusion segmenter in DIR (a 'masquerade train segmenter' run folder) instead of the "
        "one in the package; implies --occlusion on",
    )  # fmt: skip
    s.add_argument(
        "--occlusion-hands", choices=["on", "off"], default="on",
        help="with occlusion on: also keep the hands mediapipe's hand landmarker finds near a face (the "
        "segmenter misses most real hands; about 12 ms per face on a photo, in video a look every 10th "
        "frame while no hand is near; default on)",
    )  # fmt: skip
    s.add_argument(
        "--occlusion-hair", choices=["on", "off"], default="on",
        help="with occlusion on: also keep hair over the target's forehead (bangs, a hat's brim) and locks "
        "down the sides of its face, found by their colour against the face's skin (the segmenter misses "
        "them; default on)",
    )  # fmt: skip
    s.add_argument(
        "--occlusion-glasses", choices=["on", "off"], default="on",
        help="with occlusion on: also keep dark sunglasses over the target's eyes, lenses and frames, found "
        "by their darkness against the face's skin (the segmenter misses their rims), and the frames of "
        "clear glasses, found as thin dark lines across the nose and under both eyes (default on)",
    )  # fmt: skip
    s.add_argument(
        "--occlusion-forehead", choices=["on", "off"], default="off",
        help="with occlusion on: when a fringe hides most of the source's forehead and eyebrows, leave the "
        "whole forehead, eyebrows included, to the target's own (no patchwork of the source's forehead "
        "between the holes; a little less like the source; default off)",
    )  # fmt: skip
    pv = s.add_argument_group("provenance (on by default: invisible watermark + signed C2PA manifest)")
    pv.add_argument(
        "--no-provenance", action="store_true",
        help="write neither watermark nor C2PA manifest; the output's metadata records that it was "
        "turned off (only for consented uses where the marks must be absent)",
    )  # fmt: skip
    pv.add_argument(
        "--c2pa-cert", type=Path, metavar="PEM",
        help="certificate chain to sign the C2PA manifest with (default $MASQUERADE_C2PA_CERT, else a "
        "local key made on first use)",
    )  # fmt: skip
    pv.add_argument("--c2pa-key", type=Path, metavar="PEM", help="private key of --c2pa-cert")


def signing(args: argparse.Namespace) -> SigningConfig | None:
    """--c2pa-cert / --c2pa-key (checked: both or neither, existing files); None without them."""
    cert, key = getattr(args, "c2pa_cert", None), getattr(args, "c2pa_key", None)
    if (cert is None) != (key is None):
        raise InputError("--c2pa-cert and --c2pa-key go together")
    for pem in (cert, key):
        if pem is not None and not pem.is_file():
            raise InputError(f"{pem}: no such file")
    return SigningConfig(cert, key) if cert is not None and key is not None else None


def provenance(args: argparse.Namespace) -> ProvenanceOptions:
    """--no-provenance / --c2pa-cert / --c2pa-key as provenance options (checked)."""
    config = signing(args)
    if args.no_provenance and config is not None:
        raise InputError("--c2pa-cert/--c2pa-key sign provenance, which --no-provenance turns off")
    return ProvenanceOptions(enabled=not args.no_provenance, signing=config)


def stamp_for(args: argparse.Namespace, dest: Path, inputs: list[Path]) -> OutputStamp:
    """The provenance for this output; the sidecar it may need is checked like the output itself."""
    stamp = OutputStamp(args.swapper, provenance(args))
    side = stamp.sidecar_for(dest)
    if side is not None:
        check_output_path(side, inputs, args.force, {side.suffix.lower(): "c2pa"})
    return stamp


def swap_request(args: argparse.Namespace, **extra: Any) -> SwapRequest:
    """The swap options of a command as a request (paths resolved; checked by
    :func:`~masquerade.job.prepare_job`)."""
    return SwapRequest(
        swapper=args.swapper,
        model=str(args.model) if args.model is not None else None,
        swapper_options=given_swapper_options(args),
        sources=tuple(resolve(x) for x in args.source or []),
        faces=args.faces,
        references=tuple(resolve(x) for x in args.reference or []),
        others=tuple(resolve(x) for x in args.not_reference or []),
        source_face=args.source_face,
        source_reference=resolve(args.source_reference) if args.source_reference else None,
        mask=args.mask, mask_erode=args.mask_erode, mask_blur=args.mask_blur,
        colour=args.colour, blend=args.blend,
        occlusion=args.occlusion == "on" or args.occlusion_model is not None,
        occlusion_model=None if args.occlusion_model is None else str(args.occlusion_model),
        occlusion_hands=getattr(args, "occlusion_hands", "on") == "on",
        occlusion_hair=getattr(args, "occlusion_hair", "on") == "on",
        occlusion_glasses=getattr(args, "occlusion_glasses", "on") == "on",
        occlusion_forehead=getattr(args, "occlusion_forehead", "off") == "on",
        max_pixels=getattr(args, "max_pixels", DEFAULT_MAX_PIXELS),
        **extra,
    )  # fmt: skip


def progress_bar(err: Console, *fields: str) -> Any:
    extra = [TextColumn(f) for f in fields]
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra,
        TimeRemainingColumn(),
    )  # fmt: skip
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)

"""The ``masquerade`` command line. Library code logs; this module prints.

Every failure ends in one line on stderr and a non-zero exit status (2: bad input or usage,
3: no usable face, 1: unexpected); set ``MASQUERADE_DEBUG=1`` to see a traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from .errors import InputError, MasqueradeError, NoFaceError
from .imageio import DEFAULT_MAX_PIXELS, check_output_path, load_image, save_image
from .samples import SAMPLE_NAMES, sample_path

INTENDED_USE = (
    "Intended for consented media, research and film work; do not use it to deceive, "
    "harass or impersonate people."
)


def _resolve(path: str) -> Path:
    """Accept ``sample:NAME`` for the bundled public-domain photos."""
    if path.startswith("sample:"):
        name = path.split(":", 1)[1]
        if name not in SAMPLE_NAMES:
            raise InputError(f"unknown sample {name!r}; choose from {', '.join(SAMPLE_NAMES)}")
        return sample_path(name)
    return Path(path)


def _fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 0.3:
        raise argparse.ArgumentTypeError("must be between 0 and 0.3")
    return v


def _quality(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="masquerade", description=f"Offline face swapping. {INTENDED_USE}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="detect faces and print them as JSON")
    a.add_argument("photo", help="image file (or sample:NAME)")
    a.add_argument("--annotate", type=Path, metavar="PNG", help="also write an annotated image here")
    a.add_argument("--landmarks", choices=["mediapipe", "dlib"], default="mediapipe")
    a.add_argument("--no-identity", action="store_true", help="skip the 128-d identity embedding")
    a.add_argument("--mesh", action="store_true", help="include the 478-point mesh in the JSON")
    a.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    a.add_argument("--force", action="store_true", help="replace an existing --annotate file")

    s = sub.add_parser("swap", help="put the source photo's face onto the target's face(s)")
    s.add_argument("-s", "--source", required=True, help="photo whose identity is used (or sample:NAME)")
    s.add_argument("-t", "--target", required=True, help="photo whose faces are replaced (or sample:NAME)")
    s.add_argument(
        "-o", "--output", required=True, type=Path, help="output image (.png .jpg .webp .bmp .tif)"
    )
    s.add_argument("--swapper", choices=["mesh3d"], default="mesh3d", help="swapping method (default mesh3d)")
    s.add_argument(
        "--faces", choices=["largest", "all", "reference"], default="largest",
        help="target faces to replace; 'reference' = those matching --reference (default largest)",
    )  # fmt: skip
    s.add_argument("--reference", help="photo of the target person whose faces are replaced")
    s.add_argument(
        "--source-face", choices=["largest", "reference"], default="largest",
        help="face of the source photo to use; 'reference' = the one matching --source-reference",
    )  # fmt: skip
    s.add_argument("--source-reference", help="photo picking the source face in a group photo")
    s.add_argument(
        "--mask", choices=["face", "skin"], default="face",
        help="'face' replaces the whole face; 'skin' keeps the target's eyes and mouth (default face)",
    )  # fmt: skip
    s.add_argument("--mask-erode", type=_fraction, default=0.03, help="mask erosion, fraction of face size")
    s.add_argument("--mask-blur", type=_fraction, default=0.06, help="mask feathering, fraction of face size")
    s.add_argument(
        "--colour", choices=["none", "reinhard", "shading"], default="shading",
        help="colour correction: LAB statistics (reinhard) plus the target's lighting (shading, default)",
    )  # fmt: skip
    s.add_argument("--blend", choices=["feather", "poisson", "multiband"], default="feather")
    s.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality (default 95)")
    s.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    s.add_argument("--force", action="store_true", help="replace an existing output file")

    d = sub.add_parser("demo", help="swap the bundled sample photos (Grace Hopper onto the astronaut)")
    d.add_argument("-o", "--output", type=Path, default=Path("masquerade-demo.png"))
    d.add_argument("--force", action="store_true", help="replace an existing output file")

    m = sub.add_parser("models", help="list the models used, their origin and licences")
    m.add_argument("--verify", action="store_true", help="check every file's sha256")
    return p


def cmd_analyze(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .analysis import FaceAnalyzer
    from .draw import annotate

    src = _resolve(args.photo)
    if args.annotate is not None:
        check_output_path(args.annotate, [src], args.force)
    img = load_image(src, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=not args.no_identity, landmarks=args.landmarks) as fa:
        faces = fa.get(img.rgb)
    doc = {
        "image": str(src),
        "width": img.rgb.shape[1],
        "height": img.rgb.shape[0],
        "faces": [f.to_dict(with_mesh=args.mesh) for f in faces],
    }
    sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    if args.annotate is not None:
        save_image(args.annotate, annotate(img.rgb, faces))
        err.print(f"annotated image written to {args.annotate}", highlight=False)
    return 0


def _reference_embedding(analyzer: object, path: Path, max_pixels: int) -> np.ndarray:
    img = load_image(path, max_pixels=max_pixels)
    found = analyzer.get(img.rgb, identity=True)  # type: ignore[attr-defined]
    if not found:
        raise NoFaceError(f"no face found in the reference photo {path}")
    return found[0].embedding


def cmd_swap(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .analysis import FaceAnalyzer
    from .pipeline import FaceSwapper, SwapOptions

    src_p, tgt_p = _resolve(args.source), _resolve(args.target)
    ref_p = _resolve(args.reference) if args.reference else None
    sref_p = _resolve(args.source_reference) if args.source_reference else None
    if args.faces == "reference" and ref_p is None:
        raise InputError("--faces reference needs --reference PHOTO")
    if args.source_face == "reference" and sref_p is None:
        raise InputError("--source-face reference needs --source-reference PHOTO")
    inputs = [p for p in (src_p, tgt_p, ref_p, sref_p) if p is not None]
    dest = check_output_path(args.output, inputs, args.force)
    t0 = time.perf_counter()
    src_img = load_image(src_p, max_pixels=args.max_pixels)
    tgt_img = load_image(tgt_p, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=False) as analyzer:
        opts = SwapOptions(
            swapper=args.swapper, target_faces=args.faces, source_face=args.source_face,
            reference=_reference_embedding(analyzer, ref_p, args.max_pixels) if ref_p else None,
            source_reference=_reference_embedding(analyzer, sref_p, args.max_pixels) if sref_p else None,
            mask=args.mask, mask_erode=args.mask_erode, mask_blur=args.mask_blur,
            colour=args.colour, blend=args.blend,
        )  # fmt: skip
        result, report = FaceSwapper(opts, analyzer=analyzer).swap(src_img.rgb, tgt_img.rgb)
    save_image(dest, result, alpha=tgt_img.alpha, quality=args.quality)
    n = len(report.targets)
    err.print(
        f"swapped {n} face{'s' if n != 1 else ''} in {time.perf_counter() - t0:.2f} s → {dest}",
        highlight=False,
    )
    return 0


def cmd_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    ns = build_parser().parse_args(
        ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "-o", str(args.output)]
        + (["--force"] if args.force else [])
    )
    return cmd_swap(ns, out, err)


def cmd_models(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .models import REGISTRY

    bad = 0
    for spec in REGISTRY:
        try:
            path = str(spec.path())
            state = "present"
            if args.verify and spec.sha256:
                ok = spec.verify()
                state = "sha256 ok" if ok else "SHA256 MISMATCH"
                bad += not ok
        except MasqueradeError as exc:
            path, state = "-", f"missing: {exc}"
            bad += 1
        out.print(f"[bold]{spec.name}[/] ({spec.kind}) {state}", highlight=False)
        out.print(f"  {spec.origin}\n  licence: {spec.licence}\n  {path}", highlight=False, markup=False)
    return 1 if bad else 0


COMMANDS = {"analyze": cmd_analyze, "swap": cmd_swap, "demo": cmd_demo, "models": cmd_models}


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit instead of tracebacks."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    out, err = Console(), Console(stderr=True)
    debug = bool(os.environ.get("MASQUERADE_DEBUG"))
    try:
        return COMMANDS[args.command](args, out, err)
    except MasqueradeError as exc:
        if debug:
            raise
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return 130
    except Exception as exc:
        if debug:
            raise
        msg = f"error: unexpected {type(exc).__name__}: {exc} (set MASQUERADE_DEBUG=1 for details)"
        err.print(msg, highlight=False, markup=False, soft_wrap=True)
        return 1


def entry() -> None:
    sys.exit(main())

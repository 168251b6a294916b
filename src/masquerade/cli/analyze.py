"""``masquerade analyze``: detect faces and print them as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from ..files import check_output_path
from ..imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, load_image, save_image
from .common import resolve


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("analyze", help="detect faces and print them as JSON")
    a.add_argument("photo", help="image file (or sample:NAME)")
    a.add_argument("--annotate", type=Path, metavar="PNG", help="also write an annotated image here")
    a.add_argument("--landmarks", choices=["mediapipe", "dlib"], default="mediapipe")
    a.add_argument("--no-identity", action="store_true", help="skip the 128-d identity embedding")
    a.add_argument("--mesh", action="store_true", help="include the 478-point mesh in the JSON")
    a.add_argument(
        "--no-occlusion", action="store_true",
        help="skip 'visible' and 'facing': the shares of each face in view (facing the camera with nothing "
        "in front of it, by the occlusion segmenter and its finders) and facing the camera (not turned away)",
    )  # fmt: skip
    a.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    a.add_argument("--force", action="store_true", help="replace an existing --annotate file")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..analysis.analyzer import FaceAnalyzer
    from ..analysis.draw import annotate

    src = resolve(args.photo)
    if args.annotate is not None:
        check_output_path(args.annotate, [src], args.force, IMAGE_EXTENSIONS)
    img = load_image(src, max_pixels=args.max_pixels)
    with FaceAnalyzer(identity=not args.no_identity, landmarks=args.landmarks) as fa:
        faces = fa.get(img.rgb)
    records = [f.to_dict(with_mesh=args.mesh) for f in faces]
    if not args.no_occlusion and faces:
        from ..occlusion.handling import Occlusion

        occlusion = Occlusion()
        for rec, face in zip(records, faces, strict=True):
            seen, visible = occlusion.shares(img.rgb, face, occlusion.crop_mask(img.rgb, face)[0])
            rec["visible"], rec["facing"] = round(visible, 3), round(seen, 3)
        occlusion.close()
    doc = {"image": str(src), "width": img.rgb.shape[1], "height": img.rgb.shape[0], "faces": records}
    sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    if args.annotate is not None:
        save_image(args.annotate, annotate(img.rgb, faces))
        err.print(f"annotated image written to {args.annotate}", highlight=False)
    return 0

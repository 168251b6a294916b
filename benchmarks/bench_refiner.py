"""Benchmark the refined swapper against mesh3d: time per face on a 720p photo, and video speed and
stability on the shared clips.

Usage (from the repository root)::

    python benchmarks/bench_refiner.py --videos ../shared/data/videos --out benchmarks/out/refiner

* Photo: ``astronaut`` (512×512) resized to 720×720 and padded to 1280×720 by edge replication; source
  ``grace_hopper``. With one :class:`FaceSwapper` per swapper (models loaded, source face computed
  once), 3 warm-up swaps, then ``--repeat`` timed ``fs.swap`` calls (``time.perf_counter``); reported:
  median and mean ms per call, and the refiner's own share (``RefinedSwapper.refine``) timed inside.
* Video: each clip (single face) swapped with ``masquerade.video.swap_video`` (default options,
  ``--seconds`` of it, provenance off), wall time of the call → frames per second; then landmark jitter
  and colour flicker of output vs input (:mod:`masquerade.video.temporal`, as ``masquerade evaluate
  --video``): ratio 1 = as stable as the input.

``--relight S``: mesh3d's relighting strength for both swappers (``--relight 0``: the warp as it was
before relighting), to compare speed and flicker with and without it.

Writes ``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from envinfo import environment

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path
from masquerade.job import SwapJob
from masquerade.provenance.stamp import ProvenanceOptions
from masquerade.swappers import swapper_options
from masquerade.video.probe import iter_frames
from masquerade.video.swap import VideoOptions, swap_video
from masquerade.video.temporal import measure
from masquerade.video.transcode import EncodeOptions

SWAPPERS = ("mesh3d", "refined")
CLIPS = ("portrait_720x1280_d13.mp4", "music_720p.mp4", "talking_512_d6.mp4")


def photo_720p() -> np.ndarray:
    img = cv2.resize(load_image(sample_path("astronaut")).rgb, (720, 720), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(img, 0, 0, 280, 280, cv2.BORDER_REPLICATE)


def _options(name: str, relight: float | None) -> SwapOptions:
    """``name``'s default options, with mesh3d's ``relight`` strength when given (both swappers warp with
    mesh3d)."""
    return SwapOptions(swapper=name, swapper_options=swapper_options(name, {"relight": relight}))


def bench_photo(repeat: int, relight: float | None = None) -> dict[str, Any]:
    target, source = photo_720p(), load_image(sample_path("grace_hopper")).rgb
    out: dict[str, Any] = {}
    with FaceAnalyzer(identity=False) as fa:
        for name in SWAPPERS:
            fs = FaceSwapper(_options(name, relight), analyzer=fa)
            face = fs.source_face(source)
            spent: list[float] = []
            refine = getattr(fs.swapper, "refine", None)
            if refine is not None:

                def timed(*a: Any, _f: Any = refine, _s: list[float] = spent, **k: Any) -> Any:
                    t0 = time.perf_counter()
                    r = _f(*a, **k)
                    _s.append(time.perf_counter() - t0)
                    return r

                fs.swapper.refine = timed  # type: ignore[attr-defined]
            for _ in range(3):
                fs.swap(source, target, face)
            spent.clear()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fs.swap(source, target, face)
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = {
                "median_ms": statistics.median(times),
                "mean_ms": statistics.fmean(times),
                "refine_ms": statistics.median(spent) * 1000 if spent else None,
                "calls": repeat,
            }
    return out


def bench_video(videos: Path, seconds: float, relight: float | None = None) -> list[dict[str, Any]]:
    source = load_image(sample_path("grace_hopper")).rgb
    rows = []
    with FaceAnalyzer(identity=False) as fa, tempfile.TemporaryDirectory() as tmp:
        face = FaceSwapper(analyzer=fa).source_face(source)
        for clip in CLIPS:
            path = videos / clip
            if not path.is_file():
                print(f"skipped {clip}: not found", file=sys.stderr)
                continue
            st_in = measure(iter_frames(path), fa, None if seconds is None else int(seconds * 30))
            for name in SWAPPERS:
                job = SwapJob(
                    _options(name, relight), ((source, face),),
                    VideoOptions(encode=EncodeOptions(end=seconds)), ProvenanceOptions(enabled=False),
                )  # fmt: skip
                dest = Path(tmp) / f"{name}-{clip}"
                t0 = time.perf_counter()
                rep = swap_video(job, path, dest, fa)
                wall = time.perf_counter() - t0
                st_out = measure(iter_frames(dest), fa, rep.frames)
                rows.append({
                    "clip": clip, "swapper": name, "frames": rep.frames, "seconds": wall,
                    "fps": rep.frames / wall, "jitter_ratio": st_out.jitter.jitter / st_in.jitter.jitter,
                    "flicker_ratio": st_out.flicker.flicker / st_in.flicker.flicker,
                })  # fmt: skip
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/refiner"))
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=10.0, help="first seconds of each clip")
    ap.add_argument(
        "--relight", type=float, metavar="S", help="mesh3d's relight strength for both (default: its default)"
    )
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    res = {"environment": environment(), "relight": args.relight,
           "photo_720p": bench_photo(args.repeat, args.relight),
           "video": bench_video(args.videos, args.seconds, args.relight)}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        "| swapper | 720p photo, ms per swap (median / mean) | of which refine (median) |",
        "|---|---|---|",
    ]
    for name, r in res["photo_720p"].items():
        refine = "—" if r["refine_ms"] is None else f"{r['refine_ms']:.1f} ms"
        lines.append(f"| {name} | {r['median_ms']:.1f} / {r['mean_ms']:.1f} | {refine} |")
    lines += [
        "",
        "| clip | swapper | frames | fps | jitter ratio | flicker ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["video"]:
        lines.append(
            f"| {r['clip']} | {r['swapper']} | {r['frames']} | {r['fps']:.1f} | {r['jitter_ratio']:.2f} | "
            f"{r['flicker_ratio']:.2f} |"
        )
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

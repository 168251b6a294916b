"""Benchmark the cost of provenance on outputs: watermark + C2PA signing per image and per video.

Usage (from the repository root)::

    python benchmarks/bench_provenance.py --videos ../shared/data/videos --out benchmarks/out

Images: the astronaut sample scaled to 720 px high and edge-padded to 1280×720 (as in bench_swap), and
the same at 1920×1080. Per format (JPEG q95, PNG): the plain write masquerade did before provenance
(``encode_image`` + atomic write: :func:`masquerade.save_image`), the watermark alone
(``Watermarker.embed``), signing alone (``signing.sign_bytes`` on the encoded bytes) and the whole
``OutputStamp.write_image`` (mark + encode + sign + atomic write) with a new stamp each time (what one
``masquerade swap`` does: the watermark's tables are built for the output) and with one ``Watermarker``
shared across stamps (a batch); median of ``--calls`` calls after one warm-up call (which also makes
the local key). Overhead = new-stamp write − plain write. Verification: ``watermark.detect_file`` and
``verification.verify_file`` on the written file.

Videos: ``sign_file`` (in place, as the finishing step of every video written) and ``verify_file`` on a
copy of each clip in ``--videos`` (median of ``--video-calls``), reported per file and per frame. The
watermark's per-frame cost inside a real swap is measured by ``bench_video.py`` (swap with and without
provenance).

The C2PA key is a throwaway one in a temporary ``$MASQUERADE_CONFIG``. Writes ``provenance.json`` and
``provenance.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from envinfo import environment

from masquerade import load_image, sample_path, save_image
from masquerade.imageio import encode_image
from masquerade.provenance.manifest import ProvenanceInfo
from masquerade.provenance.signing import sign_bytes, sign_file
from masquerade.provenance.stamp import OutputStamp
from masquerade.provenance.verification import verify_file
from masquerade.provenance.watermark import Watermarker, WatermarkPayload, detect_file
from masquerade.video.probe import probe


def canvas(w: int, h: int) -> np.ndarray:
    rgb = load_image(sample_path("astronaut")).rgb
    s = h / rgb.shape[0]
    rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), h), interpolation=cv2.INTER_AREA)
    pad = w - rgb.shape[1]
    return cv2.copyMakeBorder(rgb, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)


def timed(fn: Callable[[], object], calls: int) -> float:
    """Median milliseconds of ``calls`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return round(statistics.median(times), 2)


def bench_images(tmp: Path, calls: int) -> list[dict[str, Any]]:
    rows = []
    wm = Watermarker()
    payload = WatermarkPayload.random()
    for w, h in ((1280, 720), (1920, 1080)):
        rgb = canvas(w, h)
        for ext, mime in ((".jpg", "image/jpeg"), (".png", "image/png")):
            data = encode_image(rgb, ext)
            info = ProvenanceInfo("mesh3d", content_id=payload.hex)
            out = tmp / f"out_{w}{ext}"
            plain = tmp / f"plain_{w}{ext}"
            row = {
                "size": f"{w}x{h}",
                "format": ext[1:],
                "plain_write_ms": timed(lambda plain=plain, rgb=rgb: save_image(plain, rgb), calls),
                "watermark_ms": timed(lambda rgb=rgb: wm.embed(rgb, payload), calls),
                "sign_ms": timed(lambda data=data, mime=mime, info=info: sign_bytes(data, mime, info), calls),
                "stamped_write_ms": timed(
                    lambda out=out, rgb=rgb: OutputStamp("mesh3d").write_image(out, rgb), calls
                ),
                "stamped_write_shared_ms": timed(
                    lambda out=out, rgb=rgb: OutputStamp("mesh3d", watermarker=wm).write_image(out, rgb),
                    calls,
                ),
                "detect_file_ms": timed(lambda out=out: detect_file(out), calls),
                "verify_file_ms": timed(lambda out=out: verify_file(out), calls),
                "bytes_plain": plain.stat().st_size,
                "bytes_stamped": out.stat().st_size,
            }
            row["overhead_ms"] = round(row["stamped_write_ms"] - row["plain_write_ms"], 2)
            assert detect_file(out).present and verify_file(out).valid
            rows.append(row)
            print(f"image {w}x{h} {ext}: {row}", file=sys.stderr)
    return rows


def bench_videos(videos: Path, tmp: Path, calls: int) -> list[dict[str, Any]]:
    rows = []
    for clip in sorted(videos.glob("*.mp4")):
        frames = probe(clip).frames
        work = tmp / clip.name
        info = ProvenanceInfo("mesh3d")

        def sign(clip: Path = clip, work: Path = work, info: ProvenanceInfo = info) -> None:
            shutil.copyfile(clip, work)
            sign_file(work, work, "video/mp4", info)

        def copy_only(clip: Path = clip, work: Path = work) -> None:
            shutil.copyfile(clip, work)

        copy_ms = timed(copy_only, calls)
        sign_ms = timed(sign, calls) - copy_ms  # the last call leaves a signed copy in work
        verify_ms = timed(lambda work=work: verify_file(work), calls)
        assert verify_file(work).valid
        row = {
            "clip": clip.name,
            "mb": round(clip.stat().st_size / 1e6, 2),
            "frames": frames,
            "sign_ms": round(sign_ms, 2),
            "sign_ms_per_frame": round(sign_ms / frames, 3) if frames else None,
            "verify_ms": verify_ms,
        }
        rows.append(row)
        print(f"video {row}", file=sys.stderr)
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "| Image | Plain write (ms) | Watermark (ms) | Sign (ms) "
        "| Stamped write, new / shared Watermarker (ms) | Overhead (ms) | detect_file (ms) "
        "| verify_file (ms) | Size plain → stamped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["images"]:
        lines.append(
            f"| {r['size']} {r['format'].upper()} | {r['plain_write_ms']:.1f} | {r['watermark_ms']:.1f} "
            f"| {r['sign_ms']:.1f} | {r['stamped_write_ms']:.1f} / {r['stamped_write_shared_ms']:.1f} "
            f"| {r['overhead_ms']:+.1f} "
            f"| {r['detect_file_ms']:.1f} | {r['verify_file_ms']:.1f} "
            f"| {r['bytes_plain'] / 1e3:.0f} → {r['bytes_stamped'] / 1e3:.0f} kB |"
        )
    if res["videos"]:
        head = "| Video (sign_file in place) | MB | Frames | Sign (ms) | Per frame (ms) | verify_file (ms) |"
        lines += ["", head, "|---|---|---|---|---|---|"]
        for r in res["videos"]:
            lines.append(
                f"| {r['clip']} | {r['mb']:.1f} | {r['frames']} | {r['sign_ms']:.1f} "
                f"| {r['sign_ms_per_frame']:.3f} | {r['verify_ms']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--video-calls", type=int, default=5)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="masq_prov_"))
    os.environ["MASQUERADE_CONFIG"] = str(tmp / "config")
    try:
        res: dict[str, Any] = {
            "environment": environment("c2pa"),
            "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "images": bench_images(tmp, args.calls),
            "videos": bench_videos(args.videos, tmp, args.video_calls) if args.videos.is_dir() else [],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (args.out / "provenance.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (args.out / "provenance.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

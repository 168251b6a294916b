"""Throughput of ``masquerade swap --backend ray`` with 1 and 2 workers against the local backend: on
one clip (and how far the joined output is from the local one), on a folder of photos (a batch), and
where the time of a segmented run goes per frame.

    python benchmarks/bench_ray.py --clip ../shared/data/videos/talking_512_d6.mp4 \\
        --photos ../shared/data/lfw/images --count 200 [--segment-seconds 10]
    python benchmarks/bench_ray.py --photos ../shared/data/lfw/images --count 1000 \\
        --out benchmarks/out/ray-batch.json

Each run is the whole command (``python -m masquerade swap … --no-provenance``) timed from outside,
so Ray's start (a local instance per command) and the workers' model loading are included. The
per-frame costs are measured in this process (one core's work, with provenance on): swapping and
encoding the segments as a worker does, then the join, for both joins.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from envinfo import environment

from masquerade import FaceSwapper, load_image, sample_path


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _swap(target: Path, out: Path, extra: list[str]) -> float:
    cmd = [
        sys.executable, "-m", "masquerade", "swap", "-s", "sample:grace_hopper", "-t", str(target),
        "-o", str(out), "--no-provenance", *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a batch with failed files (counted in the report)
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return time.perf_counter() - t0


RAY1, RAY2 = ["--backend", "ray", "--workers", "1"], ["--backend", "ray", "--workers", "2"]


def bench_video(clip: Path, seconds: float, tmp: Path) -> list[dict]:
    seg = ["--segment-seconds", str(seconds)]
    runs = [("local", []), ("ray, 1 worker", [*RAY1, *seg]), ("ray, 2 workers", [*RAY2, *seg]),
            ("ray, 2 workers, --join decode", [*RAY2, *seg, "--join", "decode"])]  # fmt: skip
    rows, outputs = [], {}
    for name, extra in runs:
        out = tmp / f"{len(outputs)}.mp4"
        wall = _swap(clip, out, extra)
        outputs[name] = out
        n = len(_frames(out))
        rows.append({"backend": name, "wall_s": round(wall, 1), "frames": n, "fps": round(n / wall, 2)})
        print(f"{name:32s} {wall:7.1f} s  {n / wall:6.2f} fps")
    ref = _frames(outputs["local"])
    for row in rows[1:]:
        got = _frames(outputs[row["backend"]])
        d = [float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(ref, got, strict=True)]
        row["diff_vs_local_mean"], row["diff_vs_local_max"] = round(float(np.mean(d)), 3), round(max(d), 3)
        print(f"{row['backend']:32s} vs local: mean abs diff {np.mean(d):.3f}, max frame {max(d):.3f}")
    return rows


def bench_batch(photos: Path, count: int, tmp: Path) -> list[dict]:
    """The first ``count`` photos (people in name order, one photo each) as a batch."""
    folder = tmp / "photos"
    folder.mkdir()
    for person in sorted(p for p in photos.iterdir() if p.is_dir()):
        first = min(person.glob("*.jpg"), default=None)
        if first is not None:
            shutil.copy(first, folder / first.name)
        if sum(1 for _ in folder.iterdir()) >= count:
            break
    rows, outputs = [], {}
    for name, extra in (("local", []), ("ray, 1 worker", RAY1), ("ray, 2 workers", RAY2)):
        out = tmp / f"batch{len(outputs)}"
        wall = _swap(folder, out, extra)
        outputs[name] = out
        rep = json.loads((out / "batch-report.json").read_text())
        rows.append({"backend": name, "wall_s": round(wall, 1), "files": len(rep["results"]),
                     "done": rep["done"], "failed": rep["failed"],
                     "files_per_s": round(len(rep["results"]) / wall, 2)})  # fmt: skip
        print(f"batch {name:26s} {wall:7.1f} s  {len(rep['results']) / wall:6.2f} files/s  "
              f"({rep['done']} done, {rep['failed']} failed)")  # fmt: skip
    ref = outputs["local"]
    for row in rows[1:]:
        same = sum(
            np.array_equal(load_image(p).rgb, load_image(outputs[row["backend"]] / p.name).rgb)
            for p in sorted(ref.glob("*.jpg"))
        )
        row["outputs_equal_to_local"] = same
        print(f"batch {row['backend']:26s} outputs equal to the local ones: {same} of {row['done']}")
    return rows


def bench_costs(clip: Path, seconds: float, tmp: Path) -> dict:
    """Per-frame cost, in this process, of the segments (swap + lossless or encoded write) and the join."""
    from masquerade.analysis.analyzer import FaceAnalyzer
    from masquerade.job import SwapJob
    from masquerade.pipeline import make_swapper
    from masquerade.provenance.stamp import OutputStamp
    from masquerade.video.probe import probe
    from masquerade.video.segments import join_encoded, join_segments, plan_segments, swap_segment
    from masquerade.video.swap import stamped_options

    src = load_image(sample_path("grace_hopper")).rgb
    with FaceSwapper() as fs:
        sources = [(src, fs.source_face(src))]
    out: dict = {}
    info = probe(clip)
    for join in ("copy", "decode"):
        job = SwapJob(sources=sources)
        stamp, vopts = stamped_options(job, OutputStamp("mesh3d"))
        segments = plan_segments(clip, seconds)
        if join == "copy":
            from dataclasses import replace

            from masquerade.video.segments import PartEncoding

            part = PartEncoding(vopts.encode, info.width, info.height, "mesh3d", stamp.options, stamp.payload)
            segments = [replace(s, part=part) for s in segments]
        work = tmp / f"costs-{join}"
        with FaceAnalyzer(identity=False) as fa:
            swapper = make_swapper(job.options)
            t0 = time.perf_counter()
            results = [swap_segment(job, clip, s, work, fa, swapper) for s in segments]
            t_seg = time.perf_counter() - t0
        n = sum(r.count for r in results)
        t0 = time.perf_counter()
        if join == "copy":
            join_encoded(clip, results, tmp / f"costs-{join}.mp4", stamp, vopts.encode)
        else:
            join_segments(job, clip, results, tmp / f"costs-{join}.mp4", stamp)
        t_join = time.perf_counter() - t0
        out[join] = {"segments": len(results), "frames": n,
                     "segments_ms_per_frame": round(1000 * t_seg / n, 1),
                     "join_ms_per_frame": round(1000 * t_join / n, 2)}  # fmt: skip
        print(f"costs, --join {join}: {len(results)} segments {1000 * t_seg / n:.1f} ms/frame, "
              f"join {1000 * t_join / n:.2f} ms/frame (with provenance)")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path)
    ap.add_argument("--segment-seconds", type=float, default=10.0)
    ap.add_argument("--photos", type=Path, help="a folder of per-person folders of photos (LFW's images/)")
    ap.add_argument("--count", type=int, default=200, help="photos in the batch (default 200)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/ray.json"))
    args = ap.parse_args()
    report: dict = {"environment": environment("numpy", "ray"), "clip": str(args.clip),
                    "segment_seconds": args.segment_seconds}  # fmt: skip
    if args.clip is None and args.photos is None:
        ap.error("give --clip, --photos or both")
    with tempfile.TemporaryDirectory() as tmp:
        if args.clip is not None:
            report["costs"] = bench_costs(args.clip, args.segment_seconds, Path(tmp))
            report["runs"] = bench_video(args.clip, args.segment_seconds, Path(tmp))
        if args.photos is not None:
            report["batch"] = bench_batch(args.photos, args.count, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

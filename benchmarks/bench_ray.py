"""Throughput of ``masquerade swap --backend ray`` with 1 and 2 workers against the local backend, on
one clip, and how far the joined output is from the local one (per-frame mean absolute difference).

    python benchmarks/bench_ray.py --clip ../shared/data/videos/talking_512_d6.mp4 [--segment-seconds 10]

Each run is the whole command (``python -m masquerade swap … --no-provenance``) timed from outside,
so Ray's start (a local instance per command) and the workers' model loading are included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from envinfo import environment


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, required=True)
    ap.add_argument("--segment-seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/ray.json"))
    args = ap.parse_args()
    runs = [("local", []), ("ray, 1 worker", ["--backend", "ray", "--workers", "1"]),
            ("ray, 2 workers", ["--backend", "ray", "--workers", "2"])]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for name, extra in runs:
            out = Path(tmp) / f"{len(outputs)}.mp4"
            cmd = [
                sys.executable, "-m", "masquerade", "swap", "-s", "sample:grace_hopper", "-t", str(args.clip),
                "-o", str(out), "--no-provenance", "--segment-seconds", str(args.segment_seconds), *extra,
            ]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            wall = time.perf_counter() - t0
            outputs[name] = out
            frames = _frames(out)
            rows.append({"backend": name, "wall_s": round(wall, 1), "frames": len(frames),
                         "fps": round(len(frames) / wall, 2)})  # fmt: skip
            print(f"{name:16s} {wall:7.1f} s  {len(frames) / wall:6.2f} fps")
        ref = _frames(outputs["local"])
        for row in rows[1:]:
            got = _frames(outputs[row["backend"]])
            d = [float(np.abs(a.astype(np.int16) - b).mean()) for a, b in zip(ref, got, strict=True)]
            row["diff_vs_local_mean"], row["diff_vs_local_max"] = (
                round(float(np.mean(d)), 3),
                round(max(d), 3),
            )
            print(f"{row['backend']:16s} vs local: mean abs diff {np.mean(d):.3f}, max frame {max(d):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "environment": environment("numpy"),
        "clip": str(args.clip),
        "segment_seconds": args.segment_seconds,
        "runs": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

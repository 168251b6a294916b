"""onnxruntime's thread spin-waiting on and off (``swappers.aligned.no_spinning``), in video: mesh3d,
mesh3d with occlusion handling and the refiner on the first 8 s of music_720p.mp4 (provenance off),
alternating, two rounds; frames per second of ``swap_video`` and the process's CPU per frame.

    python benchmarks/bench_spinning.py --videos ../shared/data/videos
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image
from masquerade.job import SwapJob
from masquerade.provenance.stamp import ProvenanceOptions
from masquerade.samples import sample_path
from masquerade.swappers import aligned
from masquerade.video.swap import VideoOptions, swap_video
from masquerade.video.transcode import EncodeOptions

SWAPS = (
    ("mesh3d", SwapOptions()),
    ("mesh3d+occlusion", SwapOptions(occlusion=True)),
    ("refined", SwapOptions(swapper="refined")),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    clip = args.videos / "music_720p.mp4"
    source = load_image(sample_path("grace_hopper")).rgb
    quiet = aligned.no_spinning
    res: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    with FaceAnalyzer(identity=False) as fa, tempfile.TemporaryDirectory() as tmp:
        face = FaceSwapper(analyzer=fa).source_face(source)
        for _ in range(2):
            for label, opts in SWAPS:
                for spin in (True, False):
                    aligned.no_spinning = (lambda o: o) if spin else quiet  # sessions made from now on
                    job = SwapJob(
                        opts, ((source, face),), VideoOptions(encode=EncodeOptions(end=args.seconds)),
                        ProvenanceOptions(enabled=False),
                    )  # fmt: skip
                    t0, c0 = time.perf_counter(), time.process_time()
                    rep = swap_video(job, clip, Path(tmp) / "o.mp4", fa)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    res.setdefault((label, spin), []).append((rep.frames / wall, 1000 * cpu / rep.frames))
    aligned.no_spinning = quiet
    for (label, spin), v in res.items():
        rates = ", ".join(f"{a:.1f}" for a, _ in v)
        cpus = ", ".join(f"{b:.1f}" for _, b in v)
        print(f"{label:18s} spinning {'on ' if spin else 'off'}  fps {rates}   CPU ms per frame {cpus}")


if __name__ == "__main__":
    main()

"""Video swap speed against the physical limit (issue 21), used by ``bench_video.py``.

* **Tight decode + encode:** a separate Python process that decodes the clip with PyAV and hands the
  decoder's own frames (no RGB conversion, no per-pixel Python) straight to the same encoder, codec,
  preset and CRF as the swap's output. Its whole-process wall time is the limit a swap is compared with.
* **Swap:** ``python -m masquerade swap`` as its own process (default options, provenance on, and once
  with ``--no-provenance``), start-up, model loading and writing included. Runs alternate with the
  tight baseline, and each ratio is taken within one round (the machine's speed drifts by ±10 %).
* **Stages:** where a frame's CPU goes. The first ``frames`` frames run through each stage in turn, one
  stage at a time over all frames, on this process's threads, timed with ``time.process_time`` (so the
  encoder's and OpenCV's helper threads count): decode, YUV → RGB, scene-cut check, detection (every
  ``detect_every`` frames, as the swap does), face mesh + smoothing, the swapper's warp, mask, colour,
  blend, watermark, RGB → YUV, encode. The swap runs these stages overlapped on its threads, so the sum
  is its CPU per frame without the costs of overlapping (queues, waits, the GIL).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from masquerade.job import SwapJob
from masquerade.provenance.stamp import OutputStamp, ProvenanceOptions
from masquerade.video.swap import VideoFaceSwapper
from masquerade.video.transcode import EncodeOptions

TIGHT = r"""
import sys, av
src, dst, codec, crf, preset = sys.argv[1:6]
frames = int(sys.argv[6]) if len(sys.argv) > 6 else 0
with av.open(src) as inp, av.open(dst, "w") as out:
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    vout = out.add_stream(codec, rate=vin.average_rate)
    vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
    vout.options = {"crf": crf, "preset": preset} if codec == "libx264" else {}
    n = 0
    for frame in inp.decode(vin):
        frame.pict_type = 0
        for p in vout.encode(frame):
            out.mux(p)
        n += 1
        if frames and n >= frames:
            break
    for p in vout.encode():
        out.mux(p)
print(n)
"""


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_process(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` to the end: its wall time, CPU time (user + system, all threads) and stdout."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({res.returncode}): {res.stderr.strip()[-400:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "stdout": res.stdout, "stderr": res.stderr}


def tight_run(src: Path, dst: Path, enc: EncodeOptions, frames: int) -> dict[str, Any]:
    cmd = [sys.executable, "-c", TIGHT, str(src), str(dst), enc.codec, str(enc.crf), enc.preset]
    r = timed_process(cmd + ([str(frames)] if frames else []))
    n = int(r["stdout"].split()[-1])
    dst.unlink(missing_ok=True)
    return {"frames": n, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "fps": round(n / r["wall_s"], 2)}


def swap_run(src: Path, dst: Path, frames: int, fps: float, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "masquerade", "swap", "-s", "sample:grace_hopper", "-t", str(src)]
    cmd += ["-o", str(dst), *extra]
    if frames:
        cmd += ["--end", f"{frames / fps:.4f}"]
    r = timed_process(cmd)
    line = next((ln for ln in r["stderr"].splitlines() if ln.startswith("swapped faces in")), "")
    n = int(line.split(" of ")[1].split()[0]) if line else 0
    dst.unlink(missing_ok=True)
    return {"frames": n, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "fps": round(n / r["wall_s"], 2)}


def run_limit(
    clips: list[tuple[Path, list[str]]], work: Path, rounds: int, frames: int, fps_of: Callable[[Path], float]
) -> list[dict[str, Any]]:
    """Per clip, ``rounds`` rounds of tight decode+encode, swap, swap without provenance (alternating)."""
    enc = EncodeOptions()
    rows = []
    for src, extra in clips:
        runs = []
        for k in range(rounds):
            tight = tight_run(src, work / f"tight_{k}.mp4", enc, frames)
            swap = swap_run(src, work / f"swap_{k}.mp4", frames, fps_of(src), extra)
            plain = swap_run(src, work / f"plain_{k}.mp4", frames, fps_of(src), [*extra, "--no-provenance"])
            runs.append(
                {
                    "tight": tight,
                    "swap": swap,
                    "swap_no_provenance": plain,
                    "swap_over_tight": round(tight["wall_s"] / swap["wall_s"], 3),
                    "plain_over_tight": round(tight["wall_s"] / plain["wall_s"], 3),
                }
            )
            print(
                f"limit: {src.name} round {k + 1}: tight {tight['wall_s']:.2f} s, "
                f"swap {swap['wall_s']:.2f} s "
                f"({runs[-1]['swap_over_tight']:.2f}×), no provenance {plain['wall_s']:.2f} s",
                file=sys.stderr,
            )
        rows.append({"clip": src.name, "options": " ".join(extra) or "default", "runs": runs})
    return rows


class _Clock:
    """Accumulates ``process_time`` per stage name."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):  # type: ignore[no-untyped-def]
        t0 = time.process_time()
        try:
            yield
        finally:
            self.total[name] = self.total.get(name, 0.0) + time.process_time() - t0

    def wrap(self, module: Any, attr: str, name: str) -> Callable[[], None]:
        """Time every call of ``module.attr`` as stage ``name``; returns the undo."""
        fn = getattr(module, attr)

        def timed(*a: Any, **k: Any) -> Any:
            with self(name):
                return fn(*a, **k)

        setattr(module, attr, timed)
        return lambda: setattr(module, attr, fn)


def run_stages(src: Path, job: SwapJob, fa: Any, frames: int) -> dict[str, Any]:
    """CPU per frame of each stage of a default swap of ``src`` (see the module docstring)."""
    import av

    import masquerade.compose.composite as comp
    import masquerade.video.swap as vswap

    clock = _Clock()
    decoded = []
    with av.open(str(src)) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        with clock("decode"):
            for f in c.decode(v):
                decoded.append(f)
                if len(decoded) >= frames:
                    break
        rate = v.average_rate
    n = len(decoded)
    try:  # this version: decoded I420 kept, changed boxes converted back, the mark in the Y plane
        from masquerade.video.probe import decoded_pixels
        from masquerade.video.transcode import patched_frame
    except ImportError:  # earlier versions (for a before/after table): RGB frames all the way
        decoded_pixels = patched_frame = None  # type: ignore[assignment]
    with clock("YUV → RGB"):
        if decoded_pixels is not None:
            pixels = [decoded_pixels(f) for f in decoded]
            yuvs, rgbs = [p[0] for p in pixels], [p[1] for p in pixels]
        else:
            rgbs = [f.to_ndarray(format="rgb24") for f in decoded]
    del decoded
    vs = VideoFaceSwapper(job, fa)
    undo = [
        clock.wrap(vswap, "swap_face", "warp (swapper)"),
        clock.wrap(comp, "region_mask", "mask"),
        clock.wrap(comp, "correct_colour", "colour"),
        clock.wrap(comp, "blend", "blend"),
    ]
    cuts, detector = vs.cuts, fa.detector
    vs.cuts = lambda rgb: _timed(clock, "scene cut", cuts, rgb)  # type: ignore[assignment]
    det = detector.detect
    detector.detect = lambda *a, **k: _timed(clock, "detection", det, *a, **k)  # type: ignore[method-assign]
    occ = getattr(vs, "occlusion", None)
    if occ is not None:  # the target's occlusion mask (segmenter, hands, hair) of each face
        keep = occ.target_mask
        occ.target_mask = lambda *a, **k: _timed(clock, "occlusion", keep, *a, **k)  # type: ignore[method-assign]
    plans = []
    try:
        for i, rgb in enumerate(rgbs):
            t0 = time.process_time()
            inner = dict(clock.total)
            plans.append(vs.plan(rgb, i / float(rate)))
            spent = time.process_time() - t0
            nested = sum(clock.total.get(k, 0.0) - inner.get(k, 0.0) for k in ("scene cut", "detection"))
            mesh = "face mesh + smoothing"
            clock.total[mesh] = clock.total.get(mesh, 0.0) + spent - nested
        outs = []
        for i, (rgb, sel) in enumerate(zip(rgbs, plans, strict=True)):
            if patched_frame is not None:
                outs.append(vs.render_changed(rgb, i / float(rate), sel))
            else:
                outs.append(vs.render(rgb, i / float(rate), sel))
    finally:
        for u in undo:
            u()
        detector.detect = det  # type: ignore[method-assign]
        vs.close()
    render_parts = ("warp (swapper)", "occlusion", "mask", "colour", "blend")
    stamp = OutputStamp("mesh3d", ProvenanceOptions())
    if patched_frame is not None:
        marker = stamp.video_marker()
        assert marker is not None
        luma = marker.mark_luma
        marker.mark_luma = lambda y: _timed(clock, "watermark", luma, y)  # type: ignore[method-assign]
        with clock("RGB → YUV"):
            frames_out = [patched_frame(y, r.rgb, r.changed, marker) for y, r in zip(yuvs, outs, strict=True)]
        clock.total["RGB → YUV"] -= clock.total["watermark"]  # the mark was timed inside
        h, w = outs[0].rgb.shape[:2]
    else:
        post = stamp.frame_post()
        assert post is not None
        with clock("watermark"):
            outs = [post(o) for o in outs]
        with clock("RGB → YUV"):
            frames_out = [
                av.VideoFrame.from_ndarray(o, format="rgb24").reformat(format="yuv420p") for o in outs
            ]
        h, w = outs[0].shape[:2]
    enc = EncodeOptions()
    with av.open(os.devnull, "w", format="mp4") as o:
        s = o.add_stream(enc.codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(enc.crf), "preset": enc.preset}
        with clock("encode"):
            for i, f in enumerate(frames_out):
                f.pts = i
                for p in s.encode(f):
                    o.mux(p)
            for p in s.encode():
                o.mux(p)
    order = ["decode", "YUV → RGB", "scene cut", "detection", "face mesh + smoothing", *render_parts,
             "watermark", "RGB → YUV", "encode"]  # fmt: skip
    ms = {k: round(1000 * clock.total.get(k, 0.0) / n, 2) for k in order}
    return {"clip": src.name, "frames": n, "ms_per_frame": ms, "sum_ms": round(sum(ms.values()), 1)}


def _timed(clock: _Clock, name: str, fn: Callable[..., Any], *a: Any, **k: Any) -> Any:
    with clock(name):
        return fn(*a, **k)


def limit_markdown(rows: list[dict[str, Any]], stages: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    if rows:
        lines += [
            "| Clip (options) | Round | Tight decode + encode, wall (CPU) | Swap, wall (CPU), fps "
            "| Swap / tight | Without provenance, wall | Its ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            for k, run in enumerate(r["runs"]):
                t, s, p = run["tight"], run["swap"], run["swap_no_provenance"]
                lines.append(
                    f"| {r['clip']} ({r['options']}), {s['frames']} frames | {k + 1} "
                    f"| {t['wall_s']:.2f} s ({t['cpu_s']:.1f} s) | {s['wall_s']:.2f} s ({s['cpu_s']:.1f} s), "
                    f"{s['fps']:.1f} | {run['swap_over_tight']:.2f}× | {p['wall_s']:.2f} s "
                    f"| {run['plain_over_tight']:.2f}× |"
                )
        lines.append("")
    if stages:
        names = list(stages[0]["ms_per_frame"])
        lines += [
            "| CPU ms per frame | "
            + " | ".join(f"{s['clip']} ({s['frames']} frames)" for s in stages)
            + " |",
            "|---|" + "---|" * len(stages),
        ]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{s['ms_per_frame'][name]:.1f}" for s in stages) + " |")
        lines.append("| **sum** | " + " | ".join(f"**{s['sum_ms']:.1f}**" for s in stages) + " |")
        lines.append("")
    return lines

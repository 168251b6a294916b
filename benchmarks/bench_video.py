"""Benchmark video face swapping: speed, temporal stability and memory.

Usage (from the repository root; full-length settings are the defaults)::

    python benchmarks/bench_video.py --videos ../shared/data/videos --out benchmarks/out

Quick check: ``--max-frames 60 --memory-minutes 0.1,0.2`` (or ``--skip-memory``).

Every swap uses the ``grace_hopper`` sample as source and default :class:`SwapOptions` /
:class:`VideoOptions` (encode: libx264, crf 18, preset superfast), with one
``FaceAnalyzer(identity=False)`` prepared beforehand and passed as ``analyzer=``.

Speed against the physical limit (see ``video_limit.py``): per clip, ``--rounds`` rounds of (a tight
decode + encode of the clip in its own process — PyAV, the decoder's frames straight into libx264 with
the swap's preset and CRF, nothing else —, ``masquerade swap`` as its own process with default
options, and the same with ``--no-provenance``), whole-process wall and CPU time, start-up included;
the ratio is tight wall / swap wall within a round. Clips: ``music_720p.mp4`` (1280×720, one face),
``portrait_720x1280_d13.mp4`` and ``group_1080p.mp4`` with ``--faces all``. Then the CPU per frame of
each stage (decode, YUV → RGB, scene cut, detection, face mesh, warp, mask, colour, blend, watermark,
RGB → YUV, encode) on the first ``--stage-frames`` frames of the 720p and group clips.

Targets (issue 21): 720p single-face swap ≥ 0.5 × the tight decode + encode (≥ 0.4× at the very
least) and ≥ 40 fps.

Stability: :func:`masquerade.video.temporal.compare` on ``talking_512_d6.mp4`` (480², 30 fps; swap trimmed
with ``EncodeOptions(end=max_frames / fps)``, i.e. 10 s for 300 frames), on ``music_720p.mp4`` (reusing
the speed run's swap when both cover the same frames) and on ``talking_512_d0.mp4`` (78 frames of an
almost motionless speaker: the input's own jitter and flicker are tiny, so ratios are harsh). Jitter =
mean landmark acceleration in inter-ocular distances, flicker = mean |second difference| of the face's
mean LAB lightness; scene cuts and frames without a face are skipped. Acceptance: output / input
≤ 1 + ``--margin`` (10 %) for both.

Memory: ``music_720p.mp4``'s frames are looped into 720p inputs of ``--memory-minutes`` minutes (video
only; libx264 ultrafast crf 23; cached in ``--tmp``, default /tmp/masq_bench). Each is swapped in its own
child process (``--child-swap``); its peak RSS is the child's own ``VmHWM`` (/proc/self/status) after the
swap, with ``VmHWM`` before the swap (models loaded) and ``VmRSS`` samples along the way. (The kernel's
``ru_maxrss`` from ``os.wait4`` is recorded too, but on Linux it also counts the parent's high-water mark
at spawn time, inherited through fork/exec, so it is not used for the verdict.) Target: the peaks of the
shortest and longest input equal within 10 %.

Writes ``video.json`` and ``video.md`` into ``--out`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from envinfo import environment
from video_limit import limit_markdown, run_limit, run_stages

import masquerade
from masquerade import FaceAnalyzer, load_image, sample_path
from masquerade.face import Face
from masquerade.job import SwapJob
from masquerade.pipeline import SwapOptions
from masquerade.video.probe import probe
from masquerade.video.swap import VideoOptions, swap_video
from masquerade.video.temporal import compare
from masquerade.video.transcode import EncodeOptions

SPEED_CLIP = "music_720p.mp4"
TALKING_CLIP = "talking_512_d6.mp4"
STILL_CLIP = "talking_512_d0.mp4"  # 78 frames of a nearly motionless speaker: a hard case for ratios
TARGET_SWAP_FPS = 40.0
TARGET_SWAP_VS_TIGHT = 0.5
GROUP_CLIP = "group_1080p.mp4"
PORTRAIT_CLIP = "portrait_720x1280_d13.mp4"
MEMORY_TOLERANCE = 0.10

# ------------------------------------------------------------------------------------------ helpers


def source_faces(fa: FaceAnalyzer) -> list[tuple[np.ndarray, Face]]:
    rgb = load_image(sample_path("grace_hopper")).rgb
    return [(rgb, fa.get(rgb, identity=False, small_faces=False)[0])]


def trim_end(path: Path, max_frames: int | None) -> float | None:
    """Trim end (seconds) that keeps the first ``max_frames`` frames; None for the whole clip."""
    if not max_frames:
        return None
    info = probe(path)
    if info.frames and max_frames >= info.frames:
        return None
    return max_frames / info.fps


def proc_status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in kB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def mb(kb: float | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# -------------------------------------------------------------------------------------------- speed


def run_speed(
    videos: Path,
    work: Path,
    fa: FaceAnalyzer,
    sources: list,
    max_frames: int | None,
    rounds: int,
    stage_frames: int,
    occlusion: bool = True,
) -> dict[str, Any]:
    """Whole-process swaps against a tight decode + encode, and the per-stage CPU table (``occlusion``:
    occlusion handling on, the default, or off)."""
    off = [] if occlusion else ["--occlusion", "off"]
    clips = [
        (videos / SPEED_CLIP, off),
        (videos / PORTRAIT_CLIP, off),
        (videos / GROUP_CLIP, ["--faces", "all", *off]),
    ]
    clips = [(p, extra) for p, extra in clips if p.is_file()]
    rows = run_limit(clips, work, rounds, max_frames or 0, lambda p: probe(p).fps)
    single = SwapJob(sources=sources, options=SwapOptions(occlusion=occlusion))
    stages = [run_stages(videos / SPEED_CLIP, single, fa, stage_frames)]
    if (videos / GROUP_CLIP).is_file():
        every = SwapJob(sources=sources, options=SwapOptions(target_faces="all", occlusion=occlusion))
        stages.append(run_stages(videos / GROUP_CLIP, every, fa, stage_frames))
    main = rows[0]["runs"]
    ratio = float(np.median([r["swap_over_tight"] for r in main]))
    fps = float(np.median([r["swap"]["fps"] for r in main]))
    return {
        "limit": rows,
        "stages": stages,
        "targets": {
            "swap_fps": TARGET_SWAP_FPS,
            "swap_over_tight": TARGET_SWAP_VS_TIGHT,
            "median_swap_fps": fps,
            "median_swap_over_tight": ratio,
            "swap_fps_met": fps >= TARGET_SWAP_FPS,
            "swap_over_tight_met": ratio >= TARGET_SWAP_VS_TIGHT,
        },
    }


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


# ---------------------------------------------------------------------------------------- stability


def run_stability(
    src: Path, work: Path, fa: FaceAnalyzer, sources: list, max_frames: int | None, margin: float,
    swapped: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    end = trim_end(src, max_frames)
    if swapped is None:
        swapped = work / f"swap_{src.stem}.mp4"
        t0 = time.perf_counter()
        rep = swap_video(
            SwapJob(sources=sources, video=VideoOptions(encode=EncodeOptions(end=end))), src, swapped, fa
        )
        print(
            f"stability: swapped {src.name}: {rep.frames} frames in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    res = compare(src, swapped, max_frames=max_frames or None, analyzer=fa)
    print(f"stability: measured {src.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    limit = 1.0 + margin
    rj, rf = res["ratio"]["jitter"], res["ratio"]["flicker"]
    res["clip"] = src.name
    res["trim_end_s"] = end
    res["margin"] = margin
    res["jitter_met"] = rj is not None and rj <= limit
    res["flicker_met"] = rf is not None and rf <= limit
    return res


# ------------------------------------------------------------------------------------------- memory


def build_looped(src: Path, minutes: float, tmp: Path, rebuild: bool = False) -> Path:
    """``src``'s video frames looped to ``minutes`` of video (libx264 ultrafast crf 23, no audio)."""
    import av

    info = probe(src)
    n = int(round(minutes * 60 * info.fps))
    dst = tmp / f"loop_{src.stem}_{minutes:g}min.mp4"
    if dst.exists() and not rebuild:
        try:
            if probe(dst).frames == n:
                return dst
        except masquerade.MasqueradeError:
            pass
    print(f"memory: building {dst} ({n} frames)", file=sys.stderr)
    fd, part = tempfile.mkstemp(prefix=dst.name + ".", suffix=".part.mp4", dir=tmp)
    os.close(fd)
    t0 = time.perf_counter()
    with av.open(str(src)) as probe_in:
        rate = probe_in.streams.video[0].average_rate or Fraction(round(info.fps))
    tb = 1 / Fraction(rate)
    with av.open(part, mode="w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height = info.width, info.height
        vs.pix_fmt = "yuv420p"
        vs.time_base = tb
        vs.options = {"preset": "ultrafast", "crf": "23"}
        i = 0
        while i < n:
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    if i >= n:
                        break
                    f = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
                    f.pts, f.time_base = i, tb
                    for p in vs.encode(f):
                        out.mux(p)
                    i += 1
            if i == 0:
                raise RuntimeError(f"{src}: no frame decoded")
        for p in vs.encode(None):
            out.mux(p)
    os.replace(part, dst)
    print(f"memory: built {dst.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return dst


def child_swap(src: Path, dst: Path, result: Path) -> int:
    """``--child-swap`` mode: swap ``src`` → ``dst`` in this process and write the figures to ``result``."""
    fa = FaceAnalyzer(identity=False).prepare()
    sources = source_faces(fa)
    base_hwm, base_rss = proc_status("VmHWM"), proc_status("VmRSS")
    info = probe(src)
    total = info.frames or int(info.duration * info.fps) or 300
    every = max(1, total // 10)
    samples: list[tuple[int, int | None]] = []

    def progress(frames: int, seconds: float) -> None:
        if frames % every == 0:
            samples.append((frames, proc_status("VmRSS")))

    t0 = time.perf_counter()
    rep = swap_video(SwapJob(sources=sources), src, dst, fa, progress=progress)
    wall = time.perf_counter() - t0
    fa.close()
    result.write_text(
        json.dumps(
            {
                "frames": rep.frames,
                "frames_swapped": rep.frames_swapped,
                "wall_s": round(wall, 2),
                "fps": round(rep.frames / wall, 2),
                "baseline_hwm_kb": base_hwm,
                "baseline_rss_kb": base_rss,
                "peak_hwm_kb": proc_status("VmHWM"),
                "rss_samples_kb": samples,
            }
        )
    )
    return 0


def run_child(src: Path, work: Path) -> dict[str, Any]:
    dst = work / f"mem_out_{src.stem}.mp4"
    result = work / f"mem_{src.stem}.json"
    log = work / f"mem_{src.stem}.log"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-swap", str(src), str(dst), str(result)]
    with log.open("w") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not result.exists():
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"child swap of {src.name} failed (exit {proc.returncode}):\n{tail}")
    r = json.loads(result.read_text())
    dst.unlink(missing_ok=True)
    rss = [kb for _, kb in r["rss_samples_kb"] if kb]
    return {
        "input": src.name,
        "frames": r["frames"],
        "frames_swapped": r["frames_swapped"],
        "wall_s": r["wall_s"],
        "fps": r["fps"],
        "peak_rss_mb": mb(r["peak_hwm_kb"]),  # the child's VmHWM after the swap
        # kB on Linux; includes the parent's high-water mark at spawn (exec keeps the old mm's maximum)
        "wait4_ru_maxrss_mb": mb(usage.ru_maxrss),
        "child_baseline_hwm_mb": mb(r["baseline_hwm_kb"]),
        "child_baseline_rss_mb": mb(r["baseline_rss_kb"]),
        "growth_mb": mb(r["peak_hwm_kb"] - r["baseline_hwm_kb"])
        if r["peak_hwm_kb"] and r["baseline_hwm_kb"]
        else None,
        "rss_first_last_sample_mb": [mb(rss[0]), mb(rss[-1])] if rss else None,
        "rss_samples": [[f, mb(kb)] for f, kb in r["rss_samples_kb"]],
    }


def run_memory(src: Path, minutes: list[float], tmp: Path, rebuild: bool) -> dict[str, Any]:
    runs = []
    for m in minutes:
        inp = build_looped(src, m, tmp, rebuild)
        t0 = time.perf_counter()
        r = run_child(inp, tmp)
        r["minutes"] = m
        runs.append(r)
        print(
            f"memory: {m:g} min: {r['frames']} frames, {r['fps']:.1f} fps, peak RSS {r['peak_rss_mb']} MB "
            f"({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
    first, last = runs[0], runs[-1]
    ratio = last["peak_rss_mb"] / first["peak_rss_mb"] if first["peak_rss_mb"] else None
    return {
        "source": src.name,
        "runs": runs,
        "peak_ratio_longest_over_shortest": _r(ratio, 3),
        "tolerance": MEMORY_TOLERANCE,
        "met": ratio is not None and abs(ratio - 1.0) <= MEMORY_TOLERANCE,
    }


# ----------------------------------------------------------------------------------------- markdown


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def yes(ok: bool) -> str:
    return "met" if ok else "not met"


def markdown(res: dict[str, Any]) -> str:
    lines: list[str] = []
    sp = res.get("speed")
    if sp:
        lines += limit_markdown(sp["limit"], sp["stages"])
        tg = sp["targets"]
        lines += [
            f"Median over rounds, {SPEED_CLIP}: swap / tight {tg['median_swap_over_tight']:.2f}× "
            f"(target ≥ {tg['swap_over_tight']:.1f}×: {yes(tg['swap_over_tight_met'])}), "
            f"{tg['median_swap_fps']:.1f} fps whole process (target ≥ {tg['swap_fps']:.0f}: "
            f"{yes(tg['swap_fps_met'])}).",
            "",
        ]
    st = res.get("stability")
    if st:
        margin = next(iter(st.values()))["margin"]
        lines += [
            "| Stability (input → output) | Frames (with face in/out) | Jitter, IOD | Jitter ratio "
            f"| Flicker, L | Flicker ratio | ≤ {1 + margin:.2f}× |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in st.values():
            ji, jo = r["input"]["jitter"], r["output"]["jitter"]
            fi, fo = r["input"]["flicker"], r["output"]["flicker"]
            rj, rf = fmt(r["ratio"]["jitter"], ".2f"), fmt(r["ratio"]["flicker"], ".2f")
            lines.append(
                f"| {r['clip']} | {ji['frames']} ({ji['face_frames']}/{jo['face_frames']}) "
                f"| {fmt(ji['jitter'], '.4f')} → {fmt(jo['jitter'], '.4f')} | {rj}× "
                f"| {fmt(fi['flicker'], '.3f')} → {fmt(fo['flicker'], '.3f')} | {rf}× "
                f"| jitter {yes(r['jitter_met'])}, flicker {yes(r['flicker_met'])} |"
            )
        lines.append("")
    me = res.get("memory")
    if me:
        lines += [
            f"| Memory, {me['source']} looped (720p) | Frames | Wall | fps | Peak RSS (VmHWM) "
            "| VmHWM before swap | VmRSS first → last sample |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in me["runs"]:
            fl = r["rss_first_last_sample_mb"] or [None, None]
            lines.append(
                f"| {r['minutes']:g} min | {r['frames']} | {r['wall_s']:.1f} s | {r['fps']:.1f} "
                f"| {fmt(r['peak_rss_mb'], '.0f')} MB | {fmt(r['child_baseline_hwm_mb'], '.0f')} MB "
                f"| {fmt(fl[0], '.0f')} → {fmt(fl[1], '.0f')} MB |"
            )
        lines.append(
            f"| Peak ratio longest / shortest | {fmt(me['peak_ratio_longest_over_shortest'], '.3f')} | | | "
            f"within {100 * me['tolerance']:.0f} %: {yes(me['met'])} | | |"
        )
        lines.append("")
    env = res["environment"]
    lines.append(
        f"{env['date']}, commit {env['git_commit']}, {env['cpu']} ({env['cpu_count']} CPUs), "
        f"Python {env['python']}, PyAV {env['av']}, total {res['seconds']:.0f} s."
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- main


def parse_minutes(s: str) -> list[float]:
    vals = [float(x) for x in s.split(",") if x.strip()]
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError("expected positive minutes, e.g. 1,5")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"), help="folder of test clips")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="output folder")
    ap.add_argument(
        "--tmp", type=Path, default=Path("/tmp/masq_bench"), help="scratch folder (outside the repo)"
    )
    ap.add_argument(
        "--max-frames", type=int, default=300,
        help="frames per clip for speed and stability (0: whole clips; music_720p has 289)",
    )  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="speed: rounds of tight / swap / plain per clip")
    ap.add_argument("--stage-frames", type=int, default=120, help="speed: frames of the per-stage table")
    ap.add_argument("--margin", type=float, default=0.10, help="allowed stability ratio above 1")
    ap.add_argument("--memory-minutes", type=parse_minutes, default=[1.0, 5.0], help="looped input lengths")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the looped memory inputs")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-stability", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the swapped videos in --tmp")
    ap.add_argument(
        "--occlusion", choices=["on", "off"], default="on",
        help="speed: swap with occlusion handling on (the default, as masquerade swap) or off",
    )  # fmt: skip
    ap.add_argument(
        "--child-swap", nargs=3, type=Path, metavar=("SRC", "DST", "RESULT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)

    if args.child_swap:
        return child_swap(*args.child_swap)

    music, talking = args.videos / SPEED_CLIP, args.videos / TALKING_CLIP
    for p in (music, talking):
        if not p.is_file():
            ap.error(f"{p} not found (use --videos)")
    args.out.mkdir(parents=True, exist_ok=True)
    args.tmp.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run_", dir=args.tmp))
    max_frames = args.max_frames or None

    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "environment": environment("av"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    try:
        if not (args.skip_speed and args.skip_stability):
            fa = FaceAnalyzer(identity=False).prepare()
            sources = source_faces(fa)
            try:
                if not args.skip_speed:
                    res["speed"] = run_speed(
                        args.videos, work, fa, sources, max_frames, args.rounds, args.stage_frames,
                        args.occlusion == "on",
                    )  # fmt: skip
                if not args.skip_stability:
                    music_swap = None
                    res["stability"] = {
                        "talking": run_stability(talking, work, fa, sources, max_frames, args.margin),
                        "music": run_stability(music, work, fa, sources, max_frames, args.margin, music_swap),
                    }
                    still = args.videos / STILL_CLIP
                    if still.is_file():
                        res["stability"]["still"] = run_stability(
                            still, work, fa, sources, max_frames, args.margin
                        )
            finally:
                fa.close()
        if not args.skip_memory:
            res["memory"] = run_memory(music, args.memory_minutes, args.tmp, args.rebuild)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = round(time.perf_counter() - t_start, 1)

    (args.out / "video.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (args.out / "video.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test of ``masquerade serve``: N jobs submitted at once by N client threads, against a server
started as a user starts it (a separate process on localhost, its access token given in
``MASQUERADE_TOKEN`` and sent by every client as ``Authorization: Bearer``).

Each client uploads its own source and target (the first N different-person pairs of ``lfw_swap_v1``
when ``--lfw`` is given, else the two bundled samples), submits the job, polls it to the end and
downloads the result. Checked for every job: it finished ``done`` (none lost, none failed) and its
result is right — equal to the library's own swap of the same pair (``FaceSwapper.swap``, default
options) up to the provenance watermark (PSNR > 38 dB); whether the output's identity is nearer the
source than the target is reported too (mesh3d achieves that on ~91 % of lfw_swap_v1). Reported:
wall time, throughput, submit → done latency (median, max), and the server's queue behaviour.

    python benchmarks/bench_server.py --jobs 8 --workers 1 [--lfw ../shared/data/lfw] [--occlusion off]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from envinfo import environment

from masquerade import FaceAnalyzer, FaceSwapper, SwapOptions, load_image, sample_path
from masquerade.identity.encoder import euclidean_distance
from masquerade.provenance.watermark import psnr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pairs(lfw: Path | None, n: int) -> list[tuple[Path, Path]]:
    if lfw is None:
        return [(Path(sample_path("grace_hopper")), Path(sample_path("astronaut")))] * n
    from masquerade.evaluation import load_benchmark

    bench = load_benchmark("lfw_swap_v1", lfw)
    swaps = [(p.source, p.target) for p in bench.pairs if p.kind == "swap"]
    return [swaps[i % len(swaps)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8, help="jobs submitted at once (one client thread each)")
    ap.add_argument("--workers", type=int, default=1, help="the server's --jobs (jobs running at once)")
    ap.add_argument("--lfw", type=Path, help="LFW root: use lfw_swap_v1's pairs instead of the samples")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/server.json"))
    ap.add_argument(
        "--occlusion", choices=["on", "off"], default="on", help="the jobs' occlusion handling (default on)"
    )
    args = ap.parse_args()
    occlusion = args.occlusion == "on"

    pairs = _pairs(args.lfw, args.jobs)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(32)
    auth = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, "-m", "masquerade", "serve", "--port", str(port), "--data", data,
               "--jobs", str(args.workers), "--queue", str(max(16, args.jobs))]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MASQUERADE_TOKEN": token},
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    if httpx.get(url + "/api/health", timeout=2, headers=auth).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            else:
                raise SystemExit("masquerade serve did not answer")
            results: list[dict] = [{} for _ in pairs]
            barrier = threading.Barrier(len(pairs))

            def client(k: int, src: Path, tgt: Path) -> None:
                with httpx.Client(base_url=url, timeout=60, headers=auth) as c:
                    ids = [
                        c.post("/api/uploads", files={"file": (p.name, p.read_bytes())}).json()["id"]
                        for p in (src, tgt)
                    ]
                    barrier.wait()  # every client submits at the same moment
                    t0 = time.monotonic()
                    body = {"source": ids[0], "target": ids[1], "occlusion": occlusion}
                    r = c.post("/api/jobs", json=body)
                    rec = {"submit_status": r.status_code, "source": str(src), "target": str(tgt)}
                    if r.status_code == 202:
                        job_id = r.json()["id"]
                        while True:
                            job = c.get(f"/api/jobs/{job_id}").json()
                            if job["status"] in ("done", "failed", "cancelled", "interrupted"):
                                break
                            time.sleep(0.2)
                        rec.update(
                            status=job["status"], latency=time.monotonic() - t0, error=job.get("error")
                        )
                        rec["run"] = (job["finished"] or 0) - (job["started"] or 0)
                        if job["status"] == "done":
                            rec["result"] = c.get(job["result_url"]).content
                    results[k] = rec

            t0 = time.monotonic()
            threads = [threading.Thread(target=client, args=(k, s, t)) for k, (s, t) in enumerate(pairs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    # correctness: each result is the library's own swap of that pair (up to the provenance watermark,
    # ~43 dB), and (for information) whether its face is nearer the source's identity than the target's
    correct = nearer = 0
    with FaceAnalyzer() as fa, tempfile.TemporaryDirectory() as tmp:
        fs = FaceSwapper(SwapOptions(occlusion=occlusion), analyzer=fa)
        for k, rec in enumerate(results):
            if rec.get("status") != "done":
                continue
            out = Path(tmp) / f"{k}.png"
            out.write_bytes(rec.pop("result"))
            src, tgt, got = (load_image(p).rgb for p in (rec["source"], rec["target"], out))
            want, _ = fs.swap(src, tgt, source=fs.source_face(src))
            rec["psnr_vs_library"] = round(psnr(got, want), 2)
            correct += rec["psnr_vs_library"] > 38.0
            emb = [fa.get(x) for x in (src, tgt, got)]
            if all(emb):
                e_s, e_t, e_o = (f[0].embedding for f in emb)
                rec["nearer_source"] = bool(euclidean_distance(e_o, e_s) < euclidean_distance(e_o, e_t))
                nearer += rec["nearer_source"]
    done = [r for r in results if r.get("status") == "done"]
    lat = np.array([r["latency"] for r in done]) if done else np.zeros(1)
    runs = np.array([r["run"] for r in done]) if done else np.zeros(1)
    summary = {
        "jobs": len(pairs),
        "server_workers": args.workers,
        "accepted": sum(r.get("submit_status") == 202 for r in results),
        "done": len(done),
        "lost_or_failed": len(pairs) - len(done),
        "equal_to_library_swap": correct,
        "nearer_source_than_target": nearer,
        "wall_s": round(wall, 2),
        "jobs_per_minute": round(60 * len(done) / wall, 2),
        "latency_median_s": round(float(np.median(lat)), 2),
        "latency_max_s": round(float(lat.max()), 2),
        "job_run_median_s": round(float(np.median(runs)), 2),
        "inputs": "lfw_swap_v1" if args.lfw else "samples",
        "occlusion": args.occlusion,
    }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment("numpy"), "summary": summary,
                                    "jobs": results}, indent=2, default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()

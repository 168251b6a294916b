"""Latency of the web studio's preview (``POST /api/preview``) and of its "before" picture
(``GET /api/uploads/ID/frame.jpg``) on a warm server: the server in this process (FastAPI's test
client with its lifespan; no job worker), Grace Hopper as the source.

Targets: a 1280×720 photo (music_720p.mp4's frame at 5 s, as a JPEG), music_720p.mp4 (a keyframe a
second) and, for a crowd, group_1080p.mp4 (one keyframe, nine people) with its second person picked
(``target_faces: "one"``: every face of the frame identified). For each: the first preview (the target
analysed, the swapper made), the same again (warm), a compositing change (``mask: skin``: nothing is
analysed again) and, for a video, the scrubber moving forward (a new time each call: a frame decoded
on from the last one and analysed) and jumping back (a seek). Reported per row: the server's own time
(``X-Preview-Ms``) and the client's round trip, medians where a row repeats.

    python benchmarks/bench_preview.py --videos ../shared/data/videos [--out benchmarks/out/preview.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
from envinfo import environment
from fastapi.testclient import TestClient

from masquerade import sample_path
from masquerade.server.app import ServerConfig, create_app
from masquerade.video.probe import frame_at

TOKEN = "bench-token-0123456789abcdef"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, required=True, help="the shared videos folder")
    ap.add_argument("--repeat", type=int, default=5, help="calls per repeated row (default 5)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/preview.json"))
    args = ap.parse_args()
    music, group = args.videos / "music_720p.mp4", args.videos / "group_1080p.mp4"
    data = Path(tempfile.mkdtemp(prefix="preview-bench-"))
    photo = data / "photo720.jpg"
    rgb, _ = frame_at(music, 5.0)
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    cfg = ServerConfig(data=data / "store", concurrency=0, token=TOKEN)
    rows: list[dict[str, Any]] = []
    with TestClient(
        create_app(cfg), base_url="http://127.0.0.1:7860", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:

        def upload(path: Path) -> str:
            r = c.post("/api/uploads", files={"file": (path.name, path.read_bytes())})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        def call(body: dict[str, Any]) -> tuple[float, float]:
            t0 = time.perf_counter()
            r = c.post("/api/preview", json=body)
            wall = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200 and r.headers["x-faces-swapped"] != "0", r.text
            return float(r.headers["x-preview-ms"]), wall

        def frame(target: str, at: float) -> tuple[float, float]:
            t0 = time.perf_counter()
            r = c.get(f"/api/uploads/{target}/frame.jpg", params={"time": at})
            assert r.status_code == 200, r.text
            wall = (time.perf_counter() - t0) * 1000
            return wall, wall

        def row(what: str, label: str, runs: list[tuple[float, float]]) -> None:
            server = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            rows.append(
                {"target": what, "call": label, "n": len(runs), "server_ms": server, "round_trip_ms": wall}
            )
            print(
                f"{what:22s} {label:42s} server {server:6.0f} ms   round trip {wall:6.0f} ms  (n={len(runs)})"
            )

        src = upload(sample_path("grace_hopper"))
        n = args.repeat
        targets = [("720p photo", upload(photo), {}, None), ("music_720p frame", upload(music), {}, 2.0)]
        if group.is_file():
            targets.append(
                ("group_1080p, person 2", upload(group), {"target_faces": "one", "target_face": 1}, 0.5)
            )
        for what, target, extra, at in targets:
            body = {"source": src, "target": target, **extra, **({} if at is None else {"time": at})}
            row(what, "first preview", [call(body)])
            row(what, "same again (warm)", [call(body) for _ in range(n)])
            row(what, "mask skin (warm)", [call({**body, "mask": "skin"}) for _ in range(n)])
            if at is not None:
                ahead = [call({**body, "time": at + 0.4 * (k + 1)}) for k in range(n)]
                row(what, "scrubber forward, 0.4 s a step (new frames)", ahead)
                row(what, "jump back to 0.1 s (a seek)", [call({**body, "time": 0.1})])
                row(
                    what,
                    "unswapped frame.jpg, forward 0.3 s a step",
                    [frame(target, at + 1.05 + 0.3 * k) for k in range(n)],
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment(), "rows": rows}, indent=2))
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()

"""``masquerade serve``'s REST API on real photos (FastAPI's test client, real worker processes):
uploads and their checks, jobs from queue to result, cancelling, the per-job time limit, the bounded
queue, persistence across a restart, the errors of bad requests, and the warm workers — reused from
job to job, replaced when killed, cancelled, crashed or over their memory limit."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from masquerade import FaceAnalyzer, load_image, sample_path, save_image
from masquerade.cli.main import main
from masquerade.identity.encoder import euclidean_distance
from masquerade.provenance.watermark import detect_file
from masquerade.server.app import ServerConfig, create_app
from masquerade.server.store import JobStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _upload(c: TestClient, path: Path | str, name: str = "photo.jpg", data: bytes | None = None):
    body = data if data is not None else Path(path).read_bytes()
    return c.post("/api/uploads", files={"file": (name, body)})


def _wait(c: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def _clip(path: Path, frames: int) -> Path:
    """A clip of the astronaut (the photo, slightly moving), 512×512 at 10 fps."""
    import av

    astro = load_image(sample_path("astronaut")).rgb
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
        for k in range(frames):
            frame = np.roll(astro[:512, :512], k, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def _running(c: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    """The job once it has left the queue."""
    t0 = time.monotonic()
    while (job := c.get(f"/api/jobs/{job_id}").json())["status"] == "queued":
        assert time.monotonic() - t0 < timeout, f"job {job_id} still queued after {timeout} s"
        time.sleep(0.05)
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(condition, timeout: float = 60.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, f"not after {timeout} s: {what}"
        time.sleep(0.05)


def _idle_worker(c: TestClient) -> int:
    """The pid of the server's worker once it is warm and idle (one worker: concurrency 1)."""
    scheduler = c.app.state.scheduler
    _until(lambda: scheduler.workers()["idle"] == 1, 120.0, "an idle warm worker")
    (pid,) = scheduler.pids
    return pid


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory) -> Path:
    """A target video whose job runs for seconds: long enough to be cancelled, killed or timed out."""
    return _clip(tmp_path_factory.mktemp("clip") / "slow.mp4", 60)


@pytest.fixture(scope="module")
def judge():
    """Whether a result carries the source's identity on the target's face (and the watermark)."""
    hopper, astro = load_image(sample_path("grace_hopper")).rgb, load_image(sample_path("astronaut")).rgb
    with FaceAnalyzer() as fa:
        e_src, e_tgt = (fa.get(x)[0].embedding for x in (hopper, astro))

        def check(out: Path) -> None:
            swapped = load_image(out).rgb
            assert swapped.shape == astro.shape
            e_out = fa.get(swapped)[0].embedding
            assert euclidean_distance(e_out, e_src) < euclidean_distance(e_out, e_tgt)
            assert detect_file(out).present

        yield check


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    with TestClient(create_app(ServerConfig(data=data, queue_size=4))) as c:
        yield c, data


@pytest.fixture(scope="module")
def uploads(server):
    c, _ = server
    src = _upload(c, sample_path("grace_hopper"), "hopper.jpg")
    tgt = _upload(c, sample_path("astronaut"), "astronaut.png")
    assert src.status_code == 201 and tgt.status_code == 201, (src.text, tgt.text)
    return src.json(), tgt.json()


def test_upload_describes_the_file_and_its_faces(server, uploads) -> None:
    c, data = server
    src, tgt = uploads
    assert (
        src["kind"] == "image" and (src["width"], src["height"]) == (512, 600) and src["name"] == "hopper.jpg"
    )
    assert len(src["faces"]) == 1 and len(tgt["faces"]) == 1
    thumb = c.get(src["faces"][0]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 128
    # stored under the upload's id with an extension from the content, not the client's name
    assert (data / "uploads" / tgt["id"] / "input.jpg").is_file()  # a JPEG sent as "astronaut.png"
    assert c.get(f"/api/uploads/{src['id']}").json()["faces"] == src["faces"]


def test_job_swaps_and_returns_a_marked_result(server, uploads, judge, tmp_path) -> None:
    c, _ = server
    src, tgt = uploads
    r = c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running")
    job = _wait(c, r.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0, job
    res = c.get(job["result_url"])
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert "attachment" in res.headers["content-disposition"]
    out = tmp_path / "result.png"
    out.write_bytes(res.content)
    # the target's face now carries the source's identity; the file carries the provenance watermark
    judge(out)
    assert "worker" not in job  # which process ran it is the server's business


def test_bad_uploads_are_refused_in_one_line(server, tmp_path) -> None:
    c, data = server
    before = sorted((data / "uploads").iterdir())
    cases = [
        (b"", 400, "empty"),
        (b"GIF89a not really", 400, "not an image or a video"),
        (Path(sample_path("astronaut")).read_bytes()[:2000], 400, ""),  # truncated PNG
        (_png(np.full((64, 64, 3), 128, np.uint8)), 422, "no face"),
    ]
    for body, status, needle in cases:
        r = _upload(c, "", "x.png", body)
        assert r.status_code == status, (r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and needle in detail
    assert sorted((data / "uploads").iterdir()) == before  # nothing kept of a refused upload


def test_limits(tmp_path) -> None:
    photo = Path(sample_path("grace_hopper"))
    with TestClient(create_app(ServerConfig(data=tmp_path / "a", max_upload_mb=0.01))) as c:
        r = _upload(c, photo)
        assert r.status_code == 413 and "larger than" in r.json()["detail"]
    with TestClient(create_app(ServerConfig(data=tmp_path / "b", max_pixels=100_000))) as c:
        r = _upload(c, photo)
        assert r.status_code == 413 and "over the limit of 100,000 pixels" in r.json()["detail"], r.json()
        # a tiny image is bad input, not over a limit
        tiny = tmp_path / "tiny.png"
        save_image(tiny, np.zeros((1, 1, 3), np.uint8))
        r = _upload(c, tiny)
        assert r.status_code == 400 and "too small" in r.json()["detail"], r.json()
        # a header so large that the decoder refuses to open it: still the limit, named
        bomb = tmp_path / "bomb.png"
        bomb.write_bytes(_png_header(20_000, 20_000))
        r = _upload(c, bomb)
        assert r.status_code == 413 and "100,000 pixels" in r.json()["detail"], r.json()


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header declares w×h RGB pixels (no image data)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_job_errors(server, uploads) -> None:
    c, _ = server
    src, tgt = uploads
    unknown = "0" * 32
    for body, status, needle in (
        ({"source": unknown, "target": tgt["id"]}, 404, "no upload"),
        ({"source": src["id"], "target": "../../etc/passwd"}, 404, "no upload"),
        ({"source": src["id"], "target": tgt["id"], "swapper": "magic"}, 422, "unknown swapper"),
        ({"source": src["id"], "target": tgt["id"], "target_faces": "one"}, 422, "target_face"),
        ({"source": src["id"], "target": tgt["id"], "source_face": 3}, 422, "has 1 face"),
        ({"source": src["id"], "target": tgt["id"], "mask": "everything"}, 422, ""),
    ):
        r = c.post("/api/jobs", json=body)
        assert r.status_code == status and needle in str(r.json()["detail"]), (body, r.text)
    for path in (
        f"/api/jobs/{unknown}",
        "/api/jobs/nope",
        f"/api/jobs/{unknown}/result",
        "/api/uploads/x%2F..%2F",
    ):
        assert c.get(path).status_code == 404, path
    assert c.post(f"/api/jobs/{unknown}/cancel").status_code == 404


def test_cancel_and_result_of_an_unfinished_job(server, uploads, slow_clip) -> None:
    c, _ = server
    src, _ = uploads
    tgt = _upload(c, slow_clip, "slow.mp4").json()  # a job of seconds: not done before it is cancelled
    job = c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()
    r = c.get(f"/api/jobs/{job['id']}/result")
    assert r.status_code == 409 and "no result" in r.json()["detail"]
    assert c.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = _wait(c, job["id"])
    assert done["status"] == "cancelled" and "result_url" not in done


def test_queue_is_bounded_and_time_limit_stops_a_job(tmp_path, slow_clip) -> None:
    cfg = ServerConfig(data=tmp_path / "q", queue_size=1, job_time_limit=0.5)
    with TestClient(create_app(cfg)) as c:
        src = _upload(c, sample_path("grace_hopper")).json()
        tgt = _upload(c, slow_clip, "slow.mp4").json()
        codes = [c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}) for _ in range(4)]
        assert 429 in [r.status_code for r in codes]
        full = next(r for r in codes if r.status_code == 429)
        assert "queue is full" in full.json()["detail"]
        accepted = [r.json()["id"] for r in codes if r.status_code == 202]
        for job_id in accepted:  # 60 frames take seconds, even on a warm worker
            job = _wait(c, job_id)
            assert job["status"] == "failed" and "time limit" in job["error"], job


def test_jobs_persist_across_a_restart(tmp_path) -> None:
    data = tmp_path / "p"
    with TestClient(create_app(ServerConfig(data=data))) as c:
        src = _upload(c, sample_path("grace_hopper")).json()
        tgt = _upload(c, sample_path("astronaut")).json()
        done = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
        assert done["status"] == "done"
        result = c.get(done["result_url"]).content
    # a job left running by a server that died
    store = JobStore(data)
    lost = store.add_job(
        {"kind": "image", "source": src["id"], "target": tgt["id"], "options": {}, "public": {}}
    )
    assert store.start(lost.id)
    with TestClient(create_app(ServerConfig(data=data))) as c:
        again = c.get(f"/api/jobs/{done['id']}").json()
        assert again["status"] == "done" and c.get(again["result_url"]).content == result
        gone = c.get(f"/api/jobs/{lost.id}").json()
        assert gone["status"] == "interrupted" and "submit it again" in gone["error"]


def test_video_job(tmp_path) -> None:
    """A short clip of the astronaut (the photo, slightly moving) as target: an MP4 result with the
    same number of frames."""
    import av

    clip = _clip(tmp_path / "clip.mp4", 8)
    with TestClient(create_app(ServerConfig(data=tmp_path / "v"))) as c:
        src = _upload(c, sample_path("grace_hopper")).json()
        tgt = _upload(c, clip, "clip.mp4")
        assert tgt.status_code == 201, tgt.text
        tgt = tgt.json()
        assert tgt["kind"] == "video" and tgt["frames"] == 8 and len(tgt["faces"]) == 1
        job = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
        assert job["status"] == "done", job
        res = c.get(job["result_url"])
        assert res.headers["content-type"] == "video/mp4"
        got = tmp_path / "got.mp4"
        got.write_bytes(res.content)
        with av.open(str(got)) as f:
            assert sum(1 for _ in f.decode(video=0)) == 8


def test_serve_command_checks_its_options(tmp_path, capsys) -> None:
    for argv, needle in (
        (["--jobs", "0"], "--jobs"),
        (["--max-upload-mb", "-1"], "--max-upload-mb"),
        (["--model", f"x={tmp_path}"], "not a trained model folder"),
        (["--port", "70000"], "--port"),
        (["--worker-memory-mb", "-5"], "--worker-memory-mb"),
        (["--c2pa-cert", str(tmp_path)], "go together"),
        (["--c2pa-cert", str(tmp_path / "no.pem"), "--c2pa-key", str(tmp_path / "no.pem")], "no such file"),
    ):
        rc = main(["serve", "--data", str(tmp_path / "d"), *argv])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.startswith("error: ") and needle in err and "\n" not in err, (argv, err)


def test_many_swaps_two_people_through_the_api(server, uploads, tmp_path) -> None:
    """``target_faces: many`` with two sources: each person of a two-person photo gets the source whose
    face index was given for them (here the two people trade faces), as ``swap --faces many`` does."""
    c, _ = server
    src, tgt = uploads
    hopper, astro = load_image(sample_path("grace_hopper")).rgb, load_image(sample_path("astronaut")).rgb
    h = max(hopper.shape[0], astro.shape[0])
    pad = [np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), mode="edge") for x in (astro, hopper)]
    pair = np.concatenate(pad, axis=1)  # astronaut on the left, Grace Hopper on the right
    up = _upload(c, "", "pair.png", _png(pair))
    assert up.status_code == 201, up.text
    faces = up.json()["faces"]
    assert len(faces) == 2
    left = min(range(2), key=lambda k: faces[k]["box"][0])
    body = {
        "sources": [src["id"], tgt["id"]], "target": up.json()["id"], "target_faces": "many",
        "reference_faces": [left, 1 - left], "options": {"shape_strength": 1.0},
    }  # fmt: skip
    # the combination is checked as the CLI checks it
    bad = c.post("/api/jobs", json={**body, "target_faces": "all"})
    assert bad.status_code == 422 and "go with target_faces 'many'" in bad.json()["detail"], bad.text
    bad = c.post("/api/jobs", json={**body, "target_faces": "all", "reference_faces": []})
    assert bad.status_code == 422 and "need --faces many" in bad.json()["detail"], bad.text
    bad = c.post("/api/jobs", json={**body, "options": {"steps": 4}})
    assert bad.status_code == 422 and "--swapper diffusion" in bad.json()["detail"], bad.text
    job = _wait(c, c.post("/api/jobs", json=body).json()["id"])
    assert job["status"] == "done", job
    out = tmp_path / "pair.png"
    out.write_bytes(c.get(job["result_url"]).content)
    with FaceAnalyzer() as fa:
        e_hopper, e_astro = (fa.get(x)[0].embedding for x in (hopper, astro))
        found = sorted(fa.get(load_image(out).rgb), key=lambda f: f.box[0])
    assert len(found) == 2
    l_face, r_face = found
    assert euclidean_distance(l_face.embedding, e_hopper) < euclidean_distance(l_face.embedding, e_astro)
    assert euclidean_distance(r_face.embedding, e_astro) < euclidean_distance(r_face.embedding, e_hopper)
    assert c.get("/api/swappers").json()["details"][0]["options"]  # mesh3d's options are listed


def test_provenance_can_be_off_only_where_the_server_allows_it(server, uploads, tmp_path) -> None:
    """``provenance: false`` is ``swap --no-provenance``: refused unless the operator allows it
    (``serve --allow-no-provenance``); there the output carries no watermark."""
    c, _ = server
    src, tgt = uploads
    r = c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"], "provenance": False})
    assert r.status_code == 422 and "provenance cannot be off" in r.json()["detail"], r.text
    cfg = ServerConfig(data=tmp_path / "open", allow_no_provenance=True)
    with TestClient(create_app(cfg)) as c2:
        s2, t2 = (_upload(c2, sample_path(n)).json() for n in ("grace_hopper", "astronaut"))
        job = _wait(
            c2,
            c2.post("/api/jobs", json={"source": s2["id"], "target": t2["id"], "provenance": False}).json()[
                "id"
            ],
        )
        assert job["status"] == "done", job
        out = tmp_path / "plain.png"
        out.write_bytes(c2.get(job["result_url"]).content)
    assert not detect_file(out).present


# -- warm workers ----------------------------------------------------------------------------------


def test_photo_jobs_in_a_row_share_one_warm_worker(server, uploads, judge, tmp_path) -> None:
    """The worker loads its models once: two photo jobs in a row run in the same process, each only
    the swap (not a process start and a model load), and both results are right."""
    c, data = server
    src, tgt = uploads
    store = JobStore(data)
    pid = _idle_worker(c)
    for k in range(2):
        job = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
        assert job["status"] == "done", job
        assert store.job(job["id"]).worker == pid
        out = tmp_path / f"result-{k}.png"
        out.write_bytes(c.get(job["result_url"]).content)
        judge(out)
    assert _idle_worker(c) == pid and _alive(pid)
    assert c.get("/api/health").json()["workers"] == {"starting": 0, "idle": 1, "busy": 0}


def test_cancelling_a_running_job_replaces_its_worker(server, uploads, slow_clip, judge, tmp_path) -> None:
    c, data = server
    src, _ = uploads
    store = JobStore(data)
    pid = _idle_worker(c)
    clip = _upload(c, slow_clip, "slow.mp4").json()
    job = c.post("/api/jobs", json={"source": src["id"], "target": clip["id"]}).json()
    assert _running(c, job["id"])["status"] == "running"
    assert store.job(job["id"]).worker == pid
    c.post(f"/api/jobs/{job['id']}/cancel")
    done = _wait(c, job["id"])
    assert done["status"] == "cancelled" and done["error"] == "cancelled while running", done
    assert not _alive(pid)  # killed with its job
    # a replacement warms up and serves the next job
    _, tgt = uploads
    nxt = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
    assert nxt["status"] == "done", nxt
    assert store.job(nxt["id"]).worker not in (None, pid)
    out = tmp_path / "after-cancel.png"
    out.write_bytes(c.get(nxt["result_url"]).content)
    judge(out)


def test_a_killed_worker_fails_its_job_and_is_replaced(server, uploads, slow_clip) -> None:
    """A worker that dies (here SIGKILL, as a native crash or the OOM killer would): its job fails
    with one line, and a new worker serves the next job; an idle one that dies loses no job."""
    c, data = server
    src, tgt = uploads
    store = JobStore(data)
    scheduler = c.app.state.scheduler
    # mid-job
    pid = _idle_worker(c)
    clip = _upload(c, slow_clip, "slow.mp4").json()
    job = c.post("/api/jobs", json={"source": src["id"], "target": clip["id"]}).json()
    _running(c, job["id"])
    assert store.job(job["id"]).worker == pid
    os.kill(pid, signal.SIGKILL)
    failed = _wait(c, job["id"])
    assert failed["status"] == "failed", failed
    assert failed["error"] == "the job's process ended unexpectedly (exit code -9)", failed
    # idle
    idle = _idle_worker(c)
    assert idle != pid
    os.kill(idle, signal.SIGKILL)
    _until(lambda: idle not in scheduler.pids, 30.0, "the dead worker noticed")
    job = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
    assert job["status"] == "done", job
    assert store.job(job["id"]).worker not in (pid, idle)


def test_a_worker_over_its_memory_limit_is_replaced_after_its_job(tmp_path, judge) -> None:
    """``worker_memory_mb`` (``serve --worker-memory-mb``): a worker whose resident memory is above it
    after a job exits and a fresh one takes its place; jobs go on."""
    if not Path("/proc/self/status").exists():
        pytest.skip("resident memory is read from /proc")
    data = tmp_path / "m"
    with TestClient(create_app(ServerConfig(data=data, worker_memory_mb=1))) as c:
        src = _upload(c, sample_path("grace_hopper")).json()
        tgt = _upload(c, sample_path("astronaut")).json()
        store = JobStore(data)
        pids = []
        for k in range(2):
            job = _wait(c, c.post("/api/jobs", json={"source": src["id"], "target": tgt["id"]}).json()["id"])
            assert job["status"] == "done", job
            out = tmp_path / f"m{k}.png"
            out.write_bytes(c.get(job["result_url"]).content)
            judge(out)
            pids.append(store.job(job["id"]).worker)
        assert pids[0] != pids[1]
        _until(lambda: not _alive(pids[0]), 30.0, "the worn-out worker exits")
        assert c.get("/api/health").json()["limits"]["worker_memory_mb"] == 1


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_server_killed_with_a_running_job_takes_its_worker_along(slow_clip, tmp_path) -> None:
    """kill -9 of the server while a job runs: its worker dies with it (no orphan finishing the job
    outside every limit), and a server started again on the same data marks the job interrupted and
    serves no result for it."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url, data = f"http://127.0.0.1:{port}", tmp_path / "data"
    cmd = [sys.executable, "-m", "masquerade", "serve", "--port", str(port), "--data", str(data)]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _until(lambda: _healthy(url), 120.0, "the server answering")
        return proc

    proc = start()
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            src = c.post("/api/uploads", files={"file": ("s.jpg", sample_path("grace_hopper").read_bytes())})
            tgt = c.post("/api/uploads", files={"file": ("t.mp4", slow_clip.read_bytes())})
            job_id = c.post(
                "/api/jobs", json={"source": src.json()["id"], "target": tgt.json()["id"]}
            ).json()["id"]
            _until(
                lambda: c.get(f"/api/jobs/{job_id}").json()["status"] == "running", 120.0, "the job running"
            )
        workers = _children(proc.pid)
        assert workers, "the server has no worker process"
        proc.kill()
        proc.wait(timeout=30)
        _until(lambda: all(_state(p) in "XZ" for p in workers), 20.0, "the workers ending with the server")
        time.sleep(2.0)  # an orphan would go on writing the result now
        assert not (data / "jobs" / job_id / "result.mp4").exists(), "a result appeared"
        proc = start()
        with httpx.Client(base_url=url, timeout=30) as c:
            job = c.get(f"/api/jobs/{job_id}").json()
            assert job["status"] == "interrupted", job
            assert c.get(f"/api/jobs/{job_id}/result").status_code == 409
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"

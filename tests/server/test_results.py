"""A job's results through the REST API on real photos and a clip: what ``masquerade verify`` says of a
result (``GET /api/jobs/{id}/verify``, the same as the command on the downloaded file), several results
in one zip (``GET /api/results.zip``), and what a job reports while it runs (``target_name``, a video
job's frames and time left); the job store's frame counts and its older databases."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from test_server import _client, _clip, _upload, _wait

from masquerade import load_image, sample_path, save_image
from masquerade.cli.main import main
from masquerade.server.app import ServerConfig
from masquerade.server.runner import trimmed_frames
from masquerade.server.store import Job, JobStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("results")
    with _client(ServerConfig(data=data, queue_size=8)) as c:
        yield c, data


@pytest.fixture(scope="module")
def photo_jobs(server, tmp_path_factory):
    """Three done photo jobs: two of targets uploaded as ``astronaut.jpg`` (the photo, and it flipped),
    one of ``hopper.jpg``; as (job, its result's bytes)."""
    c, _ = server
    folder = tmp_path_factory.mktemp("photos")
    flipped = folder / "flipped.png"
    save_image(flipped, np.ascontiguousarray(load_image(sample_path("astronaut")).rgb[:, ::-1]))
    hopper = _upload(c, sample_path("grace_hopper"), "hopper.jpg").json()
    astro = _upload(c, sample_path("astronaut"), "astronaut.jpg").json()
    astro2 = _upload(c, flipped, "astronaut.jpg").json()
    specs = [(hopper, astro), (hopper, astro2), (astro, hopper)]
    ids = [c.post("/api/jobs", json={"source": s["id"], "target": t["id"]}).json()["id"] for s, t in specs]
    jobs = [_wait(c, i) for i in ids]
    assert all(j["status"] == "done" for j in jobs), jobs
    return [(j, c.get(j["result_url"]).content) for j in jobs]


def _cli_verify(path: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_photo_job_reports_its_target_name(photo_jobs) -> None:
    names = [job["target_name"] for job, _ in photo_jobs]
    assert names == ["astronaut.jpg", "astronaut.jpg", "hopper.jpg"]
    for job, _ in photo_jobs:
        assert job["frames_done"] is None and job["frames_total"] is None and job["eta"] is None


def test_verify_a_done_photo_job_as_the_command_does(server, photo_jobs, tmp_path, capsys) -> None:
    c, data = server
    job, result = photo_jobs[0]
    res = c.get(f"/api/jobs/{job['id']}/verify")
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["code"] == doc["exit_code"] == 0, doc["verdict"]
    assert doc["findings"]["watermark"] == "present" and doc["watermark"]["present"]
    assert doc["c2pa"]["present"] and doc["c2pa"]["valid"]
    assert doc["findings"]["manifest"] in ("valid", "trusted")
    assert doc["verdict"].startswith("made by masquerade")
    # the file by its download name: no path of the server in the answer
    download = c.get(job["result_url"]).headers["content-disposition"]
    assert doc["file"].endswith(".png") and doc["file"] in download
    assert str(data) not in res.text
    # the same as the command on the downloaded file
    got = tmp_path / doc["file"]
    got.write_bytes(result)
    code, cli = _cli_verify(got, capsys)
    assert code == doc["code"]
    assert cli["verdict"] == doc["verdict"] and cli["findings"] == doc["findings"]
    assert cli["watermark"]["content_hex"] == doc["watermark"]["content_hex"] == doc["c2pa"]["content_id"]
    assert {k: v for k, v in cli.items() if k not in ("file", "c2pa")} == {
        k: v for k, v in doc.items() if k not in ("file", "c2pa", "code")
    }
    # made once, then kept with the result
    assert (data / "jobs" / job["id"] / "verify.json").is_file()
    assert c.get(f"/api/jobs/{job['id']}/verify").json() == doc


def test_verify_errors(server) -> None:
    c, _ = server
    assert c.get(f"/api/jobs/{'0' * 32}/verify").status_code == 404
    assert c.get("/api/jobs/nonsense/verify").status_code == 404


def test_results_zip_holds_each_done_result_under_a_unique_name(server, photo_jobs) -> None:
    c, data = server
    ids = [job["id"] for job, _ in photo_jobs]
    res = c.get("/api/results.zip", params={"jobs": ",".join(ids)})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/zip" and "X-Skipped" not in res.headers
    assert "masquerade-results.zip" in res.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(res.content)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [
            "astronaut-swapped.png", "astronaut-swapped-2.png", "hopper-swapped.png",
        ]  # fmt: skip
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        for info, (_, result) in zip(infos, photo_jobs, strict=True):
            assert zf.read(info) == result
    # a job named twice is zipped once; the temporary zip is gone once sent
    res = c.get("/api/results.zip", params={"jobs": f"{ids[2]},{ids[2]}"})
    with zipfile.ZipFile(io.BytesIO(res.content)) as zf:
        assert zf.namelist() == ["hopper-swapped.png"]
    assert not list(data.glob(".results-*"))


def test_results_zip_errors(server, photo_jobs) -> None:
    c, _ = server
    done = photo_jobs[0][0]["id"]
    assert c.get("/api/results.zip", params={"jobs": f"{done},{'0' * 32}"}).status_code == 404
    too_many = c.get("/api/results.zip", params={"jobs": ",".join([done] * 101)})
    assert too_many.status_code == 422 and "at most 100" in too_many.json()["detail"]
    for bad in ("", "nonsense", f"{done},", f"{done};{done}", done.upper()):
        res = c.get("/api/results.zip", params={"jobs": bad})
        assert res.status_code == 422, (bad, res.text)
        assert "\n" not in res.json()["detail"]
    assert c.get("/api/results.zip").status_code == 422


def test_a_video_job_reports_its_frames_and_time_left(server, photo_jobs, tmp_path) -> None:
    """A 180-frame clip at 10 fps trimmed to 2 s … 16.5 s: 145 frames to swap, counted as they are, with
    an estimate of the time left while it runs; its result is not verified nor zipped before it is
    done (skipped, and said so), then it is."""
    import av

    c, data = server
    clip = _clip(tmp_path / "clip.mp4", 180)
    src = photo_jobs[0][0]["options"]["source"]
    tgt = _upload(c, clip, "walk.mp4").json()
    assert tgt["kind"] == "video" and tgt["frames"] == 180, tgt
    job = c.post("/api/jobs", json={"source": src, "target": tgt["id"], "start": 2.0, "end": 16.5}).json()
    assert job["target_name"] == "walk.mp4"
    assert job["frames_total"] == 145 and job["frames_done"] == 0 and job["eta"] is None
    # not done yet: no verification, and a zip with a done job skips it
    assert c.get(f"/api/jobs/{job['id']}/verify").status_code == 409
    assert c.get("/api/results.zip", params={"jobs": job["id"]}).status_code == 409
    photo, result = photo_jobs[2]
    res = c.get("/api/results.zip", params={"jobs": f"{job['id']},{photo['id']}"})
    assert res.status_code == 200 and res.headers["X-Skipped"] == job["id"]
    with zipfile.ZipFile(io.BytesIO(res.content)) as zf:
        assert zf.namelist() == ["hopper-swapped.png"] and zf.read("hopper-swapped.png") == result
    seen = []
    t0 = time.monotonic()
    while (now := c.get(f"/api/jobs/{job['id']}").json())["status"] in ("queued", "running"):
        assert time.monotonic() - t0 < 300, now
        seen.append(now)
        time.sleep(0.1)
    assert now["status"] == "done", now
    running = [s for s in seen if s["status"] == "running" and s["frames_done"]]
    assert running, "the job was never seen counting its frames"
    assert all(s["frames_total"] == 145 and 0 < s["frames_done"] <= 145 for s in running)
    counts = [s["frames_done"] for s in running]
    assert counts == sorted(counts)
    etas = [s["eta"] for s in running if s["eta"] is not None]
    assert etas and all(isinstance(e, float) and e >= 0 for e in etas), running
    assert now["frames_done"] == now["frames_total"] == 145 and now["eta"] == 0
    got = tmp_path / "got.mp4"
    got.write_bytes(c.get(now["result_url"]).content)
    with av.open(str(got)) as f:
        assert sum(1 for _ in f.decode(video=0)) == 145
    doc = c.get(f"/api/jobs/{job['id']}/verify").json()
    assert doc["code"] == 0 and doc["findings"]["watermark"] == "present", doc["verdict"]
    assert doc["file"].endswith(".mp4") and str(data) not in json.dumps(doc)
    with zipfile.ZipFile(io.BytesIO(c.get("/api/results.zip", params={"jobs": job["id"]}).content)) as zf:
        assert zf.namelist() == ["walk-swapped.mp4"] and zf.read("walk-swapped.mp4") == got.read_bytes()


def test_trimmed_frames_counts_the_frames_of_a_range() -> None:
    meta = {"frames": 105, "fps": 25.0, "duration": 4.2}
    assert trimmed_frames(meta, None, None) == 105
    assert trimmed_frames(meta, 1.0, None) == 80
    assert trimmed_frames(meta, None, 2.0) == 50
    assert trimmed_frames(meta, 1.0, 2.02) == 26  # frames at 1.00, 1.04, … 2.00
    assert trimmed_frames(meta, 3.0, 99.0) == 30
    assert trimmed_frames({"frames": 0, "fps": 10.0, "duration": 3.0}, None, None) == 30


def _job(status: str, frames: dict | None, spec: dict | None = None) -> Job:
    spec = {"kind": "video", "target_name": "a.mp4", "frames_total": 100} if spec is None else spec
    return Job("0" * 32, 0.0, status, 0.5, "", spec, None, None, 10.0, None, False, None, frames)


def test_time_left_is_estimated_from_the_rate_since_the_first_frames() -> None:
    # first counted 1 frame at t = 20, then 41 at t = 30: 4 frames a second, 59 to go at t = 32
    f = {"done": 41, "total": 100, "at": 30.0, "t0": 20.0, "n0": 1}
    d = _job("running", f).describe(now=32.0)
    assert (d["frames_done"], d["frames_total"], d["eta"]) == (41, 100, 12.8)
    assert _job("running", f).describe(now=100.0)["eta"] == 0.0  # late: not below zero
    # not enough to tell yet: under a second since the first count, or no frames since it
    assert _job("running", {**f, "at": 20.5}).describe(now=21.0)["eta"] is None
    assert _job("running", {**f, "done": 1}).describe(now=31.0)["eta"] is None
    queued = _job("queued", None).describe()
    assert (queued["frames_done"], queued["frames_total"], queued["eta"]) == (0, 100, None)
    done = _job("done", {**f, "done": 100, "total": 100}).describe()
    assert (done["frames_done"], done["frames_total"], done["eta"]) == (100, 100, 0.0)
    assert _job("failed", f).describe()["eta"] is None
    photo = _job("running", None, {"kind": "image", "target_name": "p.jpg"}).describe()
    assert (photo["frames_done"], photo["frames_total"], photo["eta"], photo["target_name"]) == (
        None, None, None, "p.jpg",
    )  # fmt: skip


def test_a_store_of_an_older_version_gains_the_new_columns(tmp_path) -> None:
    """A database made before ``worker`` and ``frames`` existed: opened, its jobs read, counted."""
    with sqlite3.connect(tmp_path / "masquerade.sqlite3") as db:
        db.executescript(
            "CREATE TABLE uploads (id TEXT PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL, "
            "name TEXT NOT NULL, ext TEXT NOT NULL, meta TEXT NOT NULL);"
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, status TEXT NOT NULL, "
            "progress REAL NOT NULL, message TEXT NOT NULL, spec TEXT NOT NULL, result TEXT, error TEXT, "
            "started REAL, finished REAL, cancel INTEGER NOT NULL DEFAULT 0);"
        )
        db.execute(
            "INSERT INTO jobs (id, created, status, progress, message, spec) VALUES (?, 1, 'queued', 0, "
            "'queued', ?)",
            ("a" * 32, json.dumps({"kind": "video", "public": {}})),
        )
    store = JobStore(tmp_path)
    old = store.job("a" * 32)
    assert old is not None and old.frames is None and old.describe()["frames_total"] is None
    assert store.start(old.id, worker=7)
    store.progress(old.id, 0.5, "frame 3 of 9", worker=7, frames=(3, 9))
    store.progress(old.id, 0.6, "frame 5 of 9", worker=7, frames=(5, 9))
    again = store.job(old.id)
    assert again is not None and again.frames is not None
    assert (again.frames["done"], again.frames["total"], again.frames["n0"]) == (5, 9, 3)
    assert again.describe()["frames_done"] == 5 and again.describe()["frames_total"] == 9

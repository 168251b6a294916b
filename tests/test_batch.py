"""Batch swapping (:mod:`masquerade.run.batch`, ``masquerade swap -t FOLDER -o FOLDER``): every photo and
video of a folder gets the source's identity; a bad file is reported and does not stop the batch; a
second run skips what is done; on Ray (2 local workers, and a 2-node cluster by address) the outputs
are the local ones, and a file whose worker keeps dying is reported failed while the rest go on.

The folder is made from the bundled samples (the astronaut photo, the 4 s test clip made from it), a
faceless image, a truncated JPEG and a text file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_segments import make_clip

from masquerade import FaceAnalyzer, load_image, sample_path
from masquerade.cli.main import main
from masquerade.errors import InputError, OutputError
from masquerade.identity.encoder import euclidean_distance
from masquerade.job import SwapJob
from masquerade.pipeline import FaceSwapper, SwapOptions
from masquerade.provenance.stamp import ProvenanceOptions
from masquerade.run.batch import plan_batch, swap_batch

NO_PROV = ProvenanceOptions(enabled=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("batch") / "in"
    (d / "sub").mkdir(parents=True)
    shutil.copy(sample_path("astronaut"), d / "astronaut.jpg")
    make_clip(d / "clip.mp4")
    cv2.imwrite(str(d / "sub" / "wall.png"), np.full((240, 320, 3), 128, np.uint8))  # no face
    (d / "sub" / "broken.jpg").write_bytes(sample_path("astronaut").read_bytes()[:3000])
    (d / "notes.txt").write_text("not a photo\n")
    (d / ".hidden.jpg").write_bytes(b"")  # hidden: left alone
    return d


@pytest.fixture(scope="module")
def local(folder, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    seen = []
    job = SwapJob(sources=[source], provenance=NO_PROV)
    report = swap_batch(job, folder, out, recursive=True, progress=seen.append)
    return out, report, seen


def test_plan_names_outputs_and_refuses_bad_folders(folder, tmp_path) -> None:
    items, skipped, ignored = plan_batch(folder, tmp_path / "o", recursive=True)
    assert [(i.input.relative_to(folder).as_posix(), i.kind) for i in items] == [
        ("astronaut.jpg", "image"),
        ("clip.mp4", "video"),
        ("sub/broken.jpg", "image"),
        ("sub/wall.png", "image"),
    ]
    assert [i.output.relative_to(tmp_path / "o").as_posix() for i in items] == [
        "astronaut.jpg", "clip.mp4", "sub/broken.jpg", "sub/wall.png",
    ]  # fmt: skip
    assert not skipped and [Path(p).name for p in ignored] == ["notes.txt"]
    assert len(plan_batch(folder, tmp_path / "o")[0]) == 2  # without --recursive: the top folder only

    # a video in a container masquerade does not write becomes .mp4, also beside a same-named .mp4
    d = tmp_path / "avi"
    d.mkdir()
    for name in ("a.avi", "a.mp4", "b.mkv"):
        (d / name).write_bytes(b"x")
    outs = sorted(i.output.name for i in plan_batch(d, tmp_path / "o2")[0])
    assert outs == ["a.avi.mp4", "a.mp4", "b.mkv"]

    with pytest.raises(OutputError, match="is the input folder"):
        plan_batch(folder, folder)
    with pytest.raises(OutputError, match="inside the input folder"):
        plan_batch(folder, folder / "sub" / "out", recursive=True)
    with pytest.raises(OutputError, match="must be a folder, not the file"):
        plan_batch(folder, tmp_path / "out.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no photo or video"):
        plan_batch(tmp_path / "empty", tmp_path / "o3")
    with pytest.raises(InputError, match="no such folder"):
        plan_batch(tmp_path / "nope", tmp_path / "o3")


def test_local_batch_swaps_every_file_and_reports_the_bad_ones(local, folder, source) -> None:
    out, report, seen = local
    by_name = {Path(r.input).name: r for r in report.results}
    assert {n: r.status for n, r in by_name.items()} == {
        "astronaut.jpg": "done", "clip.mp4": "done", "broken.jpg": "failed", "wall.png": "failed",
    }  # fmt: skip
    assert "corrupt or truncated" in by_name["broken.jpg"].error
    assert "no face" in by_name["wall.png"].error
    assert by_name["clip.mp4"].frames == by_name["clip.mp4"].frames_swapped == 40
    assert len(seen) == 4 and report.ignored == [str(folder / "notes.txt")]
    assert not (out / "sub" / "broken.jpg").exists() and not (out / "sub" / "wall.png").exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left

    # the photo: the source's identity moved onto it, as a single swap does it
    swapped = load_image(out / "astronaut.jpg").rgb
    target = load_image(folder / "astronaut.jpg").rgb
    with FaceAnalyzer() as fa:
        e_src, e_out, e_tgt = (fa.get(x)[0].embedding for x in (source[0], swapped, target))
        single, _ = FaceSwapper(SwapOptions(), analyzer=fa).swap(source[0], target, source=source[1])
    assert euclidean_distance(e_out, e_src) < euclidean_distance(e_tgt, e_src) - 0.1
    psnr = cv2.PSNR(single, swapped)
    assert psnr > 38, psnr  # the same swap, up to the JPEG encoding

    saved = json.loads((out / "batch-report.json").read_text())
    assert (saved["done"], saved["failed"], saved["skipped"]) == (2, 2, 0)
    assert [r["status"] for r in saved["results"]] == [r.status for r in report.results]


@pytest.mark.slow
def test_cli_batch_exit_status_rerun_and_provenance(folder, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    args = ["swap", "-s", "sample:grace_hopper", "-t", str(folder), "-o", str(out)]
    # the top folder only: the photo and the clip, both fine
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "2 of 2 files swapped" in err and "1 other file ignored" in err
    assert main(["verify", str(out / "astronaut.jpg")]) == 0  # watermark + signed manifest
    out2 = out
    before = (out2 / "astronaut.jpg").stat().st_mtime_ns
    assert main([*args[:-1], str(out2)]) == 0  # run again: nothing to do
    assert "0 of 2 files swapped, 2 skipped" in capsys.readouterr().err
    assert (out2 / "astronaut.jpg").stat().st_mtime_ns == before
    assert main([*args[:-1], str(out2), "--force"]) == 0
    assert (out2 / "astronaut.jpg").stat().st_mtime_ns != before

    # with the bad files (recursive): exit 1, each failure on its own line, the rest done
    out3 = tmp_path / "out3"
    assert main([*args[:-1], str(out3), "--recursive", "--no-provenance"]) == 1
    err = capsys.readouterr().err
    assert "failed: " in err and "broken.jpg: corrupt or truncated image" in err
    assert "2 of 4 files swapped, 2 failed" in err and "Traceback" not in err

    for extra, needle in (
        (["--start", "1"], "--start/--end"),
        (["--work-dir", str(tmp_path)], "--work-dir"),
        (["--workers", "0", "--backend", "ray"], "--workers"),
    ):
        assert main([*args[:-1], str(tmp_path / "o4"), *extra]) == 2
        assert needle in capsys.readouterr().err
    assert main([*args[:-1], str(folder)]) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert main(["swap", "-s", "sample:grace_hopper", "-t", str(folder / "astronaut.jpg"),
                 "-o", str(tmp_path / "x.png"), "--recursive"]) == 2  # fmt: skip
    assert "--recursive goes with a folder" in capsys.readouterr().err
    assert not (tmp_path / "o4").exists()


def _ray_batch(folder, out, extra):
    args = ["swap", "-s", "sample:grace_hopper", "-t", str(folder), "-o", str(out), "--recursive"]
    return main([*args, "--no-provenance", "--backend", "ray", *extra])


@pytest.mark.slow  # Ray
def test_ray_batch_two_workers_same_outputs_and_a_dying_file(local, folder, tmp_path, monkeypatch) -> None:
    pytest.importorskip("ray")
    from masquerade.run.ray_backend import CRASH_ENV

    monkeypatch.setenv(CRASH_ENV, "0:always")  # the worker that takes the photo dies, every time
    out = tmp_path / "ray"
    assert _ray_batch(folder, out, ["--workers", "2"]) == 1
    report = json.loads((out / "batch-report.json").read_text())
    by_name = {Path(r["input"]).name: r for r in report["results"]}
    assert by_name["astronaut.jpg"]["status"] == "failed"
    assert "worker died 3 times" in by_name["astronaut.jpg"]["error"]
    assert by_name["clip.mp4"]["status"] == "done"  # the batch went on
    assert {by_name[n]["status"] for n in ("broken.jpg", "wall.png")} == {"failed"}
    monkeypatch.delenv(CRASH_ENV)

    # run again: the photo now works; the clip is skipped; every output equals the local run's
    assert _ray_batch(folder, out, ["--workers", "2"]) == 1  # the bad files still fail
    report = json.loads((out / "batch-report.json").read_text())
    assert [Path(r["input"]).name for r in report["results"] if r["status"] == "done"] == ["astronaut.jpg"]
    workers = {r["worker"] for r in report["results"] if r["status"] != "skipped"}
    assert len(workers) == 2  # both workers had files
    local_out = local[0]
    a, b = load_image(local_out / "astronaut.jpg").rgb, load_image(out / "astronaut.jpg").rgb
    assert np.array_equal(a, b)
    import av

    def frames(p: Path) -> list[np.ndarray]:
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    fa, fb = frames(local_out / "clip.mp4"), frames(out / "clip.mp4")
    assert len(fa) == len(fb) == 40 and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))


@pytest.mark.slow  # Ray
def test_ray_cluster_by_address(folder, tmp_path) -> None:
    """An existing 2-node cluster (two raylets on this machine, 1 CPU each) reached by --address: the
    files are spread over both nodes, and the cluster is left running."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # nothing listening at the address: a one-line error at once, and no output folder
    assert _ray_batch(folder, tmp_path / "none", ["--address", "127.0.0.1:1"]) == 2
    assert not (tmp_path / "none").exists()

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        d = tmp_path / "in"
        d.mkdir()
        for k in range(4):
            shutil.copy(sample_path("astronaut"), d / f"a{k}.jpg")
        out = tmp_path / "out"
        assert _ray_batch(d, out, ["--address", cluster.address, "--workers", "2"]) == 0
        report = json.loads((out / "batch-report.json").read_text())
        assert [r["status"] for r in report["results"]] == ["done"] * 4
        nodes = {r["worker"].split(":")[0] for r in report["results"]}
        assert len(nodes) == 2, nodes
        assert len(cluster.list_all_nodes()) == 2  # still up
    finally:
        cluster.shutdown()
        assert not os.environ.get("RAY_ADDRESS")

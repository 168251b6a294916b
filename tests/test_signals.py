"""Stopping ``masquerade swap`` mid-way: SIGTERM, SIGHUP and SIGINT on a video swap, a batch and Ray.

Each run is the real command in its own process, stopped once frames are being written (the test polls
for the temporary output to hold data, it never sleeps a fixed time). It must exit with 128 + the
signal (130 for Ctrl-C, as before) within a time limit, say so in ONE line on stderr (``stopped by
SIGTERM``; ``interrupted`` for SIGINT; after the ``warning:`` lines about its inputs, if any) with no
traceback or native stack dump, stay under a memory
cap, and leave nothing but the inputs and the outputs that were finished (each one valid): no
temporary file or folder, no half-written output, no batch report. A temporary left by a process
killed outright (SIGKILL) is removed by the next run writing the same output, while one of a live
process, of another output, or not named like ours is kept.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from masquerade import sample_path
from masquerade.files import owner_tag, remove_stale_temps, temp_beside

REPO = Path(__file__).resolve().parents[1]
HOPPER = sample_path("grace_hopper")
ASTRONAUT = sample_path("astronaut")
START_LIMIT = 240.0  # seconds for a run to start writing frames (Ray starts in ~10 s on 2 busy cores)
STOP_LIMIT = 60.0  # seconds from the signal to the exit
MAX_VM_MB = 4096  # address-space cap of a local run (a swap reserves ~1.7 GB)


def _generator():
    name = "make_malformed_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def clip_bytes() -> bytes:
    gen = _generator()
    return gen.stoppable_clip(gen.Ctx(0))


def _cap_memory() -> None:
    import resource

    _default_sigint()
    resource.setrlimit(resource.RLIMIT_AS, (MAX_VM_MB << 20, MAX_VM_MB << 20))


def _default_sigint() -> None:
    """A child of a test run started in the background (``nohup pytest &``, which ignores SIGINT) would
    inherit the ignored SIGINT, and Python would then never raise KeyboardInterrupt: give it the
    default, as a command started from a terminal has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cwd: Path, *argv: object, capped: bool = True) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MASQUERADE_DEBUG"}
    env["PYTHONFAULTHANDLER"] = "1"  # a native crash would print "Fatal Python error"
    return subprocess.Popen(
        [sys.executable, "-m", "masquerade", *map(str, argv)], cwd=cwd, env=env, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_cap_memory if capped else _default_sigint,
    )  # fmt: skip


def wait_for_frames(proc: subprocess.Popen[str], folder: Path, pattern: str, min_bytes: int = 20_000) -> Path:
    """The first file matching ``pattern`` under ``folder`` (hidden ones included) that holds at least
    ``min_bytes``: frames are being written. Fails if the run ends first or takes too long."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < START_LIMIT:
        for p in folder.glob(pattern):
            try:
                if p.is_file() and p.stat().st_size >= min_bytes:
                    return p
            except OSError:  # renamed or removed meanwhile
                pass
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before writing frames:\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {pattern} of {min_bytes} bytes within {START_LIMIT:.0f} s")


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    proc.send_signal(sig)
    t0 = time.monotonic()
    try:
        out, err = proc.communicate(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running {STOP_LIMIT:.0f} s after {sig.name} (hang?):\n{err[-3000:]}")
    assert proc.returncode is not None
    assert time.monotonic() - t0 < STOP_LIMIT
    return proc.returncode, out, err


def assert_stopped(code: int, out: str, err: str, sig: signal.Signals) -> None:
    """Exit 128 + the signal and one line on stderr saying so (beside the ``warning:`` lines given
    before it: Grace Hopper's glasses go onto the swapped faces)."""
    assert code == 128 + sig, f"exit {code} after {sig.name}:\n{err[-3000:]}"
    expected = "interrupted" if sig == signal.SIGINT else f"stopped by {sig.name}"
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("warning: ")]
    assert lines == [expected], err[-3000:]
    assert out == ""


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_valid_video(path: Path, frames: int) -> None:
    import av

    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == frames, path


def ray_processes() -> list[str]:
    """Ray processes of this machine (raylet, GCS, workers), by their command lines."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "raylet" in cmd or "gcs_server" in cmd or "ray::" in cmd or "default_worker.py" in cmd:
                found.append(cmd)
    return found


# ---------------------------------------------------------------- a video swap, here


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_stopped_video_swap_leaves_only_the_inputs(
    sig: signal.Signals, clip_bytes: bytes, tmp_path: Path
) -> None:
    """The issue: SIGTERM or SIGHUP left a 1.5-2 MB ``.out.mp4.XXXX.part.mp4`` beside the output."""
    (tmp_path / "clip.mp4").write_bytes(clip_bytes)
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "clip.mp4", "-o", "out.mp4")
    wait_for_frames(proc, tmp_path, ".out.mp4.*.part.mp4")
    assert_stopped(*stop(proc, sig), sig)
    assert names(tmp_path) == ["clip.mp4"]


# ---------------------------------------------------------------- a batch, here and on Ray


def batch_folder(tmp_path: Path, clip_bytes: bytes) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(ASTRONAUT.read_bytes())  # done first, in a moment
    for name in ("b.mp4", "c.mp4", "d.mp4"):
        (folder / name).write_bytes(clip_bytes)
    return folder


def assert_only_finished_outputs(out: Path, clip_frames: int) -> None:
    """Nothing but finished outputs (valid, complete files): no temporary, no report."""
    if not out.exists():
        return
    for p in out.iterdir():
        assert not p.name.startswith(".") and p.suffix in (".jpg", ".mp4"), names(out)
        if p.suffix == ".mp4":
            assert_valid_video(p, clip_frames)
        else:
            from PIL import Image

            with Image.open(p) as im:
                im.load()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_stopped_batch_leaves_only_finished_outputs(
    sig: signal.Signals, clip_bytes: bytes, tmp_path: Path
) -> None:
    folder = batch_folder(tmp_path, clip_bytes)
    inputs = names(folder)
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "in", "-o", "out")
    wait_for_frames(proc, tmp_path, "out/.*.part.mp4")
    assert_stopped(*stop(proc, sig), sig)
    assert names(folder) == inputs and names(tmp_path) == ["in", "out"]
    assert "a.jpg" in names(tmp_path / "out")  # the photo was finished before the videos began
    assert_only_finished_outputs(tmp_path / "out", 300)


@pytest.mark.slow  # Ray
def test_stopped_ray_batch_leaves_only_finished_outputs(clip_bytes: bytes, tmp_path: Path) -> None:
    """The workers' temporary files too: the files being swapped are cancelled and clean up after
    themselves before the workers are killed; no Ray process is left."""
    pytest.importorskip("ray", reason="--backend ray needs Ray (pip install 'masquerade[ray]')")
    folder = batch_folder(tmp_path, clip_bytes)
    inputs = names(folder)
    argv = ["swap", "-s", HOPPER, "-t", "in", "-o", "out", "--backend", "ray", "--workers", "2"]
    proc = start(tmp_path, *argv, capped=False)
    wait_for_frames(proc, tmp_path, "out/.*.part.mp4")
    assert_stopped(*stop(proc, signal.SIGTERM), signal.SIGTERM)
    assert names(folder) == inputs and set(names(tmp_path)) <= {"in", "out"}
    assert_only_finished_outputs(tmp_path / "out", 300)
    assert not ray_processes()


# ---------------------------------------------------------------- a video in segments on Ray


@pytest.mark.slow  # Ray
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_stopped_ray_video_is_clean(sig: signal.Signals, clip_bytes: bytes, tmp_path: Path) -> None:
    """The issue: ``--backend ray`` exited 134 on SIGTERM with a native stack dump and left its
    segments folder. Now: 128 + the signal, one line, no folder, no Ray process left."""
    pytest.importorskip("ray", reason="--backend ray needs Ray (pip install 'masquerade[ray]')")
    (tmp_path / "clip.mp4").write_bytes(clip_bytes)
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "clip.mp4", "-o", "out.mp4", "--backend", "ray",
                 "--segment-seconds", "2", capped=False)  # fmt: skip
    wait_for_frames(proc, tmp_path, ".*/segment-*.packets", min_bytes=1)
    code, out, err = stop(proc, sig)
    assert "SIGTERM received" not in err and "Fatal Python error" not in err
    assert_stopped(code, out, err, sig)
    assert names(tmp_path) == ["clip.mp4"]
    assert not ray_processes()


@pytest.mark.slow  # Ray
def test_ray_video_prints_no_ray_noise(clip_bytes: bytes, tmp_path: Path) -> None:
    """A run that works prints its own two lines and nothing of Ray's (the token-authentication notice,
    the core worker's error line about actor constructor arguments in the object store)."""
    pytest.importorskip("ray", reason="--backend ray needs Ray (pip install 'masquerade[ray]')")
    gen = _generator()
    (tmp_path / "clip.mp4").write_bytes(gen.stoppable_clip(gen.Ctx(0), frames=60, audio=False))
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "clip.mp4", "-o", "out.mp4", "--backend", "ray",
                 "--segment-seconds", "1", "--no-provenance", capped=False)  # fmt: skip
    out, err = proc.communicate(timeout=START_LIMIT)
    assert proc.returncode == 0, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("swapped faces in ") and lines[0].endswith("→ out.mp4"), err
    assert lines[1].startswith("provenance turned off"), err
    assert names(tmp_path) == ["clip.mp4", "out.mp4"]
    assert_valid_video(tmp_path / "out.mp4", 60)


# ---------------------------------------------------------------- stale temporaries


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    """Only this output's temporaries whose owner (this host, a process that has ended) is gone; a live
    process's, another output's, another host's and names not exactly ours stay."""
    out = tmp_path / "out.mp4"
    host = owner_tag().split("-")[0]
    other_host = f"{(int(host, 16) + 1) % 0x1000000:06x}"
    dead, live = dead_pid(), os.getppid()
    stale = [
        f".out.mp4.{host}-{dead}.abcd1234.part.mp4",  # a video's temporary
        f".out.mp4.{host}-{dead}.x_y9zzzz.part",  # atomic_write's
        f".out.mp4.{host}-{dead}.q1w2e3r4.c2pa-part.mp4",  # signing's
    ]
    kept = [
        f".out.mp4.{host}-{live}.abcd1234.part.mp4",  # a live process's
        f".out.mp4.{other_host}-{dead}.abcd1234.part.mp4",  # another host's
        f".other.mp4.{host}-{dead}.abcd1234.part.mp4",  # another output's
        ".out.mp4.abcd1234.part.mp4",  # no owner in the name
        f".out.mp4.{host}-{dead}.abcd1234.part.mp4.bak",  # not exactly ours
        f".out.mp4.{host}-{dead}.abcd1234.txt",
        "out.mp4",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 100)
    folder = tmp_path / f".out.mp4.{host}-{dead}.seg12345.segments"  # a Ray run's segments folder
    folder.mkdir()
    (folder / "segment-00000.packets").write_bytes(b"x")
    (tmp_path / f".out.mp4.{host}-{dead}.linklink.part.mp4").symlink_to(tmp_path / "out.mp4")  # never ours
    kept.append(f".out.mp4.{host}-{dead}.linklink.part.mp4")
    removed = remove_stale_temps(out)
    assert sorted(p.name for p in removed) == sorted([*stale, folder.name])
    assert names(tmp_path) == sorted(kept)
    # and temp_beside does it before it makes a new one
    (tmp_path / stale[0]).write_bytes(b"x")
    new = temp_beside(out, ".part.mp4")
    assert new.name.startswith(f".out.mp4.{owner_tag()}.") and new.name.endswith(".part.mp4")
    assert names(tmp_path) == sorted([*kept, new.name])


@pytest.mark.slow
def test_killed_run_leaves_a_temporary_that_the_next_run_removes(clip_bytes: bytes, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the partial ``.part.mp4`` stays until a run writes the same output,
    which removes it (its owner is gone) and leaves a live process's temporary of that output alone."""
    (tmp_path / "clip.mp4").write_bytes(clip_bytes)
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "clip.mp4", "-o", "out.mp4")
    left = wait_for_frames(proc, tmp_path, ".out.mp4.*.part.mp4")
    proc.kill()
    proc.wait()
    assert left.exists() and left.stat().st_size > 0
    # a temporary of the same output whose owner (this process) is alive: named as the killed one is
    host = left.name.split(".")[3].split("-")[0]
    live = tmp_path / f".out.mp4.{host}-{os.getpid()}.zzzzzzzz.part.mp4"
    live.write_bytes(b"live")
    gen = _generator()
    (tmp_path / "short.mp4").write_bytes(gen.stoppable_clip(gen.Ctx(0), frames=10, audio=False))
    proc = start(tmp_path, "swap", "-s", HOPPER, "-t", "short.mp4", "-o", "out.mp4", "--no-provenance")
    _, err = proc.communicate(timeout=START_LIMIT)
    assert proc.returncode == 0, err
    assert names(tmp_path) == sorted(["clip.mp4", "short.mp4", "out.mp4", live.name])
    assert_valid_video(tmp_path / "out.mp4", 10)

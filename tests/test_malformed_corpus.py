"""Every file of the malformed-input corpus through the real ``masquerade swap`` command.

The corpus (``scripts/make_malformed_corpus.py``: truncated, garbled, empty, huge, bombs, wrong
extensions, odd colour modes and shapes, EXIF, animations, broken videos, no face / 30 faces, odd
paths) is generated once per session. Each entry is swapped as the target and as the source, the other
photo the astronaut (a source with nothing to advise about: Grace Hopper's glasses would add their
``warning:`` line), each run in its own process with a time limit, two at a time.
Whatever the entry, the run must end in either

* exit 0 with a valid, decodable output file (of the expected size where the manifest gives one) and,
  for an entry swapped only in part (the manifest's ``warning``, and ``warning_as_source`` for an
  animated or multi-page source photo), one ``warning:`` line saying so, or
* exit 2 or 3 with exactly one ``error:`` line on stderr and no output,

never in a crash, a traceback, an "unexpected" error (exit 1), a hang, a memory blow-up (a
decompression bomb past the pixel limit) or a leftover partial file, and the input must keep its bytes
and modification time. ``MASQUERADE_CORPUS_TIMEOUT`` (seconds per run, default 60),
``MASQUERADE_CORPUS_MAX_RSS_MB`` (peak memory per run, default 1024; a swap takes about 300),
``MASQUERADE_CORPUS_MAX_VM_MB`` (address-space cap per run, default 4096) and
``MASQUERADE_CORPUS_WORKERS`` (default 2) tune the run. Entries with a ``known_issue`` in the
manifest are expected to fail (strict xfail) until it is fixed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from masquerade import sample_path

pytestmark = pytest.mark.slow  # 546 swaps, each in its own process

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "make_malformed_corpus.py"
TIMEOUT = float(os.environ.get("MASQUERADE_CORPUS_TIMEOUT", "60"))
# a swap peaks at ~300 MB; a decompression bomb that gets past the pixel limit goes far beyond
MAX_RSS_MB = float(os.environ.get("MASQUERADE_CORPUS_MAX_RSS_MB", "1024"))
MAX_VM_MB = int(os.environ.get("MASQUERADE_CORPUS_MAX_VM_MB", "4096"))
WORKERS = max(1, int(os.environ.get("MASQUERADE_CORPUS_WORKERS", "2")))
ROLES = ("target", "source")


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_malformed_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
SPECS = {s.id: s for s in GEN.entry_specs()}


# ---------------------------------------------------------------- running the CLI


@dataclass
class Run:
    entry: dict
    role: str
    argv: list[str]
    out_dir: Path
    output: Path
    returncode: int | None  # None: killed after TIMEOUT seconds
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    before: object
    after: object


def fingerprint(path: Path) -> object:
    """What must not change about an input: bytes and mtime of a file, a link's target, a folder's files."""
    if path.is_symlink() and not path.exists():
        return ("dangling", os.readlink(path))
    if path.is_dir():
        return ("dir", sorted((p.name, fingerprint(p)) for p in path.iterdir()))
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device (/dev/zero): never read, here either
        return ("special", stat.S_IFMT(st.st_mode), os.readlink(path) if path.is_symlink() else None)
    return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)


# ``python -m masquerade`` with two additions: its address space is capped at $CORPUS_MAX_VM_MB (a
# swap reserves ~1.7 GB; the cap keeps a regressed decompression bomb from taking the machine down), and
# at exit it writes its peak resident memory (VmHWM, which starts afresh at exec, unlike rusage's
# maxrss: that inherits pytest's own peak through fork) to the file named by $CORPUS_PEAK_FILE.
PEAK_WRAPPER = """
import atexit, os, resource, runpy, sys
_cap = int(os.environ["CORPUS_MAX_VM_MB"]) << 20
resource.setrlimit(resource.RLIMIT_AS, (_cap, _cap))
def _peak():
    try:
        with open("/proc/self/status") as f:
            kb = next((ln.split()[1] for ln in f if ln.startswith("VmHWM:")), "0")
        with open(os.environ["CORPUS_PEAK_FILE"], "w") as f:
            f.write(kb)
    except OSError:
        pass
atexit.register(_peak)
runpy.run_module("masquerade", run_name="__main__", alter_sys=True)
"""


def run_entry(corpus: Path, work: Path, entry: dict, role: str) -> Run:
    bad = corpus / entry["path"]
    video_target = role == "target" and entry["kind"] == "video"
    out_dir = work / f"{role}-{entry['id']}"
    out_dir.mkdir(parents=True)
    output = out_dir / ("result.mp4" if video_target else "result.png")
    src, tgt = (sample_path("astronaut"), bad) if role == "target" else (bad, sample_path("astronaut"))
    args = ["swap", "-s", str(src), "-t", str(tgt), "-o", str(output)]
    peak_file = work / f"peak-{role}-{entry['id']}.txt"
    env = {k: v for k, v in os.environ.items() if k != "MASQUERADE_DEBUG"}
    env["PYTHONFAULTHANDLER"] = "1"  # a native crash prints a "Fatal Python error" traceback
    env["CORPUS_PEAK_FILE"] = str(peak_file)
    env["CORPUS_MAX_VM_MB"] = str(MAX_VM_MB)
    before = fingerprint(bad)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", PEAK_WRAPPER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, cwd=out_dir, env=env, text=True, errors="replace",
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        code = None
    seconds = time.perf_counter() - t0
    try:
        peak_mb = int(peak_file.read_text() or 0) / 1024
    except (OSError, ValueError):
        peak_mb = 0.0  # killed, or no /proc: the exit status tells
    argv = [sys.executable, "-m", "masquerade", *args]
    return Run(
        entry, role, argv, out_dir, output, code, stdout, stderr, seconds, peak_mb, before, fingerprint(bad)
    )


class Runner:
    """Runs the selected (entry, role) cases ahead of the tests, ``WORKERS`` processes at a time."""

    def __init__(self, corpus: Path, work: Path, manifest: dict, cases: list[tuple[str, str]]) -> None:
        self.corpus, self.work = corpus, work
        self.entries = {e["id"]: e for e in manifest["entries"]}
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="corpus")
        self.futures: dict[tuple[str, str], Future[Run]] = {}
        for case in cases:
            self.submit(*case)

    def submit(self, entry_id: str, role: str) -> Future[Run]:
        key = (entry_id, role)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(
                run_entry, self.corpus, self.work, self.entries[entry_id], role
            )
        return self.futures[key]

    def result(self, entry_id: str, role: str) -> Run:
        return self.submit(entry_id, role).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("malformed-corpus")
    t0 = time.perf_counter()
    manifest = GEN.generate(root, seed=0)
    took = time.perf_counter() - t0
    assert took < 60, f"generating the corpus took {took:.0f} s"
    return root, manifest


@pytest.fixture(scope="session")
def runner(
    corpus: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
):
    root, manifest = corpus
    cases = [
        (item.callspec.params["entry_id"], item.callspec.params["role"])
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_corpus_entry" and hasattr(item, "callspec")
    ]
    r = Runner(root, tmp_path_factory.mktemp("corpus-runs"), manifest, cases)
    yield r
    r.close()


# ---------------------------------------------------------------- checks


def describe(run: Run) -> str:
    code = "killed (timeout)" if run.returncode is None else run.returncode
    return (
        f"\n  command: {' '.join(run.argv[1:])}\n  exit: {code} after {run.seconds:.1f} s, "
        f"peak memory {run.max_rss_mb:.0f} MB\n"
        f"  stderr: {run.stderr.strip()[-3000:]!s}\n  stdout: {run.stdout.strip()[-500:]!s}"
    )


def check_image_output(path: Path, size: tuple[int, int] | None) -> None:
    with Image.open(path) as im:
        im.load()
        assert im.width >= 8 and im.height >= 8
        if size is not None:
            assert im.size == size, f"output is {im.size}, expected {size}"


def check_video_output(path: Path, size: tuple[int, int] | None) -> None:
    import av

    with av.open(str(path)) as c:
        assert c.streams.video, "output has no video stream"
        frames = 0
        for frame in c.decode(video=0):
            if size is not None and frames == 0:
                assert (frame.width, frame.height) == size, f"output is {frame.width}x{frame.height}"
            frames += 1
    assert frames >= 1, "output has no decodable frame"


def check_run(run: Run) -> None:
    entry, role = run.entry, run.role
    ctx = describe(run)
    assert run.returncode is not None, f"no result within {TIMEOUT:.0f} s (hang?){ctx}"
    assert run.max_rss_mb <= MAX_RSS_MB, f"peak memory {run.max_rss_mb:.0f} MB > {MAX_RSS_MB:.0f} MB{ctx}"
    assert "Traceback" not in run.stderr and "Fatal Python error" not in run.stderr, ctx
    assert "Exception in thread" not in run.stderr, ctx
    assert run.stdout == "", ctx
    expect = entry["expect"] if role == "target" else entry["expect_as_source"]
    exit_code = entry["exit"] if role == "target" else entry["exit_as_source"]
    left = sorted(p.name for p in run.out_dir.iterdir())
    if run.returncode == 0:
        assert expect in ("output", "either"), f"expected an error, got a result{ctx}"
        # the output, and at most sidecars named after it (result.png.c2pa …): no hidden or temporary file
        extra = [n for n in left if n != run.output.name]
        assert run.output.name in left, f"exit 0 but no output; the folder holds {left}{ctx}"
        assert all(n.startswith(run.output.name + ".") and ".part" not in n for n in extra), (
            f"output folder holds {left}{ctx}"
        )
        size = entry["output_size"] if role == "target" else [512, 512]
        size = tuple(size) if size else None
        try:
            if run.output.suffix == ".mp4":
                check_video_output(run.output, size)
            else:
                check_image_output(run.output, size)
        except Exception as exc:
            raise AssertionError(f"invalid output {run.output.name}: {exc!r}{ctx}") from None
        warnings = [ln for ln in run.stderr.splitlines() if ln.startswith("warning:")]
        expected = entry.get("warning") if role == "target" else entry.get("warning_as_source")
        if expected:
            assert len(warnings) == 1 and expected in warnings[0], f"expected one warning{ctx}"
        elif role == "source" and entry["expect_as_source"] == "output":
            assert warnings == [], f"expected no warning{ctx}"
    else:
        assert run.returncode in (2, 3), f"exit {run.returncode}: expected 2 (bad input) or 3 (no face){ctx}"
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}{ctx}"
        assert lines[0].startswith("error: ") and len(lines[0]) > len("error: "), ctx
        assert expect in ("error", "either"), f"expected a result, got an error{ctx}"
        if exit_code is not None:
            assert run.returncode == exit_code, f"expected exit {exit_code}{ctx}"
        assert left == [], f"a failed run left {left}{ctx}"
    assert run.after == run.before, f"the input {entry['path']!r} was modified{ctx}"


CASES = [
    pytest.param(
        i,
        role,
        id=f"{role}:{i}",
        marks=[pytest.mark.xfail(reason=SPECS[i].known_issue, strict=True)] if SPECS[i].known_issue else [],
    )
    for i in SPECS
    for role in ROLES
]


@pytest.mark.parametrize(("entry_id", "role"), CASES)
def test_corpus_entry(entry_id: str, role: str, runner: Runner) -> None:
    run = runner.result(entry_id, role)
    check_run(run)
    shutil.rmtree(run.out_dir, ignore_errors=True)  # ~0.5 MB per output: keep only failures


def test_manifest_matches_files(corpus: tuple[Path, dict]) -> None:
    """≥ 200 entries, every listed path present (or a deliberate dangling link), small and quick."""
    root, manifest = corpus
    entries = manifest["entries"]
    assert len(entries) >= 200 and manifest["count"] == len(entries)
    assert [e["id"] for e in entries] == list(SPECS)
    for e in entries:
        p = root / e["path"]
        assert p.exists() or p.is_symlink(), e["path"]
        assert e["expect"] in ("output", "error", "either") and e["expect_as_source"] in (
            "output",
            "error",
            "either",
        )
    listed = {e["path"] for e in entries} | {"manifest.json"}
    assert {p.name for p in root.iterdir()} == listed
    assert GEN.corpus_bytes(root) < 30e6
    assert len({e["category"] for e in entries}) >= 12


def test_generation_is_deterministic(corpus: tuple[Path, dict], tmp_path: Path) -> None:
    """The same seed gives the same bytes (one entry of each category, random flips and videos included)."""
    root, manifest = corpus
    picks = {e["category"]: e["id"] for e in manifest["entries"]}
    picks.update({i: i for i in ("garbled-jpeg-data-8", "garbled-mp4-data-8", "wrongext-mkv-as-mp4")})
    again = GEN.generate(tmp_path / "again", seed=0, only=set(picks.values()))
    assert again["entries"] == [e for e in manifest["entries"] if e["id"] in set(picks.values())]
    for e in again["entries"]:
        a, b = root / e["path"], tmp_path / "again" / e["path"]
        if a.is_file() and not a.is_symlink():
            assert a.read_bytes() == b.read_bytes(), e["id"]

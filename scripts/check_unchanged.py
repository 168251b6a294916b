"""Check that a change left masquerade's outputs byte-identical.

Runs a fixed set of commands (a sample photo pair, an LFW pair, ``--faces all`` on the 1080p group clip,
a clip with audio, a batch folder, an ``evaluate`` run), all with ``--no-provenance``, once with the code
of ``--base REV`` (checked out into a temporary git worktree) and once with the working tree, and compares
the sha256 of every output file. ``evaluate``'s results.json is compared without its timings and
environment.
Exit status 0 when every output is identical, 1 otherwise.

    python scripts/check_unchanged.py --base HEAD~3           # compare HEAD~3 with the working tree
    python scripts/check_unchanged.py --record out.json      # only record this tree's hashes

Needs ../shared/data (LFW and the videos) beside the checkout and the project's venv active.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LFW = DATA / "lfw" / "images"
VIDEOS = DATA / "videos"

# the parts of results.json that differ run to run or tree to tree: timings, machine, date, command, paths
SKIP_KEYS = {"environment", "seconds", "fps", "file"}  # file: where the package lies


def _commands(inputs: Path) -> list[tuple[str, list[str]]]:
    lfw_a = str(LFW / "Serena_Williams" / "Serena_Williams_0001.jpg")
    lfw_b = str(LFW / "Tony_Blair" / "Tony_Blair_0001.jpg")
    return [
        ("photo.png", ["swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut"]),
        ("lfw.jpg", ["swap", "-s", lfw_a, "-t", lfw_b]),
        ("group.mp4", ["swap", "-s", lfw_a, "-t", str(VIDEOS / "group_1080p.mp4"), "--faces", "all",
                       "--end", "1"]),
        ("music.mp4", ["swap", "-s", lfw_a, "-t", str(VIDEOS / "music_720p.mp4"), "--start", "2",
                       "--end", "4"]),
        ("batch", ["swap", "-s", "sample:grace_hopper", "-t", str(inputs)]),
        ("evaluate", ["evaluate", "--swapper", "mesh3d", "--swapper", "none", "--limit", "3",
                      "--lfw", str(DATA / "lfw")]),
    ]  # fmt: skip


def _batch_inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("George_W_Bush_0001.jpg", "Colin_Powell_0001.jpg", "Hugo_Chavez_0001.jpg"):
        person = name.rsplit("_", 1)[0]
        shutil.copy(LFW / person / name, folder / name)


def _sha(path: Path) -> str:
    if path.name == "results.json":
        doc = json.loads(path.read_text())
        data = json.dumps(_strip(doc), sort_keys=True).encode()
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def _strip(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in SKIP_KEYS and not k.endswith("_ms")}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def run_all(src: Path, work: Path) -> dict[str, str]:
    """Every command's outputs (file → sha256) with the package in ``src`` (a ``src/`` folder)."""
    inputs = work / "batch-in"
    _batch_inputs(inputs)
    env = {**os.environ, "PYTHONPATH": str(src)}
    hashes: dict[str, str] = {}
    for out_name, cmd in _commands(inputs):
        out = work / out_name
        extra = ["--no-provenance"] if cmd[0] == "swap" else []
        full = [sys.executable, "-m", "masquerade", *cmd, "-o", str(out), *extra]
        proc = subprocess.run(full, env=env, capture_output=True, text=True, cwd=work)
        if proc.returncode != 0:
            hashes[out_name] = f"FAILED ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"
            continue
        if out_name == "evaluate":  # its report and plots show run times; results.json holds the figures
            files = [out / "results.json"]
        else:
            files = [out] if out.is_file() else sorted(p for p in out.rglob("*") if p.is_file())
        for f in files:
            if f.name != "batch-report.json":  # the batch report holds run times
                hashes[str(f.relative_to(work))] = _sha(f)
    return hashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", help="git revision to compare the working tree with")
    ap.add_argument("--record", type=Path, help="write this tree's hashes to a JSON file and stop")
    args = ap.parse_args()
    for need in (LFW, VIDEOS):
        if not need.is_dir():
            print(f"error: {need} not found (../shared/data beside the checkout)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="masquerade-unchanged-") as tmp:
        t = Path(tmp)
        (t / "new").mkdir()
        new = run_all(ROOT / "src", t / "new")
        if args.record is not None:
            args.record.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
            print(f"{len(new)} outputs recorded in {args.record}")
            return 0
        if args.base is None:
            ap.error("give --base REV or --record FILE")
        tree = t / "base-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.base],
                       check=True, capture_output=True)  # fmt: skip
        try:
            (t / "old").mkdir()
            old = run_all(tree / "src", t / "old")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    bad = 0
    for name in sorted(set(old) | set(new)):
        same = old.get(name) == new.get(name) and not str(new.get(name)).startswith("FAILED")
        bad += not same
        change = "" if same else f"  {old.get(name)} → {new.get(name)}"
        print(f"{'same   ' if same else 'DIFFERS'} {name}{change}")
    print(f"{len(new) - bad} of {len(set(old) | set(new))} outputs byte-identical to {args.base}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

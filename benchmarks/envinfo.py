"""The machine and versions a benchmark ran on (shared by the benchmark scripts)."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def environment(*modules: str) -> dict[str, Any]:
    """Date, git commit (``-dirty`` when tracked files changed), CPU, Python and module versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = ("git", "-C", str(Path(__file__).resolve().parent))
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout
    except OSError:
        commit, dirty = "", ""
    info: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "git_commit": (commit.strip() + ("-dirty" if dirty.strip() else "")) or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }
    for name in ("masquerade", "numpy", "cv2", *modules):
        info["opencv" if name == "cv2" else name] = getattr(
            importlib.import_module(name), "__version__", None
        )
    return info

"""benchmarks/compare_runs.py: two ``evaluate`` runs of the same pairs, compared pair by pair (a change's
before and after) — here the same swap with the colour correction on and off."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from masquerade import sample_path
from masquerade.evaluation import evaluate, write_report
from masquerade.evaluation.benchmarks import PairSpec
from masquerade.evaluation.results import SwapperSpec
from masquerade.pipeline import SwapOptions

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("compare_runs", REPO / "benchmarks" / "compare_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pairs = [
        PairSpec(index=0, kind="swap", source=sample_path("grace_hopper"), target=sample_path("astronaut")),
        PairSpec(index=1, kind="swap", source=sample_path("astronaut"), target=sample_path("grace_hopper")),
    ]
    out = []
    for colour in ("shading", "none"):
        folder = tmp_path_factory.mktemp(colour)
        spec = SwapperSpec("mesh3d", SwapOptions(swapper="mesh3d", colour=colour))  # type: ignore[arg-type]
        write_report(evaluate([spec], pairs), folder, force=True)
        out.append(folder / "results.json")
    return out[0], out[1]


def test_two_runs_are_compared_pair_by_pair(runs, capsys) -> None:
    assert _tool().main([str(runs[0]), str(runs[1]), "--names", "shading", "none"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 of 2 pairs measure differently")
    rows = [line for line in text.splitlines() if line.startswith("| cosine to source (swap) | 2 |")]
    assert rows and "`none`:" in rows[0]  # the second run against the first, on the same two pairs
    assert _tool().main([str(runs[0]), str(runs[0])]) == 0
    assert capsys.readouterr().out.startswith("0 of 2 pairs measure differently")


def test_a_run_with_several_columns_needs_one_named(runs, tmp_path: Path) -> None:
    d = json.loads(runs[0].read_text())
    d["swappers"] = d["swappers"] * 2
    two = tmp_path / "two.json"
    two.write_text(json.dumps(d))
    with pytest.raises(SystemExit, match="name one swapper column"):
        _tool().main([str(two), str(runs[1])])

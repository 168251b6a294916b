"""Compare two ``masquerade evaluate`` runs pair by pair: the same benchmark run with two versions of the
code (before and after a change), or with two sets of options, one swapper each.

Usage (from the repository root)::

    masquerade evaluate --swapper mesh3d --benchmark celeba_swap_v1 -o before/   # with the old code
    masquerade evaluate --swapper mesh3d --benchmark celeba_swap_v1 -o after/    # with the new code
    python benchmarks/compare_runs.py before/results.json after/results.json [--swapper LABEL]

Prints the paired table ``evaluate`` writes between the columns of one run (sign test for rates,
bootstrap interval for means; ``masquerade.evaluation.compare``) for the second run against the first,
over all pairs and over each of the reports' subsets (e.g. ``unoccluded``), and how many pairs changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from masquerade.evaluation.attributes import REPORT_SUBSETS, in_subset
from masquerade.evaluation.compare import compare, comparison_lines
from masquerade.evaluation.results import PairMetrics, SwapperReport, SwapperSpec

FIELDS = {f.name for f in dataclasses.fields(PairMetrics)}


def load_report(path: Path, label: str | None, name: str) -> SwapperReport:
    """The column ``label`` (default: the only one) of an ``evaluate`` results.json, as a report named
    ``name`` (its pairs only: enough for the paired comparison)."""
    doc = json.loads(path.read_text())
    columns = doc["swappers"]
    if label is not None:
        columns = [c for c in columns if _title(c) == label]
    if len(columns) != 1:
        titles = ", ".join(_title(c) for c in doc["swappers"])
        raise SystemExit(f"{path}: name one swapper column with --swapper (columns: {titles})")
    pairs = [PairMetrics(**{k: v for k, v in p.items() if k in FIELDS}) for p in columns[0]["pairs"]]
    return SwapperReport(SwapperSpec(name, label=name), pairs=pairs)


def _title(column: dict[str, Any]) -> str:
    s = column["swapper"]
    return str(s.get("label") or s.get("name"))


def changed_pairs(a: SwapperReport, b: SwapperReport) -> int:
    """Pairs whose measured figures differ at all between the two runs (timings left out)."""
    before = {(p.kind, p.index): p for p in a.pairs}
    n = 0
    for p in b.pairs:
        q = before.get((p.kind, p.index))
        if q is None:
            continue
        da, db = dataclasses.asdict(q), dataclasses.asdict(p)
        if any(da[k] != db[k] for k in da if k != "swap_ms"):
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path, help="results.json of the first run (the reference)")
    ap.add_argument("second", type=Path, help="results.json of the second run")
    ap.add_argument("--swapper", help="the column to compare when a run has several (its label)")
    ap.add_argument("--names", nargs=2, default=("before", "after"), help="what to call the two runs")
    args = ap.parse_args(argv)
    a = load_report(args.first, args.swapper, args.names[0])
    b = load_report(args.second, args.swapper, args.names[1])
    lines = [f"{changed_pairs(a, b)} of {len(b.pairs)} pairs measure differently", ""]
    lines += ["All pairs:", "", *comparison_lines(compare([a, b])), ""]
    for tag in REPORT_SUBSETS:
        sub = [dataclasses.replace(r, pairs=[p for p in r.pairs if in_subset(tag, p.tags)]) for r in (a, b)]
        if sub[0].pairs:
            lines += [f"Subset `{tag}`:", "", *comparison_lines(compare(sub)), ""]
    sys.stdout.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Paired comparison of two swappers over the same pairs: which is better on each figure, and how sure.

Both swappers ran on the same pairs, so each figure is compared pair by pair: for rates (closer to
source, retrieval top-1) an exact two-sided sign test on the pairs where exactly one of the two
succeeds (McNemar's test); for continuous figures the mean of the per-pair differences over the pairs
where both have a value, with a 95 % percentile-bootstrap interval (2,000 resamples, fixed seed). A
difference counts only when the interval excludes 0 (rates: p < 0.05); otherwise the verdict is "no
clear difference" — so a 2-point gap on 100 pairs is not mistaken for progress.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .results import PairMetrics, SwapperReport

BOOTSTRAP = 2000
ALPHA = 0.05

# (pair kind, PairMetrics field, label, higher is better, is a rate)
FIGURES: tuple[tuple[str, str, str, bool | None, bool], ...] = (
    ("swap", "closer_to_source", "closer to source", True, True),
    ("swap", "top1", "retrieval top-1", True, True),
    ("swap", "top1_other", "retrieval top-1 (other photos)", True, True),
    ("swap", "cos_src", "cosine to source", True, False),
    ("swap", "pose_err", "pose error (°)", False, False),
    ("swap", "expr_err", "expression error (IOD)", False, False),
    ("swap", "gaze_err", "gaze error (eye widths)", False, False),
    ("same", "ssim_region", "same-person SSIM (face)", True, False),
    ("same", "psnr_region", "same-person PSNR (face, dB)", True, False),
    ("same", "colour_err", "same-person colour error (ΔE)", False, False),
    ("same", "sharpness", "same-person sharpness ratio (1 = as sharp)", None, False),
    ("self", "ssim_face", "self SSIM (face box)", True, False),
    ("occ_target", "occ_survival", "target occluder survival", True, False),
    ("occ_source", "occ_source_err", "source-occluder error (grey levels)", False, False),
)


@dataclass(frozen=True)
class Comparison:
    """``b`` against ``a`` on one figure: ``diff`` = mean of (b − a) (rates: b's rate − a's rate) with its
    95 % interval (``lo``, ``hi``; rates: ``p`` of the sign test), over ``n`` pairs; ``verdict`` names
    the better one, or says there is no clear difference."""

    figure: str
    kind: str
    label: str
    a: str
    b: str
    n: int
    value_a: float | None
    value_b: float | None
    diff: float | None
    lo: float | None
    hi: float | None
    p: float | None
    verdict: str

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of ``wins`` vs ``losses`` under p = ½ (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return float(min(1.0, 2.0 * tail))


def bootstrap_interval(diffs: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of ``diffs``."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diffs), (BOOTSTRAP, len(diffs)))
    means = diffs[idx].mean(1)
    return float(np.quantile(means, ALPHA / 2)), float(np.quantile(means, 1 - ALPHA / 2))


def _by_index(r: SwapperReport, kind: str) -> dict[int, PairMetrics]:
    return {m.index: m for m in r.pairs if m.kind == kind}


def compare_figure(
    a: SwapperReport, b: SwapperReport, kind: str, field: str, label: str, higher: bool | None, rate: bool
) -> Comparison | None:
    """``b`` against ``a`` on one figure (None when neither has pairs of that kind)."""
    pa, pb = _by_index(a, kind), _by_index(b, kind)
    common = sorted(set(pa) & set(pb))
    if not common:
        return None

    def out(n: int, va: float | None, vb: float | None, d: float | None, lo: float | None,
            hi: float | None, p: float | None, verdict: str) -> Comparison:  # fmt: skip
        return Comparison(field, kind, label, a.label, b.label, n, va, vb, d, lo, hi, p, verdict)

    if rate:
        xa = np.array([bool(getattr(pa[i], field)) for i in common])
        xb = np.array([bool(getattr(pb[i], field)) for i in common])
        wins, losses = int((xb & ~xa).sum()), int((xa & ~xb).sum())
        p = sign_test(wins, losses)
        d = float(xb.mean() - xa.mean())
        lo, hi = bootstrap_interval(xb.astype(float) - xa.astype(float))
        verdict = "no clear difference"
        if p < ALPHA and d != 0:
            verdict = f"{b.label} better" if d > 0 else f"{a.label} better"
        return out(len(common), float(xa.mean()), float(xb.mean()), d, lo, hi, p, verdict)
    both = [(getattr(pa[i], field), getattr(pb[i], field)) for i in common]
    both = [
        (x, y) for x, y in both if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    if len(both) < 2:
        return out(len(both), None, None, None, None, None, None, "too few pairs")
    arr = np.array(both, np.float64)
    if higher is None:  # closer to 1 is better (a ratio)
        da, db = np.abs(np.log(np.maximum(arr[:, 0], 1e-6))), np.abs(np.log(np.maximum(arr[:, 1], 1e-6)))
        diffs, better_if = db - da, False
    else:
        diffs, better_if = arr[:, 1] - arr[:, 0], higher
    lo, hi = bootstrap_interval(diffs)
    verdict = "no clear difference"
    if lo > 0 or hi < 0:
        b_better = (lo > 0) == better_if
        verdict = f"{b.label} better" if b_better else f"{a.label} better"
    mean_d = float((arr[:, 1] - arr[:, 0]).mean())
    if higher is None:
        lo, hi = bootstrap_interval(arr[:, 1] - arr[:, 0])
    return out(len(arr), float(arr[:, 0].mean()), float(arr[:, 1].mean()), mean_d, lo, hi, None, verdict)


def compare(reports: Sequence[SwapperReport]) -> list[Comparison]:
    """Every later swapper against the first, on every figure both have."""
    rows: list[Comparison] = []
    if len(reports) < 2:
        return rows
    a = reports[0]
    for b in reports[1:]:
        for kind, field, label, higher, rate in FIGURES:
            c = compare_figure(a, b, kind, field, label, higher, rate)
            if c is not None:
                rows.append(c)
    return rows


def format_value(c: Comparison, v: float | None) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f} %" if c.figure in ("closer_to_source", "top1", "top1_other") else f"{v:.3f}"


def comparison_lines(rows: Sequence[Comparison]) -> list[str]:
    """A Markdown table of the comparisons."""
    if not rows:
        return []
    out = [
        "| figure | pairs | " + f"`{rows[0].a}` | compared | difference (95 % interval / p) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in rows:
        if c.diff is None:
            interval = "—"
        elif c.p is not None:
            interval = f"{100 * c.diff:+.1f} points, p = {c.p:.3g}"
        else:
            interval = f"{c.diff:+.3f} [{c.lo:+.3f}, {c.hi:+.3f}]"
        out.append(
            f"| {c.label} ({c.kind}) | {c.n} | {format_value(c, c.value_a)} | `{c.b}`: "
            f"{format_value(c, c.value_b)} | {interval} | {c.verdict} |"
        )
    return out

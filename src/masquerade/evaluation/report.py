"""The report: ``report.md``, ``results.json`` and the PNG plots of an evaluation run."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_bytes, prepare_out_folder
from .attributes import REPORT_SUBSETS
from .benchmarks import Benchmark
from .compare import Comparison, compare, comparison_lines
from .metrics import OUTPUT_IOU, PSNR_CAP
from .results import PairMetrics, SwapperReport, _jsonable


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _mm(s: dict[str, Any] | None, spec: str = ".3f", unit: str = "") -> str:
    """``mean / median (n)`` of a :func:`summary` dict."""
    if not s or not s.get("n"):
        return "— (n=0)"
    return f"{format(s['mean'], spec)}{unit} / {format(s['median'], spec)}{unit} (n={s['n']})"


def _rows_swap(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    def g(r: SwapperReport) -> dict[str, Any]:
        return r.aggregate.get("swap", {})

    gal = next((g(r).get("gallery_identities") for r in reports if g(r)), 0)
    rows: list[tuple[str, list[str]]] = [
        ("pairs / failures", [f"{g(r).get('pairs', 0)} / {g(r).get('failures', 0)}" for r in reports]),
        ("output closer to source than to target ↑", [_pct(g(r).get("closer_to_source")) for r in reports]),
        (f"identity retrieval top-1 / top-5 ↑ (gallery: {gal} identities, source photos)",
         [f"{_pct(g(r).get('top1'))} / {_pct(g(r).get('top5'))}" for r in reports]),
        ("retrieval top-1 / top-5 ↑, gallery of the sources' *other* photos",
         [f"{_pct(g(r).get('top1_other'))} / {_pct(g(r).get('top5_other'))}" for r in reports]),
        ("output closer to the source's other photo than to target ↑",
         [_pct(g(r).get("closer_to_source_other")) for r in reports]),
        ("cosine(output, source) ↑ mean / median", [_mm(g(r).get("cos_src")) for r in reports]),
        ("cosine(output, target) ↓", [_mm(g(r).get("cos_tgt")) for r in reports]),
        ("cosine(output, source's other photo) ↑", [_mm(g(r).get("cos_src_other")) for r in reports]),
        ("distance(output, source) ↓ (dlib; same person < 0.6)",
         [_mm(g(r).get("dist_src")) for r in reports]),
        ("distance(output, target) ↑", [_mm(g(r).get("dist_tgt")) for r in reports]),
        ("Fréchet distance, dlib identity features, outputs vs sources ↓ (not FID)",
         [_fmt((g(r).get("frechet_identity") or {}).get("value"), ".4f")
          + f" (n={(g(r).get('frechet_identity') or {}).get('n_outputs', 0)})" for r in reports]),
    ]  # fmt: skip
    fo = next((g(r)["frechet_onnx"] for r in reports if "frechet_onnx" in g(r)), None)
    if fo is not None:
        m = fo["model"]
        rows.append((
            f"Fréchet distance on features of `{m['file']}` (sha256 {m['sha256'][:12]}…), "
            "outputs vs targets ↓",
            [_fmt((g(r).get("frechet_onnx") or {}).get("value"), ".3f")
             + f" (n={(g(r).get('frechet_onnx') or {}).get('n_outputs', 0)})" for r in reports],
        ))  # fmt: skip
    rows += [
        ("pose error, mean abs. Δ of yaw / pitch / roll ↓",
         [_mm(g(r).get("pose_err"), ".2f", "°") for r in reports]),
        ("pose error, median abs. Δ yaw / pitch / roll",
         [" / ".join(_fmt((g(r).get(f"pose_err_{k}") or {}).get("median"), ".2f") + "°"
                     for k in ("yaw", "pitch", "roll"))
          for r in reports]),
        ("expression error, landmarks (IOD) ↓", [_mm(g(r).get("expr_err")) for r in reports]),
        ("expression error, measures ↓", [_mm(g(r).get("expr_measures_err")) for r in reports]),
        ("gaze error (eye widths) ↓", [_mm(g(r).get("gaze_err")) for r in reports]),
        ("swap time per pair (ms) mean / median", [_mm(g(r).get("swap_ms"), ".0f") for r in reports]),
    ]  # fmt: skip
    return rows


def _rows_same(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    def g(r: SwapperReport) -> dict[str, Any]:
        return r.aggregate.get("same", {})

    return [
        ("pairs / failures", [f"{g(r).get('pairs', 0)} / {g(r).get('failures', 0)}" for r in reports]),
        ("SSIM in the target's face ↑", [_mm(g(r).get("ssim_region"), ".4f") for r in reports]),
        ("PSNR in the target's face (dB) ↑", [_mm(g(r).get("psnr_region"), ".2f") for r in reports]),
        ("colour error, mean ΔE (Lab) ↓", [_mm(g(r).get("colour_err"), ".2f") for r in reports]),
        ("sharpness ratio, output / real target (1 = as sharp; < 1 blurrier)",
         [_mm(g(r).get("sharpness"), ".3f") for r in reports]),
        ("cosine(output, target: the same person) ↑", [_mm(g(r).get("cos_tgt")) for r in reports]),
        ("pose error ↓", [_mm(g(r).get("pose_err"), ".2f", "°") for r in reports]),
        ("expression error, landmarks (IOD) ↓", [_mm(g(r).get("expr_err")) for r in reports]),
        ("gaze error (eye widths) ↓", [_mm(g(r).get("gaze_err")) for r in reports]),
    ]  # fmt: skip


def _count(a: dict[str, Any]) -> str:
    return f"{a.get('pairs', 0)} / {a.get('failures', 0)}"


def _stat(a: dict[str, Any], key: str, stat: str = "mean", spec: str = ".3f") -> str:
    return _fmt((a.get(key) or {}).get(stat), spec)


def _rows_occlusion(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    for kind, where, key, what, spec in (
        ("occ_target", "target", "occ_survival", "occluder survival (1 kept, 0 painted over) ↑", ".3f"),
        ("occ_source", "source", "occ_source_err",
         "difference from the clean source's swap in the face (grey levels) ↓", ".2f"),
    ):  # fmt: skip
        if not any(kind in r.aggregate for r in reports):
            continue
        aggs = [r.aggregate.get(kind, {}) for r in reports]
        rows += [
            (f"occluder on the {where}: pairs / failures", [_count(a) for a in aggs]),
            (what, [_mm(a.get(key), spec) for a in aggs]),
            ("closer to source ↑", [_pct(a.get("closer_to_source")) for a in aggs]),
        ]
    return rows


def _rows_subsets(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []
    for tag in REPORT_SUBSETS:
        per = [r.aggregate.get("subsets", {}).get(tag, {}) for r in reports]
        swap = [p.get("swap", {}) for p in per]
        same = [p.get("same", {}) for p in per]
        if any(swap):
            rows += [
                (f"**{tag}** swap: pairs / closer to source / top-1",
                 [f"{a.get('pairs', 0)} / {_pct(a.get('closer_to_source'))} / {_pct(a.get('top1'))}"
                  for a in swap]),
                (f"**{tag}** swap: pose error / gaze error (medians)",
                 [f"{_stat(a, 'pose_err', 'median', '.2f')}° / {_stat(a, 'gaze_err', 'median')}"
                  for a in swap]),
            ]  # fmt: skip
        if any(same):
            rows.append((
                f"**{tag}** same-person: pairs / SSIM / sharpness / ΔE (means)",
                [f"{a.get('pairs', 0)} / {_stat(a, 'ssim_region')} / {_stat(a, 'sharpness', spec='.2f')} / "
                 f"{_stat(a, 'colour_err', spec='.1f')}" for a in same],
            ))  # fmt: skip
    return rows


def _rows_self(reports: list[SwapperReport]) -> list[tuple[str, list[str]]]:
    def g(r: SwapperReport) -> dict[str, Any]:
        return r.aggregate.get("self", {})

    rows: list[tuple[str, list[str]]] = [
        ("pairs / failures", [f"{g(r).get('pairs', 0)} / {g(r).get('failures', 0)}" for r in reports]),
        ("SSIM, whole image ↑ mean / median", [_mm(g(r).get("ssim"), ".4f") for r in reports]),
        ("SSIM, face box ↑", [_mm(g(r).get("ssim_face"), ".4f") for r in reports]),
        (
            f"PSNR, whole image (dB, identical = {PSNR_CAP:.0f}) ↑",
            [_mm(g(r).get("psnr"), ".2f") for r in reports],
        ),
        ("PSNR, face box (dB) ↑", [_mm(g(r).get("psnr_face"), ".2f") for r in reports]),
        ("cosine(output, target) ↑", [_mm(g(r).get("cos_tgt")) for r in reports]),
        ("pose error ↓", [_mm(g(r).get("pose_err"), ".2f", "°") for r in reports]),
        ("expression error, landmarks (IOD) ↓", [_mm(g(r).get("expr_err")) for r in reports]),
    ]
    lp = next((g(r)["lpips_onnx"] for r in reports if "lpips_onnx" in g(r)), None)
    if lp is not None:
        m = lp["model"]
        rows.append((
            f"distance by `{m['file']}` (sha256 {m['sha256'][:12]}…), output vs target ↓",
            [_mm(g(r).get("lpips_onnx"), ".4f") for r in reports],
        ))  # fmt: skip
    return rows


def _table(reports: list[SwapperReport], rows: list[tuple[str, list[str]]]) -> list[str]:
    head = "| metric | " + " | ".join(f"`{r.label}`" for r in reports) + " |"
    sep = "|---|" + "---|" * len(reports)
    return [head, sep, *(f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows)]


def markdown_report(
    reports: list[SwapperReport], benchmark: Benchmark | None = None, meta: dict[str, Any] | None = None,
    plots: Sequence[str] = (), grids: Sequence[tuple[str, str]] = (), comparison: Sequence[Comparison] = (),
) -> str:  # fmt: skip
    """The ``report.md`` text: swappers side by side, metric notes, failures, plots."""
    meta = meta or {}
    lines = [f"# masquerade evaluation{': ' + benchmark.name if benchmark else ''}", ""]
    if benchmark is not None:
        c = benchmark.counts()
        extra = "".join(
            f", {c[k]} {what}"
            for k, what in (("same", "same-person pairs"), ("occ_target", "target-occluder pairs"),
                            ("occ_source", "source-occluder pairs"))
            if c.get(k)
        )  # fmt: skip
        lines.append(
            f"Benchmark `{benchmark.name}`: {c['swap']} different-person swap pairs, "
            f"{c['self']} self pairs{extra}"
            + (
                f", plus {len(benchmark.gallery)} gallery photos of "
                f"{len({g.identity for g in benchmark.gallery})} further identities for retrieval"
                if benchmark.gallery
                else ""
            )
            + (f" (file sha256 `{benchmark.sha256[:16]}…`)" if benchmark.sha256 else "")
            + (f", images under `{benchmark.root}`" if benchmark.root else "")
            + "."
        )
    if meta:
        lines.append(
            f"Run {meta.get('date', '')} with masquerade {meta.get('masquerade', '')} in "
            f"{meta.get('seconds', 0):.0f} s; command: `{meta.get('command', '')}`."
        )
    if reports and reports[0].measured_with:
        mw = reports[0].measured_with
        lines.append("Measured with: " + "; ".join(f"{k}: {v}" for k, v in mw.items()) + ".")
    lines += ["", "Swappers: " + "; ".join(f"`{r.label}` = {r.spec.title_long()}" for r in reports) + ".", ""]
    if any("swap" in r.aggregate for r in reports):
        lines += ["## Different-person swaps", ""]
        base = next((r.aggregate["swap"].get("dist_src_tgt") for r in reports if "swap" in r.aggregate), None)
        if base and base.get("n"):
            lines += [f"Reference: distance(source, target) before swapping: {_mm(base)}.", ""]
        lines += [*_table(reports, _rows_swap(reports)), ""]
    if any("self" in r.aggregate for r in reports):
        lines += ["## Self swaps (source and target the same person; output vs target)", ""]
        lines += [*_table(reports, _rows_self(reports)), ""]
    if any("same" in r.aggregate for r in reports):
        lines += [
            "## Same-person pairs (two different photos of one person: the output is compared with the "
            "real target inside the target's face)",
            "",
            *_table(reports, _rows_same(reports)),
            "",
        ]
    occ = _rows_occlusion(reports)
    if occ:
        lines += ["## Synthetic occluders (known masks)", "", *_table(reports, occ), ""]
    subs = _rows_subsets(reports)
    if subs:
        lines += [
            "## Subsets",
            "",
            "; ".join(f"**{k}**: {v}" for k, v in REPORT_SUBSETS.items()) + ".",
            "",
            *_table(reports, subs),
            "",
        ]
    if comparison:
        lines += [
            f"## `{comparison[0].a}` compared pair by pair",
            "",
            "Rates: exact sign test on the pairs where only one of the two succeeds; other figures: mean "
            "per-pair difference (compared − first) with a 95 % bootstrap interval. A verdict needs p < 0.05 "
            "or an interval that excludes 0 (sharpness: closer to 1 is better).",
            "",
            *comparison_lines(comparison),
            "",
        ]
    if grids:
        lines += [
            "## Picture grids",
            "",
            "Each row: source | target | "
            + " | ".join(f"`{r.label}`" for r in reports)
            + " (faces cropped at 1.6× the face box).",
            "",
        ]
        lines += [f"**{name}**\n\n![{name}]({file})\n" for name, file in grids]
    if any(r.video for r in reports):
        lines += ["## Video (jitter and flicker of the output relative to the input clip; 1 = as stable)", ""]
        lines += [
            "| swapper | clip | frames (swapped) | jitter in → out (IOD) | ratio "
            "| flicker in → out (L) | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in reports:
            for v in r.video:
                if v.frames is None:
                    why = v.skipped or f"failed: {v.failure}"
                    lines.append(f"| `{r.label}` | {Path(v.target).name} | {why} | | | | |")
                    continue
                lines.append(
                    f"| `{r.label}` | {Path(v.target).name} | {v.frames} ({v.frames_swapped}) | "
                    f"{_fmt(v.jitter_input, '.4f')} → {_fmt(v.jitter_output, '.4f')} | "
                    f"{_fmt(v.jitter_ratio, '.2f')} | {_fmt(v.flicker_input, '.3f')} → "
                    f"{_fmt(v.flicker_output, '.3f')} | {_fmt(v.flicker_ratio, '.2f')} |"
                )
        lines.append("")
    has_pairs = any(r.pairs for r in reports)
    lines += ["## How to read it", ""]
    if any(r.video for r in reports):
        lines += [
            "Video: landmark jitter = mean frame-to-frame landmark acceleration in inter-ocular distances; "
            "flicker = mean |second difference| of the face's mean LAB lightness; both from "
            "`masquerade.video.temporal`, output clip vs input clip over the same frames "
            "(ratio > 1: less stable).",
            "",
        ]
    if has_pairs:
        lines += [
        "Rates (closer, top-k) count every pair of the kind, failures as misses; the other rows are "
        "mean / median over the pairs that produced a value, with that n. ↑ / ↓: better is higher / lower "
        "for a swapper (the `none` baseline shows what no swap scores, `source` the identity ceiling).",
        "Identity: dlib ResNet 128-d embeddings of the largest source/target face and of the output face "
        f"overlapping the target face (IoU ≥ {OUTPUT_IOU}). Retrieval ranks the output among the distinct "
        "source identities of the swap pairs (and the benchmark's gallery rows). Pose: mediapipe mesh fit "
        "to the canonical mesh. Expression "
        "(landmarks): brows, eyes and mouth of the pose-normalised meshes, each region centred, mean point "
        "distance in inter-ocular distances; (measures): mean |Δ| of the eight expression measures. SSIM: "
        "Wang et al. 2004 on luma (11×11 Gaussian, σ 1.5); face box = target face box + 10 %.",
        "The Fréchet distance on dlib identity features compares the distribution of output embeddings with "
        "that of the source photos' embeddings; it is not FID, and biased upwards at this sample size.",
        "",
        ]  # fmt: skip
    if any(any(m.failure for m in r.pairs) or any(v.failure for v in r.video) for r in reports):
        lines += [
            "## Failures",
            "",
            "| swapper | pair | kind | source | target | reason |",
            "|---|---|---|---|---|---|",
        ]
        for r in reports:
            for m in r.pairs:
                if m.failure is not None:
                    reason = m.failure.replace("|", "/").replace("\n", " ")
                    lines.append(
                        f"| `{r.label}` | {m.index} | {m.kind} | {m.source} | {m.target} | {reason} |"
                    )
            for v in r.video:
                if v.failure is not None:
                    lines.append(f"| `{r.label}` | video | video | {v.source} | {v.target} | {v.failure} |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def write_plots(reports: list[SwapperReport], folder: Path) -> list[str]:
    """Matplotlib PNGs (Agg canvas, no pyplot state); returns the file names written."""
    written: list[str] = []
    labels = [r.label for r in reports]
    swap = [[m for m in r.pairs if m.kind == "swap"] for r in reports]
    if any(swap):
        n = len(reports)
        fig = _figure(4.2 * n, 3.4)
        axes = fig.subplots(1, n, squeeze=False)[0]
        every = [c for ms in swap for m in ms for c in (m.cos_src, m.cos_tgt) if c is not None]
        lo = min(0.8, np.floor(20 * min(every)) / 20) if every else 0.8
        bins = np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.01)) + 1)
        for ax, lab, ms in zip(axes, labels, swap, strict=True):
            cs = np.clip([m.cos_src for m in ms if m.cos_src is not None], lo, 1.0)
            ct = np.clip([m.cos_tgt for m in ms if m.cos_tgt is not None], lo, 1.0)
            ax.hist(cs, bins=bins, alpha=0.6, label=f"to source (n={len(cs)})", color="tab:blue")
            ax.hist(ct, bins=bins, alpha=0.6, label=f"to target (n={len(ct)})", color="tab:orange")
            fails = sum(m.failure is not None for m in ms)
            ax.set_title(f"{lab}: identity cosine ({fails} failures)", fontsize=10)
            ax.set_xlabel("cosine similarity of output embedding")
            ax.legend(fontsize=8)
        axes[0].set_ylabel("pairs")
        _save_figure(fig, folder / "identity_cosine.png")
        written.append("identity_cosine.png")

        fig = _figure(max(6.0, 1.6 * n + 3), 3.6)
        ax = fig.subplots()
        keys = [("closer_to_source", "closer to source"), ("top1", "top-1"), ("top5", "top-5"),
                ("top1_other", "top-1 (other photo)"), ("top5_other", "top-5 (other photo)")]  # fmt: skip
        width = 0.8 / len(keys)
        x = np.arange(n)
        for i, (k, name) in enumerate(keys):
            vals = [100 * (r.aggregate.get("swap", {}).get(k) or 0.0) for r in reports]
            ax.bar(x + (i - (len(keys) - 1) / 2) * width, vals, width, label=name)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 105)
        ax.set_ylabel("% of swap pairs (failures count as misses)")
        ax.set_title("identity transfer and retrieval", fontsize=10)
        ax.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        _save_figure(fig, folder / "retrieval.png")
        written.append("retrieval.png")

        panels = (("pose_err", "pose error (°), mean |Δ| yaw/pitch/roll"),
                  ("expr_err", "expression error (IOD), landmarks"))  # fmt: skip
        written.append(_boxplots(swap, labels, panels, folder / "pose_expression.png"))
    selfp = [[m for m in r.pairs if m.kind == "self"] for r in reports]
    if any(selfp):
        panels = (("ssim_face", "self swaps: SSIM in the face box"),
                  ("psnr_face", "self swaps: PSNR in the face box (dB)"))  # fmt: skip
        written.append(_boxplots(selfp, labels, panels, folder / "self_swap.png"))
    return written


def _boxplots(
    per_swapper: list[list[PairMetrics]], labels: list[str], panels: tuple[tuple[str, str], ...], path: Path
) -> str:
    """One box-plot panel per (metric attribute, title), one box per swapper; returns the file name."""
    fig = _figure(max(7.0, 2.2 * len(labels) + 3), 3.6)
    for ax, (key, title) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        data = [[getattr(m, key) for m in ms if getattr(m, key) is not None] for ms in per_swapper]
        ax.boxplot([d if d else [np.nan] for d in data], showfliers=True)
        ax.set_xticks(np.arange(1, len(labels) + 1), labels)
        ax.set_title(title, fontsize=10)
    _save_figure(fig, path)
    return path.name


def grid_image(
    reports: Sequence[SwapperReport], indices: Sequence[int], cell: int = 160
) -> np.ndarray | None:
    """One picture grid: a row per pair (source | target | each swapper's output), labelled columns; None
    when no report kept those pairs' crops."""
    import cv2

    rows = []
    for i in indices:
        first = next((r.crops[i] for r in reports if i in r.crops), None)
        if first is None:
            continue
        blank = np.full((cell, cell, 3), 128, np.uint8)
        cells = [first["source"], first["target"]] + [
            r.crops[i]["output"] if i in r.crops else blank for r in reports
        ]
        rows.append(np.hstack(cells))
    if not rows:
        return None
    labels = ["source", "target", *(r.label for r in reports)]
    head = np.full((22, cell * len(labels), 3), 255, np.uint8)
    for k, text in enumerate(labels):
        cv2.putText(
            head, text[:22], (k * cell + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    return np.vstack([head, *rows])


def write_grids(
    reports: Sequence[SwapperReport], selection: dict[str, list[int]], folder: Path
) -> list[tuple[str, str]]:
    """The picture grids as JPEGs (``grid-NAME.jpg``); returns (name, file name) of those written."""
    from ..imageio import encode_image

    written = []
    for name, indices in selection.items():
        img = grid_image(reports, indices)
        if img is None:
            continue
        file = f"grid-{name}.jpg"
        atomic_write_bytes(folder / file, encode_image(img, ".jpg", quality=85))
        written.append((name, file))
    return written


def environment() -> dict[str, Any]:
    import platform
    from importlib import metadata

    from .. import __version__

    versions = {}
    for pkg in (
        "numpy",
        "opencv-python-headless",
        "mediapipe",
        "dlib-bin",
        "scipy",
        "matplotlib",
        "onnxruntime",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "masquerade": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }


def write_report(
    reports: list[SwapperReport], folder: str | os.PathLike[str], benchmark: Benchmark | None = None,
    meta: dict[str, Any] | None = None, force: bool = False,
) -> list[Path]:  # fmt: skip
    """Write ``report.md``, ``results.json`` (per pair and aggregate) and the PNG plots into ``folder``
    (each file atomically); returns the paths written."""
    from .run import grid_selection

    out = prepare_out_folder(folder, force)
    env = {**environment(), **(meta or {})}
    plots = write_plots(reports, out)
    grids = write_grids(reports, grid_selection(benchmark.pairs), out) if benchmark is not None else []
    comparison = compare(reports)
    doc = {
        "benchmark": None if benchmark is None else benchmark.describe(),
        "environment": env,
        "notes": {
            "frechet_identity": "Fréchet distance between dlib 128-d identity embeddings of outputs and of "
            "sources (swap pairs); not FID.",
            "rates": "closer_to_source and top-k rates count failures as misses; continuous metrics are over "
            "pairs with a value (see n).",
            "psnr_cap": PSNR_CAP,
            "output_face_iou": OUTPUT_IOU,
        },
        "swappers": [r.to_dict() for r in reports],
        "comparison": [c.to_dict() for c in comparison],
        "grids": {name: file for name, file in grids},
    }
    atomic_write_bytes(
        out / "results.json", (json.dumps(_jsonable(doc), indent=1, ensure_ascii=False) + "\n").encode()
    )
    md = markdown_report(reports, benchmark, env, plots, grids, comparison)
    atomic_write_bytes(out / "report.md", md.encode())
    return [out / "results.json", out / "report.md", *(out / p for p in plots), *(out / f for _, f in grids)]

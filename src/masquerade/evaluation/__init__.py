"""Evaluation: ``masquerade evaluate`` — benchmarks of (source, target) pairs, metrics and reports."""

from __future__ import annotations

from .suite import evaluate, load_benchmark, write_report

__all__ = ["evaluate", "load_benchmark", "write_report"]

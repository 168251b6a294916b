"""Temporal filters for video: the One-Euro filter (Casiez et al. 2012) and an exponential average."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 1.0  # Hz: lower = smoother when still
    beta: float = 0.8  # speed coefficient (in scale units per second): higher = less lag when moving
    d_cutoff: float = 1.0


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of any shape; ``scale`` normalises speed (e.g. the face size)."""

    def __init__(self, params: OneEuroParams | None = None) -> None:
        self.p = params or OneEuroParams()
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        assert self._dx is not None
        dt = t - self._t
        dx = (x - self._x) / dt / max(scale, 1e-9)
        a_d = _alpha(self.p.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = _alpha(self.p.min_cutoff + self.p.beta * np.abs(self._dx), dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


class ExpAverage:
    """Exponential moving average with a time constant in seconds."""

    def __init__(self, tau: float = 0.25) -> None:
        self.tau = tau
        self._v: np.ndarray | None = None
        self._t = 0.0

    def reset(self) -> None:
        self._v = None

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        v = np.asarray(v, np.float64)
        if self._v is None or t <= self._t:
            self._v, self._t = v.copy(), t
            return v
        a = 1.0 - math.exp(-(t - self._t) / self.tau)
        self._v = self._v + a * (v - self._v)
        self._t = t
        return self._v.copy()

"""The few statistics the bench reports: median, nearest-rank percentile, geometric mean."""

from __future__ import annotations

import math
from typing import Sequence


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `fraction` of samples <= it.

    Nearest rank never interpolates, so p99 of fewer than 100 samples is the maximum:
    a tail figure that is never smaller than a value really observed.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return float(ordered[rank - 1])


def geometric_mean(values: Sequence[float]) -> float:
    """The mean of ratios: 2x faster and 2x slower average to 1x."""
    if not values:
        raise ValueError("geometric mean of no values")
    if any(v <= 0 for v in values):
        raise ValueError("geometric mean needs positive values")
    return math.exp(sum(math.log(v) for v in values) / len(values))

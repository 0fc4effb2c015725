"""Trend statistics for the soak: Theil–Sen slope and the Mann–Kendall test.

Both are rank-based, so a few outliers (a GC pause, one slow sample) cannot
fake a trend or hide one, and neither assumes normal noise.

- Slope: ``scipy.stats.theilslopes`` against the real sample times (samples
  are not exactly equally spaced, and a resumed run may have uneven gaps).
- Trend test: ``pymannkendall.original_test`` — the textbook Mann–Kendall test
  (S statistic, variance corrected for ties, continuity-corrected z, two-sided
  p). We use it rather than ``scipy.stats.kendalltau`` against time because
  kendalltau computes tau-b with an exact small-sample distribution and its own
  tie handling, whereas the thresholds in :mod:`.verdict` were set on the
  classical test; pymannkendall also has the autocorrelation-corrected variants
  (Hamed–Rao, Yue–Wang) should those ever be needed.

The soak must also judge inside matrix cells whose interpreter has no numpy or
scipy wheel (the 3.14 debug build, 3.15), so the same two formulas are written
out below in pure Python and used when the libraries can't be imported. The
unit tests check that both paths give the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import statistics as pystats
from typing import Dict, List, Optional, Sequence, Tuple

try:  # the reference implementations, when this interpreter has them
    import pymannkendall as _pymannkendall
    from scipy import stats as _scipy_stats
except ImportError:  # numpy/scipy have no wheel for every interpreter we soak on
    _pymannkendall = None
    _scipy_stats = None

# Rank statistics are O(n^2) in the number of points; a 24 h run sampled every
# second would have 86,400. Medians of equal-time bins keep the shape of the
# series (and a trend's slope) while bounding the cost.
MAX_POINTS = 600


@dataclasses.dataclass(frozen=True)
class Trend:
    """Theil–Sen slope and Mann–Kendall result for one series."""

    slope_per_s: float
    intercept: float
    mk_s: float
    mk_z: float
    mk_p: float
    points: int

    def increasing(self, alpha: float) -> bool:
        return self.mk_p < alpha and self.mk_s > 0

    def decreasing(self, alpha: float) -> bool:
        return self.mk_p < alpha and self.mk_s < 0


def libraries_available() -> bool:
    return _scipy_stats is not None and _pymannkendall is not None


def implementation() -> str:
    """Which code computed the statistics: recorded in the verdict."""
    return "scipy+pymannkendall" if libraries_available() else "pure-python"


def theil_sen(times: Sequence[float], values: Sequence[float]) -> Tuple[float, float]:
    """Median of pairwise slopes; intercept = median(y) - slope * median(x) (as scipy)."""
    slopes: List[float] = []
    n = len(values)
    for i in range(n - 1):
        xi, yi = times[i], values[i]
        for j in range(i + 1, n):
            dx = times[j] - xi
            if dx != 0:
                slopes.append((values[j] - yi) / dx)
    if not slopes:
        return 0.0, float(pystats.median(values)) if values else 0.0
    slope = float(pystats.median(slopes))
    intercept = float(pystats.median(values)) - slope * float(pystats.median(times))
    return slope, intercept


def mann_kendall(values: Sequence[float]) -> Tuple[float, float, float]:
    """(S, z, two-sided p) of the Mann–Kendall test, tie-corrected, as pymannkendall."""
    n = len(values)
    s = 0
    for i in range(n - 1):
        vi = values[i]
        for j in range(i + 1, n):
            vj = values[j]
            if vj > vi:
                s += 1
            elif vj < vi:
                s -= 1
    ties: Dict[float, int] = {}
    for v in values:
        ties[v] = ties.get(v, 0) + 1
    var_s = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())) / 18
    if s == 0 or var_s <= 0:
        return float(s), 0.0, 1.0
    z = (s - 1) / math.sqrt(var_s) if s > 0 else (s + 1) / math.sqrt(var_s)
    return float(s), z, math.erfc(abs(z) / math.sqrt(2.0))


def downsample(
    times: Sequence[float], values: Sequence[float], max_points: int = MAX_POINTS
) -> Tuple[List[float], List[float]]:
    """At most ``max_points`` (time, value) pairs: medians of equal-time bins."""
    if len(values) <= max_points:
        return list(times), list(values)
    start, end = times[0], times[-1]
    width = (end - start) / max_points or 1.0
    bins: List[Tuple[List[float], List[float]]] = [([], []) for _ in range(max_points)]
    for t, v in zip(times, values):
        index = min(int((t - start) / width), max_points - 1)
        bins[index][0].append(t)
        bins[index][1].append(v)
    out_t: List[float] = []
    out_v: List[float] = []
    for bin_t, bin_v in bins:
        if bin_v:
            out_t.append(float(pystats.median(bin_t)))
            out_v.append(float(pystats.median(bin_v)))
    return out_t, out_v


def analyse(
    times: Sequence[float], values: Sequence[float], *, use_libraries: Optional[bool] = None
) -> Trend:
    """Slope and trend test of ``values`` over ``times`` (seconds)."""
    if len(times) != len(values):
        raise ValueError("times and values differ in length")
    if len(values) < 3:
        raise ValueError(f"need at least 3 points for a trend, got {len(values)}")
    t, v = downsample(times, values)
    if use_libraries is None:
        use_libraries = libraries_available()
    if len(set(v)) == 1:  # constant: no trend, and the libraries would divide by zero
        return Trend(0.0, v[0], 0.0, 0.0, 1.0, len(v))
    if use_libraries:
        if not libraries_available():
            raise RuntimeError("scipy/pymannkendall are not importable here")
        fit = _scipy_stats.theilslopes(v, t)
        result = _pymannkendall.original_test(v)
        return Trend(
            float(fit[0]), float(fit[1]), float(result.s), float(result.z), float(result.p), len(v)
        )
    slope, intercept = theil_sen(t, v)
    s, z, p = mann_kendall(v)
    return Trend(slope, intercept, s, z, p, len(v))

"""The soak's verdict: per metric, from the samples file alone.

A resource metric (memory, fds, threads) fails only when its growth is

1. *significant*: Mann–Kendall p < ``ALPHA`` over the analysed window, and
2. *material*: the Theil–Sen slope exceeds the metric's rate threshold **and**
   the fitted growth over the window exceeds its noise floor, and
3. *still going on*: the last ``TAIL_FRACTION`` of the window is itself
   significantly growing faster than the rate threshold. A cache fills and
   then stops (a plateau), a lazily opened file is one step; a leak keeps
   growing. (Theil–Sen, a median of pairwise slopes, ignores a single step
   unless it falls near the middle of the window, where just over half of all
   pairs straddle it; the tail test settles that case.)

USS is judged the same way but only reported (verdict ``info``): it rises
whenever *another* process unmaps pages it shared with ours (a library's
pages become private to us), so on a busy machine it trends without any
allocation of ours. RSS and the allocator heap carry the memory verdict.

fds also fail when they come within ``LIMIT_FRACTION`` of the soft fd limit,
and RSS within it of the cgroup memory limit: a leak that already hit its
ceiling during warm-up is flat afterwards, but not healthy.

Everything before ``warmup_s`` of each segment is left out: imports,
first-call caches and allocator arenas settle there.

Segments (a run resumed after a kill) are spliced: each later segment's
analysed part is moved back in time to follow the previous one directly (the
gap is the new process's warm-up, which is not judged) and shifted in level
so that its first value continues from the previous segment's last. A
restarted process starts from a lower baseline; without the shift, the drop
would hide a leak and the regrowth would fake one.

Also failing: any error (an outcome the contract doesn't predict), any native
fallback (a caught panic or internal error), a stream that made no calls, a
p99 above the budget, an incomplete run. The JSON's keys ``status``,
``duration_s`` and ``requested_duration_s`` are what the sign-off reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from . import recorder as recorder_module, statistics as stats_module
from .series import Series

# Significance: with ~60 samples (a 2-minute run) a real leak gives p < 1e-6,
# while white noise crosses 0.01 once in a hundred runs; the materiality
# thresholds below take care of those.
ALPHA = 0.01
# Fewer post-warm-up points than this and no trend can be told from noise.
MIN_POINTS = 8
# The tail that must still grow for a memory trend to count as a leak.
TAIL_FRACTION = 0.5
# How close to a hard limit counts as having reached it.
LIMIT_FRACTION = 0.9

KIB = 1024
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Threshold:
    """Growth that matters: a rate, and a floor for growth over the window."""

    slope_per_hour: float
    min_growth: float
    why: str


THRESHOLDS: Dict[str, Threshold] = {
    # RSS/USS move in pages and arena steps of 64 KiB–1 MiB; 1 MiB/h is 24 MiB
    # a day, which a 512 MiB container notices within weeks. The floor of 256
    # KiB (64 pages) keeps one late arena from failing a short run.
    "rss": Threshold(1 * MIB, 256 * KIB, "1 MiB/h and 256 KiB over the window"),
    "uss": Threshold(1 * MIB, 256 * KIB, "1 MiB/h and 256 KiB over the window"),
    # malloc's in-use bytes are exact, so the bar is lower: the leak canary's
    # 64 B per call at 20 calls/s is ~4.4 MiB/h.
    "heap": Threshold(256 * KIB, 32 * KIB, "256 KiB/h and 32 KiB over the window"),
    # Counts are exact and steady: a descriptor or thread per hour, two over the window.
    "fds": Threshold(1.0, 2.0, "1/h and 2 over the window"),
    "threads": Threshold(1.0, 2.0, "1/h and 2 over the window"),
}
RESOURCE_METRICS = tuple(THRESHOLDS)
# Judged and reported, never failing the run (see the module docstring).
INFORMATIONAL = frozenset({"uss"})


def _warmup_window(series: Series, metric: str, warmup_s: float) -> List[Tuple[float, float]]:
    """(t, value) after each segment's warm-up, spliced across segments (see above)."""
    by_segment: Dict[int, List[Tuple[float, float]]] = {}
    for sample in series.samples:
        value = sample.get(metric)
        if value is None or float(sample["segment_t"]) < warmup_s:
            continue
        by_segment.setdefault(int(sample["segment"]), []).append((float(sample["t"]), float(value)))
    interval = float(series.header["config"]["interval_s"])
    spliced: List[Tuple[float, float]] = []
    for segment in sorted(by_segment):
        points = by_segment[segment]
        time_shift = level_shift = 0.0
        if spliced:
            time_shift = spliced[-1][0] + interval - points[0][0]
            level_shift = spliced[-1][1] - points[0][1]
        spliced.extend((t + time_shift, v + level_shift) for t, v in points)
    return spliced


def _judge_trend(metric: str, points: List[Tuple[float, float]]) -> Dict[str, Any]:
    threshold = THRESHOLDS[metric]
    result: Dict[str, Any] = {
        "slope_per_hour": None,
        "mk_p": None,
        "trend": "n/a",
        "verdict": "fail",
        "reason": "",
        "points": len(points),
        "threshold": threshold.why,
    }
    if len(points) < MIN_POINTS:
        result["reason"] = f"only {len(points)} samples after warm-up (need {MIN_POINTS})"
        return result
    times = [t for t, _ in points]
    values = [v for _, v in points]
    whole = stats_module.analyse(times, values)
    span = times[-1] - times[0]
    slope_h = whole.slope_per_s * 3600.0
    growth = whole.slope_per_s * span
    result.update(
        slope_per_hour=slope_h,
        mk_p=whole.mk_p,
        growth_over_window=growth,
        first=values[0],
        last=values[-1],
        trend=(
            "increasing"
            if whole.increasing(ALPHA)
            else "decreasing"
            if whole.decreasing(ALPHA)
            else "no trend"
        ),
    )
    material = slope_h > threshold.slope_per_hour and growth > threshold.min_growth
    result["material"] = material
    if not (whole.increasing(ALPHA) and material):
        result["verdict"] = "pass"
        result["reason"] = (
            "no significant upward trend"
            if not whole.increasing(ALPHA)
            else f"growth below materiality ({threshold.why})"
        )
        return result
    tail_start = times[0] + span * (1.0 - TAIL_FRACTION)
    tail = [(t, v) for t, v in points if t >= tail_start]
    tail_trend = stats_module.analyse([t for t, _ in tail], [v for _, v in tail])
    tail_h = tail_trend.slope_per_s * 3600.0
    result.update(tail_slope_per_hour=tail_h, tail_mk_p=tail_trend.mk_p)
    if not (tail_trend.increasing(ALPHA) and tail_h > threshold.slope_per_hour):
        result["verdict"] = "pass"
        result["reason"] = "plateau: grew, then levelled off in the last half"
        return result
    result["reason"] = (
        f"significant upward trend: {_amount(metric, slope_h)}/h (p={whole.mk_p:.2g}), "
        f"{_amount(metric, growth)} over {span:.0f} s"
    )
    return result


def _amount(metric: str, value: float) -> str:
    if metric in ("fds", "threads"):
        return f"{value:+.1f}"
    return f"{value / KIB:+.1f} KiB"


def _limit_check(
    result: Dict[str, Any], metric: str, peak: Optional[float], limit: Optional[int]
) -> None:
    if peak is None or not limit or peak < LIMIT_FRACTION * limit:
        return
    result["verdict"] = "fail"
    reached = f"{metric} reached {peak:.0f} of the limit {limit}"
    result["reason"] = f"{reached}; {result['reason']}" if result["reason"] else reached


def _latency(series: Series, warmup_s: float, budget_ms: float) -> Dict[str, Any]:
    """Whole-run percentiles per stream from the interval histograms after warm-up."""
    totals: Dict[Tuple[str, str], Any] = {}
    for sample in series.samples:
        if float(sample["segment_t"]) < warmup_s:
            continue
        for function, backends in sample.get("hist", {}).items():
            for backend, encoded in backends.items():
                key = (function, backend)
                if key not in totals:
                    totals[key] = recorder_module.new_histogram()
                totals[key].add(recorder_module.decode(encoded))
    out: Dict[str, Any] = {}
    for (function, backend), histogram in sorted(totals.items()):
        summary: Dict[str, Any] = dict(recorder_module.summary_ms(histogram))
        summary["verdict"] = "pass" if summary["p99_ms"] <= budget_ms else "fail"
        out.setdefault(function, {})[backend] = summary
    return out


def _latest(series: Series, key: str) -> Any:
    for record in reversed(series.resumes):
        if key in record:
            return record[key]
    return series.header.get(key)


def build(series: Series) -> Dict[str, Any]:
    """The verdict JSON for a samples file (complete or not)."""
    config = series.header["config"]
    warmup_s = float(config["warmup_s"])
    budget_ms = float(config["p99_budget_ms"])
    requested = float(config["duration_s"])
    interval = float(config["interval_s"])
    memory_limit = _latest(series, "memory_limit_bytes")
    fd_limit = _latest(series, "fd_soft_limit")
    failures: List[str] = []
    metrics: Dict[str, Dict[str, Any]] = {}

    for metric in RESOURCE_METRICS:
        present = [s[metric] for s in series.samples if s.get(metric) is not None]
        if not present:
            metrics[metric] = {
                "slope_per_hour": None,
                "mk_p": None,
                "trend": "n/a",
                "verdict": "n/a",
                "reason": "not measured on this platform",
            }
            continue
        result = _judge_trend(metric, _warmup_window(series, metric, warmup_s))
        result["max"] = max(present)
        if metric in INFORMATIONAL:
            result["reason"] = f"informational ({result['verdict']}): {result['reason']}"
            result["verdict"] = "info"
        if metric == "fds":
            _limit_check(result, metric, max(present), fd_limit)
        if metric == "rss":
            _limit_check(result, metric, max(present), memory_limit)
        metrics[metric] = result

    last = series.samples[-1] if series.samples else {}
    error_counts: Dict[str, Dict[str, int]] = last.get("errors", {})
    total_errors = sum(n for backends in error_counts.values() for n in backends.values())
    metrics["errors"] = {
        "slope_per_hour": None,
        "mk_p": None,
        "trend": "n/a",
        "verdict": "pass" if total_errors == 0 else "fail",
        "reason": f"{total_errors} unexpected outcomes" + _worst(error_counts),
    }
    fallbacks = int(last.get("fallbacks", 0))
    metrics["fallbacks"] = {
        "slope_per_hour": None,
        "mk_p": None,
        "trend": "n/a",
        "verdict": "pass" if fallbacks == 0 else "fail",
        "reason": f"{fallbacks} native calls fell back to Python (panic or internal error)",
    }
    calls: Dict[str, Dict[str, int]] = last.get("calls", {})
    idle = [f"{f}/{b}" for f, backends in calls.items() for b, n in backends.items() if n == 0]
    total_calls = sum(n for backends in calls.values() for n in backends.values())
    metrics["calls"] = {
        "slope_per_hour": None,
        "mk_p": None,
        "trend": "n/a",
        "verdict": "pass" if calls and not idle else "fail",
        "reason": (
            f"{total_calls} calls"
            if calls and not idle
            else "no samples"
            if not calls
            else f"no calls on {', '.join(idle)}"
        ),
    }

    latency = _latency(series, warmup_s, budget_ms)
    slow = [
        f"{f}/{b} p99 {s['p99_ms']:.1f} ms"
        for f, backends in latency.items()
        for b, s in backends.items()
        if s["verdict"] == "fail"
    ]
    metrics["latency_p99"] = {
        "slope_per_hour": None,
        "mk_p": None,
        "trend": "n/a",
        "verdict": "fail" if slow or not latency else "pass",
        "reason": (
            f"over the {budget_ms:g} ms budget: {'; '.join(slow)}"
            if slow
            else f"every stream within {budget_ms:g} ms"
            if latency
            else "no latency recorded"
        ),
    }

    for name, result in metrics.items():
        if result["verdict"] == "fail":
            failures.append(f"{name}: {result['reason']}")

    duration = series.last_t
    # Complete when the last sample reached the requested time (within rounding).
    complete = duration >= requested - 1e-3
    if not complete:
        failures.append(f"incomplete: ran {duration:.0f} s of {requested:.0f} s")

    # Projected only from a significant and material RSS trend: extrapolating
    # noise, or the creep of a short run's first minutes, would put a number on nothing.
    rss_slope = metrics["rss"].get("slope_per_hour")
    projected: Optional[float] = None
    rss_growing = metrics["rss"].get("trend") == "increasing" and metrics["rss"].get("material")
    if memory_limit and rss_growing and rss_slope and rss_slope > 0 and series.samples:
        headroom = memory_limit - float(series.samples[-1]["rss"])
        projected = max(0.0, headroom / (rss_slope / 3600.0))

    return {
        "status": "fail" if failures else "pass",
        "failures": failures,
        "duration_s": duration,
        "requested_duration_s": requested,
        "complete": complete,
        "samples": len(series.samples),
        "interval_s": interval,
        "warmup_s": warmup_s,
        "segments": series.segments,
        "metrics": metrics,
        "latency": latency,
        "p99_budget_ms": budget_ms,
        "errors": {
            "total": total_errors,
            "by_stream": error_counts,
            "examples": [
                {k: e[k] for k in ("t", "segment", "function", "backend", "error")}
                for e in series.errors[:50]
            ],
            "fallbacks": fallbacks,
        },
        "projected_time_to_memory_limit_s": projected,
        "memory_limit_bytes": memory_limit,
        "fd_soft_limit": fd_limit,
        "resumed_from": [
            {k: r.get(k) for k in ("segment", "t", "wall", "pid", "repaired_partial_line")}
            for r in series.resumes
        ],
        "statistics": stats_module.implementation(),
        "thresholds": {
            "alpha": ALPHA,
            "min_points": MIN_POINTS,
            "tail_fraction": TAIL_FRACTION,
            **{m: t.why for m, t in THRESHOLDS.items()},
        },
        "run_id": series.header.get("run_id"),
        "platform": config.get("platform"),
        "profile": config.get("profile"),
        "python": series.header.get("python"),
        "sky_rs": series.header.get("sky_rs"),
    }


def _worst(counts: Dict[str, Dict[str, int]]) -> str:
    nonzero = sorted(
        ((n, f"{f}/{b}") for f, backends in counts.items() for b, n in backends.items() if n),
        reverse=True,
    )
    if not nonzero:
        return ""
    return " (" + ", ".join(f"{name}: {n}" for n, name in nonzero[:4]) + ")"

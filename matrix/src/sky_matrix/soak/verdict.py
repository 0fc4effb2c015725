"""The soak's verdict: per metric, from the samples file alone.

A resource metric (memory, fds, threads) fails only when its growth is

1. *significant*: Mann–Kendall p < ``ALPHA`` over the analysed window, and
2. *material*: the Theil–Sen slope exceeds the metric's rate threshold **and**
   the fitted growth over the window exceeds its noise floor, and
3. *still going on*: the last ``TAIL_FRACTION`` of the window is itself
   significantly growing faster than the rate threshold, and by more than
   that fraction of the window's floor. A cache fills and
   then stops (a plateau), a lazily opened file is one step; a leak keeps
   growing. (Theil–Sen, a median of pairwise slopes, ignores a single step
   unless it falls near the middle of the window, where just over half of all
   pairs straddle it; the tail test settles that case.) A tail of too few points
   for the test to reach ``ALPHA`` at all (five or fewer: a short run on a
   loaded host) counts as still growing when it rose at every sample.

The allocator heap is judged *per call* (see ``HEAP_BYTES_PER_STREAM_CALL``):
its rate threshold is a number of bytes per call of one stream times the
per-stream call rate the samples' cumulative counters show for the window, so
that the bar means the same at 5 calls/s in a 25-second cell and at 20 calls/s
in the nightly 24 hours: a leak of one small object per call fails the short
run, a leak of one byte per call of one function fails the long one.

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
    """Growth that matters: a rate, and a floor for growth over the window.

    With ``per_stream_call`` set, the rate is that many units per call of one
    stream times the window's per-stream call rate (``slope_per_hour`` is then
    only the fallback for a series without call counters).
    """

    slope_per_hour: float
    min_growth: float
    why: str
    per_stream_call: Optional[float] = None


# The heap's bar, in bytes per call of ONE stream (one function on one backend).
#
# A leak of L bytes per call of stream k, called at r_k calls/s, makes the heap
# grow at L * r_k bytes/s. Divided by the per-stream call rate r (the median
# over the streams, from the cumulative counters: every stream but
# find_free_port runs at the configured rate), it is L * r_k / r, which is L
# itself for any function at the run's rate, whatever the rate and duration.
# (Spread over all calls instead, the same leak is only L / 24 per call: the
# leak canary's 64 bytes per call of base36_encode[rust] alone is 64/24 = 2.7
# bytes per average call, and a 1-byte leak 0.04; so the bar is per stream.)
#
# - The nightly (24 h, 20 calls/s per stream, warm-up 10 min, 1 sample/min):
#   a leak of 1 byte per call of one function is 2x this bar: 20 B/s, 72 KB/h,
#   1.7 MB over the 85,800 s window, far above the floor below and above the
#   steps a clean heap takes (a few KiB, all in the first seconds): material,
#   and with ~1,400 samples significant and still growing in the tail.
#   Conversely the window must be long enough for a 1-byte leak to clear the
#   floor and the steps: 1 B x 20/s x T > 10 x 16 KiB (ten times the largest
#   settling seen) needs T > 2.3 h after warm-up; the nightly has 10x that.
#   find_free_port runs at 1 call/s (RATE_OVERRIDES): for it the bar is 20x
#   higher, 10 bytes per call.
# - The leak canary (64 bytes per call of base36_encode[rust], an 80-byte
#   glibc chunk) is 128x the bar (160x in heap bytes): in the 25-second cell
#   at 5 calls/s, 400 B/s, ~8 KB over the 20-second window, twice the floor.
# - A clean run, measured after a full collection (see driver._sample), holds
#   the heap flat to the byte once it has settled: 0 B per call.
HEAP_BYTES_PER_STREAM_CALL = 0.5
# Over the whole window the heap must also have grown by more than this: one
# late step (a cache entry, an interned name, a ctypes type) is a few hundred
# bytes to a few KiB and happens once; half the canary's growth in a
# 25-second cell, 1/400 of a 1-byte leak's in the nightly.
HEAP_MIN_GROWTH = 4 * KIB


THRESHOLDS: Dict[str, Threshold] = {
    # RSS/USS move in pages and arena steps of 64 KiB–1 MiB; 1 MiB/h is 24 MiB
    # a day, which a 512 MiB container notices within weeks. The floor of 256
    # KiB (64 pages) keeps one late arena from failing a short run.
    "rss": Threshold(1 * MIB, 256 * KIB, "1 MiB/h and 256 KiB over the window"),
    "uss": Threshold(1 * MIB, 256 * KIB, "1 MiB/h and 256 KiB over the window"),
    # malloc's in-use bytes are exact, so the bar is per call (see above); the
    # rate is the fallback for a series without call counters: 0.5 B x 20/s.
    "heap": Threshold(
        HEAP_BYTES_PER_STREAM_CALL * 20.0 * 3600.0,
        HEAP_MIN_GROWTH,
        f"{HEAP_BYTES_PER_STREAM_CALL * 1000:g} B per 1,000 calls of one stream"
        f" and {HEAP_MIN_GROWTH // KIB} KiB over the window",
        per_stream_call=HEAP_BYTES_PER_STREAM_CALL,
    ),
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


def _call_rates(
    series: Series, warmup_s: float, points: List[Tuple[float, float]]
) -> Optional[Dict[str, float]]:
    """Calls/s over the analysed window: the median stream's, and all streams'.

    From the cumulative counters of the window's first and last sample (they
    carry over a resume, and the spliced window's span leaves the downtime out).
    None when the samples have no counters or the window made no calls.
    """
    analysed = [s for s in series.samples if float(s["segment_t"]) >= warmup_s]
    if len(analysed) < 2 or len(points) < 2:
        return None
    span = points[-1][0] - points[0][0]
    first, last = analysed[0].get("calls") or {}, analysed[-1].get("calls") or {}
    per_stream = [
        n - first.get(function, {}).get(backend, 0)
        for function, backends in last.items()
        for backend, n in backends.items()
    ]
    if span <= 0 or not per_stream or sum(per_stream) <= 0:
        return None
    per_stream.sort()
    middle = len(per_stream) // 2
    median = (
        per_stream[middle]
        if len(per_stream) % 2
        else (per_stream[middle - 1] + per_stream[middle]) / 2.0
    )
    return {"stream": median / span, "all": sum(per_stream) / span, "streams": len(per_stream)}


def _judge_trend(
    metric: str,
    points: List[Tuple[float, float]],
    rates: Optional[Dict[str, float]] = None,
) -> Dict[str, Any]:
    threshold = THRESHOLDS[metric]
    # The rate (units/h) that counts as growth: per call of one stream when the
    # metric is judged per call and the window made calls, else the fixed rate.
    limit_h = threshold.slope_per_hour
    per_call = threshold.per_stream_call is not None and rates is not None and rates["stream"] > 0
    if per_call:
        assert threshold.per_stream_call is not None and rates is not None
        limit_h = threshold.per_stream_call * rates["stream"] * 3600.0
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
    if per_call:
        assert rates is not None and threshold.per_stream_call is not None
        result.update(
            stream_calls_per_s=rates["stream"],
            calls_per_s=rates["all"],
            # The figure: growth per 1,000 calls of all streams together ...
            growth_per_1000_calls=whole.slope_per_s / rates["all"] * 1000.0,
            # ... and what is judged: per 1,000 calls of one stream.
            growth_per_1000_stream_calls=whole.slope_per_s / rates["stream"] * 1000.0,
            bound_per_1000_stream_calls=threshold.per_stream_call * 1000.0,
            slope_threshold_per_hour=limit_h,
        )
    material = slope_h > limit_h and growth > threshold.min_growth
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
    tail_values = [v for _, v in tail]
    tail_trend = stats_module.analyse([t for t, _ in tail], tail_values)
    tail_h = tail_trend.slope_per_s * 3600.0
    # The tail's own floor is the window's, in proportion: two late steps of a
    # hundred bytes are significant in a flat tail and steep over ten seconds,
    # but they are not a leak going on.
    tail_growth = tail_trend.slope_per_s * (tail[-1][0] - tail[0][0])
    result.update(tail_slope_per_hour=tail_h, tail_mk_p=tail_trend.mk_p, tail_growth=tail_growth)
    tail_material = tail_h > limit_h and tail_growth > threshold.min_growth * TAIL_FRACTION
    # A loaded host samples late, and a short run's tail can hold so few points that even a
    # rise at every sample cannot reach ALPHA (5 points: p = 0.028). There the trend test
    # cannot tell a plateau; a tail that rose at every sample, by a material amount, has not
    # levelled off.
    rose_every_sample = all(b > a for a, b in zip(tail_values, tail_values[1:]))
    tail_untestable = not can_reach_significance(len(tail_values))
    result["tail_points"] = len(tail_values)
    still_growing = tail_material and (
        tail_trend.increasing(ALPHA) or (tail_untestable and rose_every_sample)
    )
    if not still_growing:
        result["verdict"] = "pass"
        result["reason"] = "plateau: grew, then levelled off in the last half"
        return result
    result["reason"] = (
        f"significant upward trend: {_amount(metric, slope_h)}/h (p={whole.mk_p:.2g}), "
        f"{_amount(metric, growth)} over {span:.0f} s"
    )
    if per_call:
        result["reason"] += (
            f", {result['growth_per_1000_stream_calls']:.0f} B per 1,000 calls of one stream"
            f" (bound {result['bound_per_1000_stream_calls']:g})"
        )
    return result


def can_reach_significance(points: int) -> bool:
    """Whether a Mann–Kendall test of this many points can give p < ALPHA at all (a rise at
    every point is the strongest case it can see)."""
    return points >= 3 and stats_module.mann_kendall(list(range(points)))[2] < ALPHA


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
        points = _warmup_window(series, metric, warmup_s)
        result = _judge_trend(metric, points, _call_rates(series, warmup_s, points))
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
            "heap_bytes_per_stream_call": HEAP_BYTES_PER_STREAM_CALL,
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

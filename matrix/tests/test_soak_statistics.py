"""The soak's statistics and verdict rules on synthetic series (fast: no driver runs).

Each shape the verdict must tell apart: flat, plateau (a cache), linear growth
(a leak), pure noise, a single step, and the approach to a hard limit.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Dict, List, Optional

import pytest

from sky_matrix.soak import statistics, verdict
from sky_matrix.soak.series import Series

KIB = 1024
MIB = 1024 * 1024
INTERVAL = 2.0
SAMPLES = 60  # a 2-minute soak
WARMUP = 24.0


def make_series(
    metric: str,
    shape: Callable[[float], float],
    *,
    samples: int = SAMPLES,
    interval: float = INTERVAL,
    warmup: float = WARMUP,
    limits: Optional[Dict[str, Any]] = None,
) -> Series:
    """A samples file's worth of records in which `metric` follows `shape(t)`."""
    base = {"rss": 36 * MIB, "uss": 26 * MIB, "heap": 13 * MIB, "fds": 7, "threads": 3}
    records: List[Dict[str, Any]] = []
    for i in range(1, samples + 1):
        t = i * interval
        record: Dict[str, Any] = {
            "type": "sample",
            "segment": 1,
            "seq": i,
            "t": t,
            "segment_t": t,
            **base,
            "calls": {"base36_encode": {"rust": 20 * i, "python": 20 * i}},
            "errors": {"base36_encode": {"rust": 0, "python": 0}},
            "fallbacks": 0,
            "latency": {},
            "hist": {},
        }
        record[metric] = shape(t)
        records.append(record)
    header = {
        "type": "header",
        "version": 1,
        "config": {
            "duration_s": samples * interval,
            "interval_s": interval,
            "warmup_s": warmup,
            "rate": 20.0,
            "backends": ["rust", "python"],
            "p99_budget_ms": 100.0,
            "platform": "host",
            "profile": "default",
        },
        "memory_limit_bytes": None,
        "fd_soft_limit": 1024,
        **(limits or {}),
    }
    return Series(header=header, samples=records, resumes=[], errors=[], ends=[])


def judged(series: Series, metric: str) -> Dict[str, Any]:
    return verdict.build(series)["metrics"][metric]


@pytest.mark.parametrize("metric", ["rss", "uss", "heap", "fds", "threads"])
def test_flat_series_passes(metric: str) -> None:
    level = {"rss": 36 * MIB, "uss": 26 * MIB, "heap": 13 * MIB, "fds": 7, "threads": 3}[metric]
    result = judged(make_series(metric, lambda t: level), metric)
    assert result["verdict"] == ("info" if metric in verdict.INFORMATIONAL else "pass")
    assert result["slope_per_hour"] == 0.0
    assert result["trend"] == "no trend"


@pytest.mark.parametrize("metric", ["rss", "heap"])
def test_plateau_passes(metric: str) -> None:
    """A cache: 4 MiB of growth over the first 50 s after warm-up, then level, with noise."""
    rng = random.Random(1)
    start = 13 * MIB

    def shape(t: float) -> float:
        filled = min(1.0, max(0.0, (t - WARMUP) / 50.0))
        return start + 4 * MIB * filled + rng.gauss(0, 8 * KIB)

    result = judged(make_series(metric, shape), metric)
    assert result["trend"] == "increasing"  # the whole window does grow ...
    assert result["verdict"] == "pass", result  # ... but it has stopped
    assert "plateau" in result["reason"]


# A loaded host's short run: 10 points after warm-up, the last half 5 of them, too few for
# the tail's trend test to reach ALPHA even when every sample rises (p = 0.028).
FEW_SAMPLES = {"samples": 11, "interval": 1.0, "warmup": 2.0}


def test_a_tail_too_short_to_test_cannot_hide_a_leak() -> None:
    """The soak's injected-leak test went green under load: RSS rose 1 MiB/s at every sample,
    but its 5-point tail could not be significant, so it was called a plateau."""
    assert not verdict.can_reach_significance(5) and verdict.can_reach_significance(6)
    rng = random.Random(3)
    series = make_series("rss", lambda t: 34 * MIB + MIB * t + rng.gauss(0, 8 * KIB), **FEW_SAMPLES)
    result = judged(series, "rss")
    assert result["tail_points"] == 5
    assert result["tail_mk_p"] > verdict.ALPHA  # the test alone cannot see it ...
    assert result["verdict"] == "fail", result  # ... the rise at every sample does


@pytest.mark.parametrize(
    "shape",
    [
        lambda t: 34 * MIB + 2 * MIB * min(t, 6.0),  # filled by 6 s, then level
        # two lazy steps in the tail: Theil-Sen calls it material growth, but it did not
        # rise at every sample, so the short tail is no evidence of a leak going on
        lambda t: 34 * MIB + 2 * MIB * min(t, 5.0) + MIB * ((t >= 8.0) + (t >= 10.0)),
    ],
    ids=["plateau", "steps"],
)
def test_a_short_tail_that_levels_or_steps_is_a_plateau(shape: Callable[[float], float]) -> None:
    result = judged(make_series("rss", shape, **FEW_SAMPLES), "rss")
    assert result["tail_points"] == 5
    assert result["verdict"] == "pass", result
    assert "plateau" in result["reason"]


@pytest.mark.parametrize(
    ("metric", "per_hour", "noise"),
    [
        ("heap", 4.4 * MIB, 4 * KIB),  # the leak canary: 64 B per call at 20 calls/s
        ("rss", 40 * MIB, 64 * KIB),
    ],
)
def test_linear_memory_growth_fails(metric: str, per_hour: float, noise: float) -> None:
    rng = random.Random(2)
    result = judged(
        make_series(metric, lambda t: 13 * MIB + per_hour * t / 3600 + rng.gauss(0, noise)),
        metric,
    )
    assert result["verdict"] == "fail", result
    assert result["trend"] == "increasing"
    assert result["slope_per_hour"] == pytest.approx(per_hour, rel=0.2)
    assert result["mk_p"] < verdict.ALPHA


def test_linear_fd_growth_fails_and_status_names_it() -> None:
    series = make_series("fds", lambda t: 7 + int(t / 10))
    result = verdict.build(series)
    assert result["status"] == "fail"
    assert result["metrics"]["fds"]["verdict"] == "fail"
    assert any(f.startswith("fds:") for f in result["failures"])


def test_thread_growth_fails() -> None:
    assert judged(make_series("threads", lambda t: 3 + int(t / 20)), "threads")["verdict"] == "fail"


@pytest.mark.parametrize("seed", range(40))
def test_noise_does_not_fail(seed: int) -> None:
    """White noise around a level, of the size seen on real runs, in every memory metric."""
    rng = random.Random(seed)
    for metric, sigma in (("rss", 96 * KIB), ("heap", 48 * KIB)):

        def noisy(t: float, sigma: float = sigma) -> float:
            return 30 * MIB + rng.gauss(0, sigma)

        assert judged(make_series(metric, noisy), metric)["verdict"] == "pass", (metric, seed)


def test_uss_is_judged_but_never_fails() -> None:
    """USS rises when other processes unmap pages they shared with us: reported only."""
    result = verdict.build(make_series("uss", lambda t: 26 * MIB + 40 * MIB * t / 3600))
    uss = result["metrics"]["uss"]
    assert uss["verdict"] == "info"
    assert uss["trend"] == "increasing"
    assert uss["reason"].startswith("informational (fail)")
    assert not any(f.startswith("uss") for f in result["failures"])


def test_occasional_outliers_do_not_fail() -> None:
    """Spikes (a burst of allocation freed again) are outliers, not a trend."""
    rng = random.Random(7)
    spikes = {rng.randrange(SAMPLES) * INTERVAL for _ in range(8)}
    series = make_series("rss", lambda t: 36 * MIB + (6 * MIB if t in spikes else 0))
    assert judged(series, "rss")["verdict"] == "pass"


@pytest.mark.parametrize("step_at", [40.0, 72.0, 110.0])
def test_single_step_in_fds_does_not_fail(step_at: float) -> None:
    """Three descriptors opened lazily once (early, mid-window, late) are a step, not a leak."""
    series = make_series("fds", lambda t: 7 if t < step_at else 10)
    result = judged(series, "fds")
    assert result["verdict"] == "pass", result


def test_step_then_steady_growth_fails() -> None:
    """A step does not excuse a climb that goes on after it."""
    series = make_series("fds", lambda t: 7 if t < 50 else 10 + int((t - 50) / 8))
    assert judged(series, "fds")["verdict"] == "fail"


def test_fds_near_the_limit_fail_even_when_flat() -> None:
    """An fd leak that already hit the limit during warm-up shows as a flat line at the top."""
    series = make_series("fds", lambda t: 1020 if t > 10 else 7)
    result = judged(series, "fds")
    assert result["verdict"] == "fail"
    assert "limit" in result["reason"]


def test_too_few_samples_after_warmup_fail() -> None:
    series = make_series("rss", lambda t: 36 * MIB, samples=10, warmup=18.0)
    result = judged(series, "rss")
    assert result["verdict"] == "fail"
    assert "samples after warm-up" in result["reason"]


def test_projected_time_to_memory_limit() -> None:
    per_hour = 64 * MIB
    series = make_series(
        "rss",
        lambda t: 100 * MIB + per_hour * t / 3600,
        limits={"memory_limit_bytes": 512 * MIB},
    )
    result = verdict.build(series)
    last_rss = series.samples[-1]["rss"]
    expected = (512 * MIB - last_rss) / (per_hour / 3600)
    assert result["projected_time_to_memory_limit_s"] == pytest.approx(expected, rel=0.05)
    assert result["memory_limit_bytes"] == 512 * MIB


def test_no_projection_without_growth_or_limit() -> None:
    flat = verdict.build(make_series("rss", lambda t: 36 * MIB, limits={"memory_limit_bytes": MIB}))
    assert flat["projected_time_to_memory_limit_s"] is None
    unlimited = verdict.build(make_series("rss", lambda t: 36 * MIB + 1000 * t))
    assert unlimited["projected_time_to_memory_limit_s"] is None


def test_errors_fail_the_verdict() -> None:
    series = make_series("rss", lambda t: 36 * MIB)
    series.samples[-1]["errors"] = {"hash_file": {"rust": 3, "python": 0}}
    result = verdict.build(series)
    assert result["status"] == "fail"
    assert result["metrics"]["errors"]["verdict"] == "fail"
    assert "hash_file/rust: 3" in result["metrics"]["errors"]["reason"]


def test_resumed_segments_are_spliced() -> None:
    """A leak across a restart: each segment starts lower, the spliced series still climbs."""
    per_hour = 40 * MIB
    series = make_series("rss", lambda t: 0.0, samples=120)
    for record in series.samples:
        t = record["t"]
        segment = 1 if t <= 120 else 2
        record["segment"] = segment
        record["segment_t"] = t if segment == 1 else t - 120
        # A fresh process restarts from the baseline and leaks again.
        record["rss"] = 36 * MIB + per_hour * record["segment_t"] / 3600
    series.resumes.append({"type": "resume", "segment": 2, "t": 120.0})
    series.header["config"]["duration_s"] = 240.0
    result = judged(series, "rss")
    assert result["verdict"] == "fail", result
    assert result["slope_per_hour"] == pytest.approx(per_hour, rel=0.1)


def test_pure_python_statistics_match_the_libraries() -> None:
    pytest.importorskip("scipy", reason="the reference libraries are needed for the comparison")
    pytest.importorskip("pymannkendall")
    rng = random.Random(3)
    for trial in range(20):
        n = rng.randrange(10, 120)
        times = sorted(rng.uniform(0, 1000) for _ in range(n))
        values = [
            rng.choice((0.0, 1.0, 2.0)) if trial % 3 == 0 else rng.gauss(trial, 5) + 0.01 * t
            for t in times
        ]
        library = statistics.analyse(times, values, use_libraries=True)
        pure = statistics.analyse(times, values, use_libraries=False)
        assert pure.slope_per_s == pytest.approx(library.slope_per_s, rel=1e-9, abs=1e-12)
        assert pure.intercept == pytest.approx(library.intercept, rel=1e-9, abs=1e-9)
        assert pure.mk_s == library.mk_s
        assert pure.mk_z == pytest.approx(library.mk_z, rel=1e-9)
        assert pure.mk_p == pytest.approx(library.mk_p, rel=1e-6, abs=1e-12)


def test_downsampling_bounds_points_and_keeps_the_slope() -> None:
    times = [float(i) for i in range(20_000)]
    values = [5.0 * t + math.sin(t) for t in times]
    small_t, _ = statistics.downsample(times, values, 500)
    assert len(small_t) == 500
    trend = statistics.analyse(times, values)
    assert trend.points <= statistics.MAX_POINTS
    assert trend.slope_per_s == pytest.approx(5.0, rel=1e-3)


def test_constant_series_has_no_trend() -> None:
    trend = statistics.analyse([0.0, 1.0, 2.0, 3.0], [4.0, 4.0, 4.0, 4.0])
    assert (trend.slope_per_s, trend.mk_p) == (0.0, 1.0)


# --- The heap judged per call (issue 12) ---------------------------------------------

# The stability cell (tests/stability/test_soak_short.py) and the nightly.
SHORT = {"duration": 25.0, "interval": 0.5, "warmup": 5.0, "rate": 5.0}
NIGHTLY = {"duration": 86400.0, "interval": 60.0, "warmup": 600.0, "rate": 20.0}
FUNCTIONS = (
    "read_last_n_lines", "hash_file", "find_free_port", "base36_encode", "format_float",
    "truncate_long_string", "get_cpu_count", "get_mem_size_gb", "get_parallel_threads",
    "is_process_alive", "get_max_workers_for_file_mounts", "estimate_fd_for_directory",
)  # fmt: skip
# glibc's chunk for a 64-byte allocation: 64 bytes and an 8-byte header, to 16.
CANARY_CHUNK = 80


def soak_series(
    run: Dict[str, float], heap: Callable[[float, Dict[str, int]], float], *, lag: float = 1.0
) -> Series:
    """A run of all 24 streams at the run's rate (find_free_port 1/s), `lag` of it achieved.

    `heap(t, calls)` gives the heap at time t from the cumulative calls per stream
    ("function/backend"), so a leak is written per call, as it happens.
    """
    samples = int(run["duration"] / run["interval"])
    series = make_series(
        "heap", lambda t: 0.0, samples=samples, interval=run["interval"], warmup=run["warmup"]
    )
    series.header["config"]["rate"] = run["rate"]
    for record in series.samples:
        t = record["t"]
        calls = {
            f"{function}/{backend}": int(
                t * lag * (1.0 if function == "find_free_port" else run["rate"])
            )
            for function in FUNCTIONS
            for backend in ("rust", "python")
        }
        record["calls"] = {f: {b: calls[f"{f}/{b}"] for b in ("rust", "python")} for f in FUNCTIONS}
        record["errors"] = {f: {"rust": 0, "python": 0} for f in FUNCTIONS}
        record["heap"] = heap(t, calls)
    return series


def settling_steps(seed: int, run: Dict[str, float]) -> Callable[[float, Dict[str, int]], float]:
    """A clean heap as measured under load: ~13 KB of steps in the first seconds after
    warm-up (1-3 KB each, types and caches filling), then flat to the byte but for rare
    single steps of a few hundred bytes and a few blips that come and go."""
    rng = random.Random(seed)
    settle_end = run["warmup"] + rng.uniform(3.0, 7.0) * run["interval"] / 0.5
    steps = sorted(rng.uniform(run["warmup"] - 5, settle_end) for _ in range(8))
    sizes = [rng.choice((1040, 1536, 2208, 2784, 3264)) for _ in steps]
    late = [
        (rng.uniform(settle_end, run["duration"]), rng.choice((80, 96, 112, 576))) for _ in range(2)
    ]
    blips = {round(rng.uniform(0, run["duration"]) / run["interval"]) for _ in range(3)}

    def heap(t: float, calls: Dict[str, int]) -> float:
        level = 40 * MIB + sum(s for at, s in zip(steps, sizes) if t >= at)
        level += sum(s for at, s in late if t >= at)
        if round(t / run["interval"]) in blips:
            level -= 2208
        return level

    return heap


def leak(
    base: Callable[[float, Dict[str, int]], float], stream: str, per_call: float
) -> Callable[[float, Dict[str, int]], float]:
    return lambda t, calls: base(t, calls) + per_call * calls[stream]


@pytest.mark.parametrize("seed", range(30))
def test_clean_heap_under_load_passes_the_short_soak(seed: int) -> None:
    series = soak_series(
        SHORT, settling_steps(seed, SHORT), lag=random.Random(seed).uniform(0.8, 1)
    )
    result = judged(series, "heap")
    assert result["verdict"] == "pass", result


def test_canary_sized_leak_fails_the_short_soak() -> None:
    """64 bytes per call of base36_encode[rust] alone, beside a clean heap's steps."""
    series = soak_series(SHORT, leak(settling_steps(1, SHORT), "base36_encode/rust", CANARY_CHUNK))
    result = verdict.build(series)
    heap = result["metrics"]["heap"]
    assert heap["verdict"] == "fail", heap
    # Per call of one stream the leak is its own size, 160x the bound ...
    assert heap["growth_per_1000_stream_calls"] == pytest.approx(CANARY_CHUNK * 1000, rel=0.1)
    assert heap["growth_per_1000_stream_calls"] >= 10 * heap["bound_per_1000_stream_calls"]
    # ... spread over all calls, 80 x 5 / 111 calls/s: ~3.6 B per call.
    assert heap["growth_per_1000_calls"] == pytest.approx(CANARY_CHUNK * 5 / 111 * 1000, rel=0.1)
    assert any("per 1,000 calls of one stream" in f for f in result["failures"])


def test_canary_leak_is_judged_per_call_when_the_driver_lags() -> None:
    """At 3/4 of the rate the heap grows 3/4 as fast, and the per-call figure is the same.

    (At half the rate the 25-second window's growth, 4 KB, would be down to the floor:
    the cell's driver keeps 97 % of its rate on a loaded host.)
    """
    series = soak_series(
        SHORT, leak(settling_steps(2, SHORT), "base36_encode/rust", CANARY_CHUNK), lag=0.75
    )
    heap = judged(series, "heap")
    assert heap["verdict"] == "fail", heap
    assert heap["growth_per_1000_stream_calls"] >= 10 * heap["bound_per_1000_stream_calls"]


@pytest.mark.parametrize("stream", ["format_float/rust", "hash_file/python", "base36_encode/rust"])
def test_one_byte_per_call_of_one_stream_fails_the_nightly(stream: str) -> None:
    """1 B per call at 20 calls/s: 72 KB/h, which the old 256 KiB/h bar let through."""
    rng = random.Random(3)
    clean = settling_steps(3, NIGHTLY)

    def heap(t: float, calls: Dict[str, int]) -> float:
        return clean(t, calls) + calls[stream] + rng.gauss(0, 2 * KIB)

    result = judged(soak_series(NIGHTLY, heap), "heap")
    assert result["verdict"] == "fail", result
    assert result["slope_per_hour"] < 256 * KIB
    assert result["growth_per_1000_stream_calls"] == pytest.approx(1000, rel=0.1)


def test_half_a_byte_per_call_below_the_bound_passes_the_nightly() -> None:
    """The bound is the bound: a fifth of a byte per call of one stream is not material."""
    clean = settling_steps(4, NIGHTLY)
    heap = judged(soak_series(NIGHTLY, leak(clean, "format_float/rust", 0.2)), "heap")
    assert heap["trend"] == "increasing"
    assert heap["verdict"] == "pass", heap
    assert "materiality" in heap["reason"]


def test_clean_nightly_passes() -> None:
    rng = random.Random(5)
    clean = settling_steps(5, NIGHTLY)
    series = soak_series(NIGHTLY, lambda t, calls: clean(t, calls) + rng.gauss(0, 2 * KIB))
    assert judged(series, "heap")["verdict"] == "pass"

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

"""The performance targets, decided from bench reports made up for each verdict."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from sky_matrix.bench import targets
from sky_matrix.core.functions import SKY_RS_FUNCTIONS

FUNCTIONS = SKY_RS_FUNCTIONS


def case(
    case_id: str,
    rust_ns: float,
    python_ns: float,
    *,
    rust_p99: Optional[float] = None,
    latency: bool = True,
    equal: bool = True,
) -> Dict[str, Any]:
    function = case_id.split("/")[0]
    return {
        "id": case_id,
        "function": function,
        "label": case_id,
        "latency_target": latency,
        "results_equal": equal,
        "contenders": {
            "rust": {
                "p10_ns": rust_ns,
                "median_ns": rust_ns * 2,
                "p99_ns": rust_p99 or rust_ns * 3,
            },
            "python": {"p10_ns": python_ns, "median_ns": python_ns, "p99_ns": python_ns * 3},
        },
    }


def scaling(rust_small: float, rust_large: float) -> Dict[str, Any]:
    medians = {
        "rust@1MiB": rust_small,
        "rust@10GiB-sparse": rust_large,
        "python@1MiB": 80_000.0,
        "python@10GiB-sparse": 84_000.0,
    }
    return {"contenders": {name: {"p10_ns": value} for name, value in medians.items()}}


def bench(
    cases: List[Dict[str, Any]], tail: Optional[Dict[str, Any]] = None, **sky_rs: Any
) -> Dict[str, Any]:
    native = {"version": "0.1.0", "rust_active": True, "profile": "release", "reason": None}
    native.update(sky_rs)
    return {
        "sky_rs": native,
        "cases": cases,
        "fallbacks_during_bench": 0,
        "mode": "full",
        "tail_scaling": scaling(10_000.0, 11_000.0) if tail is None else tail,
    }


def good_cases(speedup: float = 8.0) -> List[Dict[str, Any]]:
    cases = [case(f"{name}/x", 100.0, 100.0 * speedup) for name in FUNCTIONS]
    cases.append(case("read_last_n_lines/1MiB/n=100", 10_000.0, 80_000.0))
    cases.append(case("read_last_n_lines/10GiB-sparse/n=100", 11_000.0, 85_000.0))
    return cases


def by_id(report: Dict[str, Any]) -> Dict[str, targets.TargetResult]:
    return {t.id: t for t in targets.evaluate(report)}


def test_a_good_report_passes_every_target() -> None:
    results = by_id(bench(good_cases()))
    assert {k: v.verdict for k, v in results.items()} == dict.fromkeys(results, "pass")
    assert results["average-speedup"].value == pytest.approx(8.0, rel=0.02)
    assert "1.10x" in results["tail-cost"].evidence


def test_speedup_is_from_p10_and_the_median_ratio_is_kept_beside_it() -> None:
    one = case("format_float/x", 100.0, 800.0)
    assert targets.case_ratio(one) == pytest.approx(8.0)
    assert targets.case_ratio_at_median(one) == pytest.approx(4.0)


def test_average_is_per_function_then_geometric() -> None:
    # read_last_n_lines has three cases; it must weigh as one function.
    cases = good_cases(speedup=4.0)
    speedups = targets.function_speedups(bench(cases))
    assert speedups["format_float"] == pytest.approx(4.0)
    result = by_id(bench(cases))["average-speedup"]
    assert result.verdict == "fail"
    assert result.evidence.startswith("4.")


def test_p99_over_100ms_fails_but_throughput_cases_are_exempt() -> None:
    cases = good_cases()
    cases.append(case("hash_file/1GiB/sha256", 5e8, 6e8, latency=False))
    assert by_id(bench(cases))["p99-latency"].verdict == "pass"
    assert (
        "exempt as throughput cases: hash_file/1GiB/sha256"
        in by_id(bench(cases))["p99-latency"].evidence
    )
    cases.append(case("estimate_fd_for_directory/huge", 1e6, 9e6, rust_p99=150e6))
    result = by_id(bench(cases))["p99-latency"]
    assert result.verdict == "fail"
    assert "estimate_fd_for_directory/huge 150.000 ms" in result.evidence


def test_string_functions_below_3x_fail_by_name() -> None:
    cases = [c for c in good_cases() if c["function"] != "base36_encode"]
    cases.append(case("base36_encode/hex64", 100.0, 250.0))
    result = by_id(bench(cases))["string-speedup"]
    assert result.verdict == "fail"
    assert "below 3x: base36_encode" in result.evidence


def test_tail_cost_that_grows_with_the_file_fails_and_absence_is_insufficient() -> None:
    assert by_id(bench(good_cases(), tail={}))["tail-cost"].verdict == "insufficient"
    result = by_id(bench(good_cases(), tail=scaling(10_000.0, 400_000.0)))["tail-cost"]
    assert result.verdict == "fail"
    assert result.evidence.startswith(
        "Rust p10 0.400 ms on 10GiB-sparse vs 0.010 ms on 1MiB = 40.00x"
    )


def test_validity_needs_active_release_rust_and_equal_answers() -> None:
    assert by_id(bench(good_cases(), rust_active=False, reason="killed"))[
        "bench-valid"
    ].verdict == ("fail")
    debug = by_id(bench(good_cases(), profile="debug"))["bench-valid"]
    assert debug.verdict == "fail" and "'debug' build" in debug.evidence
    cases = good_cases()
    cases[0]["results_equal"] = False
    unequal = by_id(bench(cases))["bench-valid"]
    assert unequal.verdict == "fail" and "disagreed on read_last_n_lines/x" in unequal.evidence


def test_no_cases_is_an_error() -> None:
    with pytest.raises(ValueError):
        targets.evaluate({"cases": []})


def with_cpu(
    made: Dict[str, Any], system_ns: float, user_ns: float, bytes_read: Optional[int] = None
) -> Dict[str, Any]:
    made["contenders"]["rust"].update(system_ns_per_call=system_ns, user_ns_per_call=user_ns)
    if bytes_read is not None:
        made["bytes_read"] = bytes_read
    return made


def counts(floor: str = "native") -> Dict[str, Any]:
    cases: Dict[str, Any] = {
        "noop/len('')": {"python": {"instructions": 100, "syscalls": 0.0}},
        "base36_encode/64 hex": {
            "rust": {"instructions": 6_000, "syscalls": 0.0},
            "python": {"instructions": 80_000, "syscalls": 0.0},
        },
    }
    if floor == "native":
        cases["noop/_native._noop()"] = {"rust": {"instructions": 400, "syscalls": 0.0}}
    return {"environment": "CPython-3.11.7-linux-x86_64-glibc-2.36", "cases": cases}


def test_each_function_has_its_bound_and_the_ceiling_that_bound_allows() -> None:
    report = bench(
        [
            # The kernel time dominates: bounded by system calls, ceiling 90 / 30 = 3x.
            with_cpu(case("get_cpu_count", 70_000.0, 90_000.0), 30_000.0, 10_000.0),
            # A hash over >= 1 MiB: both run a native hash, 1.0x is the best.
            with_cpu(case("hash_file/1MiB/md5", 1_500.0, 1_200.0), 100.0, 1_400.0, 1 << 20),
            with_cpu(case("hash_file/1GiB/md5", 1_500.0, 1_200.0), 100.0, 1_400.0, 1 << 30),
            # A small file: its own kernel time bounds it (12 / 4 = 3x).
            with_cpu(case("hash_file/1KiB/md5", 5.0, 12.0), 4.0, 1.0, 1024),
            # No system call: instructions of Python over the PyO3 no-op's, 80k / 400 = 200x.
            with_cpu(case("base36_encode/64 hex", 0.28, 4.3), 0.0, 0.28),
        ]
    )
    report["deterministic"] = counts()
    found = {b.function: b for b in targets.function_bounds(report)}
    assert found["get_cpu_count"].bound == targets.SYSTEM_CALLS
    assert found["get_cpu_count"].ceiling == pytest.approx(3.0)
    assert found["hash_file"].bound == targets.HASH
    assert found["hash_file"].ceiling == pytest.approx(3.0 ** (1 / 3))
    assert found["base36_encode"].bound == targets.CPU
    assert found["base36_encode"].ceiling == pytest.approx(200.0)
    assert found["base36_encode"].text() == "base36_encode 15.36x (CPU, ceiling 200.00x)"
    # Without the PyO3 no-op the C builtin is the floor: cheaper, so a higher ceiling.
    report["deterministic"] = counts(floor="builtin")
    assert targets.function_bounds(report)[-1].ceiling == pytest.approx(800.0)


def test_the_average_fails_below_five_whatever_the_ceilings_say() -> None:
    report = bench(
        [
            with_cpu(case("get_cpu_count", 70_000.0, 90_000.0), 30_000.0, 10_000.0),
            with_cpu(case("base36_encode/64 hex", 0.28, 4.3), 0.0, 0.28),
        ]
    )
    report["deterministic"] = counts()
    average = next(t for t in targets.evaluate(report) if t.id == "average-speedup")
    assert average.verdict == targets.FAIL
    assert "get_cpu_count 1.29x (system calls, ceiling 3.00x)" in average.evidence
    assert "the bounds allow at most" in average.evidence
    # No CPU times and no counts (an older report): the ceilings are unknown, still a fail.
    report = bench([case("get_cpu_count", 70_000.0, 90_000.0)])
    average = next(t for t in targets.evaluate(report) if t.id == "average-speedup")
    assert average.verdict == targets.FAIL
    assert "get_cpu_count 1.29x (CPU, ceiling unknown)" in average.evidence
    assert "some ceilings unknown" in average.evidence


def test_the_counts_decide_whether_a_function_makes_system_calls() -> None:
    # getrusage put more of this call in user space (sampled on a loaded host), but the
    # deterministic count says it makes 15 system calls: bounded by them, 90 / 10 = 9x.
    report = bench([with_cpu(case("get_cpu_count", 25_000.0, 90_000.0), 10_000.0, 12_000.0)])
    made = counts()
    made["cases"]["get_cpu_count"] = {
        "rust": {"instructions": 20_000, "syscalls": 15.0},
        "python": {"instructions": 380_000, "syscalls": 41.0},
    }
    report["deterministic"] = made
    (found,) = targets.function_bounds(report)
    assert (found.bound, found.ceiling) == (targets.SYSTEM_CALLS, pytest.approx(9.0))

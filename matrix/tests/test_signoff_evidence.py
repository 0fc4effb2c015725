"""Sign-off checks that read evidence files: matrix, leaks, soak, bench, coverage, tests, wheels.

Each test writes the evidence a run would leave in a temporary project and
checks the verdict and the exact wording of the evidence line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sky_matrix.core.functions import SKY_RS_FUNCTIONS
from sky_matrix.signoff import (
    checks_bench,
    checks_matrix,
    checks_python,
    checks_release,
    checks_runs,
    checks_rust,
)
from sky_matrix.signoff.context import Context
from sky_matrix.signoff.verdict import FAIL, INSUFFICIENT, NOT_VERIFIABLE, PASS

FUNCTIONS = SKY_RS_FUNCTIONS


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def project(tmp_path: Path, version: str = "0.1.0") -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{version}"\n')
    return tmp_path


def ctx_for(root: Path, system: str = "Linux") -> Context:
    return Context(root=root, host_system=system)


def cell(
    python: str,
    suite: str = "parity",
    verdict: str = "pass",
    *,
    reason: Optional[str] = None,
    required: bool = True,
    calls: int = 1000,
    fallbacks: Optional[Dict[str, int]] = None,
    runner: Optional[Dict[str, str]] = None,
    failed: int = 0,
) -> Dict[str, Any]:
    record: Dict[str, Any] = {
        "id": f"host-py{python}-{suite}-default",
        "cell": {"python": python, "platform": "host", "suite": suite, "profile": "default"},
        "verdict": verdict,
        "reason": reason,
        "required": required,
        "counts": {"passed": 10, "failed": failed},
        "stats": {
            "suite": {
                "functions": {
                    "format_float": {"rust": calls, "python": 0, "fallbacks": fallbacks or {}}
                }
            }
        },
    }
    if runner is not None:
        record["runner"] = runner
    return record


def all_pythons(**kwargs: Any) -> List[Dict[str, Any]]:
    return [cell(v, **kwargs) for v in checks_matrix.RELEASE_PYTHONS]


def write_matrix(root: Path, cells: List[Dict[str, Any]]) -> None:
    write_json(root / "matrix-report/report.json", {"schema": 1, "run": {}, "cells": cells})


# ----------------------------------------------------------------------------- matrix


def test_matrix_all_passed(tmp_path: Path) -> None:
    root = project(tmp_path)
    write_matrix(root, [*all_pythons(), cell("3.11", "leaks", "fail", required=False)])
    outcome = checks_matrix.matrix_cells(ctx_for(root))
    assert outcome == checks_matrix.Outcome(PASS, "8/8 required cells passed (1 optional)")
    assert checks_matrix.matrix_pythons(ctx_for(root)).verdict == PASS


def test_matrix_one_failed_cell_is_named(tmp_path: Path) -> None:
    root = project(tmp_path)
    cells = all_pythons()
    cells[3] = cell("3.11", verdict="fail", reason="2 failed, 0 errors of 10 tests", failed=2)
    cells[4] = cell("3.12", verdict="fail", failed=1)
    write_matrix(root, cells)
    outcome = checks_matrix.matrix_cells(ctx_for(root))
    assert outcome.verdict == FAIL
    assert outcome.evidence == (
        "cell host-py3.11-parity-default fail: 2 failed, 0 errors of 10 tests, "
        "cell host-py3.12-parity-default fail: 1 failed tests; "
        "6/8 required cells passed (0 optional)"
    )


def test_matrix_missing_report_says_which_session(tmp_path: Path) -> None:
    root = project(tmp_path)
    for check in (checks_matrix.matrix_cells, checks_matrix.fallback_rate):
        assert check(ctx_for(root)).evidence == (
            "matrix-report/report.json missing, run nox -s matrix"
        )


def test_matrix_skipped_required_cell_is_insufficient(tmp_path: Path) -> None:
    root = project(tmp_path)
    write_matrix(root, [cell("3.15", verdict="skipped", reason="not found"), cell("3.11")])
    outcome = checks_matrix.matrix_cells(ctx_for(root))
    assert outcome.verdict == INSUFFICIENT
    assert "cell host-py3.15-parity-default skipped: not found" in outcome.evidence
    pythons = checks_matrix.matrix_pythons(ctx_for(root))
    assert pythons.verdict == INSUFFICIENT
    assert pythons.evidence.startswith("no passing Linux parity cell for CPython 3.8, 3.9, 3.10,")


def test_macos_is_not_verifiable_on_linux_and_decided_from_merged_runners(tmp_path: Path) -> None:
    root = project(tmp_path)
    write_matrix(root, all_pythons())
    outcome = checks_matrix.matrix_macos(ctx_for(root))
    assert outcome.verdict == NOT_VERIFIABLE
    assert "this host is Linux" in outcome.evidence
    arm = {"os": "macOS", "arch": "ARM64", "label": "macos-14"}
    intel = {"os": "macOS", "arch": "X64", "label": "macos-13"}
    write_matrix(root, [*all_pythons(), cell("3.12", runner=arm), cell("3.12", runner=intel)])
    assert checks_matrix.matrix_macos(ctx_for(root)).verdict == PASS
    write_matrix(root, [*all_pythons(), cell("3.12", runner=arm)])
    partial = checks_matrix.matrix_macos(ctx_for(root))
    assert partial == checks_matrix.Outcome(INSUFFICIENT, "no passing macOS parity cell on x86_64")
    write_matrix(root, [cell("3.12", runner=arm), cell("3.13", "parity", "fail", runner=intel)])
    failed = checks_matrix.matrix_macos(ctx_for(root))
    assert failed.verdict == FAIL
    assert failed.evidence == "macOS: cell macos-13/host-py3.13-parity-default fail"


def test_fallback_rate_excludes_deliberate_suites_and_fails_at_one_percent(tmp_path: Path) -> None:
    root = project(tmp_path)
    cells = all_pythons(calls=1000)
    cells.append(cell("3.11", "eperm", calls=10, fallbacks={"import-error": 500}))
    write_matrix(root, cells)
    outcome = checks_matrix.fallback_rate(ctx_for(root))
    assert outcome.verdict == PASS
    assert outcome.evidence.startswith("0.000% (0 of 8000 calls in 8 cells)")
    cells[0] = cell("3.8", calls=1000, fallbacks={"panic": 90})
    write_matrix(root, cells)
    high = checks_matrix.fallback_rate(ctx_for(root))
    assert high.verdict == FAIL
    assert "1.125% (90 of 8000 calls in 8 cells)" in high.evidence
    assert "reasons: panic 90" in high.evidence


# ----------------------------------------------------------------------------- leaks, soak


def test_leaks_verdicts(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    assert (
        checks_runs.leaks(ctx).evidence
        == "leaks-report/verdict.json missing, run nox -s leak-canaries"
    )
    clean = {name: {"rust": {"status": "pass"}, "python": {"status": "pass"}} for name in FUNCTIONS}
    canaries = {"memray": {"caught": True, "function": "base36_encode"}}
    write_json(
        root / "leaks-report/verdict.json",
        {"status": "pass", "functions": clean, "canaries": canaries},
    )
    assert checks_runs.leaks(ctx).verdict == PASS
    leaky = dict(clean, hash_file={"rust": {"status": "fail"}, "python": {"status": "pass"}})
    write_json(root / "leaks-report/verdict.json", {"status": "fail", "functions": leaky})
    assert checks_runs.leaks(ctx).evidence == "leaks-report/verdict.json: leaks in hash_file/rust"
    missed = {"fds": {"caught": False}}
    write_json(
        root / "leaks-report/verdict.json",
        {"status": "pass", "functions": clean, "canaries": missed},
    )
    assert "detector(s) missed their canary: fds" in checks_runs.leaks(ctx).evidence
    partial = {k: v for k, v in clean.items() if k != "find_free_port"}
    write_json(root / "leaks-report/verdict.json", {"status": "pass", "functions": partial})
    assert checks_runs.leaks(ctx).verdict == INSUFFICIENT


def soak_verdict(
    status: str, duration: float, failures: Optional[List[str]] = None
) -> Dict[str, Any]:
    return {
        "status": status,
        "failures": failures or [],
        "duration_s": duration,
        "requested_duration_s": duration,
    }


def test_soak_needs_24_hours_and_reads_the_newest(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    assert checks_runs.soak(ctx).evidence == "soak-report/verdict.json missing, run nox -s soak"
    write_json(root / "soak-report/verdict.json", soak_verdict("pass", 120.0))
    short = checks_runs.soak(ctx)
    assert short.verdict == INSUFFICIENT
    assert "passed, but ran 2m00s; a release needs 24h00m" in short.evidence
    nightly = root / "soak-report/nightly/verdict.json"
    write_json(nightly, soak_verdict("pass", 86400.0))
    later = time.time() + 10
    os.utime(nightly, (later, later))
    assert checks_runs.soak(ctx) == checks_runs.Outcome(
        PASS, "soak-report/nightly/verdict.json: passed after 24h00m (>= 24h00m)"
    )
    write_json(nightly, soak_verdict("fail", 3600.0, ["rss: significant upward trend"]))
    os.utime(nightly, (later, later))
    failed = checks_runs.soak(ctx)
    assert failed.verdict == FAIL
    assert "soak failed after 1h00m: rss: significant upward trend" in failed.evidence


# ----------------------------------------------------------------------------- bench


def bench_report(
    version: str = "0.1.0", mode: str = "full", speedup: float = 8.0
) -> Dict[str, Any]:
    cases = []
    for name in FUNCTIONS:
        cases.append(
            {
                "id": f"{name}/x",
                "function": name,
                "results_equal": True,
                "latency_target": True,
                "contenders": {
                    "rust": {"p10_ns": 100.0, "median_ns": 100.0, "p99_ns": 150.0},
                    "python": {"p10_ns": 100.0 * speedup, "median_ns": 100.0, "p99_ns": 1000.0},
                },
            }
        )
    for case_id in ("read_last_n_lines/1MiB/n=100", "read_last_n_lines/10GiB-sparse/n=100"):
        cases.append(
            {
                "id": case_id,
                "function": "read_last_n_lines",
                "results_equal": True,
                "contenders": {
                    "rust": {"p10_ns": 10_000.0, "median_ns": 10_000.0, "p99_ns": 12_000.0},
                    "python": {"p10_ns": 80_000.0, "median_ns": 80_000.0, "p99_ns": 90_000.0},
                },
            }
        )
    return {
        "mode": mode,
        "git_commit": "abc1234",
        "machine": {"cpu": "AMD EPYC", "cpus": 2},
        "sky_rs": {"version": version, "rust_active": True, "profile": "release"},
        "fallbacks_during_bench": 0,
        "cases": cases,
        "tail_scaling": {
            "contenders": {
                name: {"p10_ns": 10_000.0}
                for name in ("rust@1MiB", "rust@10GiB-sparse", "python@1MiB", "python@10GiB-sparse")
            }
        },
    }


def test_bench_items(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    assert checks_bench.average_speedup(ctx).evidence == (
        "bench-report/bench.json missing, run nox -s bench"
    )
    write_json(root / "bench-report/bench.json", bench_report())
    for check in (
        checks_bench.bench_valid,
        checks_bench.average_speedup,
        checks_bench.p99_latency,
        checks_bench.string_speedup,
        checks_bench.tail_cost,
    ):
        assert check(ctx).verdict == PASS, check.__name__
    assert checks_bench.production_hardware(ctx).verdict == NOT_VERIFIABLE
    write_json(root / "bench-report/bench.json", bench_report(speedup=2.0))
    assert checks_bench.average_speedup(ctx).verdict == FAIL
    write_json(root / "bench-report/bench.json", bench_report(version="0.0.9"))
    assert checks_bench.bench_valid(ctx).evidence == (
        "the bench measured sky_rs 0.0.9, the project is 0.1.0: rerun nox -s bench"
    )
    write_json(root / "bench-report/bench.json", bench_report(mode="quick"))
    assert checks_bench.bench_valid(ctx).verdict == INSUFFICIENT


# ----------------------------------------------------------------------------- coverage, tests


def test_python_tests_from_junit(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    junit = root / "coverage-report/python-junit.xml"
    assert checks_python.python_tests(ctx).evidence == (
        "coverage-report/python-junit.xml missing, run nox -s coverage"
    )
    junit.parent.mkdir(parents=True)
    junit.write_text(
        '<testsuites><testsuite name="pytest" tests="3" failures="0" errors="0" skipped="1">'
        '<testcase classname="t" name="a"/><testcase classname="t" name="b"/>'
        '<testcase classname="t" name="c"><skipped/></testcase></testsuite></testsuites>'
    )
    assert checks_python.python_tests(ctx).evidence.endswith(
        "2 passed, 0 failed, 0 errors, 1 skipped"
    )
    junit.write_text(
        '<testsuites><testsuite name="pytest" tests="2" failures="1" errors="0" skipped="0">'
        '<testcase classname="t" name="a"/><testcase classname="t" name="b"><failure/></testcase>'
        "</testsuite></testsuites>"
    )
    failed = checks_python.python_tests(ctx)
    assert failed.verdict == FAIL and failed.evidence.endswith(
        "1 failed, 0 errors, 0 skipped: t::b"
    )
    junit.write_text('<testsuite name="pytest" tests="0" failures="0" errors="0" skipped="0"/>')
    assert "collected no test" in checks_python.python_tests(ctx).evidence


def coverage_json(covered: int, statements: int) -> Dict[str, Any]:
    summary = {"covered_lines": covered, "num_statements": statements}
    return {
        "files": {
            "/venv/site-packages/sky_rs/__init__.py": {"summary": summary},
            "/venv/site-packages/sky_rs/fallback.py": {"summary": summary},
        }
    }


def llvm_cov_json(covered: int, count: int) -> Dict[str, Any]:
    lines = {"covered": covered, "count": count, "percent": 100.0 * covered / count}
    files = [{"filename": "/x/rust/core/src/tail.rs", "summary": {"lines": lines}}]
    return {"data": [{"totals": {"lines": lines}, "files": files}]}


def test_coverage_items(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    assert checks_rust.rust_coverage(ctx).evidence == (
        "coverage-report/rust.json missing, run nox -s coverage"
    )
    write_json(root / "coverage-report/python.json", coverage_json(95, 100))
    write_json(root / "coverage-report/rust.json", llvm_cov_json(950, 1000))
    assert checks_python.python_coverage(ctx).verdict == PASS
    assert checks_rust.rust_coverage(ctx).evidence.startswith("lines 95.0% (950/1000) over 1 files")
    write_json(root / "coverage-report/python.json", coverage_json(80, 100))
    write_json(root / "coverage-report/rust.json", llvm_cov_json(800, 1000))
    low = checks_python.python_coverage(ctx)
    assert low.verdict == FAIL and low.evidence.startswith("statements 80.0%")
    assert checks_rust.rust_coverage(ctx).verdict == FAIL
    (root / "coverage-report/rust.json").unlink()
    (root / "coverage-report/rust-unavailable.txt").write_text("rustup could not add llvm-tools\n")
    assert checks_rust.rust_coverage(ctx) == checks_rust.Outcome(
        NOT_VERIFIABLE, "Rust coverage could not be measured here: rustup could not add llvm-tools"
    )


# ----------------------------------------------------------------------------- wheels


def artifact(file: str, platform: str, ok: bool = True, version: str = "0.1.0") -> Dict[str, Any]:
    tools = checks_release.WHEEL_CHECKS[platform]
    return {
        "file": file,
        "platform": platform,
        "version": version,
        "checks": {tool: {"ok": ok, "summary": "x" if ok else "bad symbol"} for tool in tools},
    }


def test_wheel_items(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = ctx_for(root)
    assert checks_release.wheels_linux(ctx).evidence == (
        "release-report/wheels.json missing, run nox -s release-check"
    )
    sdist = artifact("skypilot_rust-0.1.0.tar.gz", "sdist")
    wheel = artifact("w-0.1.0-cp38-abi3-manylinux_2_17_x86_64.whl", "linux-x86_64")
    write_json(root / "release-report/wheels.json", {"artifacts": [sdist, wheel]})
    assert checks_release.wheels_linux(ctx).verdict == PASS
    other = checks_release.wheels_platforms(ctx)
    assert other.verdict == FAIL
    assert other.evidence.startswith("no linux-aarch64, macos-arm64, macos-x86_64 wheel in")
    bad = artifact("w-0.1.0-cp38-abi3-manylinux_2_17_x86_64.whl", "linux-x86_64", ok=False)
    write_json(root / "release-report/wheels.json", {"artifacts": [sdist, bad]})
    assert checks_release.wheels_linux(ctx).evidence == "; ".join(
        f"w-0.1.0-cp38-abi3-manylinux_2_17_x86_64.whl: {tool} failed: bad symbol"
        for tool in ("twine", "tag", "elf", "auditwheel", "abi3audit")
    )
    old = artifact("w-0.0.9-cp38-abi3-manylinux_2_17_x86_64.whl", "linux-x86_64", version="0.0.9")
    write_json(root / "release-report/wheels.json", {"artifacts": [sdist, old]})
    assert "is version 0.0.9, the project 0.1.0" in checks_release.wheels_linux(ctx).evidence
    write_json(root / "release-report/wheels.json", {"artifacts": [wheel]})
    assert checks_release.wheels_linux(ctx).verdict == FAIL


def test_unreadable_evidence_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "bench-report").mkdir()
    (root / "bench-report/bench.json").write_text("{not json")
    outcome = checks_bench.average_speedup(ctx_for(root))
    assert outcome.verdict == FAIL
    assert outcome.evidence.startswith("bench-report/bench.json is not valid JSON")


@pytest.mark.parametrize("status", ["pass", "fail"])
def test_soak_without_duration_is_not_a_verdict(tmp_path: Path, status: str) -> None:
    root = project(tmp_path)
    write_json(root / "soak-report/verdict.json", {"status": status})
    assert "not a soak verdict" in checks_runs.soak(ctx_for(root)).evidence


def test_the_runners_function_list_is_the_dispatchers() -> None:
    """core.functions is the runner's one copy (the sign-off and the leaks proof run without
    sky_rs installed): it must name exactly the functions python/sky_rs/__init__.py dispatches."""
    import ast

    from matrix_helpers import project_root

    init = project_root() / "python" / "sky_rs" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "FUNCTIONS":
            assert node.value is not None
            assert ast.literal_eval(node.value) == SKY_RS_FUNCTIONS
            return
    raise AssertionError(f"no FUNCTIONS tuple in {init}")


def test_the_python_row_names_abi_tags_and_the_interpreters_beyond_cpython(tmp_path: Path) -> None:
    root = project(tmp_path)
    write_matrix(root, [*all_pythons(), cell("pp3.11"), cell("3.14t")])
    outcome = checks_matrix.matrix_pythons(ctx_for(root))
    assert outcome.verdict == PASS
    assert "(cp38, cp39, cp310, cp311, cp312, cp313, cp314, cp315)" in outcome.evidence
    assert outcome.evidence.endswith("; also passing: pp311, cp314t")

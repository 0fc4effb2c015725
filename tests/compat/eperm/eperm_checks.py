"""The assertions both EPERM test modules make about one probe report."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping

from eperm_contract import CgroupOracle, comparable, describe, expected, matches
from eperm_scenarios import Scenario

import sky_rs


def contract_failures(
    function: str,
    report: Mapping[str, Any],
    oracle: CgroupOracle,
    contents: Mapping[str, Any],
) -> List[str]:
    """Every case of ``function``: each backend gives the contract's answer, and the same one."""
    failures: List[str] = []
    cases = [case for case in report["plan"]["cases"] if case["function"] == function]
    results = {result["id"]: result for result in report["results"]}
    if not cases:
        return [f"the plan has no case for {function}"]
    for case in cases:
        result = results.get(case["id"])
        if result is None:
            failures.append(f"{case['id']}: the probe did not run it")
            continue
        want = expected(case, report["sources"], oracle, contents)
        for backend in ("rust", "python"):
            outcome = result[backend]
            if outcome.get("panic"):
                failures.append(f"{case['id']}: {backend} let a Rust panic escape: {outcome}")
            elif not matches(outcome, want):
                failures.append(
                    f"{case['id']}: {backend} {describe(outcome)}; the contract says "
                    f"{want.describe()}"
                )
        # Which port is free depends on the moment; equal types and ranges suffice there.
        exact = function != "find_free_port"
        if comparable(result["rust"], exact) != comparable(result["python"], exact):
            failures.append(
                f"{case['id']}: Rust and Python differ: rust {describe(result['rust'])}, "
                f"python {describe(result['python'])}"
            )
    return failures


def backend_failures(scenario: Scenario, report: Mapping[str, Any]) -> List[str]:
    """Which backend answered, and sky_rs.stats(): every fallback with its reason, or none."""
    failures: List[str] = []
    info = report["backend_info"]
    stats = report["stats"]
    calls: Dict[str, int] = report["calls"]
    installed = os.path.realpath(sky_rs.__file__)
    if scenario.native == "loaded":
        if os.path.realpath(report["package_file"]) != installed:
            failures.append(f"the probe imported {report['package_file']}, not {installed}")
        if info["backend"] != "rust" or info["reason"] is not None:
            failures.append(f"the native module should answer; backend_info() = {info}")
        if stats["fallback_rate"] != 0.0:
            failures.append(f"fallback_rate is {stats['fallback_rate']!r}, not exactly 0.0")
        for name, count in calls.items():
            # The contract's degradations are answers, not failures: Rust gives them itself.
            want = {"rust": count, "python": 0, "fallbacks": {}}
            if stats["functions"][name] != want:
                failures.append(f"stats()[{name!r}] = {stats['functions'][name]}, not {want}")
        return failures
    if scenario.native in ("corrupt", "unreadable"):
        copy = os.path.dirname(os.path.dirname(report["package_file"]))
        if os.path.basename(copy) != f"native-{scenario.native}":
            failures.append(f"the probe imported {report['package_file']}, not the broken copy")
    if info["backend"] != "python":
        failures.append(f"a broken native module must mean the Python backend: {info}")
    reason = info.get("reason") or ""
    if "native module could not be imported" not in reason:
        failures.append(f"backend_info()['reason'] does not say why: {reason!r}")
    error = str(info.get("native_import_error") or "")
    if not error.startswith(("ImportError:", "ModuleNotFoundError:")):
        failures.append(f"native_import_error should name the ImportError: {error!r}")
    if stats["fallback_rate"] != 1.0:
        failures.append(f"every call is a fallback; fallback_rate is {stats['fallback_rate']!r}")
    for name, count in calls.items():
        want = {"rust": 0, "python": count, "fallbacks": {"import-error": count}}
        if stats["functions"][name] != want:
            failures.append(f"stats()[{name!r}] = {stats['functions'][name]}, not {want}")
    return failures

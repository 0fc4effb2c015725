"""What a run of the leaks suite must show: against the canary wheel, and against the release one.

Pure functions over the suite's JUnit file and its leak report, so that the
rules are unit-tested without building anything.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Tuple

from sky_matrix.core.functions import SKY_RS_FUNCTIONS

BACKENDS = ("rust", "python")
# Detector test (module::function) -> the detector's name in the leak report.
DETECTOR_TESTS: Dict[str, str] = {
    "test_memray_leaks::test_memray_limit_leaks": "memray",
    "test_growth::test_growth": "growth",
    "test_fds_threads::test_descriptors_and_threads": "fds_threads",
    "test_references::test_references": "references",
    "test_debug_refcounts::test_debug_refcounts": "debug_refcounts",
    "test_long_run::test_long_run": "long_run",
}
BUILD_TEST = "test_build::test_build_has_no_leak_canary"
EXPECTED_TESTS = len(DETECTOR_TESTS) * len(SKY_RS_FUNCTIONS) * len(BACKENDS) + 1


@dataclasses.dataclass(frozen=True)
class Canary:
    """A deliberate leak of the canary build, and the detector that must catch it."""

    test: str  # module::function of the detector test
    function: str
    needs: str | None = None  # "memray" or "debug": where the detector runs at all

    def case_id(self) -> str:
        return f"{self.test}[{self.function}-rust]"


CANARIES: Tuple[Canary, ...] = (
    Canary("test_memray_leaks::test_memray_limit_leaks", "base36_encode", needs="memray"),
    Canary("test_growth::test_growth", "base36_encode"),
    Canary("test_fds_threads::test_descriptors_and_threads", "hash_file"),
    Canary("test_references::test_references", "truncate_long_string"),
    Canary("test_debug_refcounts::test_debug_refcounts", "truncate_long_string", needs="debug"),
    # The slow canary (32 bytes every 2,000 calls) is for the long run alone; it
    # sees the fast base-36 one too.
    Canary("test_long_run::test_long_run", "format_float"),
    Canary("test_long_run::test_long_run", "base36_encode"),
)


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """The facts about the interpreter that decide which detectors run."""

    label: str
    debug: bool
    memray_unsupported: str | None  # leak_memray.unsupported_reason() there


@dataclasses.dataclass(frozen=True)
class Outcome:
    outcome: str  # "passed", "failed", "error" or "skipped"
    message: str  # failure/skip message (the assertion's first line, or the skip reason)
    text: str  # the whole failure text


def read_junit(path: Path) -> Dict[str, Outcome]:
    """{"module::test[id]": Outcome} of every test case of a pytest JUnit file."""
    root = ET.parse(path).getroot()
    found: Dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        module = (case.get("classname") or "").rsplit(".", 1)[-1]
        key = f"{module}::{case.get('name')}"
        outcome = Outcome("passed", "", "")
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                name = "failed" if tag == "failure" else tag
                outcome = Outcome(name, node.get("message") or "", node.text or "")
                break
        found[key] = outcome
    return found


def _accepted_skip(key: str, outcome: Outcome, interp: Interpreter) -> str | None:
    """None if this skip is one the suite is meant to make here, else the problem."""
    if key.startswith("test_debug_refcounts::"):
        if interp.debug:
            return f"{key} skipped on a debug build: {outcome.message}"
        return None
    if key.startswith("test_long_run::") and key.endswith("-python]"):
        return None  # native code only, by design (tests/leaks/test_long_run.py)
    if key.startswith("test_memray_leaks::"):
        if interp.memray_unsupported is None:
            return f"{key} skipped although memray supports {interp.label}: {outcome.message}"
        if interp.memray_unsupported not in outcome.message:
            return f"{key} skipped for another reason than memray's: {outcome.message}"
        return None
    return f"{key} skipped: {outcome.message}"


def _count_problem(results: Dict[str, Outcome]) -> List[str]:
    if len(results) != EXPECTED_TESTS:
        return [f"the suite ran {len(results)} tests, expected {EXPECTED_TESTS}"]
    return []


def check_release(results: Dict[str, Outcome], interp: Interpreter) -> List[str]:
    """The release wheel: every test passes, or skips for the reason the suite gives."""
    problems = _count_problem(results)
    for key, outcome in sorted(results.items()):
        if outcome.outcome in ("failed", "error"):
            problems.append(f"{key} {outcome.outcome}: {outcome.message}")
        elif outcome.outcome == "skipped":
            problem = _accepted_skip(key, outcome, interp)
            if problem:
                problems.append(problem)
    return problems


def canaries_for(interp: Interpreter) -> List[Canary]:
    """The canaries whose detector runs on this interpreter."""
    return [
        canary
        for canary in CANARIES
        if canary.needs is None
        or (canary.needs == "debug" and interp.debug)
        or (canary.needs == "memray" and interp.memray_unsupported is None)
    ]


def _names_function(canary: Canary, outcome: Outcome, report: Dict[str, Any]) -> str | None:
    """None if the failure names the leaking function, else the problem."""
    if canary.function in outcome.message or canary.function in outcome.text:
        return None
    # pytest-memray's own message is generic; the test id and the leak report name it.
    detector = DETECTOR_TESTS[canary.test]
    entry = (
        report.get("functions", {}).get(canary.function, {}).get("rust", {})
        .get("detectors", {}).get(detector, {})
    )  # fmt: skip
    if entry.get("outcome") == "failed":
        return None
    return f"{canary.case_id()} failed without naming {canary.function}: {outcome.message}"


def check_canaries(
    results: Dict[str, Outcome], report: Dict[str, Any], interp: Interpreter
) -> List[str]:
    """The canary wheel: each canary's detector fails at its function, nothing else fails."""
    problems = _count_problem(results)
    expected = {canary.case_id(): canary for canary in canaries_for(interp)}
    for key, canary in sorted(expected.items()):
        outcome = results.get(key)
        if outcome is None:
            problems.append(f"{key} did not run")
        elif outcome.outcome != "failed":
            problems.append(f"{key} {outcome.outcome}: the {canary.function} canary went unseen")
        else:
            problem = _names_function(canary, outcome, report)
            if problem:
                problems.append(problem)
    build = results.get(BUILD_TEST)
    if build is None or build.outcome != "failed":
        problems.append(f"{BUILD_TEST} did not fail on the canary wheel")
    for key, outcome in sorted(results.items()):
        if key in expected or key == BUILD_TEST:
            continue
        if outcome.outcome in ("failed", "error"):
            problems.append(f"{key} {outcome.outcome} on the canary wheel: {outcome.message}")
        elif outcome.outcome == "skipped":
            problem = _accepted_skip(key, outcome, interp)
            if problem:
                problems.append(problem)
    return problems


def caught(results: Dict[str, Outcome], interp: Interpreter) -> List[str]:
    """The canaries that were caught, as 'detector test[function-rust]: message' lines."""
    lines = []
    for canary in canaries_for(interp):
        outcome = results.get(canary.case_id())
        if outcome is not None and outcome.outcome == "failed":
            lines.append(f"{canary.case_id()}: {outcome.message.splitlines()[0][:160]}")
    return lines

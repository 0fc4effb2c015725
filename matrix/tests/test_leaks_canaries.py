"""The leak-suite proof (sky_matrix.leaks): its rules, its canary build, and the real thing.

The last test builds the canary wheel for real, runs tests/leaks/ against it and
against the release wheel on the newest CPython found, and requires every
canary caught by its detector and the release wheel clean.
"""

from __future__ import annotations

import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from matrix_helpers import project_root

from sky_matrix.build import host_wheel
from sky_matrix.core.functions import SKY_RS_FUNCTIONS
from sky_matrix.core.model import Interpreter
from sky_matrix.leaks import canary_wheel, expectations, proof
from sky_matrix.leaks.__main__ import select_interpreters
from sky_matrix.plan.discovery import discover

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the runner's own 3.9/3.10
    import tomli as tomllib

PROJECT_ROOT = project_root()
RELEASE = expectations.Interpreter("3.13", debug=False, memray_unsupported=None)
DEBUG = expectations.Interpreter(
    "3.14d", debug=True, memray_unsupported="memray publishes no wheels for debug builds"
)
RELEASE_BUILD_SKIP = "sys.gettotalrefcount() exists only in debug builds of CPython"

# ------------------------------------------------------------------ synthetic JUnit


def _all_keys() -> List[str]:
    keys = [
        f"{test}[{function}-{backend}]"
        for test in expectations.DETECTOR_TESTS
        for function in SKY_RS_FUNCTIONS
        for backend in expectations.BACKENDS
    ]
    return [*keys, expectations.BUILD_TEST]


def _outcomes(
    interp: expectations.Interpreter, failing: Dict[str, str]
) -> Dict[str, expectations.Outcome]:
    """Every test passed (or skipped as the suite does on `interp`), but `failing`."""
    results = {}
    for key in _all_keys():
        if key in failing:
            results[key] = expectations.Outcome("failed", failing[key], failing[key])
        elif key.startswith("test_debug_refcounts::") and not interp.debug:
            results[key] = expectations.Outcome("skipped", RELEASE_BUILD_SKIP, "")
        elif key.startswith("test_memray_leaks::") and interp.memray_unsupported:
            results[key] = expectations.Outcome("skipped", interp.memray_unsupported, "")
        else:
            results[key] = expectations.Outcome("passed", "", "")
    return results


def _caught(interp: expectations.Interpreter) -> Dict[str, str]:
    failing = {
        canary.case_id(): f"AssertionError: {canary.function}[rust] leaks"
        for canary in expectations.canaries_for(interp)
    }
    memray = "test_memray_leaks::test_memray_limit_leaks[base36_encode-rust]"
    if memray in failing:  # pytest-memray's own words do not name the function
        failing[memray] = "Test was allowed to leak 16.0KiB per location"
    failing[expectations.BUILD_TEST] = "AssertionError: built with 'leak-canary'"
    return failing


def _report_with_memray_failure() -> Dict[str, object]:
    entry = {"outcome": "failed", "reason": "Test was allowed to leak", "metrics": {}}
    return {"functions": {"base36_encode": {"rust": {"detectors": {"memray": entry}}}}}


def test_every_canary_caught_passes() -> None:
    results = _outcomes(RELEASE, _caught(RELEASE))
    assert expectations.check_canaries(results, _report_with_memray_failure(), RELEASE) == []


def test_debug_interpreter_needs_the_refcount_canary_and_skips_memray() -> None:
    results = _outcomes(DEBUG, _caught(DEBUG))
    assert expectations.check_canaries(results, {}, DEBUG) == []
    key = "test_debug_refcounts::test_debug_refcounts[truncate_long_string-rust]"
    results[key] = expectations.Outcome("passed", "", "")
    problems = expectations.check_canaries(results, {}, DEBUG)
    assert problems == [f"{key} passed: the truncate_long_string canary went unseen"]


@pytest.mark.parametrize("canary", expectations.CANARIES, ids=lambda c: c.test.split("::")[1])
def test_an_unseen_canary_is_a_problem(canary: expectations.Canary) -> None:
    interp = DEBUG if canary.needs == "debug" else RELEASE
    failing = _caught(interp)
    del failing[canary.case_id()]
    problems = expectations.check_canaries(
        _outcomes(interp, failing), _report_with_memray_failure(), interp
    )
    assert problems == [f"{canary.case_id()} passed: the {canary.function} canary went unseen"]


def test_a_failure_that_does_not_name_the_function_is_a_problem() -> None:
    failing = _caught(RELEASE)
    key = "test_growth::test_growth[base36_encode-rust]"
    failing[key] = "AssertionError: something keeps growing"
    problems = expectations.check_canaries(
        _outcomes(RELEASE, failing), _report_with_memray_failure(), RELEASE
    )
    assert len(problems) == 1 and "without naming base36_encode" in problems[0]


def test_a_failure_beyond_the_canaries_is_a_problem() -> None:
    failing = _caught(RELEASE)
    failing["test_growth::test_growth[format_float-python]"] = "AssertionError: grows"
    problems = expectations.check_canaries(
        _outcomes(RELEASE, failing), _report_with_memray_failure(), RELEASE
    )
    assert problems == [
        "test_growth::test_growth[format_float-python] failed on the canary wheel: "
        "AssertionError: grows"
    ]


def test_the_build_test_must_fail_on_the_canary_wheel() -> None:
    failing = _caught(RELEASE)
    del failing[expectations.BUILD_TEST]
    problems = expectations.check_canaries(
        _outcomes(RELEASE, failing), _report_with_memray_failure(), RELEASE
    )
    assert problems == [f"{expectations.BUILD_TEST} did not fail on the canary wheel"]


def test_release_run_must_be_clean_and_complete() -> None:
    assert expectations.check_release(_outcomes(RELEASE, {}), RELEASE) == []
    assert expectations.check_release(_outcomes(DEBUG, {}), DEBUG) == []
    failing = {"test_references::test_references[hash_file-rust]": "AssertionError: refs"}
    assert expectations.check_release(_outcomes(RELEASE, failing), RELEASE) == [
        "test_references::test_references[hash_file-rust] failed: AssertionError: refs"
    ]
    partial = _outcomes(RELEASE, {})
    partial.pop(expectations.BUILD_TEST)
    problems = expectations.check_release(partial, RELEASE)
    assert problems == [
        f"the suite ran {expectations.EXPECTED_TESTS - 1} tests, "
        f"expected {expectations.EXPECTED_TESTS}"
    ]


def test_memray_may_skip_only_where_unsupported() -> None:
    results = _outcomes(DEBUG, {})  # memray skipped everywhere...
    problems = expectations.check_release(results, RELEASE)  # ...on an interpreter it supports
    memray_problems = [p for p in problems if p.startswith("test_memray_leaks::")]
    assert len(memray_problems) == 24
    assert "skipped although memray supports 3.13" in memray_problems[0]


JunitCase = Tuple[str, str, Optional[Tuple[str, str]]]  # classname, name, (tag, message)


def _junit(cases: List[JunitCase]) -> str:
    suite = ET.Element("testsuite")
    for classname, name, outcome in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if outcome is not None:
            tag, message = outcome
            ET.SubElement(case, tag, message=message).text = f"{message}\nmore"
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode")


def test_read_junit(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        _junit(
            [
                ("tests.leaks.test_growth", "test_growth[hash_file-rust]", None),
                ("tests.leaks.test_growth", "test_growth[hash_file-python]", ("failure", "grow")),
                ("tests.leaks.test_build", "test_build_has_no_leak_canary", ("error", "boom")),
                (
                    "tests.leaks.test_memray_leaks",
                    "test_memray_limit_leaks[x-rust]",
                    ("skipped", "n"),
                ),
            ]
        ),
        encoding="utf-8",
    )
    results = expectations.read_junit(path)
    assert results["test_growth::test_growth[hash_file-rust]"].outcome == "passed"
    assert results["test_growth::test_growth[hash_file-python]"] == expectations.Outcome(
        "failed", "grow", "grow\nmore"
    )
    assert results[expectations.BUILD_TEST].outcome == "error"
    assert results["test_memray_leaks::test_memray_limit_leaks[x-rust]"].message == "n"


# ------------------------------------------------------------------ the canary build

FAKE_MATURIN = """\
import pathlib, sys
args = sys.argv[1:]
pathlib.Path(__file__).with_suffix(".args").write_text(" ".join(args))
out = pathlib.Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "skypilot_rust-0.1.0-cp38-abi3-linux_x86_64.whl").write_bytes(b"wheel")
"""


def test_canary_build_asks_for_the_feature_and_is_reused(tmp_path: Path) -> None:
    script = tmp_path / "maturin.py"
    script.write_text(FAKE_MATURIN)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "out" / "key"
    logs: List[str] = []
    wheel = canary_wheel.build_canary_wheel(
        tmp_path, out, log=logs.append, maturin=[sys.executable, str(script)]
    )
    assert wheel.parent == out and wheel.read_bytes() == b"wheel"
    args = script.with_suffix(".args").read_text().split()
    assert args[:4] == ["build", "--release", "--features", "leak-canary"]
    script.with_suffix(".args").unlink()
    again = canary_wheel.build_canary_wheel(
        tmp_path, out, log=logs.append, maturin=[sys.executable, str(script)]
    )
    assert again == wheel and not script.with_suffix(".args").exists()


def test_canary_build_failure_says_where_the_log_is(tmp_path: Path) -> None:
    script = tmp_path / "maturin.py"
    script.write_text("import sys\nprint('error: could not compile')\nsys.exit(1)\n")
    with pytest.raises(canary_wheel.CanaryBuildError, match=r"status 1 .*\.log"):
        canary_wheel.build_canary_wheel(
            tmp_path, tmp_path / "out", log=lambda _m: None, maturin=[sys.executable, str(script)]
        )


def test_release_builds_never_enable_the_canary_feature() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text("utf-8"))
    assert "leak-canary" not in pyproject["tool"]["maturin"].get("features", [])
    cargo = tomllib.loads((PROJECT_ROOT / "rust/python/Cargo.toml").read_text("utf-8"))
    assert cargo["features"]["leak-canary"] == []
    assert "leak-canary" not in cargo["features"].get("default", [])
    assert "--features" not in (
        PROJECT_ROOT / "matrix/src/sky_matrix/build/host_wheel.py"
    ).read_text("utf-8")


def test_default_selection_is_oldest_newest_and_debug() -> None:
    def interp(version: str, debug: bool = False) -> Interpreter:
        abi = "cp" + "".join(version.split(".")[:2]) + ("d" if debug else "")
        return Interpreter(f"/x/{version}", version, "cpython", abi, debug, "PATH")

    found = [interp("3.11.2"), interp("3.8.18"), interp("3.13.1"), interp("3.14.0", True)]
    assert [i.short for i in select_interpreters(found, [])] == ["3.8", "3.13", "3.14d"]
    assert [i.short for i in select_interpreters(found, ["3.11"])] == ["3.11"]


# ------------------------------------------------------------------ the real proof


@pytest.mark.timeout(2400)
def test_canaries_are_caught_and_the_release_build_is_clean(tmp_path: Path) -> None:
    """Builds both wheels and runs tests/leaks twice on the newest CPython here (minutes)."""
    found = discover()
    newest = select_interpreters(list(found.interpreters.values()), [])
    release_builds = [interp for interp in newest if not interp.debug]
    assert release_builds, "no release build of CPython >= 3.8 found to run the leaks suite on"
    interp = release_builds[-1]
    canary = canary_wheel.build_canary_wheel(PROJECT_ROOT, log=print)  # cached by source key
    release, _cached, _seconds = host_wheel.build_wheel(PROJECT_ROOT, log=print)
    verdicts = proof.prove(
        PROJECT_ROOT,
        [interp],
        canary_wheel=canary,
        release_wheel=release,
        env_cache=PROJECT_ROOT / ".build-cache" / "envs",
        work_dir=tmp_path / "runs",
        log=print,
    )
    assert [v.kind for v in verdicts] == ["canary", "release"]
    problems = [f"{v.kind}: {p}" for v in verdicts for p in v.problems]
    assert not problems, "\n".join(problems)
    caught = expectations.caught(verdicts[0].run.results, verdicts[0].run.interpreter)
    assert len(caught) == len(expectations.canaries_for(verdicts[0].run.interpreter))

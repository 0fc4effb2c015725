"""From a finished pytest process to a verdict and a one-line reason."""

from __future__ import annotations

import pytest

from sky_matrix.execute.outcome import classify, died_of

COUNTS = {"tests": 10, "failures": 0, "errors": 0, "skipped": 0, "passed": 10}


def _classify(code, *, counts=COUNTS, log="", timed_out=False):
    return classify(code, timed_out=timed_out, wall_limit=900, counts=counts, log_text=log)


def test_pass() -> None:
    assert _classify(0) == ("pass", "", None)


def test_no_test_is_a_failure() -> None:
    assert _classify(5, counts={})[:2] == (
        "fail", "collected no test: an empty suite is a failure"
    )  # fmt: skip
    assert _classify(0, counts={"tests": 0})[:2] == ("fail", "ran no test")


def test_all_skipped_is_a_skip_with_the_first_reason() -> None:
    counts = {"tests": 3, "skipped": 3, "passed": 0}
    log = "SKIPPED [3] tests/compat/cgroup/test_live.py:12: host has no cgroup v2 cpu controller\n"
    assert _classify(0, counts=counts, log=log)[:2] == (
        "skipped", "all 3 tests skipped: host has no cgroup v2 cpu controller"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("code", "name", "words"),
    [
        (-11, "SIGSEGV", "segmentation fault"),
        (-6, "SIGABRT", "aborted"),
        (-9, "SIGKILL", "out of memory?"),
        (139, "SIGSEGV", "segmentation fault"),  # 128 + 11, as docker and shells report it
    ],
)
def test_signals(code: int, name: str, words: str) -> None:
    verdict, reason, signal = _classify(code, counts={})
    assert verdict == "fail" and signal == name
    assert words in reason and name in reason


def test_hang() -> None:
    verdict, reason, signal = _classify(-15, timed_out=True, counts={})
    assert verdict == "fail" and signal is None
    assert reason == "hung: still running at the 900 s wall-clock limit (killed)"


def test_failures_with_details() -> None:
    counts = {"tests": 10, "failures": 2, "errors": 1, "skipped": 0, "passed": 7}
    log = (
        "FAILED tests/x.py::test_crash - worker 'gw1' crashed\n"
        "[gw1] node down: Not properly terminated\n"
        "worker 'gw1' crashed while running 'tests/x.py::test_crash'\n"
        "+++++++++++++++ Timeout +++++++++++++++\n"
    )
    verdict, reason, _ = _classify(1, counts=counts, log=log)
    assert verdict == "fail"
    assert reason == (
        "2 failed, 1 errors of 10 tests; first: FAILED tests/x.py::test_crash - worker 'gw1'"
        " crashed; xdist worker gw1 crashed running"
        " tests/x.py::test_crash; a test hit the per-test timeout"
    )


def test_internal_error_out_of_memory() -> None:
    log = (
        "INTERNALERROR>     hoard.append(bytearray(32 * 1024 * 1024))\nINTERNALERROR> MemoryError\n"
    )
    verdict, reason, _ = _classify(3, counts={}, log=log)
    assert verdict == "fail"
    assert reason == "out of memory (MemoryError); pytest internal error"


def test_collection_errors() -> None:
    log = "ERROR tests/compat/parity/test_a.py - ModuleNotFoundError: No module named 'x'\n"
    verdict, reason, _ = _classify(2, counts={}, log=log)
    assert verdict == "fail"
    assert reason.startswith("interrupted or collection errors; ERROR tests/compat/parity")


def test_died_of() -> None:
    assert died_of(None) is None
    assert died_of(0) is None and died_of(1) is None and died_of(5) is None
    assert died_of(-9) == 9 and died_of(137) == 9

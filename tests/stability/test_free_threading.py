"""Thread safety without a GIL: what free-threaded CPython (3.13t and newer) needs of sky_rs.

The native module declares itself safe to run without the GIL (`gil_used = false`), so a
free-threaded interpreter keeps the GIL off after importing it; these tests hold it to that.
They run on every interpreter: the counters and one-time warnings must be exact with a GIL too,
only the GIL's state itself is a question for free-threaded builds alone.

- All twelve functions from 32 threads at once, through the dispatcher in verify mode (each call
  runs Rust and Python and compares): every outcome is the contract's, no mismatch is recorded,
  and the call counters of both backends count every call exactly (a lost increment is a race).
  Where the installation is the pure-Python wheel (free-threaded 3.13: no native wheel exists),
  the same calls run in Python alone, and its counters must be as exact.
- One warning, many threads: unknown names in `SKYPILOT_RUST_DISABLE` read by 32 threads at once
  warn once each.
- A fresh interpreter importing sky_rs keeps `sys._is_gil_enabled()` False, with no warning.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
import uuid
import warnings
from collections import Counter
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from installation import pure_wheel_cell

import sky_rs
from sky_matrix.soak import workload

THREADS = 32
ROUNDS = 20  # per thread, each round calls every case of every function once
JOIN_TIMEOUT_S = 600.0
WARNING_NAMES = 20_000  # unknown names in one SKYPILOT_RUST_DISABLE, each a one-time warning
WARNING_ROUNDS = 5  # each with new names
# find_free_port's answer depends on the sockets other threads hold at that instant: Rust and
# Python, called one after the other, may each find a different free port. Both must still be
# ports from the start asked for (the case's own check); nothing else may differ.
RACY_FUNCTIONS = ("find_free_port",)

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.fixture
def backends() -> str:
    """`both` (verify mode compares them), or `python` in a pure-wheel cell."""
    if sky_rs._native is not None:
        return "both"
    if pure_wheel_cell() and not sky_rs._native_shipped():
        return "python"
    pytest.fail(f"sky_rs._native does not import: {sky_rs.backend_info()['reason']}")


@pytest.fixture
def verify_mode(backends: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SKYPILOT_USE_RUST", "SKYPILOT_RUST_DISABLE", "SKYPILOT_RUST_ROLLOUT"):
        monkeypatch.delenv(name, raising=False)
    if backends == "both":
        monkeypatch.setenv("SKYPILOT_RUST_VERIFY", "1")
    sky_rs.reload_config()
    sky_rs.reset_stats()
    try:
        yield
    finally:
        monkeypatch.delenv("SKYPILOT_RUST_VERIFY", raising=False)
        sky_rs.reload_config()
        sky_rs.reset_stats()


def _one_round(cases: Dict[str, List[workload.Case]], problems: List[str]) -> None:
    for function, function_cases in cases.items():
        call = getattr(sky_rs, function)  # the verify wrapper: Rust, then Python
        for case in function_cases:
            try:
                ok, outcome = True, call(*case.args, **case.kwargs)
            except Exception as exc:
                ok, outcome = False, exc
            problem = workload.judge(case, ok, outcome)
            if problem is not None and len(problems) < 20:
                problems.append(f"{function}: {problem}")


def _calls(stats: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    return {name: (f["rust"], f["python"]) for name, f in stats["functions"].items()}


def _unexplained(mismatches: List[Dict[str, str]]) -> List[Dict[str, str]]:
    def explained(m: Dict[str, str]) -> bool:
        if m["function"] not in RACY_FUNCTIONS:
            return False
        try:
            ports = int(m["rust"]), int(m["python"])
        except ValueError:
            return False
        return all(port >= workload.FREE_PORT_START for port in ports)

    return [m for m in mismatches if not explained(m)]


def test_all_functions_from_32_threads_in_verify_mode(
    backends: str, soak_inputs: workload.Inputs, verify_mode: None
) -> None:
    cases = workload.resolve_expected(workload.default_cases(soak_inputs))
    assert sorted(cases) == sorted(sky_rs.FUNCTIONS)
    assert sky_rs.backend_info()["verify"] is (backends == "both")

    # One round alone gives what each round adds to the counters (a Rust call that falls back
    # inside the binding counts as a Python call there, so the split is measured, not assumed).
    problems: List[str] = []
    _one_round(cases, problems)
    assert problems == []
    per_round = _calls(sky_rs.stats())
    native_calls = backends == "both"
    assert all((rust > 0) is native_calls and python > 0 for rust, python in per_round.values())
    sky_rs.reset_stats()

    start = threading.Barrier(THREADS)

    def worker() -> None:
        start.wait()
        for _ in range(ROUNDS):
            _one_round(cases, problems)

    threads = [threading.Thread(target=worker, name=f"ft-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a worker thread hangs"

    assert problems == []
    stats = sky_rs.stats()
    assert _unexplained(stats["mismatches"]) == []
    rounds = THREADS * ROUNDS
    expected = {
        name: (rust * rounds, python * rounds) for name, (rust, python) in per_round.items()
    }
    assert _calls(stats) == expected, "a counter lost or gained calls under threads"


def test_bad_settings_read_by_32_threads_warn_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """32 threads read the same list of unknown function names at once, in the same order: they
    meet at each name, and each name must warn once. (A check-then-add without the lock warned
    twice for some name in every run on 3.13t; see the closing note of issue 15.)"""
    for round_ in range(WARNING_ROUNDS):
        prefix = f"nosuch{uuid.uuid4().hex[:8]}_"  # names no earlier round has warned about
        names = [f"{prefix}{i}" for i in range(WARNING_NAMES)]
        monkeypatch.setenv("SKYPILOT_RUST_DISABLE", ",".join(names))
        caught, errors = _reload_from_threads()
        assert errors == []
        per_name = Counter(
            str(w.message).rsplit(" ", 1)[-1] for w in caught if prefix in str(w.message)
        )
        repeated = {name: count for name, count in per_name.items() if count != 1}
        assert repeated == {} and len(per_name) == WARNING_NAMES, (round_, len(per_name), repeated)
    monkeypatch.delenv("SKYPILOT_RUST_DISABLE")
    sky_rs.reload_config()


def _reload_from_threads() -> Tuple[List[warnings.WarningMessage], List[BaseException]]:
    """`reload_config()` in THREADS threads released at once: the warnings, the exceptions."""
    start = threading.Barrier(THREADS)
    errors: List[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            sky_rs.reload_config()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a repeat must show, not be deduplicated
        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
    return caught, errors


def _clean_env() -> Dict[str, str]:
    """The caller's environment without what would steer the child's GIL or warnings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("PYTHON") or k.startswith("SKYPILOT_"))
    }


@pytest.mark.skipif(
    not FREE_THREADED_BUILD, reason="interpreter has a GIL (not a free-threaded build)"
)
def test_import_keeps_the_gil_disabled() -> None:
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"  # 'the GIL has been enabled' is a RuntimeWarning
        "import sky_rs\n"
        f"assert {pure_wheel_cell()} or sky_rs._native is not None, sky_rs.backend_info()\n"
        "sky_rs.hash_file(sys.executable, 'sha256')\n"
        "print(sys._is_gil_enabled())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(sys.executable),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", (proc.stdout, proc.stderr)

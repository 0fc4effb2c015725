"""Real cells in real subprocesses: crashes are recorded, the other cells go on."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict

import pytest
from matrix_helpers import run_args

from sky_matrix.cli import main

CRASHES = [
    "--canary", "segfault@*-parity-*",
    "--canary", "abort@*-cgroup-*",
    "--canary", "oom@*-leaks-*",
]  # fmt: skip


def _report(report: Path) -> Dict[str, Dict[str, Any]]:
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return {cell["id"]: cell for cell in data["cells"]}


@pytest.mark.timeout(180)
def test_crashes_fail_their_cells_and_rerun_failed_reruns_only_them(
    tmp_path: Path, project: Path, seeded_env_cache: Path, fake_wheel: Path
) -> None:
    report = tmp_path / "report"
    args = run_args(project, seeded_env_cache, fake_wheel, report)
    code = main([*args, "-j", "4", "--suite", "parity,cgroup,leaks,stability", *CRASHES])
    assert code == 1
    cells = _report(report)
    assert len(cells) == 4
    label = next(iter(cells))[len("host-py") :].split("-")[0]
    by_suite = {cell["cell"]["suite"]: cell for cell in cells.values()}

    parity = by_suite["parity"]
    assert parity["verdict"] == "fail" and parity["signal"] == "SIGSEGV"
    assert parity["reason"] == "crashed: segmentation fault (SIGSEGV)"
    assert "Fatal Python error: Segmentation fault" in parity["log_tail"]
    assert by_suite["cgroup"]["signal"] == "SIGABRT"
    assert by_suite["cgroup"]["reason"] == "crashed: aborted (SIGABRT)"
    assert by_suite["leaks"]["reason"].startswith("out of memory (MemoryError)")

    stability = by_suite["stability"]
    assert stability["verdict"] == "pass"
    assert stability["counts"]["passed"] == 2
    assert stability["interpreter"]["version"].startswith(label)
    # The suite's own sky_rs.stats() and a fresh import's, from the wheel in the cell's venv.
    # The fake wheel's stats() reports one panic fallback in each process, and the suite's
    # figures sum every process that ran tests (pytest's own, or each xdist worker: how many
    # the scheduler gave the cell).
    suite_stats = stability["stats"]["suite"]
    assert suite_stats["processes"] >= 1
    assert suite_stats["functions"]["hash_file"]["fallbacks"] == {"panic": suite_stats["processes"]}
    assert stability["stats"]["backend_info"]["reason"] == "fake wheel of the runner tests"
    assert stability["fallbacks"] == {"panic": suite_stats["processes"]}
    assert stability["extra"]["sky_rs_file"].endswith("site-packages/sky_rs/__init__.py")
    assert stability["extra"]["env_cached"] is True
    assert stability["extra"]["first_test_after"] > 0  # measured from the cell's start
    cpu = stability["extra"]["cpu"]  # what the scheduler places the cell by next time
    assert cpu["cpu_seconds"] > 0 and cpu["wall_seconds"] > 0
    assert cpu["cores"] == pytest.approx(cpu["cpu_seconds"] / cpu["wall_seconds"], abs=1e-3)
    for suite, cell in by_suite.items():
        assert (report / "cells" / cell["id"] / "result.json").is_file(), suite
        assert Path(cell["log_path"]).is_file()

    merged = ET.parse(report / "junit.xml").getroot()
    assert int(merged.get("failures", "0")) + int(merged.get("errors", "0")) >= 3
    assert "crashed: segmentation fault" in (report / "report.html").read_text("utf-8")
    assert (
        json.loads((report / "cells" / stability["id"] / "result.json").read_text())["verdict"]
        == "pass"
    )

    # Now without the canaries: only the three failed cells run again, and pass.
    first_run = stability["run_id"]
    assert main([*args, "-j", "3", "--rerun-failed"]) == 0
    after = _report(report)
    assert {c["verdict"] for c in after.values()} == {"pass"}
    assert after[stability["id"]]["run_id"] == first_run  # kept, not rerun
    assert {c["run_id"] for i, c in after.items() if i != stability["id"]} != {first_run}

    # Nothing failed any more: a rerun has nothing to do and says so.
    assert main([*args, "--rerun-failed"]) == 0


@pytest.mark.timeout(120)
def test_a_hanging_cell_is_killed_at_its_wall_clock_limit(
    tmp_path: Path, project: Path, seeded_env_cache: Path, fake_wheel: Path
) -> None:
    report = tmp_path / "report"
    args = run_args(project, seeded_env_cache, fake_wheel, report)
    started = time.monotonic()
    code = main([*args, "--suite", "eperm", "--cell-timeout", "5", "--canary", "hang"])
    assert code == 1
    (hang,) = _report(report).values()
    assert hang["verdict"] == "fail"
    assert hang["reason"] == "hung: still running at the 5 s wall-clock limit (killed)"
    assert 5 <= hang["durations"]["tests"] < 30
    assert time.monotonic() - started < 60
    assert hang["log_tail"]


@pytest.mark.timeout(120)
def test_empty_and_missing_suites_fail(
    tmp_path: Path, project: Path, seeded_env_cache: Path, fake_wheel: Path
) -> None:
    for test_file in (project / "tests" / "leaks").glob("test_*.py"):
        test_file.unlink()  # a directory with no test in it
    shutil.rmtree(project / "tests" / "stability")
    report = tmp_path / "report"
    args = run_args(project, seeded_env_cache, fake_wheel, report)
    code = main([*args, "--suite", "leaks,stability,parity", "-j", "3"])
    assert code == 1
    cells = {c["cell"]["suite"]: c for c in _report(report).values()}
    assert cells["leaks"]["verdict"] == "fail"
    assert cells["leaks"]["reason"] == "collected no test: an empty suite is a failure"
    assert cells["stability"]["verdict"] == "fail"
    assert cells["stability"]["reason"].startswith("suite stability has no test directory yet")
    assert cells["parity"]["verdict"] == "pass"
    # parity = tests/compat/parity + tests/compat/dispatcher: the part that exists runs.
    assert cells["parity"]["extra"]["missing_dirs"] == ["tests/compat/dispatcher"]


@pytest.mark.timeout(120)
def test_wheel_that_does_not_import_fails_the_cell(
    tmp_path: Path, project: Path, seeded_env_cache: Path
) -> None:
    from matrix_helpers import make_fake_wheel

    broken = make_fake_wheel(tmp_path / "broken", module_source="raise ImportError('no _native')\n")
    report = tmp_path / "report"
    code = main([*run_args(project, seeded_env_cache, broken, report), "--suite", "parity"])
    assert code == 1
    (cell,) = _report(report).values()
    assert cell["verdict"] == "fail"
    assert cell["counts"]["errors"] >= 1  # the test modules cannot import sky_rs

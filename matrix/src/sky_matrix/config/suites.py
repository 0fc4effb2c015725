"""The suites the matrix runs, and the test directories each one is made of.

One table: the CLI, the nox sessions, tox.ini (checked by a unit test) and the
reports all read suite names and directories from here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named group of test directories, relative to the project root."""

    name: str
    dirs: Tuple[str, ...]
    description: str
    cell_timeout: float  # wall-clock limit of one cell, seconds
    test_timeout: float  # pytest-timeout per test, seconds
    # Test requirements (distribution names) the suite cannot run without: where the wheelhouse
    # has no wheel for one, the cell is `skipped: <package> has no wheel for <target>`.
    requires: Tuple[str, ...] = ()
    # The suite's mean cell in a full run on the 2-core reference host (2026-12-04, cells packed
    # as the scheduler packs them): the cores it kept busy and its CPU-seconds, as a second run
    # would read them from the report. The scheduler starts from these for cells the last
    # report does not cover (a new machine's first run), not from one core each.
    typical_cores: Optional[float] = None
    typical_cpu_seconds: Optional[float] = None

    def typical(self, field: str) -> Optional[float]:
        """`cores` or `cpu_seconds` of a typical cell (as `extra.cpu` records them)."""
        return {"cores": self.typical_cores, "cpu_seconds": self.typical_cpu_seconds}.get(field)


SUITES: Dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            "parity",
            ("tests/compat/parity", "tests/compat/dispatcher"),
            "both backends give equal answers; the dispatcher's switches and counters",
            cell_timeout=1800,
            test_timeout=600,
            typical_cores=0.72,
            typical_cpu_seconds=15.0,
        ),
        Suite(
            "cgroup",
            ("tests/compat/cgroup",),
            "cgroup v1/v2 fixture trees and live limits",
            cell_timeout=1200,
            test_timeout=300,
            typical_cores=0.89,
            typical_cpu_seconds=3.2,
        ),
        Suite(
            "eperm",
            ("tests/compat/eperm",),
            "the same answers under seccomp, hidepid, non-root, a blocked extension",
            cell_timeout=1200,
            test_timeout=300,
            typical_cores=0.68,
            typical_cpu_seconds=9.9,
        ),
        Suite(
            "leaks",
            ("tests/leaks",),
            "no memory or file-descriptor growth over many calls",
            cell_timeout=1800,
            test_timeout=900,
            typical_cores=0.71,
            typical_cpu_seconds=55.0,
        ),
        Suite(
            "stability",
            ("tests/stability",),
            "threads, signals, fork and interpreter shutdown",
            cell_timeout=1800,
            test_timeout=900,
            requires=("psutil",),  # test_threads measures the process with it
            typical_cores=0.82,
            typical_cpu_seconds=98.0,
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class SuiteLayout:
    """Which of a suite's directories exist in a given source tree."""

    suite: Suite
    present: Tuple[str, ...]
    missing: Tuple[str, ...]


def layout(project_root: Path, suite: Suite) -> SuiteLayout:
    present: List[str] = []
    missing: List[str] = []
    for rel in suite.dirs:
        (present if (project_root / rel).is_dir() else missing).append(rel)
    return SuiteLayout(suite, tuple(present), tuple(missing))

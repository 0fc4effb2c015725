"""The live progress's estimate of the time left, from recorded durations."""

from __future__ import annotations

from sky_matrix.core.model import Cell, CellResult
from sky_matrix.report.progress import (
    Estimates,
    LiveProgress,
    estimate_left,
    left_text,
    make_console,
)


def _cell(suite: str, python: str = "3.11") -> Cell:
    return Cell(python, "host", suite, "default")


def _record(cell: Cell, total: float, verdict: str = "pass") -> dict:
    return {
        "id": cell.id,
        "cell": {"python": cell.python, "platform": cell.platform, "suite": cell.suite},
        "verdict": verdict,
        "durations": {"total": total},
    }


REPORT = {
    "cells": [
        _record(_cell("parity", "3.11"), 100.0),
        _record(_cell("parity", "3.12"), 300.0),
        _record(_cell("leaks", "3.11"), 600.0),
        _record(_cell("stability", "3.11"), 9999.0, verdict="interrupted"),  # says nothing
        {"id": "broken", "cell": {}, "durations": {"total": "soon"}},
    ]
}


def test_expected_duration_by_cell_then_suite_then_overall() -> None:
    est = Estimates.from_report(REPORT)
    assert est.expected(_cell("parity", "3.11")) == 100.0  # its own last duration
    assert est.expected(_cell("parity", "3.13")) == 200.0  # its suite's average
    assert est.expected(_cell("eperm")) == (100.0 + 300.0 + 600.0) / 3  # everything's average
    assert est.expected(_cell("stability", "3.11")) == est.expected(_cell("eperm"))
    assert Estimates.from_report(None).expected(_cell("parity")) is None


def test_this_runs_finished_cells_teach_their_suite() -> None:
    est = Estimates()
    assert est.expected(_cell("leaks")) is None
    done = CellResult(cell=_cell("leaks", "3.9"), verdict="pass", durations={"total": 40.0})
    est.learn(done)
    est.learn(CellResult(cell=_cell("leaks", "3.8"), verdict="interrupted", durations={"total": 1}))
    assert est.expected(_cell("leaks", "3.10")) == 40.0


def test_time_left_spreads_the_work_over_the_slots() -> None:
    est = Estimates.from_report(REPORT)
    waiting = [_cell("parity", "3.11"), _cell("parity", "3.12")]  # 100 + 300
    running = [(_cell("leaks", "3.11"), 500.0)]  # 600 expected, 500 done: 100 left
    assert estimate_left(waiting, running, est, jobs=1) == 500.0
    assert estimate_left(waiting, running, est, jobs=2) == 300.0  # the longest cell bounds it
    assert estimate_left(waiting, running, est, jobs=10) == 300.0
    overdue = [(_cell("leaks", "3.11"), 900.0)]
    assert estimate_left([], overdue, est, jobs=2) == 0.0
    assert estimate_left([], [], est, jobs=2) == 0.0
    assert estimate_left([_cell("parity")], [], Estimates(), jobs=2) is None  # nothing known


def test_left_text() -> None:
    assert left_text(None) == ""
    assert left_text(12) == "<1 min left"
    assert left_text(60) == "~1 min left"
    assert left_text(61) == "~2 min left"
    assert left_text(25 * 60) == "~25 min left"


def test_live_progress_counts_down_as_cells_start_and_end() -> None:
    cells = [_cell("parity", "3.11"), _cell("parity", "3.12"), _cell("leaks", "3.11")]
    live = LiveProgress(
        make_console(no_color=True, stderr=True, width=120),
        total=3,
        cells=cells,
        estimates=Estimates.from_report(REPORT),
        jobs=1,
    )
    assert live.seconds_left() == 1000.0
    live.cell_started(cells[2])
    assert 899.0 < live.seconds_left() <= 1000.0
    live.cell_finished(CellResult(cell=cells[2], verdict="pass", durations={"total": 610.0}))
    assert live.seconds_left() == 400.0
    assert live.left_text() == "~7 min left"

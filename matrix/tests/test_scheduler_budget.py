"""Scheduling by measured CPU use: the budget and the costs read from the last report."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import pytest

from sky_matrix.config.suites import SUITES
from sky_matrix.core.model import Cell
from sky_matrix.execute.scheduler import (
    MIN_CELL_COST,
    UNKNOWN_CELL_COST,
    CpuBudget,
    cpu_costs,
    expected_work,
    start_order,
)
from sky_matrix.plan.planner import PlannedCell
from sky_matrix.plan.platform import Slot


def _planned(suite: str, python: str = "3.11") -> PlannedCell:
    cell = Cell(python, "host", suite, "default")
    return PlannedCell(cell=cell, platform=None, slot=Slot(python, None))  # type: ignore[arg-type]


def _record(cell: Cell, cores: Any, verdict: str = "pass") -> Dict[str, Any]:
    return {
        "id": cell.id,
        "verdict": verdict,
        "cell": {"suite": cell.suite},
        "extra": {"cpu": {"cores": cores}},
    }


def test_costs_come_from_each_cells_measured_use_then_its_suite_then_typical_then_one_core() -> (
    None
):
    soak = _planned("stability")
    parity, parity_312 = _planned("parity"), _planned("parity", "3.12")
    leaks, unnamed = _planned("leaks"), _planned("no-such-suite")
    history = {
        "cells": [
            _record(soak.cell, 0.3),
            _record(parity.cell, 1.6),
            _record(_planned("parity", "3.9").cell, 1.0),
            _record(leaks.cell, 9.0, verdict="interrupted"),  # cut off: says nothing
        ]
    }
    costs = cpu_costs(history, [soak, parity, parity_312, leaks, unnamed], cores=2)
    assert costs[soak.cell.id] == 0.3
    assert costs[parity.cell.id] == 1.6
    assert costs[parity_312.cell.id] == pytest.approx((1.6 + 1.0) / 2)  # the suite's mean
    assert costs[leaks.cell.id] == SUITES["leaks"].typical_cores  # no measure of the suite
    assert costs[unnamed.cell.id] == UNKNOWN_CELL_COST


def test_every_suite_has_typical_figures_for_a_first_run() -> None:
    for suite in SUITES.values():
        assert suite.typical("cores") and 0 < suite.typical("cores") <= 2, suite.name
        assert suite.typical("cpu_seconds") and suite.typical("cpu_seconds") > 0, suite.name
    # The heavy suites start first on a machine with no report yet.
    work = expected_work(None, [_planned(name) for name in SUITES])
    longest = max(work, key=lambda cell_id: work[cell_id])
    assert longest == _planned("stability").cell.id


def test_costs_are_bounded_to_the_machine() -> None:
    idle, busy = _planned("stability"), _planned("parity")
    history = {"cells": [_record(idle.cell, 0.01), _record(busy.cell, 7.5)]}
    costs = cpu_costs(history, [idle, busy], cores=2)
    assert costs == {idle.cell.id: MIN_CELL_COST, busy.cell.id: 2.0}
    assert cpu_costs(None, [_planned("other")], cores=2) == {
        _planned("other").cell.id: UNKNOWN_CELL_COST
    }


def test_light_cells_start_beside_heavy_ones_and_a_heavy_one_waits_for_room() -> None:
    budget = CpuBudget(2.0)
    never = lambda: False  # noqa: E731
    assert [budget.acquire(c, never) for c in (1.0, 0.5, 0.5)] == [1, 2, 3]
    assert budget.used == 2.0 and budget.running == 3

    asked: List[int] = []

    def stop_after_one_look() -> bool:
        asked.append(1)
        return len(asked) > 1

    # No room for one more core: it waits (and gives up here only because the run stops).
    assert budget.acquire(1.0, stop_after_one_look) is None
    assert budget.running == 3

    started = threading.Event()
    waiter = threading.Thread(target=lambda: budget.acquire(1.0, never) == 3 and started.set())
    waiter.start()
    budget.release(1.0)  # the heavy cell ended: room for the waiting one
    waiter.join(timeout=60)
    assert started.is_set() and budget.running == 3


def test_a_cell_heavier_than_the_machine_still_runs_alone() -> None:
    budget = CpuBudget(2.0)
    assert budget.acquire(2.0, lambda: False) == 1
    budget.release(2.0)
    assert budget.acquire(3.0, lambda: False) == 1


def test_a_cell_measured_alone_takes_only_the_share_it_can_use_beside_others() -> None:
    """A cgroup cell measured 1.4 cores with both workers; beside a 0.9-core stability cell
    it gets one worker, so it starts (it used to wait out the whole stability cell)."""
    budget = CpuBudget(2.0)
    never = lambda: False  # noqa: E731
    looks: List[int] = []

    def give_up_after_one_wait() -> bool:  # the old budget waited here: fail, don't hang
        looks.append(1)
        return len(looks) > 1

    assert budget.acquire(0.9, never) == 1
    assert budget.acquire(1.4, give_up_after_one_wait) == 2
    assert budget.used == pytest.approx(0.9 + 1.0)
    budget.release(budget.share(1.4, 2))
    assert budget.used == pytest.approx(0.9) and budget.running == 1
    # A third heavy cell beside two would have a 2/3-core share: it waits for room.
    assert budget.acquire(1.4, never) == 2
    assert budget.acquire(1.4, lambda: True) is None


# --------------------------------------------------------------------------- start order


def _work_record(cell: Cell, cpu_seconds: Any, verdict: str = "pass") -> Dict[str, Any]:
    return {
        "id": cell.id,
        "verdict": verdict,
        "cell": {"suite": cell.suite},
        "extra": {"cpu": {"cpu_seconds": cpu_seconds, "cores": 1.0}},
    }


def test_work_comes_from_each_cells_cpu_seconds_then_its_suite_then_typical_else_unknown() -> None:
    stability, stability_312 = _planned("stability"), _planned("stability", "3.12")
    parity, leaks = _planned("parity"), _planned("leaks")
    history = {
        "cells": [
            _work_record(stability.cell, 180.0),
            _work_record(_planned("stability", "3.9").cell, 120.0),
            _work_record(parity.cell, 20.0),
            _work_record(leaks.cell, 900.0, verdict="interrupted"),  # cut off: says nothing
        ]
    }
    work = expected_work(history, [stability, stability_312, parity, leaks])
    assert work == {
        stability.cell.id: 180.0,
        stability_312.cell.id: pytest.approx(150.0),  # the suite's mean
        parity.cell.id: 20.0,
        leaks.cell.id: SUITES["leaks"].typical_cpu_seconds,  # no measure of the suite
    }
    assert expected_work(None, [_planned("other")]) == {}
    assert expected_work(None, [parity]) == {parity.cell.id: SUITES["parity"].typical_cpu_seconds}


def test_cells_start_longest_first_ready_platforms_before_preparing_ones() -> None:
    short, long_, unknown = _planned("parity"), _planned("stability"), _planned("cgroup")
    tie_a, tie_b = _planned("parity", "3.12"), _planned("parity", "3.13")
    image_short, image_long = _planned("eperm"), _planned("leaks")
    background = {image_short.cell.id, image_long.cell.id}
    work = {
        short.cell.id: 10.0,
        long_.cell.id: 300.0,
        tie_a.cell.id: 50.0,
        tie_b.cell.id: 50.0,
        image_short.cell.id: 5.0,
        image_long.cell.id: 900.0,
    }
    order = start_order(
        [short, image_short, tie_a, long_, unknown, tie_b, image_long],
        work,
        lambda planned: planned.cell.id in background,
    )
    assert [p.cell.id for p in order] == [
        unknown.cell.id,  # never measured: it may be the longest
        long_.cell.id,
        tie_a.cell.id,  # equal work keeps the plan's order
        tie_b.cell.id,
        short.cell.id,
        image_long.cell.id,  # its image builds while the host cells run
        image_short.cell.id,
    ]

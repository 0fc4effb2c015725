"""Running the selected cells in parallel and recording each result as it ends.

`execute` schedules the cells over at most `-j` threads, sharing one `RunContext`, and by
measured CPU use (`CpuBudget`): a cell starts while the cores that the cells already running
kept busy in the last run, plus its own, fit in the machine's cores. So cells that mostly wait
(a soak's sleeps, subprocess exits, emulated containers' I/O) run beside CPU-heavy ones instead
of taking a core each; a cell never run before counts as its suite's typical cell. Cells start
longest first (`start_order`, by the CPU time they took in the last run) so that the run does
not end with one long cell on one core while the others idle. A cell that
crashes, hangs or raises inside the runner is recorded as failed and the others go on;
each result is handed to `write_result` (the report store) the moment its cell ends.

A KeyboardInterrupt in the waiting thread (Ctrl-C, or `RunInterrupted` raised by the CLI's
SIGTERM/SIGHUP handler) stops the run: no further cell starts, every running cell's process
group is killed and its containers removed, and the cells that were running are recorded as
`interrupted` (the finished ones keep their results); then the exception goes on up.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set

from sky_matrix.config.suites import SUITES
from sky_matrix.core.errors import UsageError, signal_name
from sky_matrix.core.events import Observer
from sky_matrix.core.model import CellResult
from sky_matrix.execute.context import RunContext
from sky_matrix.execute.platforms import RunnablePlatform, runnable
from sky_matrix.plan.planner import PlannedCell


def _planned_result(planned: PlannedCell, verdict: str, reason: str) -> CellResult:
    return CellResult(
        cell=planned.cell, verdict=verdict, reason=reason, interpreter=planned.slot.interpreter
    )


STOP_GRACE = 120.0  # seconds the running cells get to end once killed
# A cell's cost in cores: what it kept busy in the last run, within these bounds. The floor
# keeps a cell that only waited from counting as free (its next run may not wait as much).
MIN_CELL_COST = 0.25
UNKNOWN_CELL_COST = 1.0


class CpuBudget:
    """Cells start while the cores they are expected to keep busy fit in `capacity`; when
    nothing runs, any cell may start (one heavier than the machine still runs, alone)."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.used = 0.0
        self.running = 0
        self._cond = threading.Condition()

    def share(self, cost: float, running: int) -> float:
        """What a cell of measured `cost` takes when it is one of `running` cells: a cell
        gets `cores // running` pytest workers (`execute`), so what it used alone with all
        the cores is more than it can use beside others. Without this cap a cell measured
        at 1.4 cores waited behind a 0.9-core stability cell for its whole run, and the
        waiting cells filled every job slot (a quiet full run ran one cell at a time)."""
        return min(cost, self.capacity / max(1, running))

    def acquire(self, cost: float, stopped: Callable[[], bool]) -> Optional[int]:
        """Wait for room for `cost` (as `share` caps it); the number of cells running with
        this one, or None (nothing taken) when `stopped()` says the run ended. Release
        `share(cost, <that number>)`."""
        with self._cond:
            while (
                self.running
                and self.used + self.share(cost, self.running + 1) > self.capacity + 1e-9
            ):
                if stopped():
                    return None
                self._cond.wait(timeout=1.0)
            if stopped():
                return None
            self.running += 1
            self.used += self.share(cost, self.running)
            return self.running

    def release(self, cost: float) -> None:
        with self._cond:
            self.used = max(0.0, self.used - cost)
            self.running -= 1
            self._cond.notify_all()


def _last_measured(
    history: Optional[Mapping[str, Any]], cells: Sequence[PlannedCell], field: str
) -> Dict[str, float]:
    """`extra.cpu.<field>` of each cell in the last report: its own, else its suite's mean,
    else its suite's typical figure (`Suite.typical`); a cell with none is left out."""
    measured: Dict[str, float] = {}
    by_suite: Dict[str, List[float]] = {}
    for record in (history or {}).get("cells") or []:
        if not isinstance(record, Mapping) or record.get("verdict") == "interrupted":
            continue
        cpu = (record.get("extra") or {}).get("cpu") or {}
        value = cpu.get(field) if isinstance(cpu, Mapping) else None
        if not isinstance(value, (int, float)) or not isinstance(record.get("id"), str):
            continue
        measured[record["id"]] = float(value)
        by_suite.setdefault(str((record.get("cell") or {}).get("suite")), []).append(float(value))
    found: Dict[str, float] = {}
    for planned in cells:
        suite = by_suite.get(planned.cell.suite)
        if planned.cell.id in measured:
            found[planned.cell.id] = measured[planned.cell.id]
        elif suite:
            found[planned.cell.id] = sum(suite) / len(suite)
        elif planned.cell.suite in SUITES:
            typical = SUITES[planned.cell.suite].typical(field)
            if typical is not None:
                found[planned.cell.id] = typical
    return found


def cpu_costs(
    history: Optional[Mapping[str, Any]], cells: Sequence[PlannedCell], cores: int
) -> Dict[str, float]:
    """Each cell's expected cores from the last report: its own measured use, else its suite's
    mean, else its suite's typical use, else one core; bounded to [MIN_CELL_COST, cores]."""
    measured = _last_measured(history, cells, "cores")
    return {
        planned.cell.id: min(
            float(cores), max(MIN_CELL_COST, measured.get(planned.cell.id, UNKNOWN_CELL_COST))
        )
        for planned in cells
    }


def expected_work(
    history: Optional[Mapping[str, Any]], cells: Sequence[PlannedCell]
) -> Dict[str, float]:
    """Each cell's CPU-seconds in the last report: its own, else its suite's mean, else its
    suite's typical figure. A cell with none is left out (`start_order` starts it early: it
    may be long)."""
    return _last_measured(history, cells, "cpu_seconds")


def start_order(
    cells: Sequence[PlannedCell],
    work: Mapping[str, float],
    in_background: Callable[[PlannedCell], bool],
) -> List[PlannedCell]:
    """The order cells start in: those whose platform is ready before those whose platform
    prepares in the background (images: host cells start at once while they build); within
    each, the most work first, so the last cells to start are the shortest (longest processing
    time first, as a makespan schedule does). Unknown work counts as the most; ties keep the
    plan's order."""
    return sorted(cells, key=lambda p: (in_background(p), -work.get(p.cell.id, math.inf)))


def interrupted_result(result: CellResult, signum: int) -> CellResult:
    """A cell cut off by the run's stop: no verdict on it (what the kill made of it is kept)."""
    if result.verdict != "interrupted":
        result.extra["cut_off_as"] = {"verdict": result.verdict, "reason": result.reason}
    seconds = result.durations.get("total")
    after = f" after {seconds:.0f} s" if seconds is not None else ""
    result.verdict = "interrupted"
    result.reason = f"interrupted by {signal_name(signum)}{after}: the run was stopped"
    result.signal = None
    return result


def execute(
    ctx: RunContext,
    cells: List[PlannedCell],
    *,
    jobs: int,
    cores: int,
    observer: Observer,
    write_result: Callable[[CellResult], object],
    costs: Optional[Mapping[str, float]] = None,
    work: Optional[Mapping[str, float]] = None,
) -> List[CellResult]:
    """Run `cells`; every result went through `write_result` when this returns (or raises).

    At most `jobs` cells run at once, and only as many as `costs` (cell id -> cores, see
    `cpu_costs`; one core each when not given) fit in `cores`, in `start_order` by `work`
    (cell id -> CPU-seconds, see `expected_work`; the plan's order when not given).

    `write_result` may raise `UsageError` (the report folder is not writable): the run stops.
    """
    results: List[CellResult] = []
    results_lock = threading.Lock()
    abort: List[BaseException] = []
    budget = CpuBudget(float(cores))

    def record(planned: PlannedCell, result: CellResult) -> None:
        result.required = planned.required
        result.run_id = ctx.run_id
        # the container cell's probe of its image, else the platform's own
        result.architecture = (
            result.extra.get("architecture") or planned.platform.architecture or None
        )
        result.finished_at = time.time()
        if result.verdict != "pass" and result.log_tail is None and result.reason:
            result.log_tail = result.reason
        try:
            write_result(result)
        except UsageError as exc:
            abort.append(exc)
            ctx.kill_all()
            raise
        with results_lock:
            results.append(result)
        observer.cell_finished(result)

    # Cells whose fate is known before running are recorded first.
    to_run: List[PlannedCell] = []
    for planned in cells:
        if planned.error:
            record(planned, _planned_result(planned, "error", planned.error))
        elif planned.skip:
            record(planned, _planned_result(planned, "skipped", planned.skip))
        else:
            to_run.append(planned)
    if work is not None:
        to_run = start_order(
            to_run, work, lambda planned: runnable(planned.platform).prepares_in_background
        )

    # Container platforms prepare (build images) in the background while host cells run.
    prepared: Dict[str, threading.Event] = {}
    failures: Dict[str, Optional[str]] = {}
    to_prepare: List[RunnablePlatform] = []
    for planned in to_run:
        platform = runnable(planned.platform)
        if platform.prepares_in_background and platform.name not in prepared:
            prepared[platform.name] = threading.Event()
            to_prepare.append(platform)

    def prepare_all() -> None:
        for platform in to_prepare:
            try:
                failures[platform.name] = platform.prepare(ctx)
            except Exception as exc:  # a bug in preparing must not hang the run
                failures[platform.name] = f"preparing {platform.name} failed: {exc!r}"
            prepared[platform.name].set()

    preparer = threading.Thread(target=prepare_all, name="prepare-platforms", daemon=True)
    if to_prepare:
        preparer.start()

    def run_one(planned: PlannedCell) -> None:
        if abort or ctx.interrupted is not None:
            return
        cell = planned.cell
        slot = planned.slot
        platform = runnable(planned.platform)
        if platform.prepares_in_background:
            prepared[platform.name].wait()
            skip = platform.prepared_skip()
            if skip:
                record(planned, _planned_result(planned, "skipped", skip))
                return
            failure = failures.get(platform.name)
            if failure:
                record(planned, _planned_result(planned, "error", failure))
                return
            slot = platform.slots().get(cell.python, slot)
            if slot.interpreter is None:
                record(planned, _planned_result(planned, "skipped", slot.missing or "not found"))
                return
        cost = (costs or {}).get(cell.id, UNKNOWN_CELL_COST)
        running = budget.acquire(cost, lambda: bool(abort) or ctx.interrupted is not None)
        if running is None:
            return  # stopped while waiting: not started, not recorded
        taken = budget.share(cost, running)
        workers = max(1, cores // running)
        observer.cell_started(cell)
        try:
            result = platform.run_cell(cell, slot, ctx, workers)
        except UsageError as exc:
            result = _planned_result(planned, "error", str(exc))
        except Exception as exc:  # recorded as this cell's failure; the others go on
            result = _planned_result(planned, "error", f"runner error: {exc!r}")
            result.log_tail = traceback.format_exc()
        finally:
            budget.release(taken)
        if ctx.interrupted is not None:
            result = interrupted_result(result, ctx.interrupted)
        record(planned, result)

    used = list({runnable(p.platform).name: runnable(p.platform) for p in to_run}.values())

    def stop(signum: int, futures: Set[Future[None]]) -> None:
        """Kill what runs, again while cells still end (one may start a container late)."""
        ctx.interrupt(signum)
        for future in futures:
            future.cancel()
        for name, event in prepared.items():  # cells waiting for an image: wake, don't start
            failures.setdefault(name, "the run was stopped")
            event.set()
        deadline = time.monotonic() + STOP_GRACE
        while True:
            for platform in used:
                try:
                    platform.stop_all(ctx)
                except Exception as exc:  # the other platforms are still stopped
                    ctx.log(f"stopping {platform.name}: {exc!r}")
            ctx.kill_all()
            pending = {f for f in futures if not f.done()}
            if not pending or time.monotonic() > deadline:
                return
            wait(pending, timeout=2.0)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="cell")
    futures: Set[Future[None]] = set()
    try:
        futures = {pool.submit(run_one, p) for p in to_run}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                exc = future.exception()
                if exc is not None and not abort:
                    abort.append(exc)
            if abort:
                for future in pending:
                    future.cancel()
                ctx.kill_all()
    except KeyboardInterrupt as exc:
        stop(getattr(exc, "signum", signal.SIGINT), futures)
        raise
    finally:
        pool.shutdown(wait=ctx.interrupted is None, cancel_futures=True)
    if abort:
        raise abort[0]
    return results

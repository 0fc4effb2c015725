"""Live progress while the matrix runs: a rich progress bar and one line per finished cell.

The bar ends with an estimate of the time left (`~12 min left`): each cell is expected to take
what it took in the last report (`report.json`, durations.total by cell id), else the average
of its suite there and among this run's finished cells, else the average of all; the cells not
finished are spread over the `-j` slots (`estimate_left`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from sky_matrix.core.events import Observer
from sky_matrix.core.model import Cell, CellResult

STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold magenta",
    "skipped": "yellow",
    "interrupted": "bold yellow",
}


def verdict_text(verdict: str) -> str:
    return f"[{STYLE.get(verdict, 'white')}]{verdict.upper():7}[/]"


def counts_text(result: CellResult) -> str:
    counts = result.counts
    if not counts:
        return ""
    parts = [f"{counts.get('passed', 0)} passed"]
    for key, label in (("failures", "failed"), ("errors", "errors"), ("skipped", "skipped")):
        if counts.get(key):
            parts.append(f"{counts[key]} {label}")
    return ", ".join(parts)


def _seconds(value: Any) -> Optional[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


@dataclasses.dataclass
class Estimates:
    """How long a cell is expected to take, from recorded durations."""

    by_id: Dict[str, float] = dataclasses.field(default_factory=dict)
    by_suite: Dict[str, List[float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_report(cls, report: Optional[Mapping[str, Any]]) -> Estimates:
        """From a report.json's cells (an interrupted cell's duration says nothing: left out)."""
        estimates = cls()
        for record in (report or {}).get("cells") or []:
            if not isinstance(record, Mapping) or record.get("verdict") == "interrupted":
                continue
            total = _seconds((record.get("durations") or {}).get("total"))
            cell = record.get("cell") or {}
            if total is None or not isinstance(record.get("id"), str):
                continue
            estimates.by_id[record["id"]] = total
            estimates.by_suite.setdefault(str(cell.get("suite")), []).append(total)
        return estimates

    def learn(self, result: CellResult) -> None:
        """A cell of this run finished: its suite's average takes it in."""
        total = _seconds(result.durations.get("total"))
        if total is not None and result.verdict != "interrupted":
            self.by_suite.setdefault(result.cell.suite, []).append(total)

    def expected(self, cell: Cell) -> Optional[float]:
        if cell.id in self.by_id:
            return self.by_id[cell.id]
        suite = _mean(self.by_suite.get(cell.suite, []))
        if suite is not None:
            return suite
        return _mean([t for times in self.by_suite.values() for t in times])


def estimate_left(
    waiting: Iterable[Cell],
    running: Iterable[Tuple[Cell, float]],
    estimates: Estimates,
    jobs: int,
) -> Optional[float]:
    """Seconds until the last cell ends: the work left spread over `jobs` slots, and never
    less than the longest single cell left. `running` pairs a cell with its seconds so far
    (a cell past its expected time is taken to be about to end). None: nothing to go by."""
    left: List[float] = []
    for cell in waiting:
        expected = estimates.expected(cell)
        if expected is None:
            return None
        left.append(expected)
    for cell, elapsed in running:
        expected = estimates.expected(cell)
        if expected is None:
            return None
        left.append(max(expected - elapsed, 0.0))
    if not left:
        return 0.0
    return max(max(left), sum(left) / max(1, jobs))


def left_text(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return "<1 min left"
    return f"~{math.ceil(seconds / 60)} min left"


class _LeftColumn(ProgressColumn):
    def __init__(self, owner: LiveProgress) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task: Any) -> Text:
        return Text(self.owner.left_text(), style="cyan")


class LiveProgress(Observer):
    """Progress bar over all cells with the time left; prints each cell's line when it ends."""

    def __init__(
        self,
        console: Console,
        total: int,
        cells: Sequence[Cell] = (),
        estimates: Optional[Estimates] = None,
        jobs: int = 1,
    ) -> None:
        self.console = console
        self._lock = threading.Lock()
        # The estimate's own lock: rich renders the bar under its lock, and `_lock` is held
        # while printing through rich, so the render must never wait for `_lock`.
        self._state_lock = threading.Lock()
        self._running: set = set()
        self._waiting: Dict[str, Cell] = {cell.id: cell for cell in cells}
        self._started: Dict[str, Tuple[Cell, float]] = {}
        self.estimates = estimates or Estimates()
        self.jobs = max(1, jobs)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]matrix[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _LeftColumn(self),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=total)

    def seconds_left(self, now: Optional[float] = None) -> Optional[float]:
        now = time.monotonic() if now is None else now
        with self._state_lock:
            waiting = list(self._waiting.values())
            running = [(cell, now - at) for cell, at in self._started.values()]
        return estimate_left(waiting, running, self.estimates, self.jobs)

    def left_text(self) -> str:
        return left_text(self.seconds_left())

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _describe_running(self) -> str:
        names = sorted(self._running)
        if not names:
            return ""
        more = f" +{len(names) - 2}" if len(names) > 2 else ""
        return "running " + ", ".join(names[:2]) + more

    def cell_started(self, cell: Cell) -> None:
        with self._state_lock:
            self._waiting.pop(cell.id, None)
            self._started[cell.id] = (cell, time.monotonic())
        with self._lock:
            self._running.add(cell.id)
            self.progress.update(self.task, description=escape(self._describe_running()))

    def cell_finished(self, result: CellResult) -> None:
        with self._state_lock:
            self._waiting.pop(result.cell.id, None)
            self._started.pop(result.cell.id, None)
            self.estimates.learn(result)
        with self._lock:
            self._running.discard(result.cell.id)
            seconds = result.durations.get("total")
            timing = f"{seconds:6.1f} s" if seconds is not None else " " * 8
            detail = counts_text(result)
            if result.verdict != "pass" and result.reason:
                detail = f"{detail}  {result.reason}" if detail else result.reason
            self.progress.console.print(
                f"{verdict_text(result.verdict)} {timing}  {escape(result.cell.id)}"
                f"  [dim]{escape(detail)}[/]",
                highlight=False,
                soft_wrap=True,
            )
            self.progress.update(self.task, advance=1, description=escape(self._describe_running()))


def make_console(
    no_color: bool = False, stderr: bool = False, width: Optional[int] = None
) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not stream.isatty():
        width = 160  # CI logs: wide enough for the table, rich would assume 80
    return Console(stderr=stderr, no_color=no_color, highlight=False, width=width)

"""Live progress while the matrix runs: a rich progress bar and one line per finished cell."""

from __future__ import annotations

import sys
import threading
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from sky_matrix.core.events import Observer
from sky_matrix.core.model import Cell, CellResult

STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta", "skipped": "yellow"}


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


class LiveProgress(Observer):
    """Progress bar over all cells; prints each cell's line when it finishes."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._running: set = set()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]matrix[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=total)

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
        with self._lock:
            self._running.add(cell.id)
            self.progress.update(self.task, description=escape(self._describe_running()))

    def cell_finished(self, result: CellResult) -> None:
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

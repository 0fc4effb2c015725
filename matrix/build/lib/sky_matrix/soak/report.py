"""What the soak shows a person: progress while it runs, a summary at the end."""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

MIB = 1024 * 1024


def _totals(record: Dict[str, Any], key: str) -> int:
    return sum(n for backends in record.get(key, {}).values() for n in backends.values())


def _worst_p99(record: Dict[str, Any]) -> float:
    return max(
        (s["p99_ms"] for b in record.get("latency", {}).values() for s in b.values()),
        default=0.0,
    )


def describe_sample(record: Dict[str, Any]) -> str:
    heap = record.get("heap")
    heap_text = f"heap {heap / MIB:.1f} MiB  " if heap is not None else ""
    return (
        f"rss {record['rss'] / MIB:.1f} MiB  {heap_text}fds {record['fds']}  "
        f"threads {record['threads']}  calls {_totals(record, 'calls'):,}  "
        f"errors {_totals(record, 'errors')}  worst p99 {_worst_p99(record):.2f} ms"
    )


class LiveProgress:
    """A progress bar on a terminal; on a log (CI), a plain line now and then."""

    def __init__(self, requested_s: float, done_s: float = 0.0, enabled: bool = True) -> None:
        self.console = Console(file=sys.stderr)
        self.requested_s = requested_s
        self.enabled = enabled
        self._progress: Optional[Progress] = None
        self._task: Any = None
        # Plain lines: about a hundred per run, at least ten seconds apart.
        self._every_s = max(10.0, requested_s / 100.0)
        self._last_line = 0.0
        if enabled and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("soak"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
            )
            self._task = self._progress.add_task(
                "soak", total=requested_s, completed=int(done_s), status="starting"
            )
            self._progress.start()

    def on_sample(self, record: Dict[str, Any], _header: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=record["t"], status=describe_sample(record))
            return
        now = time.monotonic()
        if now - self._last_line >= self._every_s or record["t"] >= self.requested_s:
            self._last_line = now
            self.console.print(
                f"soak {record['t']:>8.0f}/{self.requested_s:.0f} s  {describe_sample(record)}",
                highlight=False,
                soft_wrap=True,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def print_summary(
    verdict: Dict[str, Any], files: List[str], console: Optional[Console] = None
) -> None:
    console = console or Console(file=sys.stderr)
    table = Table(title="soak: resource and outcome metrics")
    for column in ("metric", "verdict", "slope/h", "MK p", "reason"):
        table.add_column(column)
    for name, metric in verdict["metrics"].items():
        slope = metric.get("slope_per_hour")
        p = metric.get("mk_p")
        colour = {"pass": "green", "fail": "red"}.get(metric["verdict"], "yellow")
        table.add_row(
            name,
            f"[{colour}]{metric['verdict']}[/]",
            "" if slope is None else f"{slope:,.1f}",
            "" if p is None else f"{p:.2g}",
            metric["reason"],
        )
    console.print(table)
    latency = Table(title=f"latency after warm-up (ms; p99 budget {verdict['p99_budget_ms']:g})")
    for column in ("function", "backend", "calls", "p50", "p99", "max"):
        latency.add_column(column)
    for function, backends in verdict["latency"].items():
        for backend, s in backends.items():
            p99 = f"{s['p99_ms']:.3f}"
            latency.add_row(
                function,
                backend,
                f"{s['count']:,}",
                f"{s['p50_ms']:.3f}",
                p99 if s["verdict"] == "pass" else f"[red]{p99}[/]",
                f"{s['max_ms']:.3f}",
            )
    console.print(latency)
    projected = verdict.get("projected_time_to_memory_limit_s")
    limit = verdict.get("memory_limit_bytes")
    if limit:
        when = "never (RSS not growing)" if projected is None else f"{projected / 3600:,.1f} h"
        console.print(f"memory limit {limit / MIB:,.0f} MiB; projected time to reach it: {when}")
    resumed = verdict.get("resumed_from") or []
    console.print(
        f"ran {verdict['duration_s']:,.0f} s of {verdict['requested_duration_s']:,.0f} s, "
        f"{verdict['samples']} samples, {verdict['segments']} segment(s)"
        + (f", resumed {len(resumed)}x" if resumed else "")
    )
    status = verdict["status"]
    colour = "green" if status == "pass" else "red"
    console.print(f"[bold {colour}]soak {status.upper()}[/]")
    for failure in verdict["failures"]:
        console.print(f"  [red]✗[/] {failure}", highlight=False)
    for path in files:
        console.print(f"  wrote {path}", highlight=False)

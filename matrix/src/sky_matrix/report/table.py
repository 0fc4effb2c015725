"""The end-of-run table: rows are platform/interpreter(/profile), columns are suites."""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sky_matrix.config.profiles import DEFAULT_PROFILE
from sky_matrix.config.suites import SUITES
from sky_matrix.core.model import CellResult, abi_tag
from sky_matrix.plan.discovery import label_sort_key
from sky_matrix.plan.platform import host_first_key

Row = Tuple[str, str, str]  # platform, python label, profile


def row_label(row: Row) -> str:
    """`docker:sid / 3.14t cp314t`: the label and its implementation and ABI."""
    platform, python, profile = row
    label = f"{platform} / {python} {abi_tag(python)}"
    return label if profile == DEFAULT_PROFILE else f"{label} / {profile}"


def grid(
    results: Iterable[CellResult],
) -> Tuple[List[Row], List[str], Dict[Tuple[Row, str], CellResult]]:
    cells: Dict[Tuple[Row, str], CellResult] = {}
    rows = set()
    suites = set()
    for result in results:
        cell = result.cell
        row = (cell.platform, cell.python, cell.profile)
        rows.add(row)
        suites.add(cell.suite)
        cells[(row, cell.suite)] = result
    ordered_rows = sorted(
        rows,
        key=lambda r: (*host_first_key(r[0]), label_sort_key(r[1]), r[2] != DEFAULT_PROFILE, r[2]),
    )
    ordered_suites = [s for s in SUITES if s in suites] + sorted(suites - set(SUITES))
    return ordered_rows, ordered_suites, cells


def row_architectures(
    rows: Iterable[Row], cells: Dict[Tuple[Row, str], CellResult]
) -> Dict[Row, str]:
    """The architecture of each row's cells (`x86_64`, `aarch64`), `?` for records without."""
    found: Dict[Row, str] = {}
    for (row, _suite), result in cells.items():
        if result.architecture:
            found.setdefault(row, result.architecture)
    return {row: found.get(row, "?") for row in rows}


def cell_text(result: CellResult, width: int = 48) -> str:
    if result.verdict == "pass":
        passed = result.counts.get("passed")
        return f"pass ({passed})" if passed is not None else "pass"
    reason = result.reason or ""
    if len(reason) > width:
        reason = reason[: width - 1] + "…"
    return f"{result.verdict}: {reason}" if reason else result.verdict


STYLES = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold magenta",
    "skipped": "yellow",
    "interrupted": "bold yellow",
}


def render(results: List[CellResult], console: Console, title: str = "sky-rs matrix") -> None:
    rows, suites, cells = grid(results)
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("platform / python", no_wrap=True)
    table.add_column("arch", no_wrap=True)
    for suite in suites:
        table.add_column(suite, overflow="fold")
    arches = row_architectures(rows, cells)
    for row in rows:
        line = [escape(row_label(row)), escape(arches[row])]
        for suite in suites:
            result = cells.get((row, suite))
            if result is None:
                line.append("[dim]-[/]")
                continue
            line.append(f"[{STYLES.get(result.verdict, 'white')}]{escape(cell_text(result))}[/]")
        table.add_row(*line)
    console.print(table)

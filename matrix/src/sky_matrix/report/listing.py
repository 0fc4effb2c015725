"""`--list`: the plan for a human, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sky_matrix.config.profiles import DEFAULT_PROFILE
from sky_matrix.config.suites import SUITES, layout
from sky_matrix.core.model import abi_tag
from sky_matrix.plan.discovery import Discovery, label_sort_key
from sky_matrix.plan.planner import PlannedCell
from sky_matrix.plan.platform import Platform


def render(
    console: Console,
    *,
    project_root: Path,
    discovery: Discovery,
    platforms: Sequence[Platform],
    cells: List[PlannedCell],
    notes: Sequence[str] = (),
) -> None:
    interps = Table(title="host interpreters", header_style="bold")
    for column in ("label", "version", "abi", "debug", "source", "path"):
        interps.add_column(column)
    for label in sorted(discovery.interpreters, key=label_sort_key):
        i = discovery.interpreters[label]
        interps.add_row(label, i.version, i.abi, "yes" if i.debug else "no", i.source, i.path)
    console.print(interps)
    if discovery.rejected:
        rejected = Table(title="not used", header_style="bold")
        for column in ("path", "source", "version", "why"):
            rejected.add_column(column)
        for r in discovery.rejected:
            rejected.add_row(escape(r.path), r.source, r.version or "?", escape(r.reason))
        console.print(rejected)

    suites = Table(title="suites", header_style="bold")
    suites.add_column("suite")
    suites.add_column("directories")
    suites.add_column("profiles, per platform")
    for name, suite in SUITES.items():
        lay = layout(project_root, suite)
        dirs = ", ".join(lay.present) or "[red]none yet (its cells fail)[/]"
        if lay.missing and lay.present:
            dirs += f" [dim](missing: {', '.join(lay.missing)})[/]"
        per_platform: Dict[str, List[str]] = {}
        for platform in platforms:
            per_platform[platform.name] = platform.profiles(name)
        profiles = "; ".join(f"{p}: {', '.join(v) or '-'}" for p, v in per_platform.items())
        suites.add_row(name, dirs, escape(profiles))
    console.print(suites)

    runnable = sum(1 for p in cells if not p.skip and not p.error)
    plan = Table(title=f"cells: {len(cells)} selected, {runnable} to run", header_style="bold")
    plan.add_column("platform / python")
    plan.add_column("arch")
    suite_names = [s for s in SUITES if any(p.cell.suite == s for p in cells)]
    for name in suite_names:
        plan.add_column(name)
    rows: Dict[tuple, Dict[str, PlannedCell]] = {}
    arches: Dict[tuple, str] = {}
    for planned in cells:
        cell = planned.cell
        rows.setdefault((cell.platform, cell.python, cell.profile), {})[cell.suite] = planned
        arches[(cell.platform, cell.python, cell.profile)] = planned.platform.architecture or "?"
    for (platform, python, profile), by_suite in rows.items():
        label = f"{platform} / {python} {abi_tag(python)}" + (
            "" if profile == DEFAULT_PROFILE else f" / {profile}"
        )
        line = [escape(label), escape(arches[(platform, python, profile)])]
        for name in suite_names:
            planned = by_suite.get(name)
            line.append("[dim]-[/]" if planned is None else _status(planned))
        plan.add_row(*line)
    console.print(plan)
    console.print(
        "[dim]cell ids read <platform>-py<python>-<suite>-<profile>, e.g. "
        f"{escape(cells[0].cell.id) if cells else 'host-py3.11-parity-default'}"
        "; pick cells with -k PATTERN[/]"
    )
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]")


def _status(planned: PlannedCell) -> str:
    if planned.error:
        return f"[magenta]error: {escape(planned.error)}[/]"
    if planned.skip:
        return f"[yellow]skip: {escape(planned.skip)}[/]"
    interp = planned.slot.interpreter
    where = f" ({interp.version})" if interp else " (when prepared)"
    return "run" + where + ("" if planned.required else ", may fail")

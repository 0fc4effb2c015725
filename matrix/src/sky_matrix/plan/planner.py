"""The plan: every cell (interpreter, platform, suite, profile), then the selection.

Selection narrows the full plan with filters (--suite, --python, --platform,
--profile), patterns on cell ids (-k/--only: a glob if it has `*?[`, else a
substring), an explicit id set (--rerun-failed) and finally --shard i/n.
Names that match nothing known are a UsageError, never an empty run.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from sky_matrix.config.profiles import DEFAULT_PROFILE
from sky_matrix.config.suites import SUITES
from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Cell
from sky_matrix.plan.discovery import label_sort_key
from sky_matrix.plan.platform import Platform, Slot, host_first_key


@dataclasses.dataclass
class PlannedCell:
    cell: Cell
    platform: Platform
    slot: Slot
    skip: Optional[str] = None  # known before running: the cell is recorded, not run
    error: Optional[str] = None  # known before running: the cell is recorded as an error
    required: bool = True
    # Skipped only because its platform is opt-in and was not named: left out of the GitHub
    # matrix (a job that runs it names it).
    opted_out: bool = False


@dataclasses.dataclass
class Selection:
    suites: Sequence[str] = ()
    pythons: Sequence[str] = ()  # labels
    platforms: Sequence[str] = ()  # "host", "docker", "docker:<image>"
    profiles: Sequence[str] = ()
    only: Sequence[str] = ()
    cell_ids: Optional[Set[str]] = None
    shard: Optional[Tuple[int, int]] = None
    allow_fail: Sequence[str] = ()

    def narrowed(self) -> bool:
        """True when this selects part of the full matrix."""
        return bool(
            self.suites
            or self.pythons
            or self.platforms
            or self.profiles
            or self.only
            or self.cell_ids is not None
            or self.shard
        )


def parse_shard(text: str) -> Tuple[int, int]:
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: write it as i/n, e.g. 1/4") from None
    if total < 1 or not 1 <= index <= total:
        raise UsageError(f"--shard {text!r}: need 1 <= i <= n")
    return index, total


def matches(cell_id: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(cell_id, pattern)
    return pattern in cell_id


def _split(values: Iterable[str]) -> List[str]:
    """Repeatable options also take comma-separated lists."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def full_plan(platforms: Sequence[Platform], *, strict: bool) -> List[PlannedCell]:
    cells: List[PlannedCell] = []
    for platform in platforms:
        slots = platform.slots()
        blocked = platform.unusable()
        for label in sorted(slots, key=label_sort_key):
            slot = slots[label]
            for suite in SUITES:
                for profile in platform.profiles(suite):
                    cell = Cell(python=label, platform=platform.name, suite=suite, profile=profile)
                    planned = PlannedCell(
                        cell, platform, slot, required=platform.optional_because is None
                    )
                    suite_skip = platform.suite_skip(suite)
                    if blocked:
                        planned.skip = blocked
                    elif suite_skip:
                        planned.skip = suite_skip
                    elif slot.interpreter is None and slot.missing:
                        if strict and platform.interpreters_are_installed_by_user:
                            planned.error = (
                                f"{slot.missing} (strict: install CPython {label} or pass"
                                " --python PATH; --no-strict makes it a skip)"
                            )
                        else:
                            planned.skip = slot.missing
                    cells.append(planned)
    return cells


def _known(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values), key=str))


def select(plan: List[PlannedCell], selection: Selection) -> List[PlannedCell]:
    suites = _split(selection.suites)
    for name in suites:
        if name not in SUITES:
            raise UsageError(f"unknown suite {name!r}: choose from {', '.join(SUITES)}")
    labels = {p.cell.python for p in plan}
    pythons = _split(selection.pythons)
    for label in pythons:
        if label not in labels:
            known = ", ".join(sorted(labels, key=label_sort_key))
            raise UsageError(
                f"unknown interpreter {label!r}: known labels are {known}"
                " (pass --python PATH to add one)"
            )
    platform_names = {p.platform.name for p in plan}
    platforms = _split(selection.platforms)
    for name in platforms:
        if name == "docker" and any(n.startswith("docker:") for n in platform_names):
            continue
        if name not in platform_names:
            raise UsageError(
                f"unknown platform {name!r}: choose from {_known(platform_names)}"
                + (", docker" if any(n.startswith("docker:") for n in platform_names) else "")
            )
    profile_names = {p.cell.profile for p in plan}
    profiles = _split(selection.profiles)
    for name in profiles:
        if name not in profile_names:
            raise UsageError(f"unknown profile {name!r}: choose from {_known(profile_names)}")

    chosen = []
    for planned in plan:
        cell = planned.cell
        if suites and cell.suite not in suites:
            continue
        if pythons and cell.python not in pythons:
            continue
        if platforms and not (
            cell.platform in platforms
            or ("docker" in platforms and cell.platform.startswith("docker:"))
        ):
            continue
        if profiles and cell.profile not in profiles:
            continue
        if selection.only and not any(matches(cell.id, pat) for pat in selection.only):
            continue
        if selection.cell_ids is not None and cell.id not in selection.cell_ids:
            continue
        allowed_to_fail = any(matches(cell.id, pat) for pat in selection.allow_fail)
        planned.required = planned.platform.optional_because is None and not allowed_to_fail
        opt_in = planned.platform.opt_in_because
        if opt_in and not planned.skip and not planned.error:
            named = cell.platform in platforms or (
                selection.cell_ids is not None and cell.id in selection.cell_ids
            )
            if not named:  # a copy: the full plan stays as planned for another selection
                planned = dataclasses.replace(
                    planned, skip=f"{opt_in}, opt-in (--platform {cell.platform})", opted_out=True
                )
        chosen.append(planned)
    if not chosen and selection.only:
        raise UsageError(f"no cell matches {' / '.join(selection.only)}: see the ids with --list")
    chosen.sort(key=lambda p: p.cell.id)  # shards must not depend on discovery order
    if selection.shard:
        index, total = selection.shard
        chosen = [p for i, p in enumerate(chosen) if i % total == index - 1]
    chosen.sort(key=lambda p: cell_sort_key(p.cell))
    return chosen


def cell_sort_key(cell: Cell) -> Tuple[Any, ...]:
    """Host cells first (container images can build while they run), then by interpreter."""
    suites = list(SUITES)
    suite_index = suites.index(cell.suite) if cell.suite in suites else len(suites)
    return (
        *host_first_key(cell.platform),
        label_sort_key(cell.python),
        suite_index,
        cell.profile != DEFAULT_PROFILE,
        cell.profile,
    )


def github_matrix(cells: Sequence[PlannedCell]) -> Dict[str, Any]:
    """`{"include": [...]}`, for `strategy.matrix: ${{ fromJSON(...) }}` in GitHub Actions."""
    include = []
    for planned in cells:
        if planned.opted_out:
            continue
        cell = planned.cell
        include.append(
            {
                "cell": cell.id,
                "python": cell.python.rstrip("d"),
                "python-label": cell.python,
                "abi": cell.abi,
                "platform": cell.platform,
                "suite": cell.suite,
                "profile": cell.profile,
                "required": planned.required,
            }
        )
    return {"include": include}


def github_matrix_json(cells: Sequence[PlannedCell]) -> str:
    return json.dumps(github_matrix(cells), separators=(",", ":"))

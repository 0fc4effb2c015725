"""Matrix evidence: matrix-report/report.json (and merged reports from GitHub runners).

A record is one cell as the runner wrote it: `cell` {python, platform, suite,
profile}, `verdict`, `reason`, `required`, `stats` ({"suite": merged
sky_rs.stats() of the suite's processes, ...}). Records merged from GitHub
runners carry `runner` {"os", "arch", "label"}; a record without it ran on this
host.
"""

from __future__ import annotations

import dataclasses
import platform
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sky_matrix.core.model import abi_tag
from sky_matrix.core.text import version_key
from sky_matrix.plan.discovery import label_sort_key
from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import FAIL, INSUFFICIENT, NOT_VERIFIABLE, PASS, Outcome, missing

RELEASE_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15")
COMPAT_SUITE = "parity"
MACOS_ARCHES = ("arm64", "x86_64")
FALLBACK_RATE_LIMIT = 0.01
# Suites that block the extension or make it fail on purpose: their fallbacks are
# the behaviour under test, not a sign that Rust failed users.
DELIBERATE_FALLBACK_SUITES = ("eperm",)
_ARCH_NAMES = {
    "arm64": "arm64",
    "aarch64": "arm64",
    "x64": "x86_64",
    "x86_64": "x86_64",
    "amd64": "x86_64",
}


@dataclasses.dataclass(frozen=True)
class Record:
    """A cell record plus where it ran."""

    data: Dict[str, Any]
    system: str  # "Linux", "Darwin"
    arch: str  # "x86_64", "arm64"
    source: str  # the report it came from

    @property
    def id(self) -> str:
        return str(self.data.get("id", "?"))

    @property
    def where(self) -> str:
        runner = self.data.get("runner") or {}
        label = runner.get("label")
        return f"{label}/{self.id}" if label else self.id

    @property
    def suite(self) -> str:
        return str((self.data.get("cell") or {}).get("suite", ""))

    @property
    def python(self) -> str:
        return str((self.data.get("cell") or {}).get("python", "")).rstrip("d")

    @property
    def verdict(self) -> str:
        return str(self.data.get("verdict", ""))

    @property
    def required(self) -> bool:
        return bool(self.data.get("required", True))


def _system_of(runner: Dict[str, Any], host_system: str) -> str:
    name = str(runner.get("os", "")).lower()
    if name.startswith("mac") or name == "darwin":
        return "Darwin"
    if name == "linux":
        return "Linux"
    if name.startswith("windows"):
        return "Windows"
    return host_system


def load_records(ctx: Context) -> Tuple[Optional[Outcome], List[Record]]:
    """(an Outcome when the evidence is unusable, the records)."""
    records: List[Record] = []
    for relative in ctx.evidence.matrix_reports:
        path = ctx.path(relative)
        shown = ctx.show(relative)
        if not path.is_file():
            return missing(shown, "matrix"), []
        try:
            data = read_json(path, shown)
        except EvidenceError as exc:
            return Outcome(FAIL, str(exc)), []
        cells = data.get("cells") if isinstance(data, dict) else None
        if not isinstance(cells, list):
            return Outcome(FAIL, f"{shown} has no list of cells: not a matrix report"), []
        for cell in cells:
            runner = cell.get("runner") or {}
            # The cell's own architecture first: an emulated image's cells are aarch64 on an
            # x86_64 runner.
            arch = _ARCH_NAMES.get(str(cell.get("architecture") or "").lower(), "")
            arch = arch or _ARCH_NAMES.get(str(runner.get("arch", "")).lower(), "")
            records.append(
                Record(
                    cell,
                    _system_of(runner, ctx.host_system),
                    arch or _ARCH_NAMES.get(platform.machine().lower(), platform.machine()),
                    shown,
                )
            )
    if not records:
        return Outcome(FAIL, "the matrix report has no cells: run nox -s matrix"), []
    return None, records


def _describe(record: Record) -> str:
    """`cell <id> <verdict>: <why>`, the runner's reason first, else its test counts."""
    reason = record.data.get("reason")
    counts = record.data.get("counts") or {}
    if not reason and counts.get("failed"):
        reason = f"{counts['failed']} failed tests"
    return f"cell {record.where} {record.verdict}" + (f": {reason}" if reason else "")


def _listing(records: Sequence[Record], limit: int = 3) -> str:
    shown = ", ".join(_describe(r) for r in records[:limit])
    return shown + (f" and {len(records) - limit} more" if len(records) > limit else "")


def matrix_cells(ctx: Context) -> Outcome:
    problem, records = load_records(ctx)
    if problem:
        return problem
    required = [r for r in records if r.required]
    failed = [r for r in required if r.verdict in ("fail", "error")]
    # skipped, interrupted (the run was stopped while it ran) or unknown: no evidence either way
    skipped = [r for r in required if r.verdict not in ("pass", "fail", "error")]
    passed = sum(1 for r in required if r.verdict == "pass")
    optional = len(records) - len(required)
    tally = f"{passed}/{len(required)} required cells passed ({optional} optional)"
    if failed:
        return Outcome(FAIL, f"{_listing(failed)}; {tally}")
    if skipped:
        return Outcome(INSUFFICIENT, f"required cells did not run: {_listing(skipped)}; {tally}")
    return Outcome(PASS, tally)


def matrix_pythons(ctx: Context) -> Outcome:
    problem, records = load_records(ctx)
    if problem:
        return problem
    passing = {
        r.python
        for r in records
        if r.system == "Linux" and r.suite == COMPAT_SUITE and r.verdict == "pass"
    }
    absent = [v for v in RELEASE_PYTHONS if v not in passing]
    span = f"CPython {RELEASE_PYTHONS[0]}-{RELEASE_PYTHONS[-1]}"
    # The interpreters beyond the release's CPythons (PyPy, free-threaded) by their ABI tags.
    others = sorted((p for p in passing if p not in RELEASE_PYTHONS), key=label_sort_key)
    beyond = f"; also passing: {', '.join(abi_tag(p) for p in others)}" if others else ""
    if absent:
        return Outcome(
            INSUFFICIENT,
            f"no passing Linux {COMPAT_SUITE} cell for CPython {', '.join(absent)} "
            f"(passing: {', '.join(sorted(passing, key=version_key)) or 'none'})",
        )
    tags = ", ".join(abi_tag(v) for v in RELEASE_PYTHONS)
    return Outcome(PASS, f"a passing Linux {COMPAT_SUITE} cell for each of {span} ({tags}){beyond}")


def matrix_macos(ctx: Context) -> Outcome:
    problem, records = load_records(ctx)
    if problem:
        return problem
    mac = [r for r in records if r.system == "Darwin"]
    if not mac:
        return Outcome(
            NOT_VERIFIABLE,
            f"no macOS cell in the matrix evidence: macOS cells run on GitHub's macOS runners "
            f"(.github/workflows/matrix.yml) and this host is {ctx.host_system}",
        )
    failed = [r for r in mac if r.required and r.verdict != "pass"]
    if failed:
        return Outcome(FAIL, f"macOS: {_listing(failed)}")
    arches = {r.arch for r in mac if r.suite == COMPAT_SUITE and r.verdict == "pass"}
    absent = [a for a in MACOS_ARCHES if a not in arches]
    if absent:
        return Outcome(INSUFFICIENT, f"no passing macOS {COMPAT_SUITE} cell on {', '.join(absent)}")
    return Outcome(PASS, f"{len(mac)} macOS cells passed on {', '.join(MACOS_ARCHES)}")


def _call_counts(record: Record) -> Optional[Tuple[int, Dict[str, int]]]:
    suite_stats = (record.data.get("stats") or {}).get("suite")
    functions = (suite_stats or {}).get("functions") if isinstance(suite_stats, dict) else None
    if not isinstance(functions, dict):
        return None
    calls = 0
    reasons: Dict[str, int] = {}
    for entry in functions.values():
        calls += int(entry.get("rust", 0)) + int(entry.get("python", 0))
        for reason, count in (entry.get("fallbacks") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(count)
    return calls, reasons


def fallback_rate(ctx: Context) -> Outcome:
    problem, records = load_records(ctx)
    if problem:
        return problem
    calls = 0
    reasons: Dict[str, int] = {}
    counted = 0
    worst: List[Tuple[float, str]] = []
    for record in records:
        if record.suite in DELIBERATE_FALLBACK_SUITES:
            continue
        counts = _call_counts(record)
        if counts is None:
            continue
        counted += 1
        cell_calls, cell_reasons = counts
        calls += cell_calls
        for reason, count in cell_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
        if cell_calls:
            worst.append((sum(cell_reasons.values()) / cell_calls, record.where))
    if counted == 0 or calls == 0:
        return Outcome(FAIL, "no cell of the matrix report recorded sky_rs.stats() calls")
    fallbacks = sum(reasons.values())
    rate = fallbacks / calls
    excluded = (
        f"; {'/'.join(DELIBERATE_FALLBACK_SUITES)} cells excluded (they block Rust on purpose)"
    )
    text = f"{100 * rate:.3f}% ({fallbacks} of {calls} calls in {counted} cells){excluded}"
    if fallbacks:
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
        text += "; reasons: " + ", ".join(f"{reason} {count}" for reason, count in top)
        worst_rate, worst_cell = max(worst)
        text += f"; highest: {worst_cell} {100 * worst_rate:.2f}%"
    return Outcome(PASS if rate < FALLBACK_RATE_LIMIT else FAIL, text)

"""The leak report: per function and backend, what each detector measured and said.

Each test attaches its measurements to its pytest report as a user property
(`attach`), which pytest-xdist carries from the worker to the controller; the
controller gathers every report (`LeakReport.add`) and writes one JSON file,
``$SKY_RS_MATRIX_CELL_DIR/extra-leaks.json``, which the matrix runner collects
with the cell's other ``extra-*.json`` files.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

PROPERTY = "sky_rs_leaks"
REPORT_NAME = "extra-leaks.json"
FORMAT = 1

# Test function -> the detector it runs.
DETECTORS: Dict[str, str] = {
    "test_memray_limit_leaks": "memray",
    "test_growth": "growth",
    "test_descriptors_and_threads": "fds_threads",
    "test_references": "references",
    "test_debug_refcounts": "debug_refcounts",
    "test_long_run": "long_run",
}
_NODE = re.compile(r"::(?P<test>test_\w+)\[(?P<function>\w+)-(?P<backend>rust|python)\]$")


def attach(user_properties: List[Tuple[str, object]], metrics: Dict[str, Any]) -> None:
    """Record a test's measurements on its report (JSON text crosses xdist)."""
    user_properties.append((PROPERTY, json.dumps(metrics, sort_keys=True)))


def parse_nodeid(nodeid: str) -> Tuple[str, str, str] | None:
    """(detector, function, backend) of a detector test, else None."""
    match = _NODE.search(nodeid)
    if match is None or match.group("test") not in DETECTORS:
        return None
    return DETECTORS[match.group("test")], match.group("function"), match.group("backend")


def _reason(report: Any) -> str | None:
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2]).replace("Skipped: ", "", 1)
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = str(crash if crash is not None else longrepr)
    return text.strip()[:2000]


class LeakReport:
    """Outcomes and measurements, by function, backend and detector."""

    def __init__(self) -> None:
        self.entries: Dict[str, Dict[str, Dict[str, Dict[str, Any]]]] = {}

    def add(self, report: Any) -> None:
        """Fold one phase report (setup, call or teardown) of a detector test in."""
        key = parse_nodeid(report.nodeid)
        if key is None:
            return
        detector, function, backend = key
        entry = (
            self.entries.setdefault(function, {})
            .setdefault(backend, {})
            .setdefault(detector, {"outcome": "passed", "reason": None, "metrics": {}})
        )
        for name, value in getattr(report, "user_properties", ()):
            if name == PROPERTY:
                entry["metrics"].update(json.loads(str(value)))
        if report.outcome == "failed":
            entry["outcome"] = "failed"
            entry["reason"] = entry["reason"] or _reason(report)
        elif report.outcome == "skipped" and entry["outcome"] != "failed":
            entry["outcome"] = "skipped"
            entry["reason"] = _reason(report)

    def summary(self, function: str, backend: str) -> Dict[str, Any]:
        """The figures a reader wants first, from whichever detector measured them."""
        detectors = self.entries.get(function, {}).get(backend, {})

        def metric(detector: str, name: str) -> Any:
            return detectors.get(detector, {}).get("metrics", {}).get(name)

        return {
            "growth_per_call": metric("growth", "growth_per_call"),
            "memray_largest_leak": metric("memray", "largest_location_bytes"),
            "fds": metric("fds_threads", "fd_gains"),
            "threads": metric("fds_threads", "thread_gains"),
            "refs": metric("references", "largest_gain"),
            "total_refcount_deltas": metric("debug_refcounts", "refcount_deltas"),
            "allocated_block_deltas": metric("debug_refcounts", "block_deltas"),
            "long_run_bytes_per_call": metric("long_run", "bytes_per_call"),
            "detectors": {
                name: entry["outcome"] if entry["reason"] is None
                else f"{entry['outcome']}: {entry['reason'].splitlines()[0]}"
                for name, entry in sorted(detectors.items())
            },
        }  # fmt: skip

    def to_dict(self, build_info: Any) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "interpreter": {
                "executable": sys.executable,
                "version": platform.python_version(),
                "implementation": sys.implementation.name,
                "debug": hasattr(sys, "gettotalrefcount"),
                "abiflags": getattr(sys, "abiflags", ""),
            },
            "sky_rs_build": build_info,
            "functions": {
                function: {
                    backend: {"summary": self.summary(function, backend), "detectors": detectors}
                    for backend, detectors in sorted(backends.items())
                }
                for function, backends in sorted(self.entries.items())
            },
        }

    def write(self, directory: Path, build_info: Any) -> Path:
        path = directory / REPORT_NAME
        path.write_text(
            json.dumps(self.to_dict(build_info), indent=2, sort_keys=True, default=repr) + "\n",
            encoding="utf-8",
        )
        return path

    def table(self) -> List[str]:
        """One line per function and backend, for the terminal."""
        lines = [
            f"{'function':<32} {'backend':<7} {'heap B/call':>11} {'memray B':>9} "
            f"{'fds':>4} {'thr':>4} {'refs':>5}  detectors"
        ]
        for function in sorted(self.entries):
            for backend in sorted(self.entries[function]):
                row = self.summary(function, backend)
                growth = row["growth_per_call"] or {}
                heap = growth.get("heap")
                verdicts = " ".join(
                    f"{name}={text.split(':')[0]}" for name, text in row["detectors"].items()
                )
                lines.append(
                    f"{function:<32} {backend:<7} "
                    f"{'-' if heap is None else f'{heap:.1f}':>11} "
                    f"{_cell(row['memray_largest_leak']):>9} {_cell(row['fds']):>4} "
                    f"{_cell(row['threads']):>4} {_cell(row['refs']):>5}  {verdicts}"
                )
        return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return str(max(value, default=0))
    return str(value)

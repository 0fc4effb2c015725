"""Results on disk: each cell's result.json as it finishes, and report.json from those.

Every write goes to a temporary file that is then renamed over the target, so
a crash or a full disk never leaves a half-written result; an earlier result
stays until its replacement is complete.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Cell, CellResult, Interpreter, RunPaths

REPORT_SCHEMA = 1


def _disk_error(path: Path, exc: OSError) -> UsageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UsageError(
            f"cannot write {path}: the disk is full ({exc.strerror}): free space there "
            "or pass --report-dir on another disk; results written so far are kept"
        )
    return UsageError(
        f"cannot write {path}: {exc.strerror or exc}: make it writable or pass --report-dir"
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` whole, or raise UsageError leaving the old file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
        except OSError:
            pass
        raise _disk_error(path, exc) from None


def check_writable(paths: RunPaths) -> None:
    """Fail early, before any cell runs, when the report folder cannot take a file."""
    write_text_atomic(paths.report_dir / ".write-check", "ok\n")
    try:
        (paths.report_dir / ".write-check").unlink()
    except OSError:
        pass


def collect_suite_extras(cell_dir: Path, result: CellResult) -> None:
    """Fold the suite's own reports (`extra-<name>.json` in the cell dir) into the result.

    Suites write them for the report: the cgroup suite's per-profile table, the leak
    suite's per-function growth. A file that is not JSON is recorded as such, not dropped.
    """
    for path in sorted(cell_dir.glob("extra-*.json")):
        name = path.stem[len("extra-") :]
        try:
            result.extra[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.extra[name] = {"unreadable": f"{path.name}: {exc}"}


def write_result(paths: RunPaths, result: CellResult) -> Path:
    cell_dir = paths.cell_dir(result.cell)
    if cell_dir.is_dir():
        collect_suite_extras(cell_dir, result)
    target = cell_dir / "result.json"
    write_text_atomic(target, json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return target


def result_from_json(data: Dict[str, Any]) -> CellResult:
    cell = Cell(**data["cell"])
    interp = Interpreter(**data["interpreter"]) if data.get("interpreter") else None
    fields = {k: v for k, v in data.items() if k not in ("cell", "interpreter", "id", "abi")}
    return CellResult(cell=cell, interpreter=interp, **fields)


def load_results(paths: RunPaths) -> List[CellResult]:
    """Every cell result in the report folder (unreadable ones are skipped)."""
    results = []
    if not paths.cells_dir.is_dir():
        return results
    for result_file in sorted(paths.cells_dir.glob("*/result.json")):
        try:
            results.append(result_from_json(json.loads(result_file.read_text("utf-8"))))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return results


def load_report(paths: RunPaths) -> Optional[Dict[str, Any]]:
    report = paths.report_dir / "report.json"
    try:
        return json.loads(report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {report}: {exc}: delete it and run the matrix") from None


def fallback_counts(stats: Optional[Dict[str, Any]]) -> Dict[str, int]:
    """{reason: count} summed over functions, from a sky_rs.stats() dict."""
    totals: Dict[str, int] = {}
    functions = (stats or {}).get("functions") if isinstance(stats, dict) else None
    if not isinstance(functions, dict):
        return totals
    for entry in functions.values():
        for reason, count in (entry or {}).get("fallbacks", {}).items():
            totals[reason] = totals.get(reason, 0) + int(count)
    return totals


def report_record(result: CellResult) -> Dict[str, Any]:
    record = result.to_json()
    interp = result.interpreter
    record["python_version"] = interp.version if interp else None
    suite_stats = (result.stats or {}).get("suite") or (result.stats or {}).get("fresh")
    record["fallbacks"] = fallback_counts(suite_stats)
    return record


def summarize(results: Iterable[CellResult]) -> Dict[str, int]:
    summary = {"pass": 0, "fail": 0, "error": 0, "skipped": 0, "interrupted": 0}
    for result in results:
        summary[result.verdict] = summary.get(result.verdict, 0) + 1
    return summary


def write_report_json(paths: RunPaths, run: Dict[str, Any], results: List[CellResult]) -> Path:
    target = paths.report_dir / "report.json"
    body = {
        "schema": REPORT_SCHEMA,
        "run": run,
        "summary": summarize(results),
        "cells": [report_record(r) for r in results],
    }
    write_text_atomic(target, json.dumps(body, indent=2, default=str) + "\n")
    return target

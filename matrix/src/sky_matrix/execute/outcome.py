"""What a finished cell left behind, read into a verdict: the reason, JUnit counts, stats.

Host and container cells read their outcome the same way, through this module."""

from __future__ import annotations

import json
import os
import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from sky_matrix.build.manylinux_wheel import wheel_tags

TAIL_LINES = 40

_WORKER_CRASH = re.compile(r"worker '(gw\d+)' crashed while running '([^']+)'")
_SKIP_REASON = re.compile(r"^SKIPPED \[\d+\] [^:]+(?::\d+)?: (.+)$", re.MULTILINE)
_FIRST_PROBLEM = re.compile(r"^(?:FAILED|ERROR) \S+.*$", re.MULTILINE)  # pytest's -rfE summary
_ERROR_LINE = re.compile(r"^(?:E\s+|ERROR\s|INTERNALERROR>\s*\w*Error).*$", re.MULTILINE)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def died_of(returncode: Optional[int]) -> Optional[int]:
    """The signal that ended the process: negative codes, or 128+N from a shell/docker."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 160:
        return returncode - 128
    return None


def classify(
    returncode: Optional[int],
    *,
    timed_out: bool,
    wall_limit: float,
    counts: Dict[str, int],
    log_text: str,
) -> Tuple[str, str, Optional[str]]:
    """(verdict, reason, signal name) for a finished cell process."""
    oom = "MemoryError" in log_text
    if timed_out:
        return (
            "fail",
            f"hung: still running at the {wall_limit:g} s wall-clock limit (killed)",
            None,
        )
    sig = died_of(returncode)
    if sig is not None:
        name = signal_name(sig)
        what = {
            "SIGSEGV": "segmentation fault",
            "SIGABRT": "aborted",
            "SIGBUS": "bus error",
            "SIGILL": "illegal instruction",
            "SIGFPE": "arithmetic fault",
        }.get(name, "killed")
        if name == "SIGKILL":
            what = "killed (out of memory? the OOM killer sends SIGKILL)"
        return "fail", f"crashed: {what} ({name})", name
    total = counts.get("tests", 0)
    if returncode == 5:
        return "fail", "collected no test: an empty suite is a failure", None
    if returncode == 0:
        if total == 0:
            return "fail", "ran no test", None
        if counts.get("skipped", 0) == total:
            skip = _SKIP_REASON.search(log_text)
            because = f": {skip.group(1).strip()}" if skip else ""
            return "skipped", f"all {total} tests skipped{because}", None
        return "pass", "", None
    details: List[str] = []
    if oom:
        details.append("out of memory (MemoryError)")
    if counts:
        details.append(
            f"{counts.get('failures', 0)} failed, {counts.get('errors', 0)} errors of {total} tests"
        )
    first = _FIRST_PROBLEM.search(log_text)
    if first and returncode == 1:
        details.append(f"first: {first.group(0).strip()[:160]}")
    crash = _WORKER_CRASH.search(log_text)
    if crash:
        details.append(f"xdist worker {crash.group(1)} crashed running {crash.group(2)}")
    if "+++ Timeout +++" in log_text:
        details.append("a test hit the per-test timeout")
    if returncode == 1:
        summary = "; ".join(details) or "tests failed"
        return "fail", summary, None
    kind = {2: "interrupted or collection errors", 3: "pytest internal error", 4: "usage error"}
    first_error = _ERROR_LINE.search(log_text)
    if first_error and not details:
        details.append(first_error.group(0).strip()[:200])
    label = kind.get(returncode or 0, f"pytest exited with status {returncode}")
    if oom:  # the cause first, pytest's wording after
        return "fail", "; ".join([details[0], label, *details[1:]]), None
    return "fail", "; ".join([label, *details]), None


COUNT_KEYS = ("tests", "failures", "errors", "skipped")


def read_counts(path: Path) -> Optional[Dict[str, int]]:
    """tests/failures/errors/skipped/passed of a pytest JUnit file; None if unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = dict.fromkeys(COUNT_KEYS, 0)
    for suite in suites:
        for key in COUNT_KEYS:
            counts[key] += int(suite.get(key, "0") or 0)
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


CPU_USAGE_FILE = "cpu-usage.json"  # written by the cell plugin at the end of pytest


def read_first_test(cell_dir: Path) -> Optional[float]:
    """The wall-clock time (time.time()) the cell's first test started, if it started one.

    Containers share the host's clock, so the value compares with the runner's own times."""
    try:
        return float((cell_dir / "first-test").read_text().strip())
    except (OSError, ValueError):
        return None


def read_cpu_usage(cell_dir: Path) -> Optional[Dict[str, float]]:
    """{"cpu_seconds", "wall_seconds", "cores"}: how busy the cell kept the CPU, if recorded."""
    try:
        data = json.loads((cell_dir / CPU_USAGE_FILE).read_text(encoding="utf-8"))
        cpu, wall = float(data["cpu_seconds"]), float(data["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if wall <= 0 or cpu < 0:
        return None
    return {"cpu_seconds": cpu, "wall_seconds": wall, "cores": round(cpu / wall, 3)}


def merge_suite_stats(cell_dir: Path) -> Optional[Dict[str, Any]]:
    """Sum the `sky_rs.stats()` that each process of the suite left behind."""
    parts = []
    for path in sorted(cell_dir.glob("suite-stats-*.json")):
        try:
            parts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    if not parts:
        return None
    functions: Dict[str, Dict[str, Any]] = {}
    mismatches: List[Any] = []
    for part in parts:
        for name, entry in (part.get("functions") or {}).items():
            into = functions.setdefault(name, {"rust": 0, "python": 0, "fallbacks": {}})
            into["rust"] += int(entry.get("rust", 0))
            into["python"] += int(entry.get("python", 0))
            for reason, count in (entry.get("fallbacks") or {}).items():
                into["fallbacks"][reason] = into["fallbacks"].get(reason, 0) + int(count)
        mismatches.extend(part.get("mismatches") or [])
    calls = sum(e["rust"] + e["python"] for e in functions.values())
    fallbacks = sum(sum(e["fallbacks"].values()) for e in functions.values())
    return {
        "functions": functions,
        "fallback_rate": (fallbacks / calls) if calls else 0.0,
        "mismatches": mismatches[:50],
        "processes": len(parts),
    }


def is_native_wheel(wheel_name: str) -> bool:
    """A wheel built for a platform (the Rust extension inside), not a pure-Python `any` one."""
    try:
        return wheel_tags(wheel_name)[2] != ["any"]
    except ValueError:
        return True


def installed_wheel_problem(
    info: Optional[Mapping[str, Any]], wheel_name: str, venv: Optional[str] = None
) -> Optional[str]:
    """Why a passing cell's answer can't be trusted, on every platform alike: `sky_rs` did not
    import on its own after the tests, came from outside the cell's venv, or answered from the
    Python fallback although the wheel under test is native (the fallback passes every test on
    its own, so a broken extension would hide: test what users install).

    `info` is what the cell's venv printed (file, prefix, backend_info) or {"error": why};
    `venv` the host's venv directory (else the `prefix` the venv reported is trusted).
    """
    if not info:
        return "the installed wheel was not checked: sky_rs did not import after the tests"
    if info.get("error"):
        return f"sky_rs does not import on its own: {info['error']}"
    file = str(info.get("file", ""))
    if venv is not None:
        inside = os.path.realpath(file).startswith(os.path.realpath(venv) + os.sep)
        where = venv
    else:
        where = str(info.get("prefix", ""))
        inside = bool(where) and file.startswith(where.rstrip("/") + "/")
    if not inside:
        return f"sky_rs was imported from {file}, not from the cell's venv {where}"
    backend = info.get("backend_info") or {}
    if is_native_wheel(wheel_name) and backend.get("backend") != "rust":
        return f"sky_rs runs on the Python fallback, not {wheel_name}: {backend.get('reason')}"
    return None

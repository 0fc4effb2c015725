"""What a process says about its CPUs and memory, and the per-profile table of the report.

``ANSWERS_PROGRAM`` runs in the measured process (a child in a fresh cgroup, or a container):
it prints one JSON line with what ``sky_rs`` (Rust), ``sky_rs.fallback``, ``os.cpu_count()``,
``os.process_cpu_count()`` (3.13+) and the affinity mask say. :func:`record_row` appends a
row to ``$SKY_RS_MATRIX_CELL_DIR/extra-cgroup-live.json`` (shared by pytest-xdist workers
under a lock), which the matrix runner puts into the cell's report.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Sequence

EXTRA_FILE = "extra-cgroup-live.json"

# Runs in the measured process. One JSON line per sample; with an interval argument it
# samples forever (the docker update test reads it while it changes the limits); with
# SKY_RS_ANSWERS_ON_STDIN set, once per line it reads (the host test that moves it).
ANSWERS_PROGRAM = r"""
import json, os, sys, time
import sky_rs
from sky_rs import fallback

def sample():
    process_cpu_count = getattr(os, "process_cpu_count", None)
    def call(fn):
        try:
            return fn()
        except Exception as exc:
            return "%s: %s" % (type(exc).__name__, exc)
    try:
        with open("/proc/self/cgroup") as handle:
            cgroup = handle.read()
    except OSError as exc:
        cgroup = "unreadable: %s" % exc
    return {
        "rust_cpus": call(sky_rs.get_cpu_count),
        "python_cpus": call(fallback.get_cpu_count),
        "rust_memory_gb": call(sky_rs.get_mem_size_gb),
        "python_memory_gb": call(fallback.get_mem_size_gb),
        "os_cpu_count": os.cpu_count(),
        "process_cpu_count": call(process_cpu_count) if process_cpu_count else None,
        "affinity": len(os.sched_getaffinity(0)),
        "online": os.sysconf("SC_NPROCESSORS_ONLN"),
        "backend": sky_rs.backend_info()["backend"],
        "backend_reason": sky_rs.backend_info()["reason"],
        "python": sys.version.split()[0],
        "proc_self_cgroup": cgroup,
    }

if os.environ.get("SKY_RS_ANSWERS_ON_STDIN"):
    # One sample per line read: the parent changes the limits in between.
    for _ in sys.stdin:
        sys.stdout.write(json.dumps(sample()) + "\n")
        sys.stdout.flush()
    sys.exit(0)
interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
while True:
    sys.stdout.write(json.dumps(sample()) + "\n")
    sys.stdout.flush()
    if not interval:
        break
    time.sleep(interval)
"""

# Joins the cgroups named on the command line, pins the CPU affinity, then becomes the
# measuring program: the measured process is the same pid from before its first instruction.
JOIN_PROGRAM = r"""
import json, os, sys
spec = json.loads(sys.argv[1])
for procs in spec["join"]:
    with open(procs, "w") as handle:
        handle.write(str(os.getpid()))
if spec["affinity"] is not None:
    os.sched_setaffinity(0, spec["affinity"])
os.execv(sys.executable, [sys.executable, "-c", spec["program"]])
"""


def measure_in_cgroups(
    procs_files: Sequence[str], affinity: Sequence[int] | None = None, timeout: float = 60.0
) -> Dict[str, Any]:
    """Start a child Python that joins ``procs_files`` first, and return its answers."""
    spec = {"join": list(procs_files), "affinity": affinity, "program": ANSWERS_PROGRAM}
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYPILOT_")}
    done = subprocess.run(
        [sys.executable, "-c", JOIN_PROGRAM, json.dumps(spec)],
        capture_output=True,
        timeout=timeout,
        env=env,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"the measuring child exited {done.returncode}:\n{done.stderr.decode()[-3000:]}"
        )
    answers: Dict[str, Any] = json.loads(done.stdout.decode().splitlines()[0])
    return answers


def record_row(case: str, answers: Dict[str, Any], expected: Dict[str, Any]) -> None:
    """Add a row to the cell's table (no-op outside a matrix cell)."""
    cell_dir = os.environ.get("SKY_RS_MATRIX_CELL_DIR")
    if not cell_dir or not os.path.isdir(cell_dir):
        return
    row = {
        "case": case,
        "expected_cpus": expected.get("cpus"),
        "rust_cpus": answers.get("rust_cpus"),
        "python_cpus": answers.get("python_cpus"),
        "os_cpu_count": answers.get("os_cpu_count"),
        "process_cpu_count": answers.get("process_cpu_count"),
        "affinity": answers.get("affinity"),
        "expected_memory_gb": expected.get("memory_gb"),
        "rust_memory_gb": answers.get("rust_memory_gb"),
        "python_memory_gb": answers.get("python_memory_gb"),
    }
    path = os.path.join(cell_dir, EXTRA_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        table: Dict[str, Any] = json.loads(text) if text.strip() else {}
        table.setdefault("suite", "cgroup-live")
        table.setdefault("profile", os.environ.get("SKY_RS_MATRIX_PROFILE", "default"))
        table.setdefault("platform", os.environ.get("SKY_RS_MATRIX_PLATFORM", "host"))
        table.setdefault("python", sys.version.split()[0])
        rows: List[Dict[str, Any]] = table.setdefault("rows", [])
        rows[:] = [existing for existing in rows if existing.get("case") != case] + [row]
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(table, indent=2, sort_keys=True))

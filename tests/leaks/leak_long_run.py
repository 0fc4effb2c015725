"""The long-run detector: a slow leak, one small block every few thousand calls.

The growth detector (leak_growth.py) judges batches of a few thousand calls
against a tolerance of a few KB: a leak of 32 bytes every 2,000 calls hides
under it for ever. This one makes ``LONG_RUN_CALLS`` calls of one function in
a child process with ``PYTHONMALLOC=malloc`` (every object a counted
``malloc``), reads the C heap at ``CHECKPOINTS`` evenly spaced points after a
warm-up, and fits the growth per call over the second half of the run, where
every cache has long filled up:

    PYTHONMALLOC=malloc python leak_long_run.py FUNCTION BACKEND WORKSPACE [CALLS]

It prints one JSON object on its last line.
"""

from __future__ import annotations

import array
import json
import os
import sys
from pathlib import Path
from typing import Dict, List

import leak_cases
import leak_measure

LONG_RUN_CALLS = 100_000
WARMUP_CALLS = 5_000
CHECKPOINTS = 10
# Heap growth per call over the second half of the run above which it is a
# leak. One 32-byte block (a 48-byte chunk) every 5,000 calls is 0.0096 B/call.
# A clean build measures exactly 0: its caches are full after the warm-up,
# settle() hands every free chunk back, glibc's per-thread cache is off
# (GLIBC_TUNABLES, see test_long_run.py: chunks it holds count as in use)
# and the readings go into storage made in advance. 0.002 B/call is 100 bytes
# over the 50,000 calls judged: two chunks.
MAX_BYTES_PER_CALL = 0.002


def least_squares_slope(xs: List[float], ys: List[float]) -> float:
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def measure(workload: leak_cases.Workload, calls: int) -> Dict[str, object]:
    leak_measure.warm_interpreter_caches()
    leak_cases.run_rounds(workload, leak_cases.rounds_for(workload, WARMUP_CALLS))
    per_round = len(workload.calls)
    rounds_per_step = leak_cases.rounds_for(workload, calls // CHECKPOINTS)
    # Readings go into storage made before the first one: a list growing as
    # it goes would be the very growth measured (~200 bytes a reading).
    calls_at = array.array("q", [0] * (CHECKPOINTS + 1))
    heap_at = array.array("q", [0] * (CHECKPOINTS + 1))
    leak_measure.settle()
    heap_at[0] = leak_measure.heap_in_use() or 0
    for step in range(1, CHECKPOINTS + 1):
        leak_cases.run_rounds(workload, rounds_per_step)
        calls_at[step] = step * rounds_per_step * per_round
        leak_measure.settle()
        heap_at[step] = leak_measure.heap_in_use() or 0
    points = [[calls, heap] for calls, heap in zip(calls_at, heap_at)]
    second_half = points[len(points) // 2 :]
    slope = least_squares_slope(
        [float(x) for x, _ in second_half], [float(y) for _, y in second_half]
    )
    judged_calls = second_half[-1][0] - second_half[0][0]
    return {
        "function": workload.function,
        "backend": workload.backend,
        "calls": points[-1][0],
        "warmup_calls": WARMUP_CALLS,
        "points": points,
        "bytes_per_call": slope,
        "judged_calls": judged_calls,
        "growth_judged": second_half[-1][1] - second_half[0][1],
        "limit_bytes_per_call": MAX_BYTES_PER_CALL,
        "verdict": "leak" if slope > MAX_BYTES_PER_CALL else "clean",
    }


def main(argv: List[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: leak_long_run.py FUNCTION BACKEND WORKSPACE [CALLS]", file=sys.stderr)
        return 2
    if os.environ.get("PYTHONMALLOC") != "malloc":
        print("leak_long_run.py must run under PYTHONMALLOC=malloc", file=sys.stderr)
        return 2
    if not leak_measure.heap_available():
        print("leak_long_run.py needs glibc's mallinfo2 to read the C heap", file=sys.stderr)
        return 2
    function, backend, workspace_dir = argv[:3]
    calls = int(argv[3]) if len(argv) == 4 else LONG_RUN_CALLS
    leak_cases.unset_overriding_variables()
    workspace = leak_cases.Workspace(Path(workspace_dir))
    with leak_cases.busy_port() as port:
        workload = leak_cases.make_workload(function, backend, workspace, port)
        result = measure(workload, calls)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Leaked Python references, seen two ways.

On any build, `sys.getrefcount()` of *witnesses*: every object a workload
passes in, the function and its module, the singletons, and every result that
is the same object from one round to the next (small ints, True/False, an
argument returned as is). A reference the function takes and never gives back
pins its witness: its count grows with the calls.

On a debug build of CPython, the totals CPython's own ``-R`` option watches:
`sys.gettotalrefcount()` (every reference held anywhere) and
`sys.getallocatedblocks()` (pymalloc blocks in use), over repeated runs. Run
as a child process so that nothing else in the process (pytest, xdist's
channel) moves those totals:

    python leak_references.py FUNCTION BACKEND WORKSPACE

It prints one JSON object (a :class:`DebugTotals`) on its last line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import leak_cases
import leak_measure

# ---------------------------------------------------------------- thresholds
#
# Each witness run makes at least this many calls; a reference leaked once per
# call (or once per round) shows as hundreds, noise as 0 or 1.
WITNESS_RUN_CALLS = 1000
# Two runs, and a leak is a witness that gained references in both: a cache
# that keeps the first argument it sees gains once, in the first run only.
WITNESS_RUNS = 2
# CPython's `-R 3:3`: three warm-up runs that are not judged (caches fill),
# then tracked runs; we track four, to make a run of chance increases rarer.
DEBUG_WARMUP_RUNS = 3
DEBUG_TRACKED_RUNS = 4
# Calls per run. A debug interpreter is several times slower; 200 calls make
# a per-call leak show as hundreds of references per run.
DEBUG_RUN_CALLS = 200


def _witnesses(workload: leak_cases.Workload) -> List[Tuple[str, Any]]:
    found: List[Tuple[str, Any]] = []
    seen: Set[int] = set()

    def add(label: str, obj: Any) -> None:
        if id(obj) not in seen:
            seen.add(id(obj))
            found.append((label, obj))

    for index, call in enumerate(workload.calls):
        for position, arg in enumerate(call.args):
            add(f"call {index} argument {position} ({_short_repr(arg)})", arg)
        for name, value in call.kwargs.items():
            add(f"call {index} argument {name}= ({_short_repr(value)})", value)
    add(f"the function {workload.function}", workload.target)
    add("its module", sys.modules[leak_cases.BACKEND_MODULES[workload.backend]])
    for singleton in (None, True, False, Ellipsis, NotImplemented):
        add(repr(singleton), singleton)
    first = leak_cases.results_of_one_round(workload)
    second = leak_cases.results_of_one_round(workload)
    for index, (one, two) in enumerate(zip(first, second)):
        if one is two:
            add(f"call {index} result ({_short_repr(one)})", one)
    return found


def _short_repr(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclasses.dataclass
class WitnessRuns:
    calls_per_run: int
    # Per run, the witnesses that gained references: {label: gained}.
    gains: List[Dict[str, int]]

    def leaked(self) -> Dict[str, List[int]]:
        """Witnesses that gained in every run: {label: gain of each run}."""
        labels = set(self.gains[0])
        for run in self.gains[1:]:
            labels &= set(run)
        return {label: [run[label] for run in self.gains] for label in sorted(labels)}

    def largest_gain(self) -> int:
        return max((max(run.values(), default=0) for run in self.gains), default=0)


def witness_runs(workload: leak_cases.Workload) -> WitnessRuns:
    witnesses = _witnesses(workload)
    rounds = leak_cases.rounds_for(workload, WITNESS_RUN_CALLS)
    gains: List[Dict[str, int]] = []
    for _ in range(WITNESS_RUNS):
        leak_measure.settle()
        before = [sys.getrefcount(obj) for _label, obj in witnesses]
        leak_cases.run_rounds(workload, rounds)
        leak_measure.settle()
        after = [sys.getrefcount(obj) for _label, obj in witnesses]
        gains.append(
            {
                label: now - then
                for (label, _obj), then, now in zip(witnesses, before, after)
                if now > then
            }
        )
    return WitnessRuns(rounds * len(workload.calls), gains)


@dataclasses.dataclass
class DebugTotals:
    function: str
    backend: str
    calls_per_run: int
    warmup_runs: int
    # Deltas of the tracked runs only (warm-up runs are not judged).
    refcount_deltas: List[int]
    block_deltas: List[int]

    @staticmethod
    def grows(deltas: List[int]) -> bool:
        """CPython's check_rc_deltas(): a leak only if *every* tracked run grew."""
        return bool(deltas) and all(delta >= 1 for delta in deltas)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DebugTotals:
        return cls(**json.loads(text))


def debug_totals(workload: leak_cases.Workload) -> DebugTotals:
    """sys.gettotalrefcount() and sys.getallocatedblocks() deltas, as `-R` takes them."""
    gettotalrefcount = sys.gettotalrefcount  # type: ignore[attr-defined]
    rounds = leak_cases.rounds_for(workload, DEBUG_RUN_CALLS)
    leak_measure.warm_interpreter_caches()
    refcount_deltas: List[int] = []
    block_deltas: List[int] = []
    leak_measure.settle()
    refs_before, blocks_before = gettotalrefcount(), sys.getallocatedblocks()
    for _ in range(DEBUG_WARMUP_RUNS + DEBUG_TRACKED_RUNS):
        leak_cases.run_rounds(workload, rounds)
        leak_measure.settle()
        refs_after, blocks_after = gettotalrefcount(), sys.getallocatedblocks()
        refcount_deltas.append(refs_after - refs_before)
        block_deltas.append(blocks_after - blocks_before)
        refs_before, blocks_before = gettotalrefcount(), sys.getallocatedblocks()
    return DebugTotals(
        function=workload.function,
        backend=workload.backend,
        calls_per_run=rounds * len(workload.calls),
        warmup_runs=DEBUG_WARMUP_RUNS,
        refcount_deltas=refcount_deltas[DEBUG_WARMUP_RUNS:],
        block_deltas=block_deltas[DEBUG_WARMUP_RUNS:],
    )


def main(argv: List[str]) -> int:
    if len(argv) != 3:
        print("usage: leak_references.py FUNCTION BACKEND WORKSPACE", file=sys.stderr)
        return 2
    if not leak_measure.is_debug_build():
        print("leak_references.py needs a debug build of CPython", file=sys.stderr)
        return 2
    if os.environ.get("PYTHONMALLOC", "") in ("malloc", "malloc_debug"):
        print("leak_references.py needs pymalloc (getallocatedblocks)", file=sys.stderr)
        return 2
    function, backend, workspace_dir = argv
    leak_cases.unset_overriding_variables()
    workspace = leak_cases.Workspace(Path(workspace_dir))
    with leak_cases.busy_port() as port:
        workload = leak_cases.make_workload(function, backend, workspace, port)
        print(debug_totals(workload).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

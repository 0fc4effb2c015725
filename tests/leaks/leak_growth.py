"""The growth detector: does memory keep growing as calls go on? (psleak's method)

Run as a child process with ``PYTHONMALLOC=malloc`` (it refuses to run
without it), so that every Python object is a ``malloc()`` the C heap
counts and frees at once, instead of a slot in pymalloc's arenas that hides
both leaks and frees:

    PYTHONMALLOC=malloc python leak_growth.py FUNCTION BACKEND WORKSPACE

It prints one JSON object (a :class:`GrowthResult`) on its last line.

The method, after Giampaolo Rodola's psleak: warm up, then run batches of
calls with escalating sizes (x1.5 per retry, at most ``MAX_BATCHES``),
settling the interpreter and trimming the C heap before each reading. A batch
whose growth stays within tolerance on every metric ends the test: no leak.
Otherwise the growth *per round* is compared with the batch before: noise and
caches that fill up (a plateau) fade as the batches grow, a real leak grows in
step with the calls. Two fading batches in a row pass; growth that never fades
in ``MAX_BATCHES`` batches is a leak.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Dict, List

import leak_cases
import leak_measure

# ---------------------------------------------------------------- thresholds
#
# Calls in the first measured batch: a leak must outgrow HEAP_TOLERANCE in it,
# i.e. average more than 2 bytes per call (a 32-byte malloc chunk, glibc's
# smallest, every 16 calls), or the first batch already passes.
FIRST_BATCH_CALLS = 2000
# Calls before anything is measured: every lazily-built cache (hashlib's
# constructors, codec lookups, the re cache, PyO3's type objects, interned
# names) fills on the first calls; a few hundred calls leave mostly leaks.
WARMUP_CALLS = 400
# psleak's escalation: each retry makes 1.5x the calls of the one before.
GROWTH_FACTOR = 1.5
# Six batches (2,000 .. 15,000 calls, 41,000 in all) separate a leak from a
# plateau: a cache that grows for a while must have stopped within them.
MAX_BATCHES = 6
# Growth of a whole batch that is not growth at all, per metric. The heap is
# exact to the byte under PYTHONMALLOC=malloc; on clean builds what remains
# after settling is at most a few KB (a dict resize, a cache still filling,
# up to 10 KB in one batch for the fallback's base-36 power cache), and it
# does not scale with the calls, so it fades in the next batches. USS and RSS
# move in 4 KiB pages, and touching a new page of code or data moves them by
# a few pages with no leak (measured up to 2 pages), so they get 8 pages.
HEAP_TOLERANCE = 4 * 1024
PAGES_TOLERANCE = 8 * leak_measure.PAGE_SIZE
TOLERANCES: Dict[str, int] = {
    "heap": HEAP_TOLERANCE,
    "uss": PAGES_TOLERANCE,
    "rss": PAGES_TOLERANCE,
}
# Growth per round (one pass over the workload's 1 to 4 calls) at or below
# this is noise, psleak's floor: a leak of one malloc per round or more (a
# 32-byte chunk at least) is above it.
NOISE_FLOOR_PER_ROUND = 16.0
# Growth per round that shrinks by at least 20% from one batch to the next is
# fading; it must fade twice in a row, so that one lucky reading cannot pass.
FADE_RATIO = 0.8
FADES_TO_PASS = 2


@dataclasses.dataclass
class Batch:
    rounds: int
    calls: int
    growth: Dict[str, int | None]  # bytes, per metric

    def per_round(self, metric: str) -> float | None:
        value = self.growth.get(metric)
        return None if value is None else value / self.rounds


@dataclasses.dataclass
class GrowthResult:
    function: str
    backend: str
    verdict: str  # "clean" (within tolerance), "plateau" (faded) or "leak"
    detail: str
    calls_per_round: int
    warmup_calls: int
    batches: List[Batch]
    growth_per_call: Dict[str, float | None]  # of the last batch, bytes
    descriptors: Dict[str, int]
    os_threads: Dict[str, int]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GrowthResult:
        data = json.loads(text)
        data["batches"] = [Batch(**batch) for batch in data["batches"]]
        return cls(**data)


def _growth(before: Dict[str, int | None], after: Dict[str, int | None]) -> Dict[str, int | None]:
    return {
        metric: None if before[metric] is None or after[metric] is None
        else int(after[metric]) - int(before[metric])  # type: ignore[arg-type]
        for metric in before
    }  # fmt: skip


def _measured_batch(workload: leak_cases.Workload, rounds: int) -> Batch:
    leak_measure.settle()
    before = leak_measure.memory()
    leak_cases.run_rounds(workload, rounds)
    leak_measure.settle()
    after = leak_measure.memory()
    return Batch(rounds, rounds * len(workload.calls), _growth(before, after))


def _within_tolerance(batch: Batch) -> bool:
    return all(
        value is None or value <= TOLERANCES[metric] for metric, value in batch.growth.items()
    )


def _fading(batch: Batch, previous: Batch | None) -> bool:
    for metric, value in batch.growth.items():
        if value is None or value <= TOLERANCES[metric]:
            continue
        per_round = value / batch.rounds
        if per_round <= NOISE_FLOOR_PER_ROUND:
            continue
        before = None if previous is None else previous.per_round(metric)
        if before is not None and per_round <= before * FADE_RATIO:
            continue
        return False
    return True


def _describe(batches: List[Batch], calls_per_round: int) -> str:
    lines = []
    for index, batch in enumerate(batches, 1):
        parts = ", ".join(
            f"{metric} {value:+d} B ({value / batch.calls:+.1f} B/call)"
            for metric, value in batch.growth.items()
            if value is not None
        )
        lines.append(f"batch {index}: {batch.calls} calls: {parts}")
    return "; ".join(lines)


def detect_growth(workload: leak_cases.Workload) -> GrowthResult:
    """Warm up, then measure escalating batches until growth stops or never does."""
    leak_measure.warm_interpreter_caches()
    per_round = len(workload.calls)
    warmup_rounds = leak_cases.rounds_for(workload, WARMUP_CALLS)
    leak_cases.run_rounds(workload, warmup_rounds)
    leak_measure.settle()
    fds_before = len(leak_measure.open_descriptors())
    threads_before = leak_measure.os_threads()

    batches: List[Batch] = []
    verdict = "leak"
    fades = 0
    rounds = leak_cases.rounds_for(workload, FIRST_BATCH_CALLS)
    for _ in range(MAX_BATCHES):
        batch = _measured_batch(workload, rounds)
        previous = batches[-1] if batches else None
        batches.append(batch)
        if _within_tolerance(batch):
            verdict = "clean" if len(batches) == 1 else "plateau"
            break
        fades = fades + 1 if _fading(batch, previous) else 0
        if fades >= FADES_TO_PASS:
            verdict = "plateau"
            break
        rounds = int(rounds * GROWTH_FACTOR)

    last = batches[-1]
    growth_per_call = {
        metric: None if value is None else value / last.calls
        for metric, value in last.growth.items()
    }
    return GrowthResult(
        function=workload.function,
        backend=workload.backend,
        verdict=verdict,
        detail=_describe(batches, per_round),
        calls_per_round=per_round,
        warmup_calls=warmup_rounds * per_round,
        batches=batches,
        growth_per_call=growth_per_call,
        descriptors={"before": fds_before, "after": len(leak_measure.open_descriptors())},
        os_threads={"before": threads_before, "after": leak_measure.os_threads()},
    )


def main(argv: List[str]) -> int:
    if len(argv) != 3:
        print("usage: leak_growth.py FUNCTION BACKEND WORKSPACE", file=sys.stderr)
        return 2
    if os.environ.get("PYTHONMALLOC") != "malloc":
        print("leak_growth.py must run under PYTHONMALLOC=malloc", file=sys.stderr)
        return 2
    function, backend, workspace_dir = argv
    leak_cases.unset_overriding_variables()
    workspace = leak_cases.Workspace(Path(workspace_dir))
    with leak_cases.busy_port() as port:
        workload = leak_cases.make_workload(function, backend, workspace, port)
        result = detect_growth(workload)
    print(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

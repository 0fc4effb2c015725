"""Interleaved batch timing: the contenders of a case take turns, round after round.

Why this shape:
- One process, interleaved: a frequency change, a noisy neighbour or a cache
  warming up hits every contender alike, so the ratio of medians measured in
  the same run is robust even when the absolute figures drift.
- Rotating order (AB, BA, AB, ...): neither contender always runs right after
  the other one warmed the caches for it.
- Batches: a call of ~100 ns is below `perf_counter_ns`'s useful resolution,
  so each round times `batch_size` calls together and divides; a call slower
  than the batch target is timed alone (batch size 1), so for the slow calls
  that a p99 target is about, p99 is a true per-call tail.
- Warm-up rounds are discarded; the garbage collector is off while timing, as
  `timeit` does, so a collection triggered by one contender's garbage is not
  billed to another.
- Each contender's samples give p10, median and p99. On a machine shared with
  other work the samples are bimodal (rounds that ran undisturbed, and rounds
  slowed by a busy sibling CPU); the median lands in either mode from run to
  run, the p10 does not. `targets` says which figure each target uses.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import resource
import time
from typing import Any, Callable, Dict, List, Sequence

from sky_matrix.bench.cases import Contender
from sky_matrix.bench.stats import median, percentile


@dataclasses.dataclass(frozen=True)
class TimingSettings:
    batch_target_ns: int  # a batch should take at least this long
    budget_s: float  # measured time per case, all contenders together
    warmup_rounds: int
    min_rounds: int
    max_rounds: int
    slow_call_s: float = 0.5  # a call this slow: only the calibration call warms it up
    slow_min_rounds: int = 3


QUICK = TimingSettings(
    batch_target_ns=1_000_000, budget_s=0.3, warmup_rounds=1, min_rounds=5, max_rounds=60
)
FULL = TimingSettings(
    batch_target_ns=2_000_000, budget_s=2.0, warmup_rounds=3, min_rounds=7, max_rounds=400
)


@dataclasses.dataclass
class ContenderTiming:
    name: str
    batch_size: int
    per_call_ns: List[float]  # one sample per measured round: batch time / batch size
    # CPU time per call over the measured rounds (getrusage): in the kernel (the system
    # calls) and in user space. Kernel time is the floor a function's own system calls
    # set: the sign-off's ceiling for system-call-bound functions. 0 when not measured.
    system_ns_per_call: float = 0.0
    user_ns_per_call: float = 0.0

    @property
    def median_ns(self) -> float:
        return median(self.per_call_ns)

    @property
    def p99_ns(self) -> float:
        return percentile(self.per_call_ns, 0.99)

    @property
    def p10_ns(self) -> float:
        return percentile(self.per_call_ns, 0.10)

    def to_json(self) -> Dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "rounds": len(self.per_call_ns),
            "p10_ns": self.p10_ns,
            "median_ns": self.median_ns,
            "p99_ns": self.p99_ns,
            "system_ns_per_call": round(self.system_ns_per_call, 1),
            "user_ns_per_call": round(self.user_ns_per_call, 1),
            "min_ns": min(self.per_call_ns),
            "max_ns": max(self.per_call_ns),
            "per_call_ns": [round(x, 1) for x in self.per_call_ns],
        }


def time_batch(fn: Callable[..., Any], args: Sequence[Any], kwargs: Dict[str, Any], n: int) -> int:
    """Nanoseconds for `n` calls; the loop overhead is the same for every contender."""
    repeat = itertools.repeat(None, n)
    clock = time.perf_counter_ns
    if kwargs:
        start = clock()
        for _ in repeat:
            fn(*args, **kwargs)
        return clock() - start
    start = clock()
    for _ in repeat:
        fn(*args)
    return clock() - start


def calibrate(contender: Contender, target_ns: int) -> tuple[int, int, int]:
    """(batch size, ns of the first call, ns of the last batch): grow the batch to the target."""
    first = time_batch(contender.fn, contender.args, contender.kwargs, 1)
    if first >= target_ns:
        return 1, first, first
    size = 1
    elapsed = first
    while elapsed < target_ns:
        # Aim straight at the target once a measurement is long enough to trust.
        if elapsed > 100_000:
            size = max(size + 1, int(size * target_ns / elapsed * 1.1))
        else:
            size *= 2
        elapsed = time_batch(contender.fn, contender.args, contender.kwargs, size)
    return size, first, elapsed


def rounds_for(round_ns: float, settings: TimingSettings, slow: bool) -> int:
    if slow:
        lowest = settings.slow_min_rounds
    else:
        lowest = settings.min_rounds
    wanted = int(settings.budget_s * 1e9 / max(round_ns, 1.0))
    return max(lowest, min(settings.max_rounds, wanted))


def measure(contenders: Sequence[Contender], settings: TimingSettings) -> List[ContenderTiming]:
    """Time every contender of one case, interleaved; returns them in the given order."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        sizes: List[int] = []
        firsts: List[int] = []
        round_ns = 0.0
        for contender in contenders:
            size, first, last = calibrate(contender, settings.batch_target_ns)
            sizes.append(size)
            firsts.append(first)
            round_ns += last
        slow = max(firsts) >= settings.slow_call_s * 1e9
        rounds = rounds_for(round_ns, settings, slow)
        warmup = 0 if slow else settings.warmup_rounds
        samples: List[List[float]] = [[] for _ in contenders]
        cpu_ns: List[List[float]] = [[0.0, 0.0] for _ in contenders]  # [system, user]
        order = list(range(len(contenders)))
        for round_index in range(warmup + rounds):
            shift = round_index % len(order)
            for index in order[shift:] + order[:shift]:
                contender = contenders[index]
                before = resource.getrusage(resource.RUSAGE_SELF)
                elapsed = time_batch(contender.fn, contender.args, contender.kwargs, sizes[index])
                after = resource.getrusage(resource.RUSAGE_SELF)
                if round_index >= warmup:
                    samples[index].append(elapsed / sizes[index])
                    cpu_ns[index][0] += (after.ru_stime - before.ru_stime) * 1e9
                    cpu_ns[index][1] += (after.ru_utime - before.ru_utime) * 1e9
    finally:
        if was_enabled:
            gc.enable()
    return [
        ContenderTiming(
            contender.name,
            size,
            per_call,
            system_ns_per_call=cpu[0] / (size * len(per_call)) if per_call else 0.0,
            user_ns_per_call=cpu[1] / (size * len(per_call)) if per_call else 0.0,
        )
        for contender, size, per_call, cpu in zip(contenders, sizes, samples, cpu_ns)
    ]

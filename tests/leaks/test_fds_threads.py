"""Detector 3: open file descriptors and threads, counted before and after.

Two runs of at least RUN_CALLS calls each, after the warm-up; a resource that
grew in both runs leaks (one that appears once, in the first run only, is a
handle some library opens on first use and keeps).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Dict, List

import leak_cases
import leak_measure

# A descriptor or thread leaked per call shows as a thousand here; nothing
# else in a settled process opens descriptors or starts threads by itself.
RUN_CALLS = 1000
RUNS = 2


def _snapshot() -> Dict[str, Any]:
    leak_measure.settle()
    return {
        "fds": leak_measure.open_descriptors(),
        "os_threads": leak_measure.os_threads(),
        "python_threads": leak_measure.python_threads(),
    }


def _new_targets(before: Dict[int, str], after: Dict[int, str]) -> str:
    counts = collections.Counter(after[fd] for fd in after if before.get(fd) != after[fd])
    return ", ".join(f"{target} x{count}" for target, count in counts.most_common(5))


def test_descriptors_and_threads(
    workload: leak_cases.Workload, record_leak_metrics: Callable[[Dict[str, Any]], None]
) -> None:
    rounds = leak_cases.rounds_for(workload, RUN_CALLS)
    fd_gains: List[int] = []
    thread_gains: List[int] = []
    python_thread_gains: List[int] = []
    new_fds: List[str] = []
    new_threads: List[str] = []
    for _ in range(RUNS):
        before = _snapshot()
        leak_cases.run_rounds(workload, rounds)
        after = _snapshot()
        fd_gains.append(len(after["fds"]) - len(before["fds"]))
        thread_gains.append(after["os_threads"] - before["os_threads"])
        python_thread_gains.append(len(after["python_threads"]) - len(before["python_threads"]))
        new_fds.append(_new_targets(before["fds"], after["fds"]))
        started = collections.Counter(after["python_threads"]) - collections.Counter(
            before["python_threads"]
        )
        new_threads.append(", ".join(sorted(started)))
    record_leak_metrics(
        {
            "calls_per_run": rounds * len(workload.calls),
            "fd_gains": fd_gains,
            "thread_gains": thread_gains,
            "python_thread_gains": python_thread_gains,
            "threads_now": threading.active_count(),
        }
    )
    problems = []
    if all(gain > 0 for gain in fd_gains):
        problems.append(
            f"file descriptors: {', '.join(f'+{gain}' for gain in fd_gains)} over runs of "
            f"{rounds * len(workload.calls)} calls (new: {new_fds[-1]})"
        )
    if all(gain > 0 for gain in thread_gains) or all(gain > 0 for gain in python_thread_gains):
        problems.append(
            f"threads: OS {thread_gains}, Python {python_thread_gains} over runs of "
            f"{rounds * len(workload.calls)} calls (new Python threads: {new_threads[-1] or '-'})"
        )
    assert not problems, f"{workload.label} leaks " + "; ".join(problems)

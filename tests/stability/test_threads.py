"""Many threads calling every function at once, on both backends.

The inputs and the predicted outcomes are the soak's (`sky_matrix.soak.workload`):
every call must give what the contract predicts, whatever else runs in the
other threads; the native call counters must count every call exactly; and
no thread or file descriptor may be left behind.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import List, Tuple

import psutil

import sky_rs
from sky_matrix.soak import workload

THREADS = 8
SECONDS = 4.0


def _hammer(
    streams: List[workload.Stream],
    offset: int,
    stop: threading.Event,
    problems: List[str],
    counts: List[int],
) -> None:
    calls = 0
    index = offset
    while not stop.is_set():
        stream = streams[index % len(streams)]
        case = stream.cases[(index // len(streams)) % len(stream.cases)]
        try:
            ok, outcome = True, stream.call(*case.args, **case.kwargs)
        except Exception as exc:
            ok, outcome = False, exc
        problem = workload.judge(case, ok, outcome)
        if problem is not None and len(problems) < 20:
            problems.append(f"{stream.function}/{stream.backend}: {problem}")
        outcome = None
        calls += 1
        index += 1
    counts[offset] = calls


def _streams(inputs: workload.Inputs) -> List[workload.Stream]:
    cases = workload.resolve_expected(workload.default_cases(inputs))
    streams = workload.build_streams(cases, workload.BACKENDS)
    # find_free_port binds sockets: keep it, but not in every round of every thread.
    return [s for s in streams if s.function != "find_free_port"] + [
        s for s in streams if s.function == "find_free_port"
    ][:1]


def _native_calls() -> int:
    return sum(f["rust"] for f in sky_rs.stats()["functions"].values())


def test_concurrent_calls_give_the_predicted_outcomes(
    native: ModuleType, soak_inputs: workload.Inputs
) -> None:
    process = psutil.Process()
    streams = _streams(soak_inputs)
    threads_before = process.num_threads()
    fds_before = process.num_fds()
    native_before = _native_calls()
    stop = threading.Event()
    problems: List[str] = []
    counts = [0] * THREADS
    workers = [
        threading.Thread(target=_hammer, args=(streams, i, stop, problems, counts))
        for i in range(THREADS)
    ]
    for worker in workers:
        worker.start()
    time.sleep(SECONDS)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "a worker thread hangs"
    assert problems == []
    assert all(counts), counts  # every thread made progress
    rust_streams = sum(1 for s in streams if s.backend == "rust")
    assert rust_streams == 12
    # Every native call counted once, none lost to a race in the counters.
    expected_native = _expected_native_calls(streams, counts)
    assert _native_calls() - native_before == expected_native
    # A joined thread's OS thread may take a moment to exit: Rust's thread-local
    # destructors run after Python's join() has returned.
    deadline = time.monotonic() + 5.0
    while process.num_threads() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.num_threads() == threads_before
    assert process.num_fds() == fds_before


def _expected_native_calls(streams: List[workload.Stream], counts: List[int]) -> int:
    """Calls that went to a rust stream: each thread walks the stream list from its offset."""
    rust: List[Tuple[int, bool]] = [(i, s.backend == "rust") for i, s in enumerate(streams)]
    total = 0
    for offset, calls in enumerate(counts):
        for step in range(calls):
            if rust[(offset + step) % len(streams)][1]:
                total += 1
    return total

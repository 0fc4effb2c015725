"""The Rust functions that do real I/O release the GIL while they do it.

Method: a Python thread counts in a loop; it can only count while it holds the
GIL. During a long native call, it keeps counting if and only if the call
released the GIL. Its rate is compared with its rate while the main thread
sleeps (which releases the GIL) for the same time. A call holding the GIL
leaves it at most the switch interval (5 ms) before and after the call, a few
per cent of a 200 ms call; released, it runs most of the time.

The negative control holds the GIL in C for as long (`sum(range(n))` has no
bytecode boundary at which to switch) and must be caught by the same measure,
so the test cannot pass by construction.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, Tuple

import pytest

# Released: the counter gets most of its sleeping-main-thread rate (on a busy
# 2-core machine, at worst about half). Held: at most ~10 ms of 200+ ms.
RELEASED_MIN_RATIO = 0.25
ATTEMPTS = 4  # take the best: load from other processes only ever lowers the ratio
MIN_CALL_S = 0.15
MAX_SCALE = 1 << 12
LISTINGS = 30


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.count += 1

    def __enter__(self) -> Counter:
        self._thread.start()
        time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _gil_enabled() -> bool:
    is_enabled = getattr(sys, "_is_gil_enabled", None)  # 3.13+
    return True if is_enabled is None else bool(is_enabled())


# Without a GIL (free-threaded builds) there is nothing to hold or release: the negative control
# would run beside the counter like everything else. test_free_threading covers those builds.
pytestmark = pytest.mark.skipif(
    not _gil_enabled(), reason="free-threaded build: no GIL to hold or release"
)


def _ratio(counter: Counter, call: Callable[[], object]) -> Tuple[float, float]:
    """(counter rate during call / rate during sleep, call duration)."""
    start_count, start = counter.count, time.perf_counter()
    call()
    during = counter.count - start_count
    elapsed = time.perf_counter() - start
    sleep_count = counter.count
    time.sleep(elapsed)
    asleep = counter.count - sleep_count
    return (during / asleep if asleep else 0.0), elapsed


def best_ratio(work: Callable[[int], object]) -> float:
    """The best of ATTEMPTS ratios of `work(scale)`, a call doing `scale` units of work.

    A call shorter than MIN_CALL_S cannot be judged (the switch interval is a
    large part of it), so the scale doubles until one is long enough: a machine
    that got faster since the work was sized is no reason to fail.
    """
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    scale = 1
    try:
        best = 0.0
        with Counter() as counter:
            for _ in range(ATTEMPTS):
                while True:
                    ratio, elapsed = _ratio(counter, functools.partial(work, scale))
                    if elapsed >= MIN_CALL_S:
                        break
                    assert scale < MAX_SCALE, f"{scale} units took {elapsed:.3f} s: no longer"
                    scale *= 2
                best = max(best, ratio)
        return best
    finally:
        sys.setswitchinterval(old)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """128 MiB of lines: long enough to hash for well over MIN_CALL_S."""
    path = tmp_path_factory.mktemp("gil") / "big.log"
    line = b"x" * 63 + b"\n"
    with path.open("wb") as handle:
        block = line * 16384  # 1 MiB
        for _ in range(128):
            handle.write(block)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def big_dir() -> Iterator[Path]:
    """50,000 entries; in tmpfs where there is one, because creating them on disk is slow."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="sky-rs-gil-", dir=parent))
    try:
        for i in range(50_000):
            os.close(os.open(path / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _calibrated_sum_size() -> int:
    n = 1_000_000
    while True:
        start = time.perf_counter()
        sum(range(n))
        if time.perf_counter() - start >= MIN_CALL_S * 1.5:
            return n
        n *= 2


def test_negative_control_holding_the_gil_is_caught() -> None:
    n = _calibrated_sum_size()
    assert best_ratio(lambda scale: sum(range(n * scale))) < RELEASED_MIN_RATIO


def test_hash_file_releases_the_gil(native: ModuleType, big_file: Path) -> None:
    def hashes(scale: int) -> object:
        return [native.hash_file(str(big_file), "sha512") for _ in range(scale)]

    assert best_ratio(hashes) >= RELEASED_MIN_RATIO


def test_read_last_n_lines_releases_the_gil(native: ModuleType, big_file: Path) -> None:
    # One byte per read: the native work is hundreds of thousands of reads, while
    # turning the 5,000 lines into Python strings (which needs the GIL) is brief.
    def tails(scale: int) -> object:
        return [native.read_last_n_lines(str(big_file), 5000, chunk_size=1) for _ in range(scale)]

    assert best_ratio(tails) >= RELEASED_MIN_RATIO


def test_estimate_fd_for_directory_releases_the_gil(native: ModuleType, big_dir: Path) -> None:
    def listings(scale: int) -> object:
        return [native.estimate_fd_for_directory(str(big_dir)) for _ in range(LISTINGS * scale)]

    assert best_ratio(listings) >= RELEASED_MIN_RATIO

"""fork while other threads are inside native calls, in this process.

A lock held across fork() deadlocks the child. Exit, fork and Ctrl-C in many
short-lived processes, where a rare crash shows, are `test_exit_stress.py`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

FORKS = 12
CHILD_TIMEOUT_S = 20.0


def _child_calls(native: ModuleType, path: str) -> bool:
    """One call of every function in the forked child; True when all answered."""
    calls = [
        lambda: native.read_last_n_lines(path, 3),
        lambda: native.hash_file(path, "sha256").hexdigest(),
        lambda: native.base36_encode("ff"),
        lambda: native.format_float(2.5, 1),
        lambda: native.truncate_long_string("a b c d e f", 5),
        lambda: native.get_cpu_count(),
        lambda: native.get_mem_size_gb(),
        lambda: native.get_parallel_threads(None),
        lambda: native.is_process_alive(os.getpid()),
        lambda: native.get_max_workers_for_file_mounts({}),
        lambda: native.estimate_fd_for_directory(os.path.dirname(path)),
        lambda: native.find_free_port(42000),
    ]
    for call in calls:
        call()
    return True


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"forked child {pid} hung for {timeout} s (a lock held across fork?)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_while_threads_are_in_native_calls(native: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "data.log"
    path.write_bytes(b"line\n" * 200_000)
    stop = threading.Event()
    errors: List[BaseException] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                native.hash_file(str(path), "sha256")
                native.read_last_n_lines(str(path), 50)
                native.get_cpu_count()
                native.estimate_fd_for_directory(str(tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.1)
        for _ in range(FORKS):
            with warnings.catch_warnings():
                # 3.12+ warns that forking a threaded process may deadlock: the point here.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = 0 if _child_calls(native, str(path)) else 1
                finally:
                    os._exit(code)
            status = _wait(pid, CHILD_TIMEOUT_S)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []

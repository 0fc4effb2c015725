"""fork while other threads are inside native calls, interpreter shutdown with native
calls in flight, and Ctrl-C during a long native call.

These are where a native extension crashes or hangs but a pure-Python one
doesn't: a lock held across fork() deadlocks the child; a daemon thread that
wants the GIL back after finalization can crash the exit; a signal that
arrives while the GIL is released must still reach Python afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
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


SHUTDOWN_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import sky_rs
    native = sky_rs._native
    path = sys.argv[1]

    def hammer():
        while True:
            native.hash_file(path, "sha512")  # releases the GIL for most of the call
            native.read_last_n_lines(path, 100)

    for _ in range(4):
        threading.Thread(target=hammer, daemon=True).start()
    time.sleep(0.3)
    print("exiting", flush=True)
    sys.exit(0)
    """
)


def test_interpreter_exit_with_native_calls_in_flight(native: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1024 * 1024) * 32)
    for attempt in range(8):
        proc = subprocess.run(
            [sys.executable, "-c", SHUTDOWN_SCRIPT, str(path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, (attempt, proc.returncode, proc.stderr[-2000:])
        assert proc.stdout.strip() == "exiting"


SIGINT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import sky_rs
    path = sys.argv[1]
    threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        for _ in range(50):
            sky_rs._native.hash_file(path, "sha512")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(0)
    print("not interrupted", flush=True)
    sys.exit(1)
    """
)


def test_ctrl_c_during_a_native_call_reaches_python(native: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1024 * 1024) * 32)
    proc = subprocess.run(
        [sys.executable, "-c", SIGINT_SCRIPT, str(path)], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.strip() == "interrupted"

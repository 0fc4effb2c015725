"""What the leak detectors call: one workload per function, run on either backend.

A *workload* is a short list of calls of one function that walks its main
paths: answers and the typed errors (an error path that forgets to close a
file or drop a reference leaks as surely as a success path). One *round* runs
every call of the workload once; the detectors count growth per round and per
call. Every detector, in-process or in a child process, builds its workload
here, so they all exercise exactly the same calls.

Runs on CPython 3.8+ (the oldest interpreter of the matrix).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Tuple, Type

import sky_rs

# Every public function: the dispatcher's own list, so a thirteenth is never missed here.
FUNCTIONS: Tuple[str, ...] = sky_rs.FUNCTIONS
# "rust" is `sky_rs._native`, "python" is `sky_rs.fallback` (the dispatcher's
# fast path *is* the native builtin, so these two are every code path).
BACKENDS: Tuple[str, ...] = ("rust", "python")
BACKEND_MODULES: Dict[str, str] = {"rust": "sky_rs._native", "python": "sky_rs.fallback"}

TAIL_LINES = 200
BLOB_BYTES = 64 * 1024
DIRECTORY_ENTRIES = 8
# Variables that would make the system functions take another path than the
# machine's own; the workloads run with them unset.
OVERRIDING_VARIABLES = (
    "SKYPILOT_POD_CPU_CORE_LIMIT",
    "SKYPILOT_POD_MEMORY_GB_LIMIT",
    "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
)


@dataclasses.dataclass(frozen=True)
class Call:
    """One call: its arguments and the exception type it must raise (or None)."""

    args: Tuple[Any, ...]
    kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    raises: Type[BaseException] | None = None


@dataclasses.dataclass(frozen=True)
class Workload:
    function: str
    backend: str
    target: Callable[..., Any]
    calls: Tuple[Call, ...]

    @property
    def label(self) -> str:
        return f"{self.function}[{self.backend}]"

    def argument_objects(self) -> List[Any]:
        """Every object passed to the function (what a leaked reference would pin)."""
        objects: List[Any] = []
        for call in self.calls:
            objects.extend(call.args)
            objects.extend(call.kwargs.values())
        return objects


class WorkloadError(AssertionError):
    """A call did not answer as the workload expects: the harness is wrong, not leaky."""


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Files the I/O functions work on, made once per test session."""

    root: Path

    @property
    def tail_file(self) -> Path:
        return self.root / "tail.txt"

    @property
    def blob_file(self) -> Path:
        return self.root / "blob.bin"

    @property
    def directory(self) -> Path:
        return self.root / "mounts"

    @property
    def missing(self) -> Path:
        return self.root / "does-not-exist"


def make_workspace(root: Path) -> Workspace:
    workspace = Workspace(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = (f"line {index}: {'x' * (index % 50)}\n" for index in range(TAIL_LINES))
    workspace.tail_file.write_text("".join(lines), encoding="utf-8")
    workspace.blob_file.write_bytes(bytes(range(256)) * (BLOB_BYTES // 256))
    workspace.directory.mkdir(exist_ok=True)
    for index in range(DIRECTORY_ENTRIES):
        (workspace.directory / f"entry-{index}").write_text("x", encoding="utf-8")
    return workspace


def backend_module(backend: str) -> ModuleType:
    """The module of a backend; a native module that does not import is an error."""
    return importlib.import_module(BACKEND_MODULES[backend])


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A TCP port bound (without SO_REUSEADDR) for as long as the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        yield sock.getsockname()[1]


def _calls(function: str, workspace: Workspace, port: int) -> Tuple[Call, ...]:
    sentence = "the quick brown fox jumps over the lazy dog " * 3
    digest = hashlib.sha256(b"sky_rs").hexdigest()
    table: Dict[str, Tuple[Call, ...]] = {
        "read_last_n_lines": (
            Call((str(workspace.tail_file), 5)),
            Call((os.fsencode(workspace.tail_file), 3), {"chunk_size": 64}),
            Call((workspace.tail_file, 0)),
            Call((str(workspace.missing), 1), raises=FileNotFoundError),
        ),
        "hash_file": (
            Call((str(workspace.blob_file), "sha256")),
            Call((workspace.blob_file, "md5")),
            # Opens the file, then refuses the algorithm: the file must be closed.
            Call((str(workspace.blob_file), "shake_128"), raises=ValueError),
            Call((str(workspace.missing), "sha256"), raises=FileNotFoundError),
        ),
        "find_free_port": (
            Call((0,)),
            # The first candidate is taken: its bind fails and the next is probed.
            Call((port,)),
            Call((-1,), raises=ValueError),
        ),
        "base36_encode": (
            Call(("ff",)),
            Call((digest,)),
            Call((b"0x_dead_beef",)),
            Call(("not hex",), raises=ValueError),
        ),
        "format_float": (
            Call((3.14159, 2)),
            Call((2.0,)),
            Call((12345,)),
            Call(("x",), raises=TypeError),
        ),
        "truncate_long_string": (
            Call((sentence, 10)),
            Call((sentence, 11, True)),
            Call(("short",)),
            Call((sentence, -1), raises=ValueError),
        ),
        "get_cpu_count": (Call(()),),
        "get_mem_size_gb": (Call(()),),
        "get_parallel_threads": (
            Call(()),
            Call(("kubernetes",)),
            Call((5,), raises=TypeError),
        ),
        "is_process_alive": (
            Call((os.getpid(),)),
            Call((2**31 - 1,)),
            Call((0,), raises=ValueError),
        ),
        "get_max_workers_for_file_mounts": (
            Call(({"/mnt/a": str(workspace.directory), "/mnt/b": str(workspace.missing)},)),
            Call(({"/mnt/a": str(workspace.directory)}, "kubernetes")),
            Call(([],), raises=TypeError),
        ),
        "estimate_fd_for_directory": (
            Call((str(workspace.directory),)),
            Call((str(workspace.missing),), raises=FileNotFoundError),
        ),
    }
    return table[function]


def make_workload(function: str, backend: str, workspace: Workspace, port: int) -> Workload:
    """The workload of `function` on `backend`; `port` is a port that is kept busy."""
    target = getattr(backend_module(backend), function)
    return Workload(function, backend, target, _calls(function, workspace, port))


def run_rounds(workload: Workload, rounds: int) -> None:
    """Run every call of the workload `rounds` times, keeping nothing they return.

    There is one call site, so that memray groups all the allocations of a
    call under one Python stack. Its `filter_fn` recognises them by this
    frame's name (`MEMRAY_FRAME` in test_memray_leaks.py): keep them in step.
    """
    target = workload.target
    calls = workload.calls
    for _ in range(rounds):
        for call in calls:
            try:
                target(*call.args, **call.kwargs)
            except Exception as exc:
                if call.raises is None or not isinstance(exc, call.raises):
                    raise WorkloadError(f"{workload.label}{call.args!r} raised {exc!r}") from exc
                continue
            if call.raises is not None:
                raise WorkloadError(f"{workload.label}{call.args!r} did not raise {call.raises}")


def results_of_one_round(workload: Workload) -> List[Any]:
    """What each call returns (None for a call that raises as expected)."""
    results: List[Any] = []
    for call in workload.calls:
        try:
            results.append(workload.target(*call.args, **call.kwargs))
        except Exception as exc:
            if call.raises is None or not isinstance(exc, call.raises):
                raise WorkloadError(f"{workload.label}{call.args!r} raised {exc!r}") from exc
            results.append(None)
    return results


def rounds_for(workload: Workload, min_calls: int) -> int:
    """The fewest rounds that make at least `min_calls` calls."""
    per_round = len(workload.calls)
    return max(1, -(-min_calls // per_round))


def unset_overriding_variables() -> None:
    for name in OVERRIDING_VARIABLES:
        os.environ.pop(name, None)

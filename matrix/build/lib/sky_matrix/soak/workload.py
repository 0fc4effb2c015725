"""The soak's inputs: for each of the twelve functions, a small cycle of calls.

Each case knows what the contract predicts for it: an exception type, or a
value. Deterministic values are taken once, at set-up, from the Python
reference (``sky_rs.fallback``), and every later call — on either backend —
must give the same; values that may legitimately vary (CPU count, memory, a
free port) are checked by type and range. Anything else is an *error*: an
exception the contract doesn't predict for that input, a missing predicted
exception, or a different answer.

Inputs are small on purpose (a soak is about time, not size): a 200-line log
and a 4 KiB file in a temporary directory, a few strings, hex numbers and
floats, the process's own pid, a mapping of three small directories.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import sky_rs

BACKENDS = ("rust", "python")

# Calls per second per (function, backend). 20/s × 12 functions × 2 backends
# is ~480 calls/s: enough to surface a leak of a few bytes per call within
# minutes, while leaving most of one core idle so that latency measures the
# functions, not a saturated driver.
DEFAULT_RATE = 20.0
# find_free_port binds real sockets (and leaves nothing behind only if it
# closes them): once a second per backend keeps it in the soak without
# churning the kernel's port table.
RATE_OVERRIDES: Dict[str, float] = {"find_free_port": 1.0}
# Above the ephemeral range's usual start (32768) the ports are quiet here.
FREE_PORT_START = 42000

Check = Callable[[Any], bool]


@dataclasses.dataclass(frozen=True)
class Case:
    """One input and what the contract predicts for it."""

    label: str
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    raises: Optional[Type[BaseException]] = None
    check: Optional[Check] = None  # None: must equal the reference's answer
    expected: Any = None  # filled in from the reference at set-up


@dataclasses.dataclass
class Stream:
    """What one (function, backend) pair calls, at which rate, with which inputs."""

    function: str
    backend: str
    call: Callable[..., Any]
    cases: List[Case]
    rate: float

    @property
    def key(self) -> Tuple[str, str]:
        return (self.function, self.backend)


class WorkloadError(Exception):
    """The workload can't be set up (a broken reference, a missing backend)."""


def judge(case: Case, outcome_ok: bool, outcome: Any) -> Optional[str]:
    """None when the outcome is the predicted one, else a one-line description."""
    if case.raises is not None:
        if outcome_ok:
            return f"{case.label}: expected {case.raises.__name__}, returned {outcome!r:.80}"
        if type(outcome) is not case.raises:
            return f"{case.label}: expected {case.raises.__name__}, raised {_describe(outcome)}"
        return None
    if not outcome_ok:
        return f"{case.label}: raised {_describe(outcome)}"
    if case.check is not None:
        return None if case.check(outcome) else f"{case.label}: unexpected value {outcome!r:.80}"
    if type(outcome) is not type(case.expected) or outcome != case.expected:
        return f"{case.label}: returned {outcome!r:.80}, reference {case.expected!r:.80}"
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _is_int_at_least(low: int) -> Check:
    return lambda value: type(value) is int and value >= low


def _is_port_from(start: int) -> Check:
    return lambda value: type(value) is int and start <= value < 65535


def _is_positive_float(value: Any) -> bool:
    return type(value) is float and value > 0


class Inputs:
    """The files and directories the cases read, in a private temporary directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sky-rs-soak-"))
        self.log = self.root / "tail.log"
        lines = [f"line {i}: {'ünïcödé ' * (i % 4)}{'x' * (i % 50)}" for i in range(200)]
        self.log.write_bytes(("\r\n".join(lines[:100]) + "\n" + "\n".join(lines[100:])).encode())
        self.blob = self.root / "blob.bin"
        self.blob.write_bytes(bytes(range(256)) * 16)
        self.empty = self.root / "empty.txt"
        self.empty.write_bytes(b"")
        self.dirs: List[Path] = []
        for index, entries in enumerate((3, 10, 25)):
            directory = self.root / f"mount{index}"
            directory.mkdir()
            for entry in range(entries):
                (directory / f"f{entry}").write_bytes(b"")
            self.dirs.append(directory)
        self.missing = self.root / "missing"

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def default_cases(inputs: Inputs) -> Dict[str, List[Case]]:
    """The cycle of inputs per function. Exceptions are the contract's typed ones."""
    log, blob, missing = str(inputs.log), str(inputs.blob), str(inputs.missing)
    mounts = {f"/mnt/{i}": str(d) for i, d in enumerate(inputs.dirs)}
    mounts["/mnt/url"] = "s3://bucket/key"
    mounts["/mnt/missing"] = missing
    digest_hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    return {
        "read_last_n_lines": [
            Case("tail 10", (log, 10)),
            Case("tail 150, small chunks", (log, 150), {"chunk_size": 64}),
            Case("tail 0", (log, 0)),
            Case("empty file", (str(inputs.empty), 5)),
            Case("missing file", (missing, 5), raises=FileNotFoundError),
            Case("directory", (str(inputs.root), 3), raises=IsADirectoryError),
        ],
        "hash_file": [
            Case("sha256", (blob, "sha256")),
            Case("md5", (blob, "md5")),
            Case("blake2b", (log, "blake2b")),
            Case("sha3_256", (log, "sha3_256")),
            Case("missing file", (missing, "sha256"), raises=FileNotFoundError),
            Case("unknown algorithm", (blob, "no-such-hash"), raises=ValueError),
            Case("xof", (blob, "shake_128"), raises=ValueError),
        ],
        "find_free_port": [
            Case("from 42000", (FREE_PORT_START,), check=_is_port_from(FREE_PORT_START)),
            Case("out of range", (70000,), raises=ValueError),
        ],
        "base36_encode": [
            Case("ff", ("ff",)),
            Case("sha256 digest", (digest_hex,)),
            Case("prefix and underscores", ("0x_dead_beef",)),
            Case("bytes", (b"  7fffffffffffffffffff  ",)),
            Case("negative", ("-1",), raises=ValueError),
            Case("not hex", ("xyz",), raises=ValueError),
            Case("int", (255,), raises=TypeError),
        ],
        "format_float": [
            Case("pi 2", (3.14159, 2)),
            Case("tie", (2.55,)),
            Case("integral", (1e20,)),
            Case("int", (7,)),
            Case("nan", (float("nan"),)),
            Case("negative precision", (1.5, -1), raises=ValueError),
            Case("str", ("1.5",), raises=TypeError),
        ],
        "truncate_long_string": [
            Case("words", ("a b c d e f", 10)),
            Case("middle", ("abcdefghijklmnopqrstuvwxyz", 11, True)),
            Case("unicode", ("ünïcödé " * 10, 20)),
            Case("short", ("short",)),
            Case("negative length", ("x", -1), raises=ValueError),
        ],
        "get_cpu_count": [Case("cpus", (), check=_is_int_at_least(1))],
        "get_mem_size_gb": [Case("memory", (), check=_is_positive_float)],
        "get_parallel_threads": [
            Case("default", ()),
            Case("kubernetes", ("Kubernetes",)),
            Case("int cloud", (5,), raises=TypeError),
        ],
        "is_process_alive": [
            Case("self", (os.getpid(),)),
            Case("largest pid_t", (2**31 - 1,)),
            Case("zero", (0,), raises=ValueError),
            Case("str", ("1",), raises=TypeError),
        ],
        "get_max_workers_for_file_mounts": [
            Case("three dirs", (mounts,)),
            Case("kubernetes", (mounts, "kubernetes")),
            Case("empty", ({},)),
            Case("list", ([],), raises=TypeError),
        ],
        "estimate_fd_for_directory": [
            Case("25 entries", (str(inputs.dirs[2]),)),
            Case("missing", (missing,), raises=FileNotFoundError),
            Case("file", (blob,), raises=NotADirectoryError),
        ],
    }


def resolve_expected(cases: Dict[str, List[Case]]) -> Dict[str, List[Case]]:
    """Fill in each value case's expected answer from the Python reference.

    A reference answer that contradicts the case's prediction is a broken
    set-up (or a broken reference), reported before the soak starts.
    """
    resolved: Dict[str, List[Case]] = {}
    for function, function_cases in cases.items():
        reference = getattr(sky_rs.fallback, function)
        resolved[function] = []
        for case in function_cases:
            try:
                outcome_ok, outcome = True, reference(*case.args, **case.kwargs)
            except Exception as exc:
                outcome_ok, outcome = False, exc
            if case.raises is None and case.check is None:
                if not outcome_ok:
                    raise WorkloadError(
                        f"{function} reference: {case.label}: raised {_describe(outcome)}"
                    )
                case = dataclasses.replace(case, expected=outcome)
            problem = judge(case, outcome_ok, outcome)
            if problem is not None:
                raise WorkloadError(f"{function} reference: {problem}")
            resolved[function].append(case)
    return resolved


def native_import_error() -> Optional[str]:
    """Why the Rust backend can't be soaked here, or None when it can."""
    native = getattr(sky_rs, "_native", None)
    if native is None:
        return sky_rs.backend_info().get("native_import_error") or "sky_rs._native is missing"
    return None


def build_streams(
    cases: Dict[str, List[Case]],
    backends: Sequence[str],
    rate: float = DEFAULT_RATE,
    rate_overrides: Optional[Dict[str, float]] = None,
) -> List[Stream]:
    """One stream per (function, backend): Rust is ``sky_rs._native``, Python ``fallback``.

    The Rust side is the native builtin itself — what ``sky_rs.<fn>`` is bound
    to on the fast path — so the soak measures it without the dispatcher's
    optional wrappers.
    """
    overrides = dict(RATE_OVERRIDES if rate_overrides is None else rate_overrides)
    streams: List[Stream] = []
    for function in sky_rs.FUNCTIONS:
        for backend in backends:
            if backend == "rust":
                module: Any = sky_rs._native
                if module is None:
                    raise WorkloadError(f"Rust backend requested: {native_import_error()}")
            elif backend == "python":
                module = sky_rs.fallback
            else:
                raise ValueError(f"unknown backend {backend!r}")
            streams.append(
                Stream(
                    function=function,
                    backend=backend,
                    call=getattr(module, function),
                    cases=list(cases[function]),
                    rate=min(overrides.get(function, rate), rate),
                )
            )
    return streams

"""What the contract says each function answers, given the sources a restricted process saw.

The probe reports, next to each function's outcome, what plain primitives observed under the
same restriction: ``sysconf``, ``sched_getaffinity``, ``sysinfo(2)``, ``/proc/meminfo``,
``getrlimit``, ``bind``, ``/proc/<pid>/stat``, ``kill(pid, 0)``, ``stat``/``open``/``listdir``
of each path. :func:`expected` applies the contract (functions.md, docs/internals.md) to those
observations, so one model covers every restriction: a denied ``sched_getaffinity`` is simply
an affinity source that failed, and the contract says what that means ("no affinity limit").

The cgroup limits are the one source that is not re-observed in the child (resolving them *is*
the code under test); the test passes them in as :class:`CgroupOracle`, computed from the limits
it set and the files it hid.
"""

from __future__ import annotations

import dataclasses
import errno
from typing import Any, Dict, List, Mapping

GIB = 1024**3
UNLIMITED_FD = 2**31 - 1
FD_LIMIT_IF_UNKNOWN = 1024
NO_FREE_PORT = "No free ports available."


@dataclasses.dataclass(frozen=True)
class CgroupOracle:
    """The cgroup limits the restricted process should find (None: no limit)."""

    cpu: int | None
    memory_if_physical_known: int | None
    memory_if_physical_unknown: int | None  # v1's "above physical = none" cannot apply


@dataclasses.dataclass(frozen=True)
class Expected:
    """A return value (exact, or an int range), or an exception."""

    ok: bool
    type: str
    value: Any = None
    low: int | None = None  # for int ranges (find_free_port): low <= value < high
    high: int | None = None
    errno: int | None = None
    filename: str | None = None
    message: str | None = None

    def describe(self) -> str:
        if self.ok and self.low is not None:
            return f"an int in [{self.low}, {self.high})"
        if self.ok:
            return f"{self.type} {self.value!r}"
        extra = f" errno={self.errno}" if self.errno is not None else ""
        extra += f" filename={self.filename!r}" if self.filename is not None else ""
        extra += f" {self.message!r}" if self.message is not None else ""
        return f"raises {self.type}{extra}"


def returns(value: Any) -> Expected:
    kind = (
        "FileDigest" if isinstance(value, dict) and "hexdigest" in value else type(value).__name__
    )
    return Expected(True, kind, value)


def os_error(code: int | None, filename: str | None = None) -> Expected:
    """The ``OSError`` subclass Python picks for ``code`` (``PermissionError`` for EPERM...)."""
    kind = type(OSError(code, "x")).__name__ if code is not None else "OSError"
    return Expected(False, kind, errno=code, filename=filename)


def oserror_of(observation: Mapping[str, Any], filename: str | None) -> Expected:
    return os_error(observation["errno"], filename)


# ------------------------------------------------------------------------------- the model


def expected(
    case: Mapping[str, Any],
    sources: Mapping[str, Any],
    cgroup: CgroupOracle,
    contents: Mapping[str, Any],
) -> Expected:
    """The contract's answer for one probe case. ``contents`` holds what the test wrote:
    ``lines[path_key]`` (all lines of a file) and ``sha256[path_key]``. Functions that read
    no system source (base36_encode, format_float, truncate_long_string) carry their answer
    in the case as ``expect``: no restriction may change it."""
    if "expect" in case:
        return returns(case["expect"])
    model = _MODELS[case["function"]]
    return model(case["args"], sources, cgroup, contents)


def _path(sources: Mapping[str, Any], arg: Any) -> Mapping[str, Any]:
    return sources["paths"][arg["path"]]


def _read_last_n_lines(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    path = _path(sources, args[0])
    n = args[1]
    if not path["stat"]["ok"]:
        return oserror_of(path["stat"], path["path"])
    if n == 0:
        return returns([])
    if path["stat"]["value"] == "dir":
        return os_error(errno.EISDIR, path["path"])
    if not path["open"]["ok"]:
        return oserror_of(path["open"], path["path"])
    lines: List[str] = contents["lines"][args[0]["path"]]
    return returns(lines[-n:])


def _hash_file(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    path = _path(sources, args[0])
    if not path["open"]["ok"]:  # opened before the algorithm name is resolved
        return oserror_of(path["open"], path["path"])
    if args[1] != "sha256":
        return Expected(False, "ValueError")
    digest = {
        "name": "sha256",
        "hexdigest": contents["sha256"][args[0]["path"]],
        "digest_size": 32,
        "block_size": 64,
    }
    return returns(digest)


def _find_free_port(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    if not sources["bind"]["ok"]:
        # Every bind() fails the same way, so every port is skipped.
        return Expected(False, "OSError", message=NO_FREE_PORT)
    low = args[0]
    unprivileged = sources["unprivileged_port_start"]
    if sources["euid"] != 0 and unprivileged["ok"]:
        low = max(low, unprivileged["value"])
    # Which port is free depends on the moment; the range is what the contract fixes.
    return Expected(True, "int", low=low, high=65535)


def _get_cpu_count(args: List[Any], sources: Any, cgroup: CgroupOracle, contents: Any) -> Expected:
    limits: List[int] = []
    online = sources["online"]
    if online["ok"] and online["value"] > 0:
        limits.append(online["value"])
    if sources["affinity"]["ok"]:  # a failing sched_getaffinity: no affinity limit
        limits.append(sources["affinity"]["value"])
    if cgroup.cpu is not None:
        limits.append(cgroup.cpu)
    return returns(max(min(limits), 1) if limits else 1)


def physical_memory(sources: Mapping[str, Any]) -> int | None:
    """sysinfo(2), else MemTotal, else unknown."""
    for key in ("sysinfo_total", "meminfo_total"):
        observed = sources[key]
        if observed["ok"] and observed["value"]:
            return int(observed["value"])
    return None


def _get_mem_size_gb(
    args: List[Any], sources: Any, cgroup: CgroupOracle, contents: Any
) -> Expected:
    physical = physical_memory(sources)
    limit = (
        cgroup.memory_if_physical_known
        if physical is not None
        else cgroup.memory_if_physical_unknown
    )
    known = [value for value in (physical, limit) if value is not None]
    if not known:
        return Expected(False, "OSError")
    return returns(min(known) / GIB)


def parallel_threads(sources: Mapping[str, Any], cloud: str | None) -> int:
    cpus = sources["cpu_count"] or 1
    return max(4, cpus - 1) * (4 if cloud and cloud.lower() == "kubernetes" else 1)


def _get_parallel_threads(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    return returns(parallel_threads(sources, args[0] if args else None))


def _is_process_alive(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    observed = sources["pids"][args[0]["pid"]]
    state = observed["state"]
    if state["ok"] and state["value"]:
        return returns(state["value"] != "Z")
    kill0 = observed["kill0"]
    if kill0["ok"]:
        return returns(True)
    # ESRCH: dead. EPERM: it exists. Anything else: it could not be proven dead.
    return returns(kill0["errno"] != errno.ESRCH)


def soft_fd_limit(sources: Mapping[str, Any]) -> int:
    nofile = sources["nofile"]
    if not nofile["ok"]:
        return FD_LIMIT_IF_UNKNOWN  # a failing getrlimit counts as the Linux default
    soft = int(nofile["value"])
    if soft == sources["rlim_infinity"] or soft < 0:
        return UNLIMITED_FD
    return soft


def _get_max_workers(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    mounts: Dict[str, Any] = args[0]["mapping"]
    fd_per_rsync = 5
    for value in mounts.values():
        path = _path(sources, value)
        if not path["isdir"]:
            continue
        listed = path["listdir"]
        if not listed["ok"]:
            return oserror_of(listed, path["path"])
        fd_per_rsync = max(fd_per_rsync, 5 * listed["value"])
    workers = max((soft_fd_limit(sources) - 100) // fd_per_rsync, 1)
    cloud = args[1] if len(args) > 1 else None
    return returns(min(workers, parallel_threads(sources, cloud)))


def _estimate_fd(args: List[Any], sources: Any, cgroup: Any, contents: Any) -> Expected:
    path = _path(sources, args[0])
    listed = path["listdir"]  # as len(os.listdir(path)) counts them, or its error
    if not listed["ok"]:
        return oserror_of(listed, path["path"])
    return returns(5 * listed["value"])


_MODELS = {
    "read_last_n_lines": _read_last_n_lines,
    "hash_file": _hash_file,
    "find_free_port": _find_free_port,
    "get_cpu_count": _get_cpu_count,
    "get_mem_size_gb": _get_mem_size_gb,
    "get_parallel_threads": _get_parallel_threads,
    "is_process_alive": _is_process_alive,
    "get_max_workers_for_file_mounts": _get_max_workers,
    "estimate_fd_for_directory": _estimate_fd,
}


# ------------------------------------------------------------------------------- comparing


def matches(outcome: Mapping[str, Any], want: Expected) -> bool:
    """Does a probe outcome satisfy the expectation?"""
    if outcome["ok"] != want.ok or outcome["type"] != want.type:
        return False
    if want.ok:
        if want.low is not None:
            return want.low <= outcome["value"] < (want.high or 0)
        return _same(outcome["value"], want.value)
    if want.errno is not None and outcome.get("errno") != want.errno:
        return False
    if want.filename is not None and outcome.get("filename") != want.filename:
        return False
    return want.message is None or outcome.get("str") == want.message


def _same(left: Any, right: Any) -> bool:
    """Equal and of the same JSON type all the way down (True is not 1, 2.0 is not 2)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return bool(left == right)


def comparable(outcome: Mapping[str, Any], exact: bool = True) -> Any:
    """What must be identical between the Rust and the Python outcome."""
    if outcome["ok"]:
        return (True, outcome["type"], outcome["value"] if exact else None)
    return (False, outcome["type"], outcome.get("errno"), outcome.get("filename"))


def describe(outcome: Mapping[str, Any]) -> str:
    if outcome["ok"]:
        return f"returned {outcome['type']} {outcome['value']!r}"
    extra = f" errno={outcome.get('errno')}" if "errno" in outcome else ""
    extra += f" filename={outcome.get('filename')!r}" if outcome.get("filename") else ""
    panic = " (a Rust panic)" if outcome.get("panic") else ""
    return f"raised {outcome['type']}({outcome.get('str')!r}){extra}{panic}"

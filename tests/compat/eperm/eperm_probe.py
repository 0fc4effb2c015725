"""The child of the EPERM-degradation suite: every function on both backends, and the sources.

Run as ``python eperm_probe.py`` with the plan (JSON) in the environment variable
``SKY_RS_PROBE_PLAN``; prints one JSON document on stdout. It is the program a restriction is
applied to (by ``eperm_restrict.py`` before exec, or by itself after its imports for the
syscalls an interpreter cannot start without), so it imports everything it will need first.

For each case it records what ``sky_rs.<fn>`` (Rust, when the native module loads) and
``sky_rs.fallback.<fn>`` (Python) did. Next to them it records the *sources* as plain
primitives see them under the same restriction (``os.sched_getaffinity``, ``sysinfo(2)``,
``/proc/<pid>/stat``, ``kill(pid, 0)``, ``os.listdir``...), so that the test can apply the
contract to what the restricted process could actually observe.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import socket
import stat
import sys
import time
from typing import Any, Dict, List

# Applied before sky_rs is imported: the dispatcher must then fall back for the whole process.
_PLAN: Dict[str, Any] = json.loads(os.environ["SKY_RS_PROBE_PLAN"])
if _PLAN.get("block_native_in_sys_modules"):
    sys.modules["sky_rs._native"] = None  # type: ignore[assignment]

import eperm_restrict  # noqa: E402

import sky_rs  # noqa: E402
from sky_rs import fallback  # noqa: E402


class _SysInfo(ctypes.Structure):
    # struct sysinfo (linux/sysinfo.h); padded generously at the end.
    _fields_ = [
        ("uptime", ctypes.c_long),
        ("loads", ctypes.c_ulong * 3),
        ("totalram", ctypes.c_ulong),
        ("freeram", ctypes.c_ulong),
        ("sharedram", ctypes.c_ulong),
        ("bufferram", ctypes.c_ulong),
        ("totalswap", ctypes.c_ulong),
        ("freeswap", ctypes.c_ulong),
        ("procs", ctypes.c_ushort),
        ("pad", ctypes.c_ushort),
        ("totalhigh", ctypes.c_ulong),
        ("freehigh", ctypes.c_ulong),
        ("mem_unit", ctypes.c_uint),
        ("_reserved", ctypes.c_char * 64),
    ]


_LIBC = ctypes.CDLL(None, use_errno=True)


def _error(exc: BaseException) -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "ok": False,
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "str": str(exc),
        "panic": any(cls.__name__ == "PanicException" for cls in type(exc).__mro__),
    }
    if isinstance(exc, OSError):
        info["errno"] = exc.errno
        info["filename"] = (
            exc.filename if isinstance(exc.filename, (str, type(None))) else repr(exc.filename)
        )
    return info


def _value(value: Any) -> Dict[str, Any]:
    if isinstance(value, fallback.FileDigest) or type(value).__name__ == "FileDigest":
        value = {
            "name": value.name,
            "hexdigest": value.hexdigest(),
            "digest_size": value.digest_size,
            "block_size": value.block_size,
        }
        return {"ok": True, "type": "FileDigest", "value": value}
    return {"ok": True, "type": type(value).__name__, "value": value}


def _call(fn: Any, args: List[Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return _value(fn(*args, **kwargs))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a PanicException is a BaseException
        return _error(exc)


def _primitive(fn: Any) -> Dict[str, Any]:
    try:
        return {"ok": True, "value": fn()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno}


def _sysinfo_total() -> int:
    info = _SysInfo()
    if _LIBC.sysinfo(ctypes.byref(info)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(info.totalram) * int(info.mem_unit or 1)


def _read_bytes(path: str, limit: int = 1 << 20) -> bytes:
    """What open(2) and read(2) give: the system's answer. Not Python's open(), which also
    fstat()s the file, and on PyPy fails when that fstat is denied (CPython's tolerates it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while limit > 0:
            chunk = os.read(fd, min(limit, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            limit -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _meminfo_total() -> int | None:
    for line in _read_bytes("/proc/meminfo").split(b"\n"):
        if line.startswith(b"MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _proc_state(pid: int) -> str:
    content = _read_bytes(f"/proc/{pid}/stat")
    return content[content.rfind(b")") + 1 :].lstrip(b" ")[:1].decode()


def _kill0(pid: int) -> str:
    os.kill(pid, 0)
    return "ok"


def _bind_any() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


# The raw syscall: glibc's statx() wrapper emulates it with fstatat when it gets ENOSYS.
_SYS_STATX = {"x86_64": 332, "aarch64": 291}.get(platform.machine())


def _statx_root() -> bool:
    buffer = ctypes.create_string_buffer(512)  # struct statx is 256 bytes
    at_fdcwd, statx_basic_stats = -100, 0x7FF
    if _LIBC.syscall(_SYS_STATX, at_fdcwd, b"/", 0, statx_basic_stats, buffer) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return True


def _read_int(path: str) -> int:
    return int(_read_bytes(path).strip())


def _read_text(path: str) -> str:
    return _read_bytes(path).decode(errors="replace")


def _read_ok(path: str) -> bool:
    _read_bytes(path, 1)
    return True


def _sources(pids: Dict[str, int], paths: Dict[str, str], files: List[str]) -> Dict[str, Any]:
    getrlimit = resource.getrlimit
    process_cpu_count = getattr(os, "process_cpu_count", None)
    return {
        "euid": os.geteuid(),
        "online": _primitive(lambda: os.sysconf("SC_NPROCESSORS_ONLN")),
        "affinity": _primitive(lambda: len(os.sched_getaffinity(0))),
        "cpu_count": os.cpu_count(),
        # 3.13+: the affinity mask's size; it raises when sched_getaffinity is denied.
        "process_cpu_count": _primitive(process_cpu_count) if process_cpu_count else None,
        "sysinfo_total": _primitive(_sysinfo_total),
        "meminfo_total": _primitive(_meminfo_total),
        "nofile": _primitive(lambda: getrlimit(resource.RLIMIT_NOFILE)[0]),
        "rlim_infinity": resource.RLIM_INFINITY,
        "bind": _primitive(_bind_any),
        # Not observed (None) on an architecture this probe has no syscall number for.
        "statx": _primitive(_statx_root) if _SYS_STATX else None,
        "files": {path: _primitive(lambda p=path: _read_ok(p)) for path in files},
        "proc_self_cgroup": _primitive(lambda: _read_text("/proc/self/cgroup")),
        "unprivileged_port_start": _primitive(
            lambda: _read_int("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        ),
        "pids": {
            key: {
                "pid": pid,
                "state": _primitive(lambda p=pid: _proc_state(p)),
                "kill0": _primitive(lambda p=pid: _kill0(p)),
            }
            for key, pid in pids.items()
        },
        "paths": {
            key: {
                "path": path,
                "stat": _primitive(lambda p=path: "dir" if _stat_is_dir(p) else "other"),
                "isdir": os.path.isdir(path),
                "open": _primitive(lambda p=path: _read_ok(p)),
                "listdir": _primitive(lambda p=path: len(os.listdir(p))),
            }
            for key, path in paths.items()
        },
    }


def _stat_is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.stat(path).st_mode)


def _resolve(arg: Any, pids: Dict[str, int], paths: Dict[str, str]) -> Any:
    """Plan arguments name pids and paths as {"pid": key} / {"path": key}."""
    if isinstance(arg, dict) and set(arg) == {"pid"}:
        return pids[arg["pid"]]
    if isinstance(arg, dict) and set(arg) == {"path"}:
        return paths[arg["path"]]
    if isinstance(arg, dict) and set(arg) == {"mapping"}:
        return {key: _resolve(value, pids, paths) for key, value in arg["mapping"].items()}
    return arg


def main() -> None:
    pids: Dict[str, int] = {key: int(pid) for key, pid in _PLAN["pids"].items()}
    pids["self"] = os.getpid()
    paths: Dict[str, str] = dict(_PLAN["paths"])
    in_process = eperm_restrict.expand_groups(
        [(group, errno_name) for group, errno_name in _PLAN.get("deny_in_process", [])]
    )
    denied: List[str] = []
    if in_process:
        # Everything that opens or stats a file is loaded by now (imports, libseccomp).
        denied = eperm_restrict.install_seccomp(in_process, eperm_restrict.load_libseccomp())
    started = time.monotonic()
    sources = _sources(pids, paths, list(_PLAN.get("files", [])))
    calls: Dict[str, int] = {}
    results: List[Dict[str, Any]] = []
    for case in _PLAN["cases"]:
        name = case["function"]
        args = [_resolve(arg, pids, paths) for arg in case["args"]]
        sys.stderr.write(f"eperm_probe: {case['id']}\n")
        sys.stderr.flush()
        rust = _call(getattr(sky_rs, name), args, {})
        calls[name] = calls.get(name, 0) + 1
        python = _call(getattr(fallback, name), args, {})
        results.append({"id": case["id"], "function": name, "rust": rust, "python": python})
    report = {
        "sources": sources,
        "results": results,
        "calls": calls,
        "stats": sky_rs.stats(),
        "backend_info": sky_rs.backend_info(),
        "package_file": sky_rs.__file__,
        "denied_in_process": denied,
        "seconds": time.monotonic() - started,
    }
    sys.stdout.write(json.dumps(report, default=repr))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

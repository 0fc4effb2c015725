"""The pure-Python reference implementation of the twelve ``sky_rs`` functions.

Standard library only; runs on CPython 3.8 and later. The Rust backend must
give the same answers and raise the same exception types (see the contract in
``functions.md`` and the shared decisions in ``docs/internals.md``).
"""

from __future__ import annotations

import collections.abc
import errno
import functools
import logging
import os
import re
import socket
import stat
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple, Union

# FileDigest lives in its own module (the native module builds it without
# importing the reference); it is re-exported here, where it always was.
from ._digest import FileDigest, _require_int, _type_name, new_hasher

__all__ = [
    "FileDigest",
    "base36_encode",
    "estimate_fd_for_directory",
    "find_free_port",
    "format_float",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
    "hash_file",
    "is_process_alive",
    "read_last_n_lines",
    "truncate_long_string",
]

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_LOGGER_NAME = "sky_rs"
# The cgroup and /proc readers are Linux's; any other Unix (macOS) has neither
# and follows the contract's "Platforms other than Linux".
_LINUX = sys.platform.startswith("linux")
_PID_MAX = 2**31 - 1
_UNLIMITED_FD = 2**31 - 1
_FD_LIMIT_IF_UNKNOWN = 1024
_LOW_FD_LIMIT = 1024
_FD_RESERVE = 100
_MIN_FD_PER_RSYNC = 5
_FD_PER_ENTRY = 5
_HASH_BUFFER_SIZE = 2**18
_READ_ALL_CHUNK = 2**16
# open(path, 'rb')'s flags (O_BINARY: Windows).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_GIB = 1024**3
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_ASCII_INTEGER = re.compile(rb"-?[0-9]+")
_BASE36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Below this many base-36 digits plain repeated division beats splitting.
_BASE36_LEAF_DIGITS = 48
# The largest precision the contract lets Python's formatter decide on (above it: ValueError).
_MAX_PRECISION = 2**31 - 1
_NAN = float("nan")


# --------------------------------------------------------------------------- checks


def _require_str(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")


def _require_optional_str(value: object, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {_type_name(value)}")


def _require_path(value: object, name: str) -> None:
    """``str``, ``bytes`` or ``os.PathLike``; never an ``int`` file descriptor."""
    if isinstance(value, (str, bytes)):
        return
    if isinstance(value, int) or not hasattr(type(value), "__fspath__"):
        raise TypeError(
            f"{name} must be a str, bytes or os.PathLike object, not {_type_name(value)}"
        )
    os.fspath(value)  # its TypeError when __fspath__ returns neither str nor bytes


def _os_error(code: int, filename: object) -> OSError:
    """``OSError(errno, strerror, filename)``: Python picks the subclass."""
    return OSError(code, os.strerror(code), filename)


def _with_filename(exc: OSError, path: PathArg) -> OSError:
    """A read or seek error names the file too, as open() errors do."""
    if exc.errno is None or exc.filename is not None:
        return exc
    return _os_error(exc.errno, os.fspath(path))


# --------------------------------------------------------------------------- I/O


def _open_for_reading(path: PathArg) -> int:
    """A descriptor of ``path`` open for reading, with the errors of ``open(path, 'rb')``.

    As CPython's ``open()`` does it: a directory is IsADirectoryError, and an ``fstat`` that
    fails does not fail the open (bpo-25717). PyPy's ``open()`` fails when ``fstat`` does (a
    seccomp filter denying the stat family) although the file can be read, so it is not used.
    The descriptor is not inheritable, as ``os.open`` makes every one (PEP 446).
    """
    # fspath first: PyPy's os.open names a PathLike itself in its errors, CPython its path.
    fd = os.open(os.fspath(path), _READ_FLAGS)
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        is_dir = False  # then reading says EISDIR for a directory
    except BaseException:
        os.close(fd)
        raise
    if is_dir:
        os.close(fd)
        raise _os_error(errno.EISDIR, os.fspath(path))
    return fd


def _read_all(fd: int) -> bytes:
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, _READ_ALL_CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_last_n_lines(
    file_path: PathArg,
    n: int,
    chunk_size: int = 8192,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> List[str]:
    """The last ``n`` lines of a file, read backwards in ``chunk_size`` pieces."""
    _require_path(file_path, "file_path")
    n = _require_int(n, "n")
    chunk_size = _require_int(chunk_size, "chunk_size")
    _require_str(encoding, "encoding")
    _require_str(errors, "errors")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    status = os.stat(file_path)
    if n == 0:
        return []
    if stat.S_ISDIR(status.st_mode):
        raise _os_error(errno.EISDIR, os.fspath(file_path))
    with open(file_path, "rb") as file:
        try:
            tail = _read_tail(file, n, chunk_size)
        except OSError as exc:
            raise _with_filename(exc, file_path) from None
    pieces = tail.split(b"\n")
    if pieces[-1] == b"":
        # The content ends with '\n' (or is empty): that last piece is no line.
        pieces.pop()
    kept = pieces[-n:]
    lines = [line.decode(encoding, errors).rstrip("\r") + "\n" for line in kept[:-1]]
    if kept:
        lines.append(kept[-1].decode(encoding, errors).rstrip("\r"))
    return lines


def _read_tail(file: Any, n: int, chunk_size: int) -> bytes:
    """Enough bytes from the end to hold the last ``n`` complete lines."""
    position = file.seek(0, os.SEEK_END)
    chunks: List[bytes] = []
    newlines_needed = n
    newlines_seen = 0
    while position > 0 and newlines_seen < newlines_needed:
        read_size = min(chunk_size, position)
        position -= read_size
        file.seek(position)
        chunk = file.read(read_size)
        if not chunks and chunk.endswith(b"\n"):
            # A final '\n' ends the last line; it does not start a new one.
            newlines_needed += 1
        chunks.append(chunk)
        newlines_seen += chunk.count(b"\n")
    chunks.reverse()
    return b"".join(chunks)


def hash_file(path: PathArg, hash_alg: str) -> FileDigest:
    """Hash a file's bytes with ``hashlib.new(hash_alg)``, streaming in bounded memory."""
    _require_path(path, "path")
    _require_str(hash_alg, "hash_alg")
    # Opened before the algorithm name is resolved, as SkyPilot does.
    fd = _open_for_reading(path)
    try:
        hasher, name = new_hasher(hash_alg)
        try:
            while True:
                chunk = os.read(fd, _HASH_BUFFER_SIZE)
                if not chunk:
                    break
                hasher.update(chunk)
        except OSError as exc:
            raise _with_filename(exc, path) from None
    finally:
        os.close(fd)
    return FileDigest(name, hasher.digest(), hasher.digest_size, hasher.block_size)


def find_free_port(start_port: int) -> int:
    """The first port in ``[start_port, 65535)`` that binds on all IPv4 interfaces."""
    start_port = _require_int(start_port, "start_port")
    if not 0 <= start_port <= 65535:
        raise ValueError(f"start_port must be in [0, 65535], got {start_port}")
    for port in range(start_port, 65535):
        # No SO_REUSEADDR: a port in TIME_WAIT is not free.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    raise OSError("No free ports available.")


# --------------------------------------------------------------------------- strings


def base36_encode(hex_str: Union[str, bytes, bytearray]) -> str:
    """A hexadecimal integer of any length (as ``int(hex_str, 16)`` parses it) in base 36."""
    if not isinstance(hex_str, (str, bytes, bytearray)):
        raise TypeError(f"hex_str must be str, bytes or bytearray, not {_type_name(hex_str)}")
    value = int(hex_str, 16)
    if value < 0:
        raise ValueError("base36_encode() needs a non-negative value")
    return _base36(value)


def _base36(value: int) -> str:
    if value == 0:
        return "0"
    # 36**w > 2**(5*w), so ceil(bits / 5) digits always suffice.
    width = -(-value.bit_length() // 5)
    powers: Dict[int, int] = {}
    pieces: List[str] = []
    _base36_fixed_width(value, width, powers, pieces)
    return "".join(pieces).lstrip("0")


def _base36_fixed_width(value: int, width: int, powers: Dict[int, int], out: List[str]) -> None:
    """Append exactly ``width`` base-36 digits of ``value`` (< 36**width) to ``out``.

    Divide and conquer, so that huge values need few huge divisions.
    """
    if width <= _BASE36_LEAF_DIGITS:
        digits = []
        for _ in range(width):
            value, digit = divmod(value, 36)
            digits.append(_BASE36_ALPHABET[digit])
        digits.reverse()
        out.append("".join(digits))
        return
    low_width = width // 2
    divisor = powers.get(low_width)
    if divisor is None:
        divisor = powers[low_width] = 36**low_width
    high, low = divmod(value, divisor)
    _base36_fixed_width(high, width - low_width, powers, out)
    _base36_fixed_width(low, low_width, powers, out)


def format_float(num: Union[int, float], precision: int = 1) -> str:
    """An int as ``str``; an integral float without decimals; else ``precision`` decimals."""
    # The contract checks ``precision`` first, for every ``num``: its type, then
    # its value, and only then the type of ``num`` (``format_float('x', -1)`` is
    # a ValueError).
    precision = _require_int(precision, "precision")
    if precision < 0:
        raise ValueError(f"precision must be non-negative, got {precision}")
    if not isinstance(num, (int, float)):
        raise TypeError(f"num must be an int or a float, not {_type_name(num)}")
    if isinstance(num, bool):
        return "True" if num else "False"
    if isinstance(num, int):
        return str(_require_int(num, "num"))
    value = float.__float__(num)
    if value.is_integer():
        return f"{value:.0f}"
    return _format_fixed(value, precision)


def _format_fixed(value: float, precision: int) -> str:
    """``f'{value:.{precision}f}'``, where a precision the formatter refuses is a ValueError.

    CPython refuses precisions near and above ``2**31`` with ``ValueError('precision too
    big')``; PyPy refuses them with a ``MemoryError`` before allocating anything (it says
    ``'nan'`` for ``.2147479552f`` and MemoryError for ``.2147483647f`` under any memory
    limit). The contract names one exception for a refused precision, ValueError; a
    MemoryError for a precision the formatter accepts (a finite value needing gigabytes of
    digits) stays what it is. The native module calls this for precisions beyond its own.
    """
    if precision > _MAX_PRECISION:
        raise ValueError("precision too big")
    spec = f".{precision}f"
    try:
        return format(value, spec)
    except MemoryError:
        if _formatter_refuses(spec):
            raise ValueError("precision too big") from None
        raise


def _formatter_refuses(spec: str) -> bool:
    """Whether the formatter refuses ``spec`` itself: nan needs three characters whatever the
    precision, so only a refusal of the precision makes formatting it fail."""
    try:
        format(_NAN, spec)
    except (ValueError, MemoryError):
        return True
    return False


def truncate_long_string(s: str, max_length: int = 35, truncate_middle: object = False) -> str:
    """Shorten ``s`` to about ``max_length`` code points, marking the cut with ``'...'``."""
    _require_str(s, "s")
    max_length = _require_int(max_length, "max_length")
    if max_length < 0:
        raise ValueError(f"max_length must be non-negative, got {max_length}")
    # A str subclass is used by its value, never through overridden methods.
    text = str.__str__(s)
    if len(text) <= max_length:
        return s
    if truncate_middle:
        if max_length <= 3:
            return "..."
        half, rem = divmod(max_length - 3, 2)
        if half == 0:
            return text[:rem] + "..."
        return text[: half + rem] + "..." + text[-half:]
    words = text.split(" ")
    if len(words[0]) > max_length:
        return words[0][:max_length] + "..."
    # Truncate on a word boundary; spaces are not counted, as in SkyPilot.
    index = 0
    total = 0
    for index, word in enumerate(words):  # noqa: B007 - index is used after the loop
        total += len(word)
        if total >= max_length:
            break
    prefix = " ".join(words[:index])
    if len(prefix) < max_length:
        prefix += text[len(prefix) : max_length]
    return prefix + "..."


# --------------------------------------------------------------------------- cgroups


def _read_file(path: Union[str, bytes]) -> bytes | None:
    """The whole file, or ``None`` when it can't be opened or read (no ``fstat`` needed)."""
    try:
        fd = _open_for_reading(path)
    except OSError:
        return None
    try:
        return _read_all(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_i64(token: bytes) -> int | None:
    """``-?[0-9]+`` (ASCII) within a signed 64-bit integer, else ``None``."""
    if _ASCII_INTEGER.fullmatch(token) is None:
        return None
    value = int(token)
    if not _I64_MIN <= value <= _I64_MAX:
        return None
    return value


def _unescape_mountinfo(field: bytes) -> bytes:
    r"""Undo mountinfo's octal escapes (``\040`` is a space)."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), field)


def _cgroup_line(cgroup_file: bytes, controller: bytes) -> Tuple[bool, bytes] | None:
    """``(is_v1, cgroup path)`` of the hierarchy holding ``controller``."""
    v2_path: bytes | None = None
    for line in cgroup_file.split(b"\n"):
        fields = line.split(b":", 2)
        if len(fields) != 3:
            continue
        hierarchy_id, controllers, path = fields
        if controller in controllers.split(b","):
            return True, path
        if v2_path is None and hierarchy_id == b"0" and controllers == b"":
            v2_path = path
    if v2_path is None:
        return None
    return False, v2_path


def _root_prefixes(mount_root: bytes, cgroup_path: bytes) -> bool:
    """Component-wise prefix: ``/`` prefixes everything, ``/a`` prefixes ``/a/b``."""
    root = mount_root.rstrip(b"/")
    return root == b"" or cgroup_path == root or cgroup_path.startswith(root + b"/")


def _find_mount(
    mountinfo: bytes, is_v1: bool, controller: bytes, cgroup_path: bytes
) -> Tuple[bytes, bytes] | None:
    """``(mount root, mount point)`` of the mount serving ``cgroup_path``."""
    best: Tuple[bytes, bytes] | None = None
    for line in mountinfo.split(b"\n"):
        fields = line.split(b" ")
        if len(fields) < 10 or b"-" not in fields[6:]:
            continue
        separator = fields.index(b"-", 6)
        if len(fields) < separator + 4:
            continue
        fstype = fields[separator + 1]
        super_options = fields[separator + 3]
        if is_v1:
            if fstype != b"cgroup" or controller not in super_options.split(b","):
                continue
        elif fstype != b"cgroup2":
            continue
        mount_root = _unescape_mountinfo(fields[3])
        mount_point = _unescape_mountinfo(fields[4])
        if not _root_prefixes(mount_root, cgroup_path):
            continue
        if best is None or len(mount_root) > len(best[0]):
            best = (mount_root, mount_point)
    return best


def _cgroup_levels(root: str, controller: bytes) -> Tuple[bool, List[bytes]] | None:
    """``(is_v1, directories)`` from the process's cgroup up to the mount point.

    ``None`` when resolution fails and the fixed paths must be read instead.
    """
    cgroup_file = _read_file(os.path.join(root, "proc/self/cgroup"))
    mountinfo = _read_file(os.path.join(root, "proc/self/mountinfo"))
    if cgroup_file is None or mountinfo is None:
        return None
    found = _cgroup_line(cgroup_file, controller)
    if found is None:
        return None
    is_v1, cgroup_path = found
    mount = _find_mount(mountinfo, is_v1, controller, cgroup_path)
    if mount is None:
        return None
    mount_root, mount_point = mount
    relative = cgroup_path[len(mount_root.rstrip(b"/")) :]
    base = (os.fsencode(root).rstrip(b"/") + mount_point.rstrip(b"/")) or b"/"
    components = [part for part in relative.split(b"/") if part]
    levels = [b"/".join([base, *components[:depth]]) for depth in range(len(components), -1, -1)]
    if not os.path.isdir(levels[0]):
        return None
    return is_v1, levels


def _fixed_cgroup_dir(root: str) -> Tuple[bool, bytes]:
    """``(is_v1, directory)`` of the fixed paths under ``<root>/sys/fs/cgroup``."""
    base = os.path.join(os.fsencode(root), b"sys/fs/cgroup")
    if os.path.exists(os.path.join(base, b"cgroup.controllers")):
        return False, base
    return True, base


def _cpu_limit_in(directory: bytes, is_v1: bool) -> int | None:
    if is_v1:
        quota_file = _read_file(os.path.join(directory, b"cpu.cfs_quota_us"))
        period_file = _read_file(os.path.join(directory, b"cpu.cfs_period_us"))
        if quota_file is None or period_file is None:
            return None
        quota = _parse_i64(quota_file.strip())
        period = _parse_i64(period_file.strip())
    else:
        content = _read_file(os.path.join(directory, b"cpu.max"))
        if content is None:
            return None
        fields = content.split()
        if len(fields) < 2 or fields[0] == b"max":
            return None
        quota = _parse_i64(fields[0])
        period = _parse_i64(fields[1])
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota // period


def _memory_limit_in(directory: bytes, is_v1: bool, physical: int | None) -> int | None:
    name = b"memory.limit_in_bytes" if is_v1 else b"memory.max"
    content = _read_file(os.path.join(directory, name))
    if content is None:
        return None
    token = content.strip()
    if not is_v1 and token == b"max":
        return None
    limit = _parse_i64(token)
    if limit is None or limit <= 0:
        return None
    if is_v1 and physical is not None and limit > physical:
        return None
    return limit


def _smallest(values: Iterator[int | None]) -> int | None:
    found = [value for value in values if value is not None]
    return min(found) if found else None


def _cgroup_cpu_limit(root: str) -> int | None:
    """CPUs allowed by the cgroup under ``root`` (may be 0), ``None`` when unlimited."""
    resolved = _cgroup_levels(root, b"cpu")
    if resolved is None:
        is_v1, directory = _fixed_cgroup_dir(root)
        v1_directory = os.path.join(directory, b"cpu")
        return _cpu_limit_in(v1_directory if is_v1 else directory, is_v1)
    is_v1, levels = resolved
    return _smallest(_cpu_limit_in(level, is_v1) for level in levels)


def _cgroup_memory_limit(root: str, physical: int | None) -> int | None:
    """Bytes allowed by the cgroup under ``root``, ``None`` when unlimited."""
    resolved = _cgroup_levels(root, b"memory")
    if resolved is None:
        is_v1, directory = _fixed_cgroup_dir(root)
        v1_directory = os.path.join(directory, b"memory")
        return _memory_limit_in(v1_directory if is_v1 else directory, is_v1, physical)
    is_v1, levels = resolved
    return _smallest(_memory_limit_in(level, is_v1, physical) for level in levels)


# --------------------------------------------------------------------------- system


def _env_value(name: str) -> str | None:
    return os.environ.get(name)


def get_cpu_count() -> int:
    """CPUs this process may really use (env override, online CPUs, affinity, cgroup)."""
    override = _env_value("SKYPILOT_POD_CPU_CORE_LIMIT")
    if override is not None:
        try:
            cpus = int(float(override))
        except (ValueError, OverflowError):
            raise ValueError(
                f"SKYPILOT_POD_CPU_CORE_LIMIT={override!r} is not a finite number"
            ) from None
        return max(cpus, 1)
    if _LINUX:
        return _cpu_count_at("/")
    return _cpu_count_without_cgroups(_sysconf)


def _cpu_count_without_cgroups(sysconf: Callable[[str], int]) -> int:
    """Not Linux (no affinity mask, no cgroups): the online CPUs, at least 1."""
    return _online_cpus(sysconf) or 1


def _cpu_count_at(root: str) -> int:
    limits: List[int | None] = [_online_cpus(), _affinity_cpus(), _cgroup_cpu_limit(root)]
    known = [limit for limit in limits if limit is not None]
    return max(min(known), 1) if known else 1


def _sysconf(name: str) -> int:
    """``os.sysconf``; a platform without it (Windows) answers like an unknown name."""
    sysconf = getattr(os, "sysconf", None)
    if sysconf is None:
        raise ValueError(f"os.sysconf is not available for {name}")
    return sysconf(name)


def _online_cpus(sysconf: Callable[[str], int] = _sysconf) -> int | None:
    try:
        online = sysconf("SC_NPROCESSORS_ONLN")
    except (OSError, ValueError):
        return None
    return online if online > 0 else None


def _affinity_cpus() -> int | None:
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0))
    except OSError:
        return None


def get_mem_size_gb() -> float:
    """Memory this process may use, in GiB (env override, physical memory, cgroup)."""
    override = _env_value("SKYPILOT_POD_MEMORY_GB_LIMIT")
    if override is not None:
        return _positive_float(override, "SKYPILOT_POD_MEMORY_GB_LIMIT")
    override = _env_value("SKYPILOT_POD_MEMORY_BYTES_LIMIT")
    if override is not None:
        return _positive_float(override, "SKYPILOT_POD_MEMORY_BYTES_LIMIT") / _GIB
    if _LINUX:
        return _mem_size_gb_at("/")
    return _mem_size_gb_without_proc(_sysctl_memsize, _sysconf)


def _mem_size_gb_without_proc(
    memsize: Callable[[], int | None], sysconf: Callable[[str], int]
) -> float:
    """Not Linux (no cgroups, no ``/proc``): ``sysctl hw.memsize``, else
    ``sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE)``, in GiB."""
    total = memsize()
    if total is None or total <= 0:
        try:
            pages, page_size = sysconf("SC_PHYS_PAGES"), sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):  # ValueError: a name this platform lacks
            pages = page_size = -1
        # The same bound as the Rust side: a product beyond 64 bits is no answer.
        total = pages * page_size if pages > 0 and page_size > 0 else None
        if total is not None and total >= 2**64:
            total = None
    if total is None:
        raise OSError("cannot determine the memory size: no physical total and no cgroup limit")
    return total / _GIB


def _sysctl_memsize() -> int | None:
    """``sysctl hw.memsize`` (macOS) in bytes; ``None`` elsewhere or when it fails."""
    if sys.platform != "darwin":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        size = ctypes.c_size_t(ctypes.sizeof(ctypes.c_uint64))
        value = ctypes.c_uint64(0)
        failed = libc.sysctlbyname(
            b"hw.memsize", ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)
        )
    except (ImportError, OSError, AttributeError):  # no _ctypes, no libc symbol
        return None
    if failed or size.value != ctypes.sizeof(ctypes.c_uint64):
        return None
    return int(value.value)


def _positive_float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value <= 0:
        raise ValueError(f"{name}={text!r} must be a finite number above 0")
    return value


def _mem_size_gb_at(root: str) -> float:
    physical = _physical_memory(root)
    limit = _cgroup_memory_limit(root, physical)
    known = [value for value in (physical, limit) if value is not None]
    if not known:
        raise OSError("cannot determine the memory size: no physical total and no cgroup limit")
    return min(known) / _GIB


@functools.lru_cache(maxsize=None)
def _sysinfo_call() -> Any:
    """A ``() -> (ok, totalram * mem_unit)`` caller of ``sysinfo(2)``, built once.

    Not ``os.sysconf("SC_PHYS_PAGES")``: glibc ignores a failing ``sysinfo``
    there (e.g. denied by seccomp) and returns uninitialised memory. ``None``
    when ctypes or the C library is not available.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        sysinfo = libc.sysinfo
    except (ImportError, OSError, AttributeError):  # no _ctypes, no libc symbol
        return None

    class SysInfo(ctypes.Structure):
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
            ("_reserved", ctypes.c_char * 64),  # the kernel's padding, with room to spare
        ]

    def call() -> Tuple[bool, int]:
        info = SysInfo()
        if sysinfo(ctypes.byref(info)) != 0:
            return False, 0
        return True, int(info.totalram) * int(info.mem_unit)

    return call


def _sysinfo_total_ram() -> int | None:
    """``totalram * mem_unit`` from ``sysinfo(2)``, or None when the call fails."""
    call = _sysinfo_call()
    if call is None:
        return None
    ok, total = call()
    # The same bound as the Rust side: zero, or a total that does not fit u64, is a failure.
    return total if ok and 0 < total < 2**64 else None


def _physical_memory(root: str) -> int | None:
    """Total RAM in bytes: ``sysinfo(2)``, else ``MemTotal`` in ``<root>/proc/meminfo``."""
    total = _sysinfo_total_ram()
    if total is not None:
        return total
    meminfo = _read_file(os.path.join(root, "proc/meminfo"))
    if meminfo is None:
        return None
    for line in meminfo.split(b"\n"):
        if line.startswith(b"MemTotal:"):
            fields = line[len(b"MemTotal:") :].split()
            # An optional unit, which must then be kB (as the Rust core reads it).
            if len(fields) == 1 or (len(fields) == 2 and fields[1] == b"kB"):
                kib = _parse_i64(fields[0])
                if kib is not None and kib > 0:
                    return kib * 1024
            return None
    return None


# --------------------------------------------------------------------------- processes


def get_parallel_threads(cloud_str: str | None = None) -> int:
    """Threads for parallel work: ``max(4, cpus - 1)``, times 4 on Kubernetes."""
    _require_optional_str(cloud_str, "cloud_str")
    cpus = os.cpu_count() or 1
    on_kubernetes = cloud_str is not None and str.lower(cloud_str) == "kubernetes"
    return max(4, cpus - 1) * (4 if on_kubernetes else 1)


def is_process_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if _LINUX:
        return _is_process_alive_at("/", pid)
    return _is_process_alive_by_signal(pid, os.kill)


def _is_process_alive_by_signal(pid: int, kill: Callable[[int, int], None]) -> bool:
    """Not Linux (no ``/proc``): ``kill(pid, 0)`` alone, so a zombie is alive."""
    pid = _require_int(pid, "pid")
    if not 0 < pid <= _PID_MAX:
        raise ValueError(f"pid must be in [1, {_PID_MAX}], got {pid}")
    return _alive_after_signal_zero(pid, kill)


def _is_process_alive_at(root: str, pid: int) -> bool:
    pid = _require_int(pid, "pid")
    if not 0 < pid <= _PID_MAX:
        raise ValueError(f"pid must be in [1, {_PID_MAX}], got {pid}")
    content = _read_file(os.path.join(root, f"proc/{pid}/stat"))
    if content is not None:
        end_of_name = content.rfind(b")")
        if end_of_name >= 0:
            # Whitespace as bytes.strip() sees it, like every other file value we parse.
            state = content[end_of_name + 1 :].lstrip()[:1]
            if state:
                return state != b"Z"
    # /proc unreadable (hidepid, no procfs) or garbled: ask the kernel.
    return _alive_after_signal_zero(pid, os.kill)


def _alive_after_signal_zero(pid: int, kill: Callable[[int, int], None]) -> bool:
    """``kill(pid, 0)``: only ``ESRCH`` proves the process is gone."""
    try:
        kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # EPERM: it exists; anything else: we could not prove it dead.
        return True
    return True


_low_fd_warning_lock = threading.Lock()
_low_fd_warning_issued = False


def _warn_low_fd_limit(limit: int) -> None:
    """Warn, once per process, that the soft ``RLIMIT_NOFILE`` is low."""
    global _low_fd_warning_issued
    with _low_fd_warning_lock:
        if _low_fd_warning_issued:
            return
        _low_fd_warning_issued = True
    logging.getLogger(_LOGGER_NAME).warning(
        "The soft limit on open files (RLIMIT_NOFILE) is %d, below %d; "
        "file mounts will use few parallel workers. Raise it with `ulimit -n`.",
        limit,
        _LOW_FD_LIMIT,
    )


def _soft_fd_limit() -> int:
    try:
        import resource
    except ImportError:
        return _FD_LIMIT_IF_UNKNOWN
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return _FD_LIMIT_IF_UNKNOWN
    if soft == resource.RLIM_INFINITY or soft < 0:
        return _UNLIMITED_FD
    return soft


def get_max_workers_for_file_mounts(
    common_file_mounts: Mapping[Any, PathArg], cloud_str: str | None = None
) -> int:
    """rsync workers to run at once without running out of file descriptors."""
    if not isinstance(common_file_mounts, collections.abc.Mapping):
        raise TypeError(
            f"common_file_mounts must be a Mapping, not {_type_name(common_file_mounts)}"
        )
    sources = list(common_file_mounts.values())
    for source in sources:
        _require_path(source, "common_file_mounts values")
    _require_optional_str(cloud_str, "cloud_str")
    fd_limit = _soft_fd_limit()
    if fd_limit < _LOW_FD_LIMIT:
        _warn_low_fd_limit(fd_limit)
    fd_per_rsync = _MIN_FD_PER_RSYNC
    for source in sources:
        if os.path.isdir(source):
            fd_per_rsync = max(fd_per_rsync, estimate_fd_for_directory(source))
    max_workers = max((fd_limit - _FD_RESERVE) // fd_per_rsync, 1)
    return min(max_workers, get_parallel_threads(cloud_str))


def estimate_fd_for_directory(path: PathArg) -> int:
    """``5 * len(os.listdir(path))``: file descriptors an rsync of ``path`` may hold."""
    _require_path(path, "path")
    return _FD_PER_ENTRY * len(os.listdir(path))

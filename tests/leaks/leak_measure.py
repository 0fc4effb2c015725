"""What a process holds right now: descriptors, threads, memory, allocator heap.

Linux only (`/proc`); the heap comes from glibc's `mallinfo2()` (or
`mallinfo()` before glibc 2.33) and is returned to the system with
`malloc_trim(0)` before each reading, so that what is left is what is in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import linecache
import os
import sys
import threading
from typing import Dict, List

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# struct mallinfo2 (glibc 2.33+: size_t fields) and struct mallinfo (int fields).
_MALLINFO_FIELDS = (
    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
    "fsmblks", "uordblks", "fordblks", "keepcost",
)  # fmt: skip


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO_FIELDS]


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in _MALLINFO_FIELDS]


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # glibc only


_LIBC = _load_libc()
_MALLINFO = None
if _LIBC is not None:
    if hasattr(_LIBC, "mallinfo2"):
        _MALLINFO = _LIBC.mallinfo2
        _MALLINFO.restype = _MallInfo2
    elif hasattr(_LIBC, "mallinfo"):
        _MALLINFO = _LIBC.mallinfo
        _MALLINFO.restype = _MallInfo
    _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
    _LIBC.malloc_trim.restype = ctypes.c_int


def heap_available() -> bool:
    return _MALLINFO is not None


def heap_in_use() -> int | None:
    """Bytes the C allocator has handed out and not got back (all arenas, mmap included)."""
    if _MALLINFO is None:
        return None
    info = _MALLINFO()
    # mallinfo()'s int fields wrap above 2 GiB; our processes stay far below.
    return int(info.uordblks) + int(info.hblkhd)


def open_descriptors() -> Dict[int, str]:
    """{fd: what it points to} for every open descriptor of this process."""
    found: Dict[int, str] = {}
    with os.scandir("/proc/self/fd") as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the scandir's own descriptor, closed by now
    return found


def os_threads() -> int:
    """Threads of this process as the kernel counts them (native ones included)."""
    with open("/proc/self/status", encoding="ascii", errors="replace") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no Threads: line")


def python_threads() -> List[str]:
    return sorted(thread.name for thread in threading.enumerate())


def _smaps_private_bytes() -> int:
    """Unique set size: private pages, from smaps_rollup (Linux 4.14+) or smaps."""
    total_kib = 0
    for path in ("/proc/self/smaps_rollup", "/proc/self/smaps"):
        try:
            with open(path, encoding="ascii", errors="replace") as smaps:
                for line in smaps:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total_kib += int(line.split()[1])
        except FileNotFoundError:
            continue
        return total_kib * 1024
    raise RuntimeError("neither /proc/self/smaps_rollup nor /proc/self/smaps exists")


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def memory() -> Dict[str, int | None]:
    """`heap` (allocator bytes in use), `uss` and `rss` in bytes."""
    return {"heap": heap_in_use(), "uss": _smaps_private_bytes(), "rss": _rss_bytes()}


def settle() -> None:
    """Drop what the interpreter keeps only as a cache, then give free memory back.

    As psleak and CPython's own refleak hunter do: collect cycles, clear the
    type/internal and line caches, flush the standard streams, and trim the
    C heap so that free pages do not count as used.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    linecache.clearcache()
    sys.path_importer_cache.clear()
    gc.collect()
    clear_internal = getattr(sys, "_clear_internal_caches", None) or getattr(
        sys, "_clear_type_cache", None
    )
    if clear_internal is not None:
        clear_internal()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def warm_interpreter_caches() -> None:
    """Fill the interpreter's own lazily-built caches before anything is measured.

    From CPython's Lib/test/libregrtest/refleak.py: single-byte and Latin-1
    string caches and small ints are created on first use.
    """
    data = bytes(range(256))
    for index in range(256):
        data[index : index + 1]
    [chr(index) for index in range(256)]
    list(range(-5, 257))


def is_debug_build() -> bool:
    return hasattr(sys, "gettotalrefcount")

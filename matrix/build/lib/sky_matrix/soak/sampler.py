"""What the soak measures of its own process: memory, allocator heap, fds, threads.

- ``rss`` and ``uss`` come from psutil (``memory_full_info``: USS is the
  memory only this process maps, from ``/proc/self/smaps_rollup``).
- ``heap`` is glibc malloc's in-use bytes, ``uordblks + hblkhd`` (small chunks
  in the arenas plus chunks served by mmap), from ``mallinfo2()`` (glibc >=
  2.33) or, on older glibc, ``mallinfo()`` whose ``int`` fields wrap at 2 GiB.
  ``malloc_trim(0)`` runs first so that free memory is returned and RSS tracks
  what is in use rather than what malloc once held. Rust's default global
  allocator is this malloc, so a Rust leak shows here byte for byte; Python
  objects below 512 bytes live in pymalloc's arenas and show in RSS/USS
  instead (run with ``PYTHONMALLOC=malloc`` to see them here too). Where glibc
  is absent (musl, macOS) ``heap`` is ``None``.
- ``fds`` and ``threads``: ``num_fds()`` and ``num_threads()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import resource
from typing import Any, Dict, Optional

import psutil

# struct mallinfo2 (size_t fields) and the older struct mallinfo (int fields).
_MALLINFO_FIELDS = (
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost",
)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO_FIELDS]


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in _MALLINFO_FIELDS]


class AllocatorHeap:
    """glibc's malloc statistics through ctypes; ``available`` is False elsewhere."""

    def __init__(self) -> None:
        self.source: Optional[str] = None
        self._mallinfo: Any = None
        self._trim: Any = None
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name or "libc.so.6")
        except OSError:
            return
        if hasattr(libc, "malloc_trim"):
            self._trim = libc.malloc_trim
            self._trim.argtypes = [ctypes.c_size_t]
            self._trim.restype = ctypes.c_int
        if hasattr(libc, "mallinfo2"):
            self._mallinfo = libc.mallinfo2
            self._mallinfo.restype = _MallInfo2
            self.source = "mallinfo2"
        elif hasattr(libc, "mallinfo"):
            self._mallinfo = libc.mallinfo
            self._mallinfo.restype = _MallInfo
            self.source = "mallinfo"

    @property
    def available(self) -> bool:
        return self._mallinfo is not None

    def in_use(self) -> Optional[int]:
        """Bytes malloc has handed out and not had back, after trimming."""
        if self._mallinfo is None:
            return None
        if self._trim is not None:
            self._trim(0)
        info = self._mallinfo()
        return int(info.uordblks) + int(info.hblkhd)


@dataclasses.dataclass(frozen=True)
class ProcessSample:
    rss: int
    uss: Optional[int]
    heap: Optional[int]
    fds: int
    threads: int

    def to_json(self) -> Dict[str, Optional[int]]:
        return dataclasses.asdict(self)


class ProcessSampler:
    """Samples this process (or ``pid``) on demand."""

    def __init__(self, pid: Optional[int] = None) -> None:
        self._process = psutil.Process(pid)
        # The heap can only be read from inside the process it describes.
        self._heap = AllocatorHeap() if pid is None else None

    @property
    def heap_source(self) -> Optional[str]:
        return self._heap.source if self._heap is not None else None

    def sample(self) -> ProcessSample:
        heap = self._heap.in_use() if self._heap is not None else None
        try:
            full = self._process.memory_full_info()
            rss, uss = int(full.rss), int(full.uss)
        except psutil.AccessDenied:  # smaps unreadable (hardened /proc): RSS still works
            rss, uss = int(self._process.memory_info().rss), None
        return ProcessSample(
            rss=rss,
            uss=uss,
            heap=heap,
            fds=self._process.num_fds(),
            threads=self._process.num_threads(),
        )


def fd_soft_limit() -> Optional[int]:
    """The soft RLIMIT_NOFILE, None when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)

"""The reference's branches for platforms other than Linux (macOS), run here on Linux.

The contract's "Platforms other than Linux": no affinity mask, no cgroups, no /proc;
`sysconf`, `sysctl hw.memsize` and `kill(pid, 0)` answer. Those readers take their
providers as parameters, as the Linux readers take their roots, so fakes drive them here.
The Rust side of the same rules is covered by `cargo test` (`cpu_count_without_cgroups`,
`physical_bytes_without_proc`, `alive_after_signal_zero`) and built by `cargo clippy
--target *-apple-darwin` in `nox -s tests`.
"""

from __future__ import annotations

import errno
import subprocess
import time
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

import pytest

if TYPE_CHECKING:
    from conftest import Parity

GIB = 1024**3


@pytest.fixture
def fallback(parity: Parity) -> ModuleType:
    return parity.python


def fake_sysconf(answers: Dict[str, object]) -> Callable[[str], int]:
    def sysconf(name: str) -> int:
        answer = answers.get(name, ValueError(f"unrecognized configuration name {name}"))
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]

    return sysconf


@pytest.fixture
def not_linux(fallback: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The reference as it runs on macOS, with sysconf/sysctl answers set per test."""
    monkeypatch.setattr(fallback, "_LINUX", False)
    for name in (
        "SKYPILOT_POD_CPU_CORE_LIMIT",
        "SKYPILOT_POD_MEMORY_GB_LIMIT",
        "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    return fallback


# ------------------------------------------------------------------ get_cpu_count


@pytest.mark.parametrize(
    ("online", "expected"),
    [(8, 8), (1, 1), (0, 1), (-1, 1), (OSError(errno.EINVAL, "no"), 1), (ValueError("no"), 1)],
)
def test_cpu_count_is_the_online_count_at_least_one(
    fallback: ModuleType, online: object, expected: int
) -> None:
    sysconf = fake_sysconf({"SC_NPROCESSORS_ONLN": online})
    assert fallback._cpu_count_without_cgroups(sysconf) == expected


def test_get_cpu_count_uses_sysconf_and_no_cgroup(
    not_linux: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(not_linux, "_sysconf", fake_sysconf({"SC_NPROCESSORS_ONLN": 3}))
    # Neither the affinity mask nor a cgroup may be consulted.
    monkeypatch.setattr(not_linux, "_cpu_count_at", _must_not_run)
    monkeypatch.setattr(not_linux, "_affinity_cpus", _must_not_run)
    assert not_linux.get_cpu_count() == 3
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", "5.5")
    assert not_linux.get_cpu_count() == 5
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", "nan")
    with pytest.raises(ValueError):
        not_linux.get_cpu_count()


# ------------------------------------------------------------------ get_mem_size_gb


@pytest.mark.parametrize(
    ("memsize", "sysconf", "expected"),
    [
        (16 * GIB, {}, 16.0),  # hw.memsize answers: sysconf is not asked
        (None, {"SC_PHYS_PAGES": 262144, "SC_PAGE_SIZE": 4096}, 1.0),
        (0, {"SC_PHYS_PAGES": 524288, "SC_PAGE_SIZE": 4096}, 2.0),
        (None, {"SC_PHYS_PAGES": 3, "SC_PAGE_SIZE": 16384}, 3 * 16384 / GIB),
    ],
)
def test_memory_is_hw_memsize_then_sysconf(
    fallback: ModuleType, memsize: Optional[int], sysconf: Dict[str, object], expected: float
) -> None:
    answer = fallback._mem_size_gb_without_proc(lambda: memsize, fake_sysconf(sysconf))
    assert type(answer) is float and answer == expected


@pytest.mark.parametrize(
    "sysconf",
    [
        {},
        {"SC_PHYS_PAGES": -1, "SC_PAGE_SIZE": 4096},
        {"SC_PHYS_PAGES": 262144, "SC_PAGE_SIZE": 0},
        {"SC_PHYS_PAGES": OSError(errno.EINVAL, "no"), "SC_PAGE_SIZE": 4096},
        {"SC_PHYS_PAGES": 2**40, "SC_PAGE_SIZE": 2**40},  # beyond 64 bits, as Rust's checked_mul
    ],
)
def test_memory_with_no_answer_is_oserror(fallback: ModuleType, sysconf: Dict[str, object]) -> None:
    with pytest.raises(OSError) as raised:
        fallback._mem_size_gb_without_proc(lambda: None, fake_sysconf(sysconf))
    assert type(raised.value) is OSError


def test_get_mem_size_gb_uses_the_providers_and_no_cgroup(
    not_linux: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(not_linux, "_sysctl_memsize", lambda: 8 * GIB)
    monkeypatch.setattr(not_linux, "_sysconf", fake_sysconf({}))
    monkeypatch.setattr(not_linux, "_mem_size_gb_at", _must_not_run)
    monkeypatch.setattr(not_linux, "_cgroup_memory_limit", _must_not_run)
    assert not_linux.get_mem_size_gb() == 8.0
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_BYTES_LIMIT", str(GIB // 2))
    assert not_linux.get_mem_size_gb() == 0.5
    monkeypatch.setenv("SKYPILOT_POD_MEMORY_GB_LIMIT", "-1")
    with pytest.raises(ValueError):
        not_linux.get_mem_size_gb()


def test_sysctl_memsize_is_darwin_only(fallback: ModuleType) -> None:
    # On Linux there is no hw.memsize: None, so sysconf decides.
    assert fallback._sysctl_memsize() is None


# ------------------------------------------------------------------ is_process_alive


def fake_kill(outcome: Optional[BaseException], calls: List[tuple]) -> Callable[[int, int], None]:
    def kill(pid: int, signal: int) -> None:
        calls.append((pid, signal))
        if outcome is not None:
            raise outcome

    return kill


@pytest.mark.parametrize(
    ("outcome", "alive"),
    [
        (None, True),
        (PermissionError(errno.EPERM, "no"), True),
        (ProcessLookupError(errno.ESRCH, "no"), False),
        (OSError(errno.EINVAL, "no"), True),  # not proven dead
    ],
)
def test_alive_is_decided_by_signal_zero(
    fallback: ModuleType, outcome: Optional[BaseException], alive: bool
) -> None:
    calls: List[tuple] = []
    assert fallback._is_process_alive_by_signal(4242, fake_kill(outcome, calls)) is alive
    assert calls == [(4242, 0)]


@pytest.mark.parametrize(
    ("pid", "error"),
    [(0, ValueError), (-1, ValueError), (2**31, ValueError), ("1", TypeError), (1.0, TypeError)],
)
def test_bad_pids_are_rejected_before_any_signal(
    fallback: ModuleType, pid: object, error: type
) -> None:
    calls: List[tuple] = []
    with pytest.raises(error):
        fallback._is_process_alive_by_signal(pid, fake_kill(None, calls))
    assert calls == []


def test_a_zombie_counts_as_alive_without_proc(not_linux: ModuleType, fallback: ModuleType) -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while _state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(child.pid) == "Z"
        # kill(pid, 0) succeeds on a zombie: alive here, dead by Linux's /proc rule.
        assert not_linux.is_process_alive(child.pid) is True
        assert fallback._is_process_alive_at("/", child.pid) is False
    finally:
        child.wait()
    assert not_linux.is_process_alive(child.pid) is False


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()[0].decode()


def _must_not_run(*args: object) -> None:
    raise AssertionError("a Linux-only reader ran on the macOS branch")

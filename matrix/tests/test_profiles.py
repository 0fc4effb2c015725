"""The profile table: names, flags, users, which suites run under which profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matrix_helpers import project_root

from sky_matrix.config.profiles import (
    DENIED_SYSCALLS,
    NOT_DENIABLE_SYSCALLS,
    PROFILES,
    ROOT_SUITES,
    UNPRIVILEGED_USER,
    format_profile_table,
    get_profile,
    profiles_for_suite,
)
from sky_matrix.config.suites import SUITES
from sky_matrix.core.errors import UsageError

DOCKER_DIR = project_root() / "docker"


def test_the_profiles_of_the_issue() -> None:
    assert list(PROFILES) == [
        "default", "cpus-1.5", "cpus-0.5", "cpuset-0", "memory-512m",
        "seccomp-eperm", "seccomp-enosys", "nonroot", "hidepid",
    ]  # fmt: skip


def test_which_suites_run_under_which_profiles() -> None:
    assert profiles_for_suite("parity") == ["default"]
    assert profiles_for_suite("cgroup") == [
        "default", "cpus-1.5", "cpus-0.5", "cpuset-0", "memory-512m"
    ]  # fmt: skip
    assert profiles_for_suite("eperm") == [
        "default", "seccomp-eperm", "seccomp-enosys", "nonroot", "hidepid"
    ]  # fmt: skip
    assert profiles_for_suite("leaks") == ["default"]
    assert profiles_for_suite("stability") == ["default"]
    assert profiles_for_suite("no-such-suite") == []


def test_every_profile_names_known_suites_and_every_suite_has_default() -> None:
    for profile in PROFILES.values():
        assert profile.suites and set(profile.suites) <= set(SUITES), profile.name
        assert profile.description
    assert set(PROFILES["default"].suites) == set(SUITES)
    assert ROOT_SUITES <= set(SUITES)


def test_resource_flags() -> None:
    assert PROFILES["default"].docker_args == ()
    assert PROFILES["cpus-1.5"].docker_args == ("--cpus", "1.5")
    assert PROFILES["cpus-0.5"].docker_args == ("--cpus", "0.5")
    assert PROFILES["cpuset-0"].docker_args == ("--cpuset-cpus", "0")
    # No swap on top of the limit: 512 MiB means 512 MiB.
    assert PROFILES["memory-512m"].docker_args == ("--memory", "512m", "--memory-swap", "512m")


def test_who_runs_the_tests() -> None:
    default = PROFILES["default"]
    assert default.user_for("cgroup") == "root"
    assert default.user_for("eperm") == "root"
    assert default.user_for("parity") == UNPRIVILEGED_USER
    assert PROFILES["cpus-0.5"].user_for("cgroup") == "root"
    for forced in ("nonroot", "hidepid"):
        assert PROFILES[forced].user_for("eperm") == UNPRIVILEGED_USER


def test_hidepid_needs_sys_admin_and_the_driver() -> None:
    hidepid = PROFILES["hidepid"]
    assert hidepid.hidepid
    assert hidepid.docker_args == ("--cap-add", "SYS_ADMIN")
    assert not any(p.hidepid for name, p in PROFILES.items() if name != "hidepid")


@pytest.mark.parametrize("name, errno", [("seccomp-eperm", 1), ("seccomp-enosys", 38)])
def test_seccomp_profiles_are_real_files_denying_our_syscalls(name: str, errno: int) -> None:
    args = PROFILES[name].run_args(DOCKER_DIR)
    assert args[0] == "--security-opt" and args[1].startswith("seccomp=")
    path = Path(args[1][len("seccomp=") :])
    assert path.parent == DOCKER_DIR / "seccomp"
    profile = json.loads(path.read_text(encoding="utf-8"))
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    (rule,) = profile["syscalls"]
    assert rule["action"] == "SCMP_ACT_ERRNO"
    assert rule["errnoRet"] == errno
    assert tuple(rule["names"]) == DENIED_SYSCALLS
    # Denying newfstatat stops runc itself; see the module docstring.
    assert not set(NOT_DENIABLE_SYSCALLS) & set(rule["names"])


def test_run_args_leave_other_profiles_unchanged(tmp_path: Path) -> None:
    for name in ("default", "cpus-1.5", "memory-512m", "hidepid"):
        assert PROFILES[name].run_args(tmp_path) == list(PROFILES[name].docker_args)


def test_get_profile() -> None:
    assert get_profile("nonroot") is PROFILES["nonroot"]
    with pytest.raises(UsageError, match="unknown profile 'turbo'"):
        get_profile("turbo")


def test_profile_table_text() -> None:
    text = format_profile_table()
    lines = text.splitlines()
    assert lines[0].split()[0] == "profile"
    assert len(lines) == 1 + len(PROFILES)
    assert "--cpus 0.5" in text and "--cap-add SYS_ADMIN" in text


def test_a_memory_limit_holds_only_so_many_workers() -> None:
    memory = get_profile("memory-512m")
    assert memory.memory_limit_mib() == 512 and get_profile("cpus-1.5").memory_limit_mib() is None
    # PyPy: 512 MiB holds three processes of 150 MiB: the cell driver, pytest and one spare
    # (with a worker in the spare's room the cell was OOM-killed once): `-n 0`.
    workers, why = memory.workers_within_memory("pypy", 2)
    assert workers == 0
    assert why == (
        "workers: 0, not 2: 512 MiB holds 3 pypy processes of about 150 MiB (the cell driver,"
        " pytest, no worker: tests in pytest, one spare)"
    )
    assert memory.workers_within_memory("pypy", 1)[0] == 0
    # CPython's processes fit: the scheduler's count stands.
    assert memory.workers_within_memory("cpython", 2) == (2, "")
    workers, why = memory.workers_within_memory("cpython", 16)
    assert workers == 5 and why.startswith("workers: 5, not 16: 512 MiB holds 8 cpython")
    # No limit, no change.
    assert get_profile("default").workers_within_memory("pypy", 8) == (8, "")

"""The profile axis: resource and permission limits a container cell runs under.

One table. Each profile is a set of `docker run` flags plus who the tests run as, and names the
suites it applies to (a suite runs under every profile that lists it). A cell's tests see the
profile in `SKY_RS_MATRIX_PROFILE` so they know what to expect.

Findings on this kind of host (Docker 20.10, cgroup v1, runc), which shaped the table:
- `seccomp-*` deny sched_getaffinity, sysinfo, kill, bind, getrlimit, prlimit64 and statx but
  not newfstatat: a container whose seccomp filter denies newfstatat does not even start (runc
  stats /dev/null after loading the filter: "unable to setup user: stat /dev/null: operation
  not permitted"), and no interpreter could run under it either (stat(2) is newfstatat on
  x86_64). Denying statx is what exercises our Rust code's fallback from statx to stat.
- `hidepid`: a container already has a private PID namespace; remounting its /proc with
  hidepid=2 needs CAP_SYS_ADMIN (`mount` fails with "permission denied" without it). With
  `--cap-add SYS_ADMIN` the cell driver (root) runs `mount -o remount,hidepid=2 /proc` and then
  drops to the unprivileged user, whose capabilities are cleared by the uid change, so the
  tests run without SYS_ADMIN and see only their own processes. Remounting (not mounting a new
  procfs) keeps Docker's masked /proc paths.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sky_matrix.core.errors import UsageError

# Suites whose tests create restrictions themselves (cgroups, permissions) and need root.
ROOT_SUITES = frozenset({"cgroup", "eperm"})
UNPRIVILEGED_USER = "sky"  # created by docker/finish.Dockerfile with uid and gid 1000
UNPRIVILEGED_UID = 1000
# The syscalls our functions make that the seccomp profiles deny (see the module docstring).
DENIED_SYSCALLS = (
    "sched_getaffinity",
    "sysinfo",
    "kill",
    "bind",
    "getrlimit",
    "prlimit64",
    "statx",
)
NOT_DENIABLE_SYSCALLS = ("newfstatat",)
# Resident memory of one interpreter process of a container cell (the cell driver, pytest's
# controller, each xdist worker), in MiB. Measured running the cgroup suite under memory-512m:
# a PyPy 3.11 (8.0.1) process peaks at 145 MB (VmHWM; 100 MB of it anonymous: GC arenas with
# 75-80 MB allocated, and the JIT), its cell driver at 70 MB; a CPython 3.11 one at 52 MB. At
# -n 4 the PyPy cell reached the 512 MiB limit (its page cache evicted: 129 s instead of 14 s,
# once with a failed test), and an earlier run was OOM-killed: the number of PyPy processes,
# not our code, is what does not fit, so a memory-limited profile runs only the workers its
# limit holds with one process's worth to spare (page cache, a test's own child). Three PyPy
# processes in 512 MiB (driver, pytest, one worker) were OOM-killed once (2026-12-04, pytest
# SIGKILLed after 24 s): PyPy there runs its tests in pytest's own process (`-n 0`).
PROCESS_MIB = {"pypy": 150, "cpython": 60}
# Processes a cell has beside its xdist workers (the cell driver, pytest's controller), and
# the room kept free.
FIXED_PROCESSES = 2
SPARE_PROCESSES = 1


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    docker_args: Tuple[str, ...]  # `{docker_dir}` stands for the project's docker/ directory
    user: Optional[str]  # forced user; None: root for ROOT_SUITES, else UNPRIVILEGED_USER
    description: str
    suites: Tuple[str, ...]
    hidepid: bool = False  # the cell driver remounts /proc with hidepid=2 before dropping root

    def run_args(self, docker_dir: Path) -> List[str]:
        """`docker_args` with the docker/ directory filled in (seccomp profile paths)."""
        return [arg.replace("{docker_dir}", str(docker_dir)) for arg in self.docker_args]

    def memory_limit_mib(self) -> Optional[int]:
        """The `--memory` limit in MiB (`512m`, `1g`), None without one."""
        args = list(self.docker_args)
        if "--memory" not in args or args.index("--memory") + 1 >= len(args):
            return None
        value = args[args.index("--memory") + 1].lower()
        units = {"m": 1, "g": 1024}
        if value[-1:] in units and value[:-1].isdigit():
            return int(value[:-1]) * units[value[-1]]
        return None

    def workers_within_memory(self, implementation: str, workers: int) -> Tuple[int, str]:
        """At most `workers` xdist workers, as many as the memory limit holds beside the cell
        driver and pytest's controller (PROCESS_MIB each) with one process's worth to spare;
        0 (`-n 0`: the tests run in pytest's own process) when not even one does. Also what was
        decided, for the cell's log ("" when the limit takes none away)."""
        limit = self.memory_limit_mib()
        per_process = PROCESS_MIB.get(implementation, max(PROCESS_MIB.values()))
        if limit is None:
            return workers, ""
        holds = limit // per_process
        fits = max(0, holds - FIXED_PROCESSES - SPARE_PROCESSES)
        if fits >= workers:
            return workers, ""
        who = f"{fits} worker{'s' if fits != 1 else ''}" if fits else "no worker: tests in pytest"
        return fits, (
            f"workers: {fits}, not {workers}: {limit} MiB holds {holds} {implementation}"
            f" processes of about {per_process} MiB (the cell driver, pytest, {who}, one spare)"
        )

    def user_for(self, suite: str) -> str:
        """Who the tests of `suite` run as under this profile."""
        if self.user is not None:
            return self.user
        return "root" if suite in ROOT_SUITES else UNPRIVILEGED_USER


DEFAULT_PROFILE = "default"  # every suite runs under it, and the host runs nothing else
_ALL_SUITES = ("parity", "cgroup", "eperm", "leaks", "stability")

PROFILES: Dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(DEFAULT_PROFILE, (), None, "no limits beyond Docker's defaults", _ALL_SUITES),
        Profile(
            "cpus-1.5",
            ("--cpus", "1.5"),
            None,
            "CFS quota of 1.5 CPUs: get_cpu_count() must say 1",
            ("cgroup",),
        ),
        Profile(
            "cpus-0.5",
            ("--cpus", "0.5"),
            None,
            "CFS quota of half a CPU: get_cpu_count() must say 1, never 0",
            ("cgroup",),
        ),
        Profile(
            "cpuset-0",
            ("--cpuset-cpus", "0"),
            None,
            "pinned to CPU 0: the affinity mask limits get_cpu_count() to 1",
            ("cgroup",),
        ),
        Profile(
            "memory-512m",
            ("--memory", "512m", "--memory-swap", "512m"),
            None,
            "512 MiB memory limit: get_mem_size_gb() must say 0.5",
            ("cgroup",),
        ),
        Profile(
            "seccomp-eperm",
            ("--security-opt", "seccomp={docker_dir}/seccomp/deny-eperm.json"),
            None,
            "seccomp denies " + ", ".join(DENIED_SYSCALLS) + " with EPERM",
            ("eperm",),
        ),
        Profile(
            "seccomp-enosys",
            ("--security-opt", "seccomp={docker_dir}/seccomp/deny-enosys.json"),
            None,
            "seccomp denies " + ", ".join(DENIED_SYSCALLS) + " with ENOSYS",
            ("eperm",),
        ),
        Profile(
            "nonroot",
            (),
            UNPRIVILEGED_USER,
            "tests run as uid 1000 even where the suite would run as root",
            ("eperm",),
        ),
        Profile(
            "hidepid",
            ("--cap-add", "SYS_ADMIN"),
            UNPRIVILEGED_USER,
            "/proc remounted with hidepid=2; tests run as uid 1000 and see only their own"
            " processes",
            ("eperm",),
            hidepid=True,
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)}") from None


def profiles_for_suite(suite: str) -> List[str]:
    """The profiles `suite` runs under, in table order (only `default` on the host)."""
    return [p.name for p in PROFILES.values() if suite in p.suites]


def format_profile_table() -> str:
    """The table as text, for `--list`."""
    rows = [("profile", "docker run flags", "user", "suites", "what")]
    for p in PROFILES.values():
        user = p.user or "root for " + "/".join(sorted(ROOT_SUITES)) + ", else sky"
        rows.append(
            (p.name, " ".join(p.docker_args) or "-", user, ", ".join(p.suites), p.description)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )

"""The restrictions of the EPERM-degradation suite: what each scenario does, and proof it did.

A :class:`Scenario` names one restriction, or a combination that proves a branch (hidepid + a
denied ``kill``; a limited cgroup whose limit files are unreadable). :func:`cases` is what the
probe runs under each: every function, with arguments that touch the restricted sources.
:func:`restriction_problems` checks, from what the probe observed, that the restriction really
was in force: a run that was not restricted would prove nothing.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from typing import Any, Dict, List, Mapping, Tuple

import eperm_restrict

RESTRICTED_UID = 65534  # nobody
# The syscalls the container profiles deny (matrix/src/sky_matrix/profiles.py), as groups.
PROFILE_GROUPS = ("sched_getaffinity", "sysinfo", "kill", "bind", "getrlimit", "statx")


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    deny: Tuple[Tuple[str, str], ...] = ()  # installed before exec
    deny_in_process: Tuple[Tuple[str, str], ...] = ()  # installed by the probe after imports
    user: bool = False  # run as RESTRICTED_UID
    hidepid: bool = False
    hide: Tuple[str, ...] = ()  # paths, or "cgroup-limit-files" for every limit file walked
    cgroup: bool = False  # join the limited cgroup
    native: str = "loaded"  # loaded | corrupt | unreadable | sys-modules
    # Applied by the environment (a container profile), not by this suite: run plain.
    ambient: bool = False
    # Where the cgroup limits come from: own (this process's cgroup), none (unreadable),
    # fixed (resolution fails: the fixed paths), fixed-v1 (stat denied: cgroup.controllers
    # seems absent, so the v1 fixed paths), limited (the cgroup joined).
    cgroup_source: str = "own"

    @property
    def denied(self) -> Tuple[Tuple[str, str], ...]:
        return self.deny + self.deny_in_process


def _seccomp_scenarios() -> List[Scenario]:
    found: List[Scenario] = []
    for errno_name in eperm_restrict.ERRNO_NAMES:
        for group in ("sched_getaffinity", "sysinfo", "kill", "bind", "getrlimit", "statx"):
            found.append(
                Scenario(
                    f"seccomp-{group}-{errno_name}",
                    f"{'/'.join(eperm_restrict.SYSCALL_GROUPS[group])} denied with {errno_name}",
                    deny=((group, errno_name),),
                )
            )
        found.append(
            Scenario(
                f"seccomp-stat-{errno_name}",
                f"the stat family denied with {errno_name} (after the probe's imports)",
                deny_in_process=(("stat", errno_name),),
                cgroup_source="fixed-v1",
            )
        )
        found.append(
            Scenario(
                f"seccomp-openat-{errno_name}",
                f"openat/open denied with {errno_name} (after the probe's imports)",
                deny_in_process=(("openat", errno_name),),
                cgroup_source="none",
            )
        )
        found.append(
            Scenario(
                f"seccomp-profile-{errno_name}",
                f"everything the seccomp-{errno_name.lower()} container profile denies, at once",
                deny=tuple((group, errno_name) for group in PROFILE_GROUPS),
            )
        )
    return found


SCENARIOS: Dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in [
        Scenario(
            "unrestricted", "nothing added by the suite: the baseline (fallback rate exactly 0)"
        ),
        *_seccomp_scenarios(),
        Scenario("nonroot", f"uid {RESTRICTED_UID} instead of root", user=True),
        Scenario(
            "hidepid",
            f"/proc with hidepid=2 in a new PID + mount namespace, as uid {RESTRICTED_UID}",
            user=True,
            hidepid=True,
        ),
        Scenario(
            "hidepid-kill-EPERM",
            "hidepid=2 and kill denied with EPERM: every pid without a /proc entry is alive",
            user=True,
            hidepid=True,
            deny=(("kill", "EPERM"),),
        ),
        Scenario(
            "cgroup-limited",
            "in a cgroup limited to 1 CPU and 1 GiB (the control for the two below)",
            user=True,
            cgroup=True,
            cgroup_source="limited",
        ),
        Scenario(
            "cgroup-limit-files-unreadable",
            "in that cgroup, every limit file on the walk covered by an unreadable file",
            user=True,
            cgroup=True,
            hide=("cgroup-limit-files",),
            cgroup_source="none",
        ),
        Scenario(
            "proc-self-cgroup-unreadable",
            "in that cgroup, /proc/self/cgroup unreadable: resolution fails, fixed paths",
            user=True,
            cgroup=True,
            hide=("/proc/self/cgroup",),
            cgroup_source="fixed",
        ),
        Scenario(
            "no-physical-memory-source",
            "in that cgroup, sysinfo denied and /proc/meminfo unreadable: the limit alone",
            user=True,
            cgroup=True,
            deny=(("sysinfo", "EPERM"),),
            hide=("/proc/meminfo",),
            cgroup_source="limited",
        ),
        Scenario(
            "native-corrupt",
            "the native module is not an ELF file: the loader fails",
            native="corrupt",
        ),
        Scenario(
            "native-unreadable",
            f"the native module is mode 000, loaded by uid {RESTRICTED_UID}",
            native="unreadable",
            user=True,
        ),
        Scenario(
            "native-sys-modules",
            "sys.modules['sky_rs._native'] = None before the import",
            native="sys-modules",
        ),
    ]
}


# ------------------------------------------------------------------------------ the cases


def cases(port: int, zombie: bool, pid_namespace: bool, user: bool) -> List[Dict[str, Any]]:
    """Every function, with arguments that touch the restricted sources."""
    mounts_entries = {"mapping": {"src": {"path": "entries"}}}
    mounts_files = {"mapping": {"a": {"path": "tail"}, "b": {"path": "missing"}}}
    mounts_locked = {"mapping": {"src": {"path": "locked"}}}
    table: List[Dict[str, Any]] = [
        _case("read_last_n_lines", "tail", {"path": "tail"}, 2),
        _case("read_last_n_lines", "tail-n0", {"path": "tail"}, 0),
        _case("read_last_n_lines", "missing", {"path": "missing"}, 1),
        _case("read_last_n_lines", "secret", {"path": "secret"}, 1),
        _case("hash_file", "tail", {"path": "tail"}, "sha256"),
        _case("hash_file", "missing-unknown-alg", {"path": "missing"}, "no-such-hash"),
        _case("find_free_port", "high", port),
        _case("base36_encode", "ff", "ff", expect="73"),
        _case("format_float", "tie", 2.55, 1, expect="2.5"),
        _case("truncate_long_string", "words", "a b c d e f", 10, expect="a b c d e ..."),
        _case("get_cpu_count", "-"),
        _case("get_mem_size_gb", "-"),
        _case("get_parallel_threads", "none", None),
        _case("get_parallel_threads", "kubernetes", "Kubernetes"),
        _case("is_process_alive", "self", {"pid": "self"}),
        _case("is_process_alive", "init", {"pid": "one"}),
        _case("is_process_alive", "dead", {"pid": "dead"}),
        _case("get_max_workers_for_file_mounts", "entries", mounts_entries),
        _case("get_max_workers_for_file_mounts", "files", mounts_files, "kubernetes"),
        _case("get_max_workers_for_file_mounts", "locked", mounts_locked),
        _case("estimate_fd_for_directory", "entries", {"path": "entries"}),
        _case("estimate_fd_for_directory", "file", {"path": "tail"}),
        _case("estimate_fd_for_directory", "locked", {"path": "locked"}),
    ]
    if user:  # below 1024 only root may bind: the first port must be an unprivileged one
        table.append(_case("find_free_port", "privileged", 1000))
    if zombie and not pid_namespace:  # the host's zombie has no pid inside a new namespace
        table.append(_case("is_process_alive", "zombie", {"pid": "zombie"}))
    return table


def _case(function: str, label: str, *args: Any, expect: Any = None) -> Dict[str, Any]:
    case: Dict[str, Any] = {"id": f"{function}/{label}", "function": function, "args": list(args)}
    if expect is not None:
        case["expect"] = expect
    return case


# ------------------------------------------------------------------------------ observations


def restriction_problems(scenario: Scenario, report: Mapping[str, Any]) -> List[str]:
    """Ways the child was *not* restricted as the scenario says (a vacuous run)."""
    sources = report["sources"]
    problems: List[str] = []
    for group, errno_name in scenario.denied:
        code = int(getattr(errno, errno_name))
        observed = _observation(group, sources)
        if observed is None:
            continue  # not observable here (glibc without a statx wrapper)
        if observed.get("ok") or observed.get("errno") != code:
            problems.append(f"{group} should fail with {errno_name}; the probe saw {observed}")
    if scenario.user and sources["euid"] != RESTRICTED_UID:
        problems.append(f"the probe ran as uid {sources['euid']}, not {RESTRICTED_UID}")
    if scenario.hidepid:
        init = sources["pids"]["one"]
        if init["state"].get("ok") or init["kill0"].get("errno") != errno.EPERM:
            problems.append(f"pid 1 should be hidden and unsignalable (EPERM); saw {init}")
    for path, observed in sources["files"].items():
        if observed.get("ok") or observed.get("errno") != errno.EACCES:
            problems.append(f"{path} should be unreadable (EACCES); the probe saw {observed}")
    if scenario.cgroup and scenario.cgroup_source == "limited":
        text = sources.get("proc_self_cgroup", {})
        wanted = report["plan"]["cgroup_dirs"]
        if text.get("ok"):
            names = [os.path.basename(d) for d in wanted.values()]
            if not all(f"/{name}\n" in text["value"] for name in names):
                problems.append(f"the probe is not in the limited cgroup: {text['value']!r}")
    return problems


def _observation(group: str, sources: Mapping[str, Any]) -> Dict[str, Any] | None:
    if group == "sched_getaffinity":
        return sources["affinity"]
    if group == "sysinfo":
        return sources["sysinfo_total"]
    if group == "kill":
        return sources["pids"]["dead"]["kill0"]
    if group == "bind":
        return sources["bind"]
    if group == "getrlimit":
        return sources["nofile"]
    if group == "statx":
        return sources["statx"]
    if group == "stat":
        return sources["paths"]["tail"]["stat"]
    if group == "openat":
        return sources["paths"]["tail"]["open"]
    raise ValueError(group)

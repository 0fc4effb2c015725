"""Live cgroups on the host: real limits, a child Python inside them, both backends asked.

Runs as root where this process's cgroup file system is writable: each case makes a small tree
of child cgroups under this process's own (cpu and memory controllers), writes the limits,
starts a child Python that joins the leaf before it runs anything, and compares what
``sky_rs.get_cpu_count()`` / ``get_mem_size_gb()`` (Rust) and ``sky_rs.fallback`` (Python)
say with the contract's answer computed from the files the test wrote: ``floor(quota /
period)``, the smallest limit on the walk up to the mount root, never below 1, capped by the
online CPUs and the affinity mask; memory the smallest of physical memory and the limits.

Cgroup v1 and v2 are separate parametrizations; the one this host lacks is skipped with the
reason (this sandbox: "host has no cgroup v2 cpu controller"). cgroup v1 refuses a child CPU
quota above its parent's (EINVAL), so "a parent tighter than its child" is, on v1, a limited
parent over an unlimited child; on v2 the child gets the larger quota.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cgroup_live
import pytest
from live_answers import measure_in_cgroups, record_row

# A level of a tree: (quota, period) for the CPU; None: no quota. ABOVE_PARENT: a quota larger
# than the parent's where the hierarchy allows one (v2), none where it refuses it (v1).
ABOVE_PARENT = (300000, 100000)
CpuLevel = Optional[Tuple[int, int]]
MIB = 1024**2


@dataclasses.dataclass(frozen=True)
class LiveCase:
    name: str
    cpu: Sequence[CpuLevel]  # top level first; the child joins the last
    memory: Sequence[int | None] = ()  # limits in bytes (or "2x physical" as -2), top first
    affinity: int | None = None  # pin the child to this many CPUs


CASES = [
    LiveCase("quota-1.5", [(150000, 100000)], memory=[512 * MIB]),
    LiveCase("quota-0.5", [(50000, 100000)]),
    LiveCase("quota-3", [(300000, 100000)]),
    LiveCase("quota-1.5-period-200ms", [(300000, 200000)]),
    LiveCase(
        "parent-tighter-than-child",
        [(100000, 100000), ABOVE_PARENT],
        memory=[256 * MIB, 512 * MIB],
    ),
    LiveCase(
        "grandparent-tighter",
        [(100000, 100000), None, None],
        memory=[1024 * MIB, None, 768 * MIB],
    ),
    LiveCase("unlimited", [None], memory=[-2]),
    LiveCase("quota-1.5-pinned-to-1-cpu", [(150000, 100000)], affinity=1),
    LiveCase("unlimited-pinned-to-1-cpu", [None], affinity=1),
]


def _skip_reason(version: int) -> str | None:
    if version == 2:
        reason = cgroup_live.v2_cpu_unavailable()
        if reason is None:
            reason = cgroup_live.live_unavailable(("memory",), version=2)
        return reason
    return cgroup_live.live_unavailable(("cpu", "memory"), version=1)


@pytest.fixture
def tree(request: pytest.FixtureRequest) -> Iterator[cgroup_live.CgroupTree]:
    made = cgroup_live.CgroupTree("live")
    yield made
    left = made.cleanup()
    assert not left, f"cgroups left behind: {left}"


def build(tree: cgroup_live.CgroupTree, case: LiveCase, version: int) -> Dict[str, str]:
    """Make the case's levels in both controllers; {controller: leaf directory}."""
    physical = cgroup_live.physical_memory()
    names = [f"level{depth}" for depth in range(1, len(case.cpu))]
    leaves: Dict[str, str] = {}
    cpu_chain = [tree.make("cpu", *names[:depth]) for depth in range(len(case.cpu))]
    for directory, level in zip(cpu_chain, case.cpu):
        if level is ABOVE_PARENT and version == 1:
            continue  # v1: EINVAL; an unlimited child it is
        if level is not None:
            tree.set_cpu(directory, *level)
    leaves["cpu"] = cpu_chain[-1]
    memory_levels = list(case.memory) or [None]
    memory_names = [f"level{depth}" for depth in range(1, len(memory_levels))]
    memory_chain = [tree.make("memory", *memory_names[:d]) for d in range(len(memory_levels))]
    for directory, limit in zip(memory_chain, memory_levels):
        if limit is not None:
            tree.set_memory(directory, 2 * physical if limit == -2 else limit)
    leaves["memory"] = memory_chain[-1]
    return leaves


def expected_answers(
    tree: cgroup_live.CgroupTree, leaves: Dict[str, str], affinity: int
) -> Dict[str, float]:
    """The contract's answers, from the limit files on the walk (what the test wrote, and any
    limit this process's own cgroups already had)."""
    cpu = tree.hierarchy("cpu")
    memory = tree.hierarchy("memory")
    physical = cgroup_live.physical_memory()
    cpu_limit = cgroup_live.read_cpu_limit(cpu, cpu.levels(leaves["cpu"]))
    memory_limit = cgroup_live.read_memory_limit(memory, memory.levels(leaves["memory"]), physical)
    limits: List[int] = [os.sysconf("SC_NPROCESSORS_ONLN"), affinity]
    if cpu_limit is not None:
        limits.append(cpu_limit)
    return {
        "cpus": max(min(limits), 1),
        "memory_gb": min(physical, memory_limit or physical) / cgroup_live.GIB,
    }


def _membership_problems(tree: cgroup_live.CgroupTree, leaves: Dict[str, str], text: str) -> str:
    lines = text.splitlines()
    for controller, leaf in leaves.items():
        hierarchy = tree.hierarchy(controller)
        relative = os.path.relpath(leaf, hierarchy.mount_point)
        if not any(line.endswith("/" + relative) for line in lines):
            return f"the child is not in {leaf} ({controller}); /proc/self/cgroup: {text!r}"
    return ""


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_live_cgroup(tree: cgroup_live.CgroupTree, version: int, case: LiveCase) -> None:
    reason = _skip_reason(version)
    if reason:
        pytest.skip(reason)
    leaves = build(tree, case, version)
    pinned = sorted(os.sched_getaffinity(0))[: case.affinity] if case.affinity else None
    answers = measure_in_cgroups(
        sorted({tree.procs_file(leaf) for leaf in leaves.values()}), pinned
    )
    problem = _membership_problems(tree, leaves, answers["proc_self_cgroup"])
    assert not problem, problem
    assert answers["backend"] == "rust", f"the native module did not load: {answers}"
    if pinned is not None:
        assert answers["affinity"] == len(pinned), answers
    want = expected_answers(tree, leaves, answers["affinity"])
    record_row(f"host-v{version}/{case.name}", answers, want)
    got = {
        "rust cpus": answers["rust_cpus"],
        "python cpus": answers["python_cpus"],
        "rust memory": answers["rust_memory_gb"],
        "python memory": answers["python_memory_gb"],
    }
    wanted = {
        "rust cpus": want["cpus"],
        "python cpus": want["cpus"],
        "rust memory": want["memory_gb"],
        "python memory": want["memory_gb"],
    }
    assert got == wanted, (
        f"{case.name} (cgroup v{version}): got {got}, the contract says {wanted}; "
        f"os.cpu_count()={answers['os_cpu_count']}, affinity={answers['affinity']}"
    )

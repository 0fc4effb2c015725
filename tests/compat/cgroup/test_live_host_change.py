"""A limit that changes under a running process, on the host: no answer may be cached.

One child Python stays alive while the test moves it from a cgroup without a
CPU quota (512 MiB of memory) into one with a 1-CPU quota (256 MiB), then
raises that quota to 2 CPUs and the memory to 384 MiB in place, as ``docker
update`` would. After each change both backends must give the new answer
(contract: no function keeps state between calls).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, Iterator

import cgroup_live
import pytest
from live_answers import ANSWERS_PROGRAM, JOIN_PROGRAM
from test_live_host import expected_answers

MIB = 1024**2


@pytest.fixture
def tree() -> Iterator[cgroup_live.CgroupTree]:
    made = cgroup_live.CgroupTree("change")
    yield made
    left = made.cleanup()
    assert not left, f"cgroups left behind: {left}"


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_limits_changed_between_two_calls(tree: cgroup_live.CgroupTree, version: int) -> None:
    reason = (
        cgroup_live.v2_cpu_unavailable() or cgroup_live.live_unavailable(("memory",), version=2)
        if version == 2
        else cgroup_live.live_unavailable(("cpu", "memory"), version=1)
    )
    if reason:
        pytest.skip(reason)
    first = {controller: tree.make(controller, "first") for controller in ("cpu", "memory")}
    second = {controller: tree.make(controller, "second") for controller in ("cpu", "memory")}
    tree.set_memory(first["memory"], 512 * MIB)
    tree.set_cpu(second["cpu"], 100000, 100000)
    tree.set_memory(second["memory"], 256 * MIB)

    spec = {
        "join": sorted(tree.procs_file(leaf) for leaf in first.values()),
        "affinity": None,
        "program": ANSWERS_PROGRAM,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYPILOT_")}
    env["SKY_RS_ANSWERS_ON_STDIN"] = "1"
    child = subprocess.Popen(
        [sys.executable, "-c", JOIN_PROGRAM, json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None

    wanted_at_each_step = []

    def ask(where: Dict[str, str], step: str) -> None:
        child.stdin.write("sample\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        line = child.stdout.readline()  # type: ignore[union-attr]
        assert line, f"the child died: {child.stderr.read() if child.stderr else ''}"
        answers: Dict[str, Any] = json.loads(line)
        assert answers["backend"] == "rust", answers
        want = expected_answers(tree, where, answers["affinity"])
        got = {
            "rust": (answers["rust_cpus"], answers["rust_memory_gb"]),
            "python": (answers["python_cpus"], answers["python_memory_gb"]),
        }
        wanted = (want["cpus"], want["memory_gb"])
        wanted_at_each_step.append(wanted)
        assert got == {"rust": wanted, "python": wanted}, f"{step}: got {got}, want {wanted}"

    try:
        ask(first, "in a cgroup without a CPU quota, 512 MiB")
        for leaf in second.values():
            with open(tree.procs_file(leaf), "w") as handle:
                handle.write(str(child.pid))
        ask(second, "moved into a 1-CPU, 256 MiB cgroup")
        tree.set_cpu(second["cpu"], 200000, 100000)
        tree.set_memory(second["memory"], 384 * MIB)
        ask(second, "the same cgroup raised to 2 CPUs, 384 MiB in place")
        # A cached answer is caught only where each change changes the answer.
        first_step, moved, raised = wanted_at_each_step
        assert first_step != moved != raised, wanted_at_each_step
    finally:
        child.stdin.close()
        child.wait(timeout=30)

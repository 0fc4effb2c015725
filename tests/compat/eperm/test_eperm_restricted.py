"""EPERM degradation under restrictions this process creates itself (as root on the host).

For each scenario of ``eperm_scenarios.SCENARIOS`` a child Python runs every function on both
backends under the restriction (``eperm_probe.py`` under ``eperm_restrict.py``). Then, per
function: no crash, no panic, no hang; each backend's answer is what the contract says for the
sources the child could observe; Rust and Python agree. Per scenario: the restriction really
took effect, and ``sky_rs.stats()`` shows the fallbacks with their reason (none at all while
the native module loads: degrading is the answer, not a failure).

A scenario this environment cannot create (no root, no CAP_SYS_ADMIN for a mount namespace, no
writable cgroup file system, no libseccomp) is skipped with that reason. Inside a container
cell the profile's own restriction comes on top; test_eperm_profile.py checks that one alone.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest
from eperm_checks import backend_failures, contract_failures
from eperm_scenarios import SCENARIOS, restriction_problems
from eperm_workspace import (
    STD_STAT_FUNCTIONS,
    ProbeFailed,
    Workspace,
    statx_denial_hidden_from_std,
)

import sky_rs


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    space = Workspace()
    yield space
    left = space.close()
    assert not left, f"cgroups left behind: {left}"


def report_for(workspace: Workspace, name: str) -> Dict[str, Any]:
    scenario = SCENARIOS[name]
    reason = workspace.unavailable(scenario)
    if reason:
        pytest.skip(f"{name}: {reason}")
    try:
        return workspace.run(scenario)
    except ProbeFailed as exc:
        failure = f"{name}: {exc}"
    pytest.fail(failure, pytrace=False)


@pytest.mark.parametrize("function", sky_rs.FUNCTIONS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_answer_follows_the_contract(workspace: Workspace, name: str, function: str) -> None:
    hidden = function in STD_STAT_FUNCTIONS and statx_denial_hidden_from_std()
    if hidden:
        pytest.skip(hidden)
    report = report_for(workspace, name)
    oracle = workspace.cgroup_oracle(SCENARIOS[name])
    failures = contract_failures(function, report, oracle, workspace.contents)
    assert not failures, f"{name} ({SCENARIOS[name].description}):\n" + "\n".join(failures)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_restriction_took_effect(workspace: Workspace, name: str) -> None:
    report = report_for(workspace, name)
    problems = restriction_problems(SCENARIOS[name], report)
    assert not problems, f"{name} was not restricted as described:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_backend_and_fallback_counts(workspace: Workspace, name: str) -> None:
    report = report_for(workspace, name)
    failures = backend_failures(SCENARIOS[name], report)
    assert not failures, f"{name}:\n" + "\n".join(failures)

"""EPERM degradation under the restriction the environment itself imposes.

In a container cell the profile (``SKY_RS_MATRIX_PROFILE``) *is* the restriction:
``seccomp-eperm`` / ``seccomp-enosys`` deny the syscalls listed in
``eperm_scenarios.PROFILE_GROUPS``, ``nonroot`` runs the tests as an unprivileged user,
``hidepid`` also remounts ``/proc`` with ``hidepid=2``. The suite creates nothing here: a child
runs every function as it is, and the test asserts the contract's degraded answers, that the
profile's restriction is really in force (else the cell would prove nothing), and that Rust
answered every call itself. Under ``default`` (and on the host) this is the unrestricted
baseline: the fallback rate is exactly 0.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List

import pytest
from eperm_checks import backend_failures, contract_failures
from eperm_scenarios import PROFILE_GROUPS, Scenario, restriction_problems
from eperm_workspace import (
    STD_STAT_FUNCTIONS,
    ProbeFailed,
    Workspace,
    statx_denial_hidden_from_std,
)

import sky_rs

PROFILE = os.environ.get("SKY_RS_MATRIX_PROFILE", "default")
PLATFORM = os.environ.get("SKY_RS_MATRIX_PLATFORM", "host")


def ambient_scenario(profile: str) -> Scenario:
    """What the profile does to every process of the cell, as a scenario to check against."""
    if profile in ("seccomp-eperm", "seccomp-enosys"):
        errno_name = profile.split("-")[1].upper()
        return Scenario(
            f"profile-{profile}",
            f"the container's seccomp profile denies {', '.join(PROFILE_GROUPS)} with {errno_name}",
            deny=tuple((group, errno_name) for group in PROFILE_GROUPS),
            ambient=True,
        )
    if profile == "hidepid":
        return Scenario(
            "profile-hidepid",
            "/proc remounted with hidepid=2; an unprivileged user",
            hidepid=True,
            ambient=True,
        )
    return Scenario(f"profile-{profile}", f"the {profile} profile, unchanged", ambient=True)


SCENARIO = ambient_scenario(PROFILE)


@pytest.fixture(scope="module")
def report() -> Iterator[Dict[str, Any]]:
    space = Workspace()
    try:
        result = space.run(SCENARIO)
    except ProbeFailed as exc:
        failure = f"{SCENARIO.name} on {PLATFORM}: {exc}"
    else:
        failure = ""
        result["_workspace"] = space
    if failure:
        space.close()
        pytest.fail(failure, pytrace=False)
    yield result
    left = space.close()
    assert not left, f"left behind: {left}"


def profile_problems(report: Dict[str, Any]) -> List[str]:
    problems = restriction_problems(SCENARIO, report)
    euid = report["sources"]["euid"]
    if PROFILE in ("nonroot", "hidepid") and euid == 0:
        problems.append(f"the {PROFILE} profile should run the tests unprivileged; uid is 0")
    if PROFILE == "hidepid" and not _proc_has_hidepid():
        problems.append("/proc is not mounted with hidepid=2 (or invisible)")
    return problems


def _proc_has_hidepid() -> bool:
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 4 and fields[4] == "/proc" and "-" in fields[6:]:
                options = fields[fields.index("-", 6) + 3].split(",")
                if any(o in ("hidepid=2", "hidepid=invisible") for o in options):
                    return True
    return False


def test_profile_restriction_is_in_force(report: Dict[str, Any]) -> None:
    problems = profile_problems(report)
    assert not problems, f"profile {PROFILE} on {PLATFORM}:\n" + "\n".join(problems)


@pytest.mark.parametrize("function", sky_rs.FUNCTIONS)
def test_answer_follows_the_contract(report: Dict[str, Any], function: str) -> None:
    hidden = function in STD_STAT_FUNCTIONS and statx_denial_hidden_from_std()
    if hidden:
        pytest.skip(hidden)
    space: Workspace = report["_workspace"]
    oracle = space.cgroup_oracle(SCENARIO)
    failures = contract_failures(function, report, oracle, space.contents)
    assert not failures, f"profile {PROFILE} on {PLATFORM}:\n" + "\n".join(failures)


def test_rust_answered_every_call(report: Dict[str, Any]) -> None:
    failures = backend_failures(SCENARIO, report)
    assert not failures, f"profile {PROFILE} on {PLATFORM}:\n" + "\n".join(failures)

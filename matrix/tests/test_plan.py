"""Planning, selection, sharding and the GitHub Actions matrix."""

from __future__ import annotations

import json
from typing import Dict, List

import pytest

from sky_matrix.config.suites import SUITES
from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Interpreter
from sky_matrix.docker.images import IMAGES
from sky_matrix.execute.platforms import DockerPlatform, HostPlatform, Platform, Slot
from sky_matrix.plan.discovery import Discovery, Rejected
from sky_matrix.plan.planner import Selection, full_plan, github_matrix_json, parse_shard, select


def _interp(version: str, debug: bool = False) -> Interpreter:
    major, minor = version.split(".")[:2]
    return Interpreter(
        path=f"/opt/python{major}.{minor}",
        version=version,
        implementation="cpython",
        abi=f"cp{major}{minor}{'d' if debug else ''}",
        debug=debug,
        source="pyenv",
    )


def _host(versions: List[str], rejected: List[Rejected] = ()) -> HostPlatform:
    found = {(i := _interp(v)).short: i for v in versions}
    return HostPlatform(Discovery(found, list(rejected), ()))


class FakeImage(Platform):
    """A container-like platform: several profiles, maybe unusable."""

    def __init__(self, name: str, labels: List[str], why: str = "") -> None:
        self.name = f"docker:{name}"
        self._labels = labels
        self._why = why

    def slots(self) -> Dict[str, Slot]:
        return {label: Slot(label, _interp(label + ".0")) for label in self._labels}

    def profiles(self, suite: str) -> List[str]:
        return ["default", "cpus-1.5"] if suite == "cgroup" else ["default"]

    def unusable(self) -> str:
        return self._why


ALL = ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]


def test_full_plan_is_every_suite_times_every_interpreter() -> None:
    plan = full_plan([_host(ALL)], strict=False)
    assert len(plan) == 6 * len(SUITES)
    assert {p.cell.profile for p in plan} == {"default"}
    assert all(p.skip is None and p.error is None for p in plan)
    ids = {p.cell.id for p in plan}
    assert "host-py3.8-parity-default" in ids and "host-py3.13-stability-default" in ids


def test_missing_interpreter_is_a_skip_or_a_strict_error() -> None:
    relaxed = full_plan([_host(ALL[1:])], strict=False)
    missing = [p for p in relaxed if p.cell.python == "3.8"]
    assert len(missing) == len(SUITES)
    assert {p.skip for p in missing} == {"not found"}
    strict = full_plan([_host(ALL[1:])], strict=True)
    errors = [p for p in strict if p.cell.python == "3.8"]
    assert all(
        p.error and p.error.startswith("not found (strict: install CPython 3.8") for p in errors
    )


def test_unusable_platform_skips_its_cells_with_the_reason() -> None:
    plan = full_plan(
        [_host(ALL), FakeImage("sid", ["3.14"], "docker unusable: no daemon")], strict=True
    )
    docker = [p for p in plan if p.cell.platform == "docker:sid"]
    assert len(docker) == len(SUITES) + 1  # cgroup runs under two profiles
    assert {p.skip for p in docker} == {"docker unusable: no daemon"}


def test_filters_and_patterns() -> None:
    plan = full_plan([_host(ALL), FakeImage("sid", ["3.13", "3.14"])], strict=False)
    chosen = select(plan, Selection(suites=["parity,cgroup"], pythons=["3.13"]))
    assert [p.cell.id for p in chosen] == [
        "host-py3.13-parity-default",
        "host-py3.13-cgroup-default",
        "docker:sid-py3.13-parity-default",
        "docker:sid-py3.13-cgroup-default",
        "docker:sid-py3.13-cgroup-cpus-1.5",
    ]
    only_docker = select(plan, Selection(platforms=["docker"], profiles=["cpus-1.5"]))
    assert [p.cell.id for p in only_docker] == [
        "docker:sid-py3.13-cgroup-cpus-1.5",
        "docker:sid-py3.14-cgroup-cpus-1.5",
    ]
    glob = select(plan, Selection(only=["host-py3.1?-leaks-*"]))
    assert [p.cell.python for p in glob] == ["3.10", "3.11", "3.12", "3.13"]
    substring = select(plan, Selection(only=["py3.9-eperm"]))
    assert [p.cell.id for p in substring] == ["host-py3.9-eperm-default"]


def test_unknown_names_are_usage_errors() -> None:
    plan = full_plan([_host(ALL)], strict=False)
    with pytest.raises(UsageError, match="unknown suite 'paritty': choose from parity, cgroup"):
        select(plan, Selection(suites=["paritty"]))
    with pytest.raises(UsageError, match=r"unknown interpreter '3\.7': known labels are 3\.8"):
        select(plan, Selection(pythons=["3.7"]))
    with pytest.raises(UsageError, match="unknown platform 'docker:sid': choose from host"):
        select(plan, Selection(platforms=["docker:sid"]))
    with pytest.raises(UsageError, match="unknown profile 'cpus-9': choose from default"):
        select(plan, Selection(profiles=["cpus-9"]))
    with pytest.raises(UsageError, match="no cell matches nothing-like-this"):
        select(plan, Selection(only=["nothing-like-this"]))


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "x", "1-2", "1/2/3"])
def test_bad_shards(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_shards_partition_the_selection() -> None:
    plan = full_plan([_host(ALL)], strict=False)
    everything = {p.cell.id for p in select(plan, Selection())}
    seen: List[str] = []
    for index in (1, 2, 3, 4):
        shard = select(plan, Selection(shard=(index, 4)))
        assert 7 <= len(shard) <= 8
        seen.extend(p.cell.id for p in shard)
    assert sorted(seen) == sorted(everything)  # disjoint and complete


def test_rerun_ids_and_allow_fail() -> None:
    plan = full_plan([_host(ALL)], strict=False)
    ids = {"host-py3.8-leaks-default", "host-py3.12-parity-default"}
    chosen = select(plan, Selection(cell_ids=ids, allow_fail=["*-leaks-*"]))
    assert {p.cell.id for p in chosen} == ids
    required = {p.cell.id: p.required for p in chosen}
    assert required == {"host-py3.8-leaks-default": False, "host-py3.12-parity-default": True}


def test_github_matrix_json() -> None:
    plan = full_plan([_host(ALL), FakeImage("sid", ["3.14d"])], strict=False)
    chosen = select(plan, Selection(suites=["cgroup"], pythons=["3.11", "3.14d"]))
    data = json.loads(github_matrix_json(chosen))
    assert list(data) == ["include"]
    assert data["include"][0] == {
        "cell": "host-py3.11-cgroup-default",
        "python": "3.11",
        "python-label": "3.11",
        "abi": "cp311",
        "platform": "host",
        "suite": "cgroup",
        "profile": "default",
        "required": True,
    }
    assert [e["python"] for e in data["include"]] == ["3.11", "3.14", "3.14"]
    assert [e["abi"] for e in data["include"]] == ["cp311", "cp314d", "cp314d"]


def test_the_plan_has_not_drifted() -> None:
    """Suites x interpreters x images x profiles on a fixed host: a refactoring keeps it."""
    from pathlib import Path

    from plan_snapshot import snapshot_lines

    expected = (Path(__file__).with_name("plan_snapshot.txt")).read_text(encoding="utf-8")
    assert snapshot_lines() == expected.splitlines()


def test_a_suite_that_cannot_run_on_a_platform_is_planned_as_a_stated_skip() -> None:
    platform = DockerPlatform("sid-pypy3", None)
    skipped = dict(IMAGES["sid-pypy3"].skipped_suites)
    assert set(skipped) == {"leaks", "stability"}
    cells = [p for p in full_plan([platform], strict=False) if p.cell.suite in skipped]
    assert cells and all(p.skip == skipped[p.cell.suite] for p in cells)
    assert "sys.getrefcount()" in skipped["leaks"] and "psutil" in skipped["stability"]
    assert platform.suite_skip("parity") is None

"""Every cgroup fixture tree gives its expected limits, from both backends.

A fixture is ``tests/compat/fixtures/cgroup/<case>/`` with ``root/`` (a small
file system: ``proc/self/cgroup``, ``proc/self/mountinfo``, ``sys/fs/cgroup/...``)
and ``expected.json``: ``{"physical": int | null, "cpus": int | null,
"memory_bytes": int | null, ...}`` (``physical`` feeds the v1 "above physical
memory" rule); see ``fixtures/cgroup/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List

import pytest

if TYPE_CHECKING:
    from conftest import Backends

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
MINIMUM_FIXTURES = 40


def fixture_dirs() -> List[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(path for path in FIXTURES.iterdir() if path.is_dir())


def load_expected(case: Path) -> Dict[str, Any]:
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    for key in ("physical", "cpus", "memory_bytes"):
        assert key in expected, f"{case.name}/expected.json has no {key!r}"
        value = expected[key]
        assert value is None or (type(value) is int and value >= 0), (case.name, key, value)
    return expected


def test_there_are_enough_fixtures() -> None:
    found = fixture_dirs()
    assert len(found) >= MINIMUM_FIXTURES, (
        f"{len(found)} cgroup fixtures in {FIXTURES}, expected at least {MINIMUM_FIXTURES}"
    )
    for case in found:
        assert (case / "root").is_dir(), f"{case.name} has no root/ directory"
        assert (case / "expected.json").is_file(), f"{case.name} has no expected.json"


@pytest.mark.parametrize("case", fixture_dirs(), ids=lambda path: path.name)
@pytest.mark.parametrize("backend", ["python", "native"])
def test_fixture(backends: Backends, case: Path, backend: str) -> None:
    module = getattr(backends, backend)
    expected = load_expected(case)
    root = str(case / "root")
    physical = expected["physical"]
    cpus = module._cgroup_cpu_limit(root)
    memory = module._cgroup_memory_limit(root, physical)
    assert (cpus, memory) == (expected["cpus"], expected["memory_bytes"]), (
        f"{case.name} ({backend}): got cpus={cpus!r} memory_bytes={memory!r}, expected "
        f"cpus={expected['cpus']!r} memory_bytes={expected['memory_bytes']!r}"
    )
    assert cpus is None or type(cpus) is int
    assert memory is None or type(memory) is int

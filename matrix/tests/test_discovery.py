"""Interpreter discovery, with fake interpreters that answer the probe."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import pytest
from matrix_helpers import base_python

from sky_matrix.config.project import load_project_config
from sky_matrix.core.errors import UsageError
from sky_matrix.execute.platforms import HostPlatform
from sky_matrix.plan.discovery import (
    Candidate,
    describe,
    discover,
    path_candidates,
    planned_labels,
    probe,
    pyenv_root,
)

FakePython = Callable[..., Path]


def _pyenv_tree(root: Path, fake_python: FakePython, versions: dict) -> Path:
    for version, kwargs in versions.items():
        fake_python("python3", version, folder=root / "versions" / version / "bin", **kwargs)
    return root


def test_probe_describes_a_real_interpreter() -> None:
    interp, why = describe(probe(Candidate(base_python(), "--python")))
    assert why is None and interp is not None
    assert interp.implementation == "cpython"
    assert interp.abi.startswith("cp3")
    assert interp.version.startswith(interp.short.rstrip("d"))


def test_eligible_and_ineligible_interpreters(tmp_path: Path, fake_python: FakePython) -> None:
    root = _pyenv_tree(
        tmp_path / "pyenv",
        fake_python,
        {
            "2.7.18": {},
            "3.7.16": {},
            "3.9.18": {},
            "3.13.0": {"freethreaded": True},
            "3.14.0": {"debug": True},
        },
    )
    # pypy's directory name is not a version; the probe's answer is what counts.
    fake_python(
        "python3",
        "3.10.14",
        implementation="pypy",
        folder=root / "versions" / "pypy3.10-7.3" / "bin",
    )
    found = discover(env={"PYENV_ROOT": str(root), "PATH": ""})
    assert sorted(found.interpreters) == ["3.14d", "3.9"]
    debug = found.interpreters["3.14d"]
    assert debug.debug and debug.abi == "cp314d" and debug.source == "pyenv"
    reasons = {r.version: r.reason for r in found.rejected}
    assert reasons["2.7.18"] == "unsupported: < 3.8"
    assert reasons["3.7.16"] == "unsupported: < 3.8"
    assert reasons["3.13.0"].startswith("unsupported: free-threaded")
    assert reasons["3.10.14"] == "unsupported: pypy (CPython only)"


def test_broken_and_hanging_interpreters_are_reported(
    tmp_path: Path, fake_python: FakePython
) -> None:
    root = tmp_path / "pyenv"
    fake_python("python3", "3.10.1", exit_code=1, folder=root / "versions" / "3.10.1" / "bin")
    fake_python("python3", "3.12.1", hang=True, folder=root / "versions" / "3.12.1" / "bin")
    found = discover(env={"PYENV_ROOT": str(root), "PATH": ""}, timeout=1.0)
    assert found.interpreters == {}
    reasons = sorted(r.reason for r in found.rejected)
    assert reasons[0].startswith("broken: probe exited with status 1: Fatal Python error")
    assert reasons[1] == "broken: probe timed out after 1 s"


def test_no_venv_module_is_not_eligible(tmp_path: Path, fake_python: FakePython) -> None:
    path = fake_python("python3.11", "3.11.2", has_venv=False)
    found = discover(env={"PATH": str(path.parent)}, use_pyenv=False)
    assert found.interpreters == {}
    assert "no venv/ensurepip" in found.rejected[0].reason


def test_dedupe_by_realpath_and_label(tmp_path: Path, fake_python: FakePython) -> None:
    root = _pyenv_tree(tmp_path / "pyenv", fake_python, {"3.11.7": {}})
    bin_dir = tmp_path / "usr-bin"
    system = fake_python("python3.11", "3.11.2", folder=bin_dir)
    (bin_dir / "python3").symlink_to(system)  # the same binary under two names
    newer = fake_python("python3.12", "3.12.3", folder=bin_dir)
    found = discover(env={"PYENV_ROOT": str(root), "PATH": str(bin_dir)})
    assert found.interpreters["3.11"].version == "3.11.7"  # pyenv ranks above PATH
    assert found.interpreters["3.12"].path == str(newer)
    shadowed = [r for r in found.rejected if r.reason.startswith("shadowed by")]
    # python3 -> python3.11 is one interpreter: probed once, listed once.
    assert [os.path.realpath(r.path) for r in shadowed] == [str(system)]
    assert len([r for r in found.rejected if r.version == "3.11.2"]) == 1


def test_same_source_keeps_the_newer_patch(tmp_path: Path, fake_python: FakePython) -> None:
    a = fake_python("python3.11", "3.11.2", folder=tmp_path / "a")
    b = fake_python("python3.11", "3.11.9", folder=tmp_path / "b")
    found = discover(env={"PATH": f"{a.parent}{os.pathsep}{b.parent}"}, use_pyenv=False)
    assert found.interpreters["3.11"].version == "3.11.9"


def test_explicit_interpreters_win_and_select(tmp_path: Path, fake_python: FakePython) -> None:
    root = _pyenv_tree(tmp_path / "pyenv", fake_python, {"3.11.7": {}})
    mine = fake_python("python3.11", "3.11.0", folder=tmp_path / "mine")
    found = discover(explicit=[str(mine)], env={"PYENV_ROOT": str(root), "PATH": ""})
    assert found.interpreters["3.11"].path == str(mine)
    assert found.interpreters["3.11"].source == "--python"
    assert found.explicit_labels == ("3.11",)


def test_explicit_problems_are_usage_errors(tmp_path: Path, fake_python: FakePython) -> None:
    with pytest.raises(UsageError, match=r"--python .*nope: no such file"):
        discover(explicit=[str(tmp_path / "nope")], env={"PATH": ""}, use_pyenv=False)
    broken = fake_python("python3.12", "3.12.0", exit_code=3)
    with pytest.raises(UsageError, match="broken: probe exited with status 3"):
        discover(explicit=[str(broken)], env={"PATH": ""}, use_pyenv=False)
    old = fake_python("python3.7", "3.7.1")
    with pytest.raises(UsageError, match=r"unsupported: < 3\.8"):
        discover(configured=[str(old)], env={"PATH": ""}, use_pyenv=False)


def test_pyenv_root_from_the_pyenv_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pyenv = bin_dir / "pyenv"
    pyenv.write_text(f"#!/bin/sh\necho {tmp_path / 'elsewhere'}\n", encoding="utf-8")
    pyenv.chmod(pyenv.stat().st_mode | stat.S_IXUSR)
    assert pyenv_root({"PATH": str(bin_dir)}) == tmp_path / "elsewhere"
    assert pyenv_root({"PYENV_ROOT": "/x/y", "PATH": str(bin_dir)}) == Path("/x/y")
    assert pyenv_root({"PATH": ""}) is None


def test_path_scan_skips_shims_and_non_pythons(tmp_path: Path, fake_python: FakePython) -> None:
    shims = tmp_path / "shims"
    fake_python("python3.9", "3.9.1", folder=shims)
    real = fake_python("python3.9", "3.9.2", folder=tmp_path / "bin")
    fake_python("python3.9-config", "3.9.2", folder=tmp_path / "bin")
    found = path_candidates({"PATH": f"{shims}{os.pathsep}{real.parent}"}, skip_dirs=[shims])
    assert found == [Candidate(str(real), "PATH")]


def test_missing_and_broken_planned_labels(tmp_path: Path, fake_python: FakePython) -> None:
    root = tmp_path / "pyenv"
    fake_python("python3", "3.10.1", exit_code=1, folder=root / "versions" / "3.10.1" / "bin")
    fake_python("python3", "3.15.0", folder=root / "versions" / "3.15.0" / "bin")
    found = discover(env={"PYENV_ROOT": str(root), "PATH": ""})
    slots = HostPlatform(found).slots()
    assert list(slots) == ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.15"]
    assert slots["3.8"].missing == "not found"
    assert slots["3.15"].interpreter is not None  # newer than planned: joins when found
    assert planned_labels(["3.15", "3.14d"])[-2:] == ["3.14d", "3.15"]


def test_broken_interpreter_reason_reaches_its_slot(
    tmp_path: Path, fake_python: FakePython
) -> None:
    # A broken interpreter has no version from the probe; its slot stays "not found"
    # unless the probe said which version it is. A bad venv module is the usual case.
    root = tmp_path / "pyenv"
    fake_python("python3", "3.10.1", has_venv=False, folder=root / "versions" / "3.10.1" / "bin")
    found = discover(env={"PYENV_ROOT": str(root), "PATH": ""})
    assert HostPlatform(found).slots()["3.10"].missing == "not found"
    assert any("no venv" in r.reason for r in found.rejected)


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.sky-rs-matrix]\npythons = ["/opt/py/bin/python3", "rel/python"]\n',
        encoding="utf-8",
    )
    config = load_project_config(tmp_path)
    assert config.pythons == ("/opt/py/bin/python3", str(tmp_path / "rel/python"))
    (tmp_path / "pyproject.toml").write_text(
        "[tool.sky-rs-matrix]\npythons = 3\n", encoding="utf-8"
    )
    with pytest.raises(UsageError, match="pythons must be a list"):
        load_project_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.sky-rs-matrix]\npython = []\n", encoding="utf-8"
    )
    with pytest.raises(UsageError, match="unknown key"):
        load_project_config(tmp_path)

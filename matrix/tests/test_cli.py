"""Bad input ends with one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List

import pytest
from matrix_helpers import base_python, run_args

from sky_matrix.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: List[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    # Progress lines may come first; the problem is the last line, and the only such line.
    assert [line for line in lines if line.startswith("sky-rs-matrix: ")] == lines[-1:], err
    return lines[-1]


@pytest.fixture
def base(tmp_path: Path, project: Path, fake_wheel: Path) -> List[str]:
    return run_args(project, tmp_path / "cache", fake_wheel, tmp_path / "report")


def test_unknown_names(capsys: pytest.CaptureFixture[str], base: List[str]) -> None:
    line = _one_line_error(capsys, [*base, "--suite", "parity,leakz"])
    assert line == (
        "sky-rs-matrix: unknown suite 'leakz': choose from parity, cgroup, eperm, leaks, stability"
    )
    line = _one_line_error(capsys, [*base, "--profile", "memory-1g"])
    assert line == "sky-rs-matrix: unknown profile 'memory-1g': choose from default"
    line = _one_line_error(capsys, [*base, "--python", "3.99"])
    assert line.startswith("sky-rs-matrix: unknown interpreter '3.99': known labels are ")
    line = _one_line_error(capsys, [*base, "--platform", "vm"])
    assert line == "sky-rs-matrix: unknown platform 'vm': choose from host"
    line = _one_line_error(capsys, [*base, "-k", "py2.7"])
    assert line == "sky-rs-matrix: no cell matches py2.7: see the ids with --list"
    line = _one_line_error(capsys, [*base, "--shard", "3/2"])
    assert line == "sky-rs-matrix: --shard '3/2': need 1 <= i <= n"


def test_broken_and_missing_interpreters(
    capsys: pytest.CaptureFixture[str], base: List[str], fake_python: Callable[..., Path]
) -> None:
    broken = fake_python("python3.12", "3.12.0", exit_code=1)
    line = _one_line_error(capsys, [*base, "--python", str(broken)])
    assert line.startswith(f"sky-rs-matrix: --python {broken}: broken: probe exited with status 1")
    assert line.endswith("pass a working CPython >= 3.8")
    line = _one_line_error(capsys, [*base, "--python", "/no/such/python3"])
    assert line == (
        "sky-rs-matrix: --python /no/such/python3: no such file: pass an interpreter's path"
    )


def test_unbuildable_source_tree(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, project: Path
) -> None:
    # No --wheel: the runner builds one, and this tree has no Rust crate to build.
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["maturin>=1.7,<2"]\nbuild-backend = "maturin"\n\n'
        '[project]\nname = "skypilot-rust"\nversion = "0.1.0"\n\n'
        '[tool.maturin]\nmanifest-path = "rust/missing/Cargo.toml"\n\n[tool.sky-rs-matrix]\n',
        encoding="utf-8",
    )
    argv = [
        "run", "--project-root", str(project), "--no-discover", "--python", base_python(),
        "--report-dir", str(tmp_path / "report"), "--no-docker",
    ]  # fmt: skip
    line = _one_line_error(capsys, argv)
    assert line.startswith(
        ("sky-rs-matrix: the wheel does not build", "sky-rs-matrix: maturin is not installed")
    )
    assert not (tmp_path / "report" / "cells").exists()


def test_full_report_disk_keeps_earlier_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: List[str]
) -> None:
    report = tmp_path / "report"
    earlier = report / "cells" / "host-py3.11-parity-default" / "result.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"verdict": "pass"}\n', encoding="utf-8")
    (report / ".write-check.tmp").symlink_to("/dev/full")  # writes there fail with ENOSPC
    line = _one_line_error(capsys, base)
    assert line.startswith(
        f"sky-rs-matrix: cannot write {report / '.write-check'}: the disk is full"
    )
    assert earlier.read_text(encoding="utf-8") == '{"verdict": "pass"}\n'


def test_other_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: List[str], project: Path
) -> None:
    line = _one_line_error(capsys, [*base, "--rerun-failed"])
    assert line.startswith("sky-rs-matrix: --rerun-failed: no report at ")
    assert line.endswith("run the matrix first")
    line = _one_line_error(capsys, ["run", "--project-root", str(tmp_path)])
    assert line == f"sky-rs-matrix: --project-root {tmp_path}: no pyproject.toml there"
    line = _one_line_error(capsys, [*base, "--canary", "explode"])
    assert line.startswith("sky-rs-matrix: --canary 'explode': choose from segfault")
    (project / "tests" / "requirements.txt").unlink()
    line = _one_line_error(capsys, base)
    assert line.endswith("requirements.txt is missing: it lists the test dependencies of a cell")


def test_list_and_json(capsys: pytest.CaptureFixture[str], base: List[str]) -> None:
    assert main([*base, "--list"]) == 0
    out = capsys.readouterr().out
    assert "cells: 5 selected, 5 to run" in out
    assert "tests/compat/parity" in out and "host: default" in out
    assert main([*base, "--json", "--suite", "parity"]) == 0
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["include"]
    assert entry["suite"] == "parity" and entry["platform"] == "host"
    assert entry["cell"] == f"host-py{entry['python-label']}-parity-default"

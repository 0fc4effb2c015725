"""tox.ini and noxfile.py offer the suites of sky_matrix.config.suites, with their directories."""

from __future__ import annotations

import ast
import configparser
import os
import re
from pathlib import Path
from typing import List

import pytest

from sky_matrix.config.suites import SUITES
from sky_matrix.execute import staging


def _project_root() -> Path:
    for candidate in (os.environ.get("SKY_RS_PROJECT_ROOT"), Path(__file__).resolve().parents[2]):
        if candidate and (Path(candidate) / "tox.ini").is_file():
            return Path(candidate)
    pytest.fail("tox.ini not found: run from the source tree or through `sky_matrix pytest`")


def test_tox_envs_are_the_suites_and_take_them_from_the_table() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(_project_root() / "tox.ini", encoding="utf-8")
    (command,) = config["testenv"]["commands"].strip().splitlines()
    assert "staging.py --project-root {tox_root} --suite {env_name} --" in command
    env_list = config["tox"]["env_list"]
    factors = re.search(r"^py\{38,39,310,311,312,313\}-\{(.*)\}$", env_list, re.M)
    assert factors and factors.group(1).split(",") == list(SUITES)
    labels = config["tox"]["labels"]
    for name in SUITES:
        assert re.search(rf"^{name} = build, py\{{38,39,310,311,312,313\}}-{name}$", labels, re.M)


def test_a_tox_env_name_selects_its_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def run_staged(root: Path, paths: List[str], pytest_args: List[str]) -> int:
        seen.update(paths=paths, pytest_args=pytest_args)
        return 0

    monkeypatch.setattr(staging, "run_staged", run_staged)
    assert staging.main(["--suite", "py38-parity", "--", "-n", "auto"]) == 0
    assert seen["paths"] == list(SUITES["parity"].dirs)
    assert seen["pytest_args"] == ["--timeout=600", "-n", "auto"]
    with pytest.raises(SystemExit):
        staging.main(["--suite", "py38-nosuch"])


def test_nox_declares_a_session_per_suite() -> None:
    tree = ast.parse((_project_root() / "noxfile.py").read_text(encoding="utf-8"))
    sessions = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("nox.session") for d in node.decorator_list)
    }
    assert {"build", "tests", "matrix", "lint", *SUITES} <= sessions

"""tox.ini and noxfile.py offer the suites of sky_matrix.config.suites, with their directories."""

from __future__ import annotations

import ast
import configparser
import os
import re
from pathlib import Path

import pytest

from sky_matrix.config.suites import SUITES


def _project_root() -> Path:
    for candidate in (os.environ.get("SKY_RS_PROJECT_ROOT"), Path(__file__).resolve().parents[2]):
        if candidate and (Path(candidate) / "tox.ini").is_file():
            return Path(candidate)
    pytest.fail("tox.ini not found: run from the source tree or through `sky_matrix pytest`")


def test_tox_envs_run_the_suite_directories() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(_project_root() / "tox.ini", encoding="utf-8")
    commands = config["testenv"]["commands"]
    per_suite = {}
    for line in commands.strip().splitlines():
        factor, _, command = line.partition(":")
        paths = re.search(r"staging\.py --project-root \{tox_root\} (.*?) --", command)
        assert paths, line
        per_suite[factor.strip()] = tuple(paths.group(1).split())
    assert per_suite == {name: suite.dirs for name, suite in SUITES.items()}
    labels = config["tox"]["labels"]
    for name in SUITES:
        assert re.search(rf"^{name} = build, py\{{38,39,310,311,312,313\}}-{name}$", labels, re.M)


def test_nox_declares_a_session_per_suite() -> None:
    tree = ast.parse((_project_root() / "noxfile.py").read_text(encoding="utf-8"))
    sessions = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("nox.session") for d in node.decorator_list)
    }
    assert {"build", "tests", "matrix", "lint", *SUITES} <= sessions

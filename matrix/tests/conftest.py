"""Fixtures of the runner's own tests: fake interpreters, a fake project, a fake wheel."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Callable, Optional

import pytest
from matrix_helpers import (
    PASSING_TEST,
    SUITE_DIRS,
    base_python,
    make_fake_wheel,
    this_site_packages,
)

from sky_matrix.build import cache, venvs
from sky_matrix.plan.discovery import Candidate, describe, probe


@pytest.fixture
def fake_python(tmp_path: Path) -> Callable[..., Path]:
    """A shell script that answers the discovery probe like some interpreter would."""

    def make(
        name: str,
        version: str = "3.11.4",
        *,
        implementation: str = "cpython",
        debug: bool = False,
        freethreaded: bool = False,
        has_venv: bool = True,
        exit_code: int = 0,
        hang: bool = False,
        folder: Optional[Path] = None,
    ) -> Path:
        folder = folder or tmp_path / "bin"
        folder.mkdir(parents=True, exist_ok=True)
        parts = [int(p) for p in version.split(".")]
        data = {
            "sky_matrix_probe": 1,
            "version": version,
            "version_info": parts,
            "implementation": implementation,
            "abiflags": ("d" if debug else "") + ("t" if freethreaded else ""),
            "debug": debug,
            "freethreaded": freethreaded,
            "executable": str(folder / name),
            "prefix": str(folder.parent),
            "base_prefix": str(folder.parent),
            "has_venv": has_venv,
        }
        if hang:
            body = "sleep 600\n"
        elif exit_code:
            body = f"echo 'Fatal Python error: init_fs_encoding' >&2\nexit {exit_code}\n"
        else:
            body = f"cat <<'EOF'\n{json.dumps(data)}\nEOF\n"
        script = folder / name
        script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return script

    return make


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project tree the runner accepts, with one passing test file per suite."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "skypilot-rust"\n\n[tool.sky-rs-matrix]\npythons = []\n',
        encoding="utf-8",
    )
    (root / "tests").mkdir()
    (root / "tests" / "requirements.txt").write_text("pytest\n", encoding="utf-8")
    for suite, rel in SUITE_DIRS.items():
        (root / rel).mkdir(parents=True)
        (root / rel / f"test_{suite}.py").write_text(PASSING_TEST, encoding="utf-8")
    return root


@pytest.fixture
def fake_wheel(tmp_path: Path) -> Path:
    return make_fake_wheel(tmp_path / "wheels")


@pytest.fixture
def seeded_env_cache(tmp_path: Path, project: Path) -> Path:
    """An env cache whose base environment for this interpreter reuses the test's own packages.

    Building a real one needs the network; the layering on top of it (fresh venv per cell,
    the wheel installed --no-index) is the same code either way.
    """
    env_cache = tmp_path / "env-cache"
    interp, why = describe(probe(Candidate(base_python(), "--python")))
    assert interp is not None, why
    text = (project / "tests" / "requirements.txt").read_text(encoding="utf-8")
    base = venvs.base_env_dir(env_cache, interp, text)
    base.mkdir(parents=True)
    cache.Entry(base, venvs.BASE_MARKER).complete({"site_dirs": this_site_packages()})
    return env_cache

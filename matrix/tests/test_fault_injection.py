"""The native-fallback path, for real: a wheel built with `fault-injection`, each fault in each
function (tests/compat/dispatcher/test_native_fallback_path.py), in a venv of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matrix_helpers import feature_wheel_python, project_root

from sky_matrix.leaks.__main__ import select_interpreters
from sky_matrix.plan.discovery import discover

PROJECT_ROOT = project_root()
MODULE = "tests/compat/dispatcher/test_native_fallback_path.py"
FEATURE = "fault-injection"


@pytest.mark.timeout(1800)
def test_every_fault_falls_back_with_its_reason_and_counts(tmp_path: Path) -> None:
    found = discover()
    release_builds = [
        i for i in select_interpreters(list(found.interpreters.values()), []) if not i.debug
    ]
    assert release_builds, "no release build of CPython >= 3.8 found"
    interp = release_builds[-1]
    python = feature_wheel_python(interp, FEATURE, tmp_path / "venv")
    run_dir = tmp_path / "run"
    shutil.copytree(
        PROJECT_ROOT / "tests/compat",
        run_dir / "tests/compat",
        ignore=shutil.ignore_patterns("__pycache__", "fixtures"),
    )
    (run_dir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SKYPILOT_"))}
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={junit}",
            MODULE,
        ],
        cwd=str(run_dir),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("skipped", "0")) == 0, "the fault wheel has no _inject_fault?"
    # Every function, both fault kinds (and the refusal test): nothing left out.
    assert int(suite.get("tests", "0")) == 12 * 2 + 1

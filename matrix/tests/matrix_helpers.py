"""Helpers of the runner's own tests: a fake wheel, the real interpreter behind this one."""

from __future__ import annotations

import base64
import hashlib
import os
import site
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Dict, List

from sky_matrix.build import venvs
from sky_matrix.core.model import Interpreter
from sky_matrix.leaks import canary_wheel

FAKE_SKY_RS = """\
def stats():
    return {
        "functions": {"hash_file": {"rust": 3, "python": 1, "fallbacks": {"panic": 1}}},
        "fallback_rate": 0.25,
        "mismatches": [],
    }


def backend_info():
    return {"backend": "python", "version": "0.1.0", "reason": "fake wheel of the runner tests"}
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_fake_wheel(directory: Path, module_source: str = FAKE_SKY_RS) -> Path:
    """A real, installable `skypilot-rust` wheel whose `sky_rs` is a tiny stand-in."""
    directory.mkdir(parents=True, exist_ok=True)
    info = "skypilot_rust-0.1.0.dist-info"
    files: Dict[str, bytes] = {
        "sky_rs/__init__.py": module_source.encode(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: skypilot-rust\nVersion: 0.1.0\n",
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: sky-matrix-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / "skypilot_rust-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def base_python() -> str:
    """The real interpreter behind the one running the tests (a venv's python is a link)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidate = Path(sys.base_prefix) / "bin" / version
    return str(candidate if candidate.exists() else Path(sys.base_prefix) / "bin" / "python3")


def this_site_packages() -> List[str]:
    """Where pytest, xdist, pytest-timeout and pip live for the running tests."""
    dirs = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


PASSING_TEST = """\
import sky_rs


def test_installed_package_answers():
    assert sky_rs.stats()["fallback_rate"] == 0.25


def test_second():
    assert sky_rs.backend_info()["backend"] == "python"
"""

SUITE_DIRS = {
    "parity": "tests/compat/parity",
    "cgroup": "tests/compat/cgroup",
    "eperm": "tests/compat/eperm",
    "leaks": "tests/leaks",
    "stability": "tests/stability",
}


def run_args(project: Path, cache: Path, wheel: Path, report: Path) -> List[str]:
    return [
        "run", "--project-root", str(project), "--no-discover", "--python", base_python(),
        "--wheel", str(wheel), "--env-cache", str(cache), "--report-dir", str(report),
        "--no-docker", "--no-color",
    ]  # fmt: skip


def project_root() -> Path:
    """The checkout under test: the staging runner names it, else this file's own tree."""
    named = os.environ.get("SKY_RS_PROJECT_ROOT")
    return Path(named) if named else Path(__file__).resolve().parents[2]


def feature_wheel_python(interp: Interpreter, feature: str, dest: Path) -> Path:
    """The python of a fresh venv at `dest` (on the cached base environment of the test
    requirements) holding the wheel built with the test-only Cargo `feature`."""
    root = project_root()
    wheel = canary_wheel.build_canary_wheel(root, log=print, feature=feature)
    base = venvs.ensure_base_env(
        interp, root / "tests/requirements.txt", root / ".build-cache" / "envs"
    )
    return venvs.make_cell_env(interp, base, dest, wheel)

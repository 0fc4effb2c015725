"""Running tests from a temporary copy, so the source tree is never on sys.path.

A test path's top directory (`tests/`, `matrix/`) is copied whole, so that
conftest files and fixture trees come along; pytest then runs there with
`-p no:cacheprovider` and `--rootdir` the copy. Used by the matrix cells, the
nox `tests` session and tox environments. Stdlib only and Python 3.8
compatible, because tox runs it as a plain script:
`python matrix/src/sky_matrix/execute/staging.py --project-root . tests/compat/parity -- -n auto`
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

try:
    from sky_matrix.config.suites import SUITES
except ImportError:  # run as a plain script (`python -I .../staging.py`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sky_matrix.config.suites import SUITES

IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")


class StagingError(Exception):
    """A test path is missing or cannot be copied; the message says which."""


def relative_paths(project_root: Path, paths: Iterable[str]) -> List[Path]:
    rels = []
    for given in paths:
        rel = Path(given)
        if rel.is_absolute():
            try:
                rel = rel.relative_to(project_root)
            except ValueError:
                raise StagingError(f"{given} is outside the project {project_root}") from None
        if not (project_root / rel).is_dir():
            raise StagingError(f"test directory {rel} does not exist in {project_root}")
        rels.append(rel)
    return rels


def stage(project_root: Path, rels: Sequence[Path], dest: Path) -> None:
    """Copy the top directory of every path in `rels` under `dest`, and fence pytest's config."""
    for top in dict.fromkeys(rel.parts[0] for rel in rels):
        try:
            shutil.copytree(project_root / top, dest / top, symlinks=True, ignore=IGNORE)
        except (OSError, shutil.Error) as exc:
            raise StagingError(f"cannot copy {project_root / top} to {dest}: {exc}") from None
    # The stability suite drives the soak's own driver (`sky_matrix.soak`); its
    # conftest looks for it at `matrix/src` beside the staged `tests/`.
    runner_src = project_root / "matrix" / "src" / "sky_matrix"
    if "tests" in {rel.parts[0] for rel in rels} and not (dest / "matrix").exists():
        if runner_src.is_dir():
            shutil.copytree(runner_src, dest / "matrix" / "src" / "sky_matrix", ignore=IGNORE)
    pyproject = project_root / "pyproject.toml"
    if pyproject.is_file() and "[tool.pytest.ini_options]" in pyproject.read_text("utf-8"):
        shutil.copyfile(pyproject, dest / "pyproject.toml")  # the project's pytest settings
    else:
        # An ini file here stops pytest from looking for one above the copy.
        (dest / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def pytest_command(
    python: str, run_dir: Path, rels: Sequence[Path], args: Sequence[str]
) -> List[str]:
    return [
        python, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(run_dir),
        *[str(rel) for rel in rels], *args,
    ]  # fmt: skip


def run_staged(project_root: Path, paths: Sequence[str], pytest_args: Sequence[str]) -> int:
    """pytest over `paths` in a temporary copy, with this interpreter; its exit status."""
    rels = relative_paths(project_root, paths)
    with tempfile.TemporaryDirectory(prefix="sky-rs-tests-") as tmp:
        run_dir = Path(tmp)
        stage(project_root, rels, run_dir)
        argv = pytest_command(sys.executable, run_dir, rels, pytest_args)
        print(f"staging: in {run_dir}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Read-only consistency checks (tox.ini vs the suite table) need the real tree.
        env["SKY_RS_PROJECT_ROOT"] = str(project_root)
        code = subprocess.run(argv, cwd=str(run_dir), env=env).returncode
    if code == 5:
        print("staging: pytest collected no test: that is a failure", file=sys.stderr)
        return 1
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pytest_args: List[str] = []
    if "--" in args:
        at = args.index("--")
        args, pytest_args = args[:at], args[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="staging", description="Run test directories from a temporary copy."
    )
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument(
        "--suite",
        metavar="NAME",
        help="a suite of config/suites.py: its directories and per-test timeout"
        " (a tox env name such as py38-parity names its suite last)",
    )
    parsed = parser.parse_args(args)
    paths = list(parsed.paths)
    if parsed.suite is not None:
        name = parsed.suite.rsplit("-", 1)[-1]
        if name not in SUITES:
            parser.error(f"unknown suite {name!r} (known: {', '.join(SUITES)})")
        suite = SUITES[name]
        paths += suite.dirs
        pytest_args = [f"--timeout={suite.test_timeout:g}", *pytest_args]
    if not paths:
        parser.error("name test directories or a --suite")
    try:
        return run_staged(parsed.project_root.resolve(), paths, pytest_args)
    except StagingError as exc:
        print(f"staging: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

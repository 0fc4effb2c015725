"""A cell does not depend on the caller's environment (issue 12 A).

The runner runs as a real subprocess started the way a hostile caller would start it: SIGINT
ignored (a background job of a non-interactive shell), umask 077, PYTHONPATH at a broken
`sky_rs`, PYTHONSTARTUP raising, PYTHONWARNINGS=error, a bogus PYTHONHOME, LC_ALL=C, a
read-only HOME. The runner itself is started with `-E` (its own interpreter would not start
with that PYTHONHOME) but its environment holds all of it; the cell's verdict must be the
one of a clean environment, and the cell's own test checks each condition it relies on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest
from matrix_helpers import run_args

import sky_matrix
from sky_matrix.core import hygiene
from sky_matrix.core.model import Cell
from sky_matrix.execute import container_cell

RUNNER_SRC = str(Path(sky_matrix.__file__).resolve().parents[1])
RUNNER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from sky_matrix.cli import main; sys.exit(main(sys.argv[1:]))"
)

CONDITIONS_TEST = """\
import locale
import os
import signal
import sys

import sky_rs

HOSTILE_HOME = {home!r}


def test_default_signal_dispositions():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
    assert signal.pthread_sigmask(signal.SIG_BLOCK, ()) == set()


def test_umask_and_home():
    old = os.umask(0o022)
    os.umask(old)
    assert old == 0o022
    assert os.environ["HOME"] != HOSTILE_HOME
    assert os.path.isdir(os.environ["HOME"]) and os.access(os.environ["HOME"], os.W_OK)


def test_no_python_variables_of_the_caller():
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONWARNINGS",
                 "PYTHONDONTWRITEBYTECODE", "LC_ALL", "LC_CTYPE"):
        assert name not in os.environ, name
    assert not sys.flags.dont_write_bytecode
    assert locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"


def test_sky_rs_is_the_wheel():
    assert sky_rs.stats()["fallback_rate"] == 0.25
"""


def _hostile(tmp_path: Path) -> Dict[str, str]:
    broken = tmp_path / "hostile-path" / "sky_rs"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('the caller PYTHONPATH sky_rs')\n")
    startup = tmp_path / "startup.py"
    startup.write_text("raise RuntimeError('PYTHONSTARTUP of the caller')\n")
    home = tmp_path / "ro-home"
    home.mkdir()
    home.chmod(0o555)
    return {
        "PYTHONPATH": str(broken.parent),
        "PYTHONSTARTUP": str(startup),
        "PYTHONWARNINGS": "error",
        "PYTHONHOME": str(tmp_path / "no-such-prefix"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C",
        "LC_ALL": "C",
        "LC_CTYPE": "xx_XX.bogus",
        "HOME": str(home),
    }


def _run_runner(args: list, env: Dict[str, str], hostile: bool) -> subprocess.CompletedProcess:
    def preexec() -> None:  # what `(trap '' INT; umask 077; ...)` leaves a child
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        os.umask(0o077)

    return subprocess.run(
        [sys.executable, "-E", "-s", "-c", RUNNER, RUNNER_SRC, *args],
        env=env, capture_output=True, text=True, timeout=240,
        preexec_fn=preexec if hostile else None,
    )  # fmt: skip


def _verdicts(report: Path) -> Dict[str, tuple]:
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return {c["id"]: (c["verdict"], c["reason"], c["counts"]) for c in data["cells"]}


@pytest.mark.timeout(600)
def test_a_hostile_caller_environment_leaves_the_verdict_unchanged(
    tmp_path: Path, project: Path, seeded_env_cache: Path, fake_wheel: Path
) -> None:
    home = str(tmp_path / "ro-home")
    stability = project / "tests" / "stability"
    (stability / "test_conditions.py").write_text(CONDITIONS_TEST.format(home=home))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LC_"))}
    results: Dict[str, Dict[str, tuple]] = {}
    for name, hostile in (("clean", False), ("hostile", True)):
        env = dict(clean_env, **(_hostile(tmp_path) if hostile else {}))
        report = tmp_path / f"report-{name}"
        args = run_args(project, seeded_env_cache, fake_wheel, report)
        proc = _run_runner([*args, "--suite", "stability"], env, hostile)
        results[name] = _verdicts(report)
        (verdict, reason, counts), *_ = results[name].values()
        assert (verdict, reason, counts.get("passed")) == ("pass", "", 6), (name, proc.stderr)
        assert proc.returncode == 0, proc.stderr
    assert results["hostile"] == results["clean"]


def test_the_allow_list_keeps_nothing_hostile() -> None:
    hostile = {
        "PYTHONPATH": "/x", "PYTHONHOME": "/x", "PYTHONSTARTUP": "/x", "PYTHONWARNINGS": "error",
        "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C", "LC_ALL": "C", "HOME": "/ro",
        "VIRTUAL_ENV": "/v", "PYTEST_ADDOPTS": "-x", "SKYPILOT_USE_RUST": "0",
        "PATH": "/usr/bin", "TMPDIR": "/tmp/t", "SKY_RS_TEST_IMAGE": "img",
    }  # fmt: skip
    env = hygiene.clean_environ(hostile, home="/cell/home")
    assert env == {
        "PATH": "/usr/bin", "TMPDIR": "/tmp/t", "SKY_RS_TEST_IMAGE": "img",
        "LANG": "C.UTF-8", "HOME": "/cell/home",
    }  # fmt: skip
    assert "HOME" not in hygiene.clean_environ(hostile)
    assert hygiene.clean_environ({})["PATH"] == hygiene.DEFAULT_PATH


def test_a_container_gets_only_the_cells_own_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in _hostile(tmp_path).items():
        monkeypatch.setenv(name, value)
    env = container_cell.cell_environment(Cell("3.11", "docker:sid", "parity", "default"), user="u")
    assert set(env) == {
        "SKY_RS_MATRIX_PROFILE", "SKY_RS_MATRIX_PLATFORM", "SKY_RS_MATRIX_PYTHON",
        "SKY_RS_MATRIX_SUITE", "SKY_RS_MATRIX_CELL", "SKY_RS_MATRIX_USER", "PYTHONFAULTHANDLER",
    }  # fmt: skip


def test_the_launcher_resets_ignored_and_blocked_signals(tmp_path: Path) -> None:
    probe = (
        "import os, signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler,"
        " signal.getsignal(signal.SIGHUP) == signal.SIG_DFL,"
        " sorted(signal.pthread_sigmask(signal.SIG_BLOCK, ())))"
    )

    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})

    def run(argv: list) -> str:
        return subprocess.run(
            argv, preexec_fn=preexec, capture_output=True, text=True, check=True
        ).stdout.strip()

    python: Optional[str] = sys.executable
    assert run([python, "-c", probe]) != "True True []"  # the hostile start is real
    assert run(hygiene.with_default_signals([python, "-c", probe])) == "True True []"

"""Running the leaks suite against a given wheel on a given interpreter, and judging it.

Each run is a cell in all but name: a fresh venv on the cached base
environment of `tests/requirements.txt` (sky_matrix.build.venvs), the wheel installed
into it alone, a temporary copy of tests/leaks/, pytest with two xdist workers
and a JUnit file, and the suite's leak report in a directory of its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from sky_matrix.build import venvs
from sky_matrix.core.model import Interpreter
from sky_matrix.execute.host_cell import SCRUBBED_ENV
from sky_matrix.leaks import expectations

SUITE_DIR = Path("tests") / "leaks"
REQUIREMENTS = Path("tests") / "requirements.txt"
REPORT_NAME = "extra-leaks.json"
SUITE_TIMEOUT = 1800.0  # the leaks suite's cell limit (sky_matrix.config.suites)
TEST_TIMEOUT = 900.0
WORKERS = 2
# Asked of the suite's own module, in the cell's venv: the facts that decide
# which detectors run there.
FACTS_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import leak_measure, leak_memray
print(json.dumps({
    "debug": leak_measure.is_debug_build(),
    "memray_unsupported": leak_memray.unsupported_reason(),
}))
"""

Log = Callable[[str], None]


class ProofError(Exception):
    """The suite could not be run at all (environment, copy, timeout)."""


@dataclasses.dataclass
class SuiteRun:
    wheel: Path
    interpreter: expectations.Interpreter
    results: Dict[str, expectations.Outcome]
    report: Dict[str, Any]
    returncode: int
    seconds: float
    log: Path


@dataclasses.dataclass
class Verdict:
    kind: str  # "canary" or "release"
    run: SuiteRun
    problems: List[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _suite_env(venv: Path, cell_dir: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONFAULTHANDLER"] = "1"
    env["SKY_RS_MATRIX_CELL_DIR"] = str(cell_dir)
    return env


def _facts(python: Path, suite: Path, env: Dict[str, str], label: str) -> expectations.Interpreter:
    proc = subprocess.run(
        [str(python), "-c", FACTS_SCRIPT, str(suite)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=str(suite),
    )
    if proc.returncode != 0:
        raise ProofError(f"cannot ask {label} about itself: {proc.stderr.strip()[-500:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return expectations.Interpreter(label, bool(data["debug"]), data["memray_unsupported"])


def run_suite(
    project_root: Path,
    interp: Interpreter,
    wheel: Path,
    *,
    name: str,
    env_cache: Path,
    work_dir: Path,
    log: Log,
) -> SuiteRun:
    """Run tests/leaks against `wheel` on `interp`; raises ProofError if it cannot run.

    The JUnit file, the log and the leak report stay in `work_dir/name/`.
    """
    requirements = project_root / REQUIREMENTS
    if not requirements.is_file():
        raise ProofError(f"{requirements} is missing: it lists the suite's dependencies")
    work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"leaks-{interp.short}-", dir=str(work_dir)))
    try:
        try:
            base = venvs.ensure_base_env(interp, requirements, env_cache, log=log)
            python = venvs.make_cell_env(interp, base, scratch / "venv", wheel)
        except venvs.EnvError as exc:
            raise ProofError(f"environment for {interp.short}: {exc}") from None
        suite = scratch / "run" / SUITE_DIR
        shutil.copytree(
            project_root / SUITE_DIR, suite, ignore=shutil.ignore_patterns("__pycache__")
        )
        (scratch / "run" / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        cell_dir = work_dir / name
        shutil.rmtree(cell_dir, ignore_errors=True)
        cell_dir.mkdir(parents=True)
        env = _suite_env(scratch / "venv", cell_dir)
        facts = _facts(python, suite, env, interp.short)
        junit = cell_dir / "junit.xml"
        log_path = cell_dir / "log.txt"
        argv = [
            str(python), "-m", "pytest", "-p", "no:cacheprovider", "-n", str(WORKERS),
            f"--timeout={TEST_TIMEOUT:g}", "-rfEs", "--color=no", f"--junitxml={junit}",
            str(SUITE_DIR),
        ]  # fmt: skip
        log(f"{interp.short}: {wheel.name}: running the leaks suite (log: {log_path})")
        started = time.monotonic()
        with open(log_path, "wb") as out:
            try:
                proc = subprocess.run(
                    argv,
                    cwd=str(scratch / "run"),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=SUITE_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                raise ProofError(
                    f"{interp.short}: the leaks suite ran past {SUITE_TIMEOUT:g} s; see {log_path}"
                ) from None
        seconds = time.monotonic() - started
        if not junit.is_file():
            raise ProofError(
                f"{interp.short}: pytest exited with {proc.returncode} and no JUnit file; "
                f"see {log_path}"
            )
        report_path = cell_dir / REPORT_NAME
        report = json.loads(report_path.read_text("utf-8")) if report_path.is_file() else {}
        return SuiteRun(
            wheel,
            facts,
            expectations.read_junit(junit),
            report,
            proc.returncode,
            seconds,
            log_path,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def judge_canary(run: SuiteRun) -> Verdict:
    problems = expectations.check_canaries(run.results, run.report, run.interpreter)
    if not run.report:
        problems.append(f"the suite wrote no {REPORT_NAME}")
    return Verdict("canary", run, problems)


def judge_release(run: SuiteRun) -> Verdict:
    problems = expectations.check_release(run.results, run.interpreter)
    if run.returncode != 0 and not problems:
        problems.append(f"pytest exited with {run.returncode}; see {run.log}")
    if not run.report:
        problems.append(f"the suite wrote no {REPORT_NAME}")
    return Verdict("release", run, problems)


def prove(
    project_root: Path,
    interpreters: List[Interpreter],
    *,
    canary_wheel: Path,
    release_wheel: Path | None,
    env_cache: Path,
    work_dir: Path,
    log: Log,
) -> List[Verdict]:
    """Every interpreter: the canary wheel caught where expected; the release wheel clean."""
    verdicts: List[Verdict] = []
    for interp in interpreters:
        for kind, wheel in (("canary", canary_wheel), ("release", release_wheel)):
            if wheel is None:
                continue
            try:
                run = run_suite(
                    project_root,
                    interp,
                    wheel,
                    name=f"{kind}-py{interp.short}",
                    env_cache=env_cache,
                    work_dir=work_dir,
                    log=log,
                )
            except ProofError as exc:
                facts = expectations.Interpreter(interp.short, interp.debug, None)
                empty = SuiteRun(wheel, facts, {}, {}, -1, 0.0, work_dir)
                verdicts.append(Verdict(kind, empty, [str(exc)]))
                continue
            verdicts.append(judge_canary(run) if kind == "canary" else judge_release(run))
    return verdicts

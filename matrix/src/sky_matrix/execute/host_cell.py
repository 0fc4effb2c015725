"""One cell on the host: fresh venv, staged tests, pytest under a wall-clock limit.

The suite runs in its own session (process group) from a temporary directory
holding a copy of the tests, so the source tree is never on sys.path; a
segfault, abort, hang or OOM kill ends only that process group. Afterwards a
tiny script in the same venv reports `sky_rs.backend_info()` and
`sky_rs.stats()`, and checks that `sky_rs` came from the venv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from sky_matrix.build import venvs
from sky_matrix.config.suites import layout
from sky_matrix.core import hygiene
from sky_matrix.core.model import Cell, CellResult, Interpreter
from sky_matrix.docker import images
from sky_matrix.execute import cell_env, outcome
from sky_matrix.execute.context import RunContext

STATS_SCRIPT = r"""
import json, sys
import sky_rs
print(json.dumps({
    "file": sky_rs.__file__,
    "prefix": sys.prefix,
    "backend_info": sky_rs.backend_info(),
    "stats": sky_rs.stats(),
}, default=repr))
"""
# Variables that would make a process see something else (the leak proof's own scrubbing; a
# cell's environment is built from an allow-list, `sky_matrix.core.hygiene`).
SCRUBBED_ENV = (
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV",
    "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "SKY_RS_MATRIX_CANARY", "__PYVENV_LAUNCHER__",
)  # fmt: skip
KILL_GRACE = 5.0


def cell_environment(
    cell: Cell,
    venv: Path,
    cell_dir: Path,
    canary: Optional[str],
    home: Optional[Path] = None,
    wheel: Optional[str] = None,
) -> Dict[str, str]:
    """The allow-listed part of the runner's environment plus what the cell needs.

    `home`: the cell's own HOME (a fresh directory of its scratch space).
    """
    env = hygiene.clean_environ(home=str(home) if home is not None else None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    env.update(cell_env.cell_environment(cell, cell_dir=str(cell_dir), canary=canary, wheel=wheel))
    if cell.suite == "cgroup" and "SKY_RS_TEST_IMAGE" not in env:
        image = _cgroup_test_image()
        if image:
            env["SKY_RS_TEST_IMAGE"] = image
    return env


def _cgroup_test_image() -> Optional[str]:
    """A built image for the cgroup suite's `docker run`/`docker update` tests from the host.

    Its glibc must run the host wheel (manylinux_2_34 here), so not bullseye. Only an image
    that is already built is used: a host cell never waits for an image build.
    """
    if not images.docker_status()[0]:
        return None
    for name in ("bookworm", "trixie", "sid"):
        tag = images.current_image_tag(name)
        if tag:
            return tag
    return None


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_limited(
    argv: List[str],
    *,
    cwd: Path,
    env: Dict[str, str],
    log_path: Path,
    limit: float,
    ctx: RunContext,
) -> tuple:
    """(returncode, timed_out, seconds). The whole process group dies with the cell.

    The process starts in a session of its own with default signal dispositions, no blocked
    signal and the umask of `hygiene.UMASK`, whatever the runner inherited.
    """
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            hygiene.with_default_signals(argv), cwd=str(cwd), env=env, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            umask=hygiene.UMASK,
        )  # fmt: skip
        ctx.register(proc)
        timed_out = False
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            ctx.unregister(proc)
            _kill_group(proc.pid, signal.SIGKILL)  # stray xdist workers, children of tests
    return proc.returncode, timed_out, time.monotonic() - started


def run_host_cell(cell: Cell, interp: Interpreter, ctx: RunContext, workers: int) -> CellResult:
    started = time.monotonic()
    started_wall = time.time()
    cell_dir = ctx.fresh_cell_dir(cell)
    log_path = cell_dir / "log.txt"
    result = CellResult(cell=cell, verdict="error", interpreter=interp, log_path=str(log_path))
    result.durations["build"] = round(ctx.build_seconds, 3)

    def finish() -> CellResult:
        result.durations["total"] = round(time.monotonic() - started, 3)
        if result.verdict != "pass" and result.log_tail is None and log_path.exists():
            result.log_tail = outcome.tail(log_path.read_text("utf-8", errors="replace"))
        return result

    suite_layout = layout(ctx.project_root, ctx.suite(cell.suite))
    result.extra["suite_dirs"] = list(suite_layout.present)
    result.extra["missing_dirs"] = list(suite_layout.missing)
    if not suite_layout.present:
        result.verdict = "fail"
        result.reason = (
            f"suite {cell.suite} has no test directory yet (expected "
            f"{', '.join(suite_layout.suite.dirs)}): an empty suite is a failure"
        )
        return finish()

    wheel = ctx.host_wheel()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"cell {cell.id}\ninterpreter {interp.path} ({interp.version}, {interp.abi})\n")
        log.write(f"wheel {wheel}\n")
    scratch = Path(tempfile.mkdtemp(prefix=f"{cell.id}-", dir=ctx.scratch_dir()))
    try:
        t0 = time.monotonic()
        try:
            base = venvs.ensure_base_env(interp, ctx.requirements, ctx.env_cache, log=ctx.log)
            result.durations["env_base"] = round(time.monotonic() - t0, 3)
            result.extra["env_cached"] = base.cached
            t1 = time.monotonic()
            python = venvs.make_cell_env(interp, base, scratch / "venv", wheel)
            result.durations["env_cell"] = round(time.monotonic() - t1, 3)
        except venvs.EnvError as exc:
            result.reason = f"environment: {exc}"
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"ENVIRONMENT ERROR: {exc}\n")
            return finish()
        result.durations["env"] = round(time.monotonic() - t0, 3)

        with ctx.staged_suite(cell, parent=scratch) as (run_dir, rel_dirs):
            junit_path = cell_dir / "junit.xml"
            argv = [
                str(python), "-m", "pytest",
                "--rootdir", str(run_dir),
                f"--junitxml={junit_path}",
                *ctx.suite_pytest_args(cell, workers),
                *rel_dirs,
            ]  # fmt: skip
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"workers {workers}\n$ {' '.join(argv)}\n\n")
            home = scratch / "home"
            home.mkdir(mode=0o755, exist_ok=True)
            env = cell_environment(
                cell, scratch / "venv", cell_dir, ctx.canary_for(cell), home=home,
                wheel=wheel.name,
            )  # fmt: skip
            limit = ctx.cell_timeout(cell.suite)
            test_started = time.time()
            returncode, timed_out, seconds = run_limited(
                argv, cwd=run_dir, env=env, log_path=log_path, limit=limit, ctx=ctx
            )
            result.durations["tests"] = round(seconds, 3)
            result.returncode = returncode
            counts = outcome.read_counts(junit_path) or {}
            if junit_path.exists():
                result.junit_path = str(junit_path)
            result.counts = counts
            log_text = log_path.read_text("utf-8", errors="replace")
            result.verdict, result.reason, result.signal = outcome.classify(
                returncode, timed_out=timed_out, wall_limit=limit, counts=counts,
                log_text=log_text,
            )  # fmt: skip
            cpu = outcome.read_cpu_usage(cell_dir)
            if cpu is not None:
                result.extra["cpu"] = cpu
            first = outcome.read_first_test(cell_dir)
            if first is not None:
                result.extra["first_test_at"] = first
                result.extra["first_test_after"] = round(first - started_wall, 3)
                result.extra["first_test_after_pytest_start"] = round(first - test_started, 3)

            t2 = time.monotonic()
            _collect_stats(result, python, run_dir, env, scratch / "venv", cell_dir, wheel.name)
            result.durations["stats"] = round(time.monotonic() - t2, 3)
        return finish()
    finally:
        if not ctx.keep_workdirs:
            ctx.remove_tree(scratch)
        else:
            result.extra["workdir"] = str(scratch)


def _collect_stats(
    result: CellResult,
    python: Path,
    run_dir: Path,
    env: Dict[str, str],
    venv: Path,
    cell_dir: Path,
    wheel_name: str,
) -> None:
    suite_stats = outcome.merge_suite_stats(cell_dir)
    env = {k: v for k, v in env.items() if k != "SKY_RS_MATRIX_CANARY"}
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", STATS_SCRIPT], cwd=str(run_dir), env=env,
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            umask=hygiene.UMASK,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        proc = None
    data: Optional[Dict[str, Any]] = None
    if proc is not None and proc.returncode == 0:
        try:
            data = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            data = None
    if data is None:
        why = "timed out" if proc is None else outcome.tail(proc.stderr or proc.stdout, 3)
        result.stats = {"suite": suite_stats, "error": why}
        data = {"error": why}
    else:
        result.stats = {
            "backend_info": data.get("backend_info"),
            "fresh": data.get("stats"),
            "suite": suite_stats,
        }
        result.extra["sky_rs_file"] = data.get("file")
    problem = outcome.installed_wheel_problem(data, wheel_name, venv=str(venv))
    if problem and result.verdict in ("pass", "skipped"):
        result.verdict, result.reason = "fail", problem

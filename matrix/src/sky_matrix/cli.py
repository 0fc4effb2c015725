"""`python -m sky_matrix {run,build,pytest}`: the runner's command line.

Every problem with the input or the environment ends with one line on stderr,
`sky-rs-matrix: <problem>: <what to do>`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from rich.console import Console

from sky_matrix.build import host_wheel
from sky_matrix.config.project import load_project_config
from sky_matrix.core.errors import EXIT_USAGE, RunInterrupted, UsageError, signal_name
from sky_matrix.core.model import CellResult, RunPaths
from sky_matrix.execute import staging
from sky_matrix.execute.context import RunContext
from sky_matrix.execute.platforms import RunnablePlatform, host_and_docker_platforms, runnable
from sky_matrix.execute.scheduler import cpu_costs, execute, expected_work
from sky_matrix.plan.discovery import Discovery, discover
from sky_matrix.plan.planner import (
    PlannedCell,
    Selection,
    full_plan,
    github_matrix_json,
    parse_shard,
    select,
)
from sky_matrix.plan.platform import HOST, Slot
from sky_matrix.report import html_report, junit, listing, progress, store, table
from sky_matrix.report.progress import LiveProgress, make_console

COMMANDS = ("run", "build", "pytest")
CANARIES = ("segfault", "hang", "oom", "abort")
REQUIREMENTS = Path("tests/requirements.txt")
# Threads for cells; the CPU budget, not this, keeps the cores from being oversubscribed.
JOBS_PER_CORE = 3


def find_project_root(start: Path) -> Path:
    for candidate in (start, *start.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            text = pyproject.read_text(encoding="utf-8", errors="replace")
            if "[tool.sky-rs-matrix]" in text or 'name = "skypilot-rust"' in text:
                return candidate
    raise UsageError(
        f"{start} is not inside the skypilot-rust project: run from its root or pass --project-root"
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    sel = parser.add_argument_group("selection")
    sel.add_argument("--suite", action="append", default=[], help="suite(s) to run (repeatable)")
    sel.add_argument(
        "--python", action="append", default=[], metavar="LABEL|PATH",
        help="an interpreter label (3.11) to select, or a path to add and select (repeatable)",
    )  # fmt: skip
    sel.add_argument("--platform", action="append", default=[], help="host, docker, docker:<image>")
    sel.add_argument("--profile", action="append", default=[], help="profile(s) to run")
    sel.add_argument(
        "-k", "--only", action="append", default=[], metavar="PATTERN",
        help="cells whose id contains PATTERN (a glob if it has *?[) (repeatable)",
    )  # fmt: skip
    sel.add_argument("--shard", metavar="I/N", help="run the I-th of N slices of the selection")
    sel.add_argument(
        "--rerun-failed", action="store_true", help="only the failed cells of the last report"
    )
    sel.add_argument(
        "--strict", dest="strict", action="store_true", default=None,
        help="a planned interpreter that is missing is an error (default when CI is set)",
    )  # fmt: skip
    sel.add_argument("--no-strict", dest="strict", action="store_false")
    sel.add_argument(
        "--no-discover", action="store_true",
        help="use only --python and pyproject interpreters (no pyenv, no PATH)",
    )  # fmt: skip
    sel.add_argument("--no-docker", action="store_true", help="leave out container platforms")
    parser.add_argument("--project-root", type=Path, help="default: found from the cwd")
    parser.add_argument("--report-dir", type=Path, help="default: <project>/matrix-report")
    parser.add_argument("--env-cache", type=Path, help="default: <project>/.build-cache/envs")
    parser.add_argument("--wheel", type=Path, help="test this wheel instead of building one")
    parser.add_argument("--container-wheel", type=Path, help="the wheel for container cells")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sky-rs-matrix",
        description="Run skypilot-rust's suites over interpreters x platforms x profiles.",
        epilog="Arguments after `--` go to pytest in every cell.",
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="plan, then run the selected cells (the default)")
    _selection_options(run)
    run.add_argument("--list", action="store_true", help="print the plan and exit")
    run.add_argument("--json", action="store_true", help="print a GitHub strategy.matrix and exit")
    run.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the wheel, test environments and images of the selection; run no cell",
    )
    run.add_argument(
        "-j", "--jobs", type=int,
        help="at most this many cells at once (default: 3 x cores); within it, cells start"
        " while their CPU use measured in the last run fits the cores",
    )  # fmt: skip
    run.add_argument("--cell-timeout", type=float, help="wall-clock limit per cell, seconds")
    run.add_argument("--test-timeout", type=float, help="pytest-timeout per test, seconds")
    run.add_argument(
        "--allow-fail", action="append", default=[], metavar="PATTERN",
        help="cells matching PATTERN may fail without failing the run",
    )  # fmt: skip
    run.add_argument("--keep-workdirs", action="store_true", help="keep each cell's venv and copy")
    run.add_argument("--no-color", action="store_true")
    # KIND[@PATTERN], repeatable: the runner's self-tests crash chosen cells on purpose.
    run.add_argument("--canary", action="append", help=argparse.SUPPRESS)

    build = sub.add_parser("build", help="build the host wheel (cached) and print its path")
    build.add_argument("--project-root", type=Path)
    build.add_argument("--force", action="store_true", help="rebuild even if cached")

    pytest_cmd = sub.add_parser(
        "pytest", help="run test paths of the project from a temporary copy (the tests session)"
    )
    pytest_cmd.add_argument("paths", nargs="+", help="test directories, relative to the project")
    pytest_cmd.add_argument("--project-root", type=Path)
    return parser


def split_pytest_args(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    argv = list(argv)
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_pytest_args(args_list)
    if not own or (own[0] not in COMMANDS and own[0] not in ("-h", "--help")):
        own = ["run", *own]
    try:
        args = build_parser().parse_args(own)
        if args.command == "build":
            return cmd_build(args)
        if args.command == "pytest":
            return cmd_pytest(args, passthrough)
        return cmd_run(args, passthrough)
    except UsageError as exc:
        print(f"sky-rs-matrix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print("sky-rs-matrix: interrupted; finished cells are kept", file=sys.stderr)
        return exc.exit_code if isinstance(exc, RunInterrupted) else 130


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `RunInterrupted` in the main thread, once.

    A CI cancel, `timeout` or a service manager sends SIGTERM to the runner alone; a terminal's
    Ctrl-C sends SIGINT to its process group (the cells have sessions of their own). A signal
    the runner was started with ignored stays ignored (`nohup`, a shell's background job). A
    second signal while the run is being stopped changes nothing: the stop is under way.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: List[int] = []

    def handler(signum: int, _frame: object) -> None:
        if not stopping:
            stopping.append(signum)
            raise RunInterrupted(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _root(args: argparse.Namespace) -> Path:
    if args.project_root:
        root = args.project_root.resolve()
        if not (root / "pyproject.toml").is_file():
            raise UsageError(f"--project-root {root}: no pyproject.toml there")
        return root
    return find_project_root(Path.cwd().resolve())


def cmd_build(args: argparse.Namespace) -> int:
    root = _root(args)
    try:
        wheel, _cached, _seconds = host_wheel.build_wheel(
            root, log=lambda m: print(m, file=sys.stderr), force=args.force
        )
    except host_wheel.BuildError as exc:
        raise UsageError(str(exc)) from None
    print(wheel)
    return 0


def cmd_pytest(args: argparse.Namespace, pytest_args: List[str]) -> int:
    """Run the given test paths from a temporary copy (see sky_matrix.execute.staging)."""
    root = _root(args)
    try:
        return staging.run_staged(root, args.paths, pytest_args)
    except staging.StagingError as exc:
        raise UsageError(str(exc)) from None


# ------------------------------------------------------------------------- planning


class Planned:
    """Everything `run` decides before any cell starts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.root = _root(args)
        config = load_project_config(self.root)
        paths, labels = [], []
        for value in args.python:
            for part in (p for p in value.split(",") if p):
                (paths if os.sep in part or os.path.exists(part) else labels).append(part)
        self.discovery: Discovery = discover(
            explicit=[os.path.abspath(p) for p in paths],
            configured=config.pythons,
            use_pyenv=not args.no_discover,
            use_path=not args.no_discover,
        )
        self.strict = args.strict if args.strict is not None else bool(os.environ.get("CI"))
        host_only = bool(args.platform) and all(p == HOST for p in args.platform)
        self.notes: List[str] = []
        self.platforms: List[RunnablePlatform] = host_and_docker_platforms(
            self.discovery, want_docker=not (args.no_docker or host_only), log=self.notes.append
        )
        report_dir = (args.report_dir or self.root / "matrix-report").resolve()
        self.paths = RunPaths(report_dir)
        self.selection = Selection(
            suites=args.suite,
            pythons=[*labels, *self.discovery.explicit_labels],
            platforms=args.platform,
            profiles=args.profile,
            only=args.only,
            shard=parse_shard(args.shard) if args.shard else None,
            allow_fail=getattr(args, "allow_fail", []),
        )
        if args.rerun_failed:
            self.selection.cell_ids = failed_ids(self.paths)
        self.plan = full_plan(self.platforms, strict=self.strict)
        self.cells: List[PlannedCell] = select(self.plan, self.selection)
        if not self.cells and not args.rerun_failed:
            raise UsageError("no cell matches this selection: see the plan with --list")


def failed_ids(paths: RunPaths) -> set:
    report = store.load_report(paths)
    if report is None:
        raise UsageError(
            f"--rerun-failed: no report at {paths.report_dir / 'report.json'}: run the matrix first"
        )
    return {
        c["id"]
        for c in report.get("cells", [])
        if c.get("verdict") in ("fail", "error", "interrupted")
    }


def _context(
    args: argparse.Namespace, planned: Planned, log: Any, passthrough: List[str]
) -> RunContext:
    canaries = []
    specs = getattr(args, "canary", None) or []
    if not specs and os.environ.get("SKY_RS_MATRIX_CANARY"):
        specs = [os.environ["SKY_RS_MATRIX_CANARY"]]
    for spec in specs:
        kind, _, pattern = spec.partition("@")
        if kind not in CANARIES:
            raise UsageError(f"--canary {kind!r}: choose from {', '.join(CANARIES)}")
        canaries.append((kind, pattern or None))
    requirements = planned.root / REQUIREMENTS
    if not requirements.is_file():
        raise UsageError(f"{requirements} is missing: it lists the test dependencies of a cell")
    return RunContext(
        project_root=planned.root,
        paths=planned.paths,
        requirements=requirements,
        env_cache=(args.env_cache or planned.root / ".build-cache" / "envs").resolve(),
        run_id=time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        log=log,
        pytest_args=passthrough,
        cell_timeout_override=getattr(args, "cell_timeout", None),
        test_timeout_override=getattr(args, "test_timeout", None),
        canaries=canaries,
        keep_workdirs=getattr(args, "keep_workdirs", False),
        wheel_override=args.wheel.resolve() if args.wheel else None,
        container_wheel_override=args.container_wheel,
    )


def prepare(args: argparse.Namespace, planned: Planned, console: Console) -> int:
    """What the selected cells need, made ahead (`nox -s matrix --install-only`)."""
    ctx = _context(args, planned, console.print, [])
    slots_by_platform: Dict[str, List[Slot]] = {}
    platforms: Dict[str, RunnablePlatform] = {}
    for p in planned.cells:
        if not p.skip and not p.error:
            platforms.setdefault(p.platform.name, runnable(p.platform))
            slots_by_platform.setdefault(p.platform.name, []).append(p.slot)
    failures = sum(
        platform.prepare_ahead(ctx, slots_by_platform[name], console.print)
        for name, platform in platforms.items()
    )
    return 1 if failures else 0


def cmd_run(args: argparse.Namespace, passthrough: List[str]) -> int:
    console = make_console(no_color=args.no_color)
    err = make_console(stderr=True, no_color=args.no_color)
    planned = Planned(args)
    if args.json:
        print(github_matrix_json(planned.cells))
        return 0
    if args.list:
        listing.render(
            console, project_root=planned.root, discovery=planned.discovery,
            platforms=planned.platforms, cells=planned.cells, notes=planned.notes,
        )  # fmt: skip
        return 0
    if not planned.cells:
        console.print("nothing to rerun: the last report has no failed cell")
        return 0
    for note in planned.notes:
        err.print(f"[dim]{note}[/]")
    if args.prepare_only:
        return prepare(args, planned, err)

    ctx = _context(args, planned, err.print, passthrough)
    paths = planned.paths
    store.check_writable(paths)
    try:  # the durations of the last run, for the estimate of the time left
        history = store.load_report(paths)
    except UsageError:
        history = None
    with stop_on_signals():
        return _run_cells(args, planned, ctx, console, err, history)


def _run_cells(
    args: argparse.Namespace,
    planned: Planned,
    ctx: RunContext,
    console: Console,
    err: Console,
    history: Optional[Dict[str, Any]],
) -> int:
    paths = planned.paths
    started = time.time()
    if any(runnable(p.platform).uses_host_wheel and not (p.skip or p.error) for p in planned.cells):
        ctx.ensure_host_wheel()
    if not planned.selection.narrowed():
        archive_previous(paths)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    jobs = args.jobs or JOBS_PER_CORE * cores
    if jobs < 1:
        raise UsageError("-j must be at least 1")
    costs = cpu_costs(history, planned.cells, cores)
    err.print(
        f"matrix: {len(planned.cells)} cells, up to {jobs} at once as their measured CPU use"
        f" fits {cores} cores; report in {paths.report_dir}"
    )
    estimates = progress.Estimates.from_report(history)
    try:
        with LiveProgress(
            err, total=len(planned.cells), cells=[p.cell for p in planned.cells],
            estimates=estimates, jobs=min(jobs, cores),
        ) as live:  # fmt: skip
            results = execute(
                ctx,
                planned.cells,
                jobs=jobs,
                cores=cores,
                observer=live,
                write_result=lambda result: store.write_result(paths, result),
                costs=costs,
                work=expected_work(history, planned.cells),
            )
    except KeyboardInterrupt as exc:
        return _interrupted(exc, args, planned, ctx, started, jobs, cores, err)
    finally:
        ctx.close_scratch()
    run_meta = run_metadata(args, planned, ctx, started, jobs, cores)
    first_tests = [r.extra["first_test_at"] for r in results if "first_test_at" in r.extra]
    run_meta["first_test_after"] = round(min(first_tests) - started, 2) if first_tests else None
    all_results = write_reports(paths, run_meta)
    table.render(all_results, console)
    summary = store.summarize(results)
    failed = [r for r in results if r.required and r.verdict in ("fail", "error")]
    earlier = len(all_results) - len(results)
    console.print(
        f"{len(results)} cells: {summary['pass']} pass, {summary['fail']} fail,"
        f" {summary['error']} error, {summary['skipped']} skipped"
        f" in {time.time() - started:.0f} s"
        + (f" (first test after {run_meta['first_test_after']:.1f} s)" if first_tests else "")
        + f"; report: {paths.report_dir / 'report.html'}"
        + (f"; it also keeps {earlier} cell(s) of earlier runs" if earlier > 0 else "")
    )
    if failed:
        console.print(f"[bold red]{len(failed)} required cell(s) failed[/]")
        return 1
    return 0


def _interrupted(
    exc: KeyboardInterrupt,
    args: argparse.Namespace,
    planned: Planned,
    ctx: RunContext,
    started: float,
    jobs: int,
    cores: int,
    err: Console,
) -> int:
    """The run was stopped (the scheduler has killed and recorded its cells): the reports of
    what is on disk, one line saying what happened, exit 128 + the signal (130, 143, 129)."""
    signum = exc.signum if isinstance(exc, RunInterrupted) else int(signal.SIGINT)
    paths = planned.paths
    run_meta = run_metadata(args, planned, ctx, started, jobs, cores)
    run_meta["interrupted"] = signal_name(signum)
    try:  # the cells that finished are on disk: make the reports of them
        all_results = write_reports(paths, run_meta)
    except UsageError as problem:
        err.print(f"sky-rs-matrix: {problem}")
        all_results = []
    this_run = [r for r in all_results if r.run_id == ctx.run_id]
    cut = sum(1 for r in this_run if r.verdict == "interrupted")
    err.print(
        f"sky-rs-matrix: stopped by {signal_name(signum)} after {time.time() - started:.0f} s:"
        f" {len(this_run) - cut} cell(s) finished and kept, {cut} interrupted,"
        f" {max(0, len(planned.cells) - len(this_run))} not started;"
        f" report: {paths.report_dir / 'report.json'}"
    )
    return 128 + signum


def write_reports(paths: RunPaths, run_meta: Dict[str, Any]) -> List[CellResult]:
    """report.json, junit.xml and report.html from every result.json in the report folder."""
    all_results = store.load_results(paths)
    store.write_report_json(paths, run_meta, all_results)
    junit.write_merged(all_results, paths.report_dir / "junit.xml")
    html_report.write(paths.report_dir / "report.html", all_results, run_meta)
    return all_results


def archive_previous(paths: RunPaths) -> None:
    """A full run supersedes the last one, which is kept once under previous/."""
    if not paths.cells_dir.is_dir():
        return
    previous = paths.report_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True, exist_ok=True)
    paths.cells_dir.rename(previous / "cells")
    for name in ("report.json", "junit.xml", "report.html"):
        if (paths.report_dir / name).exists():
            (paths.report_dir / name).rename(previous / name)


def run_metadata(
    args: argparse.Namespace,
    planned: Planned,
    ctx: RunContext,
    started: float,
    jobs: int,
    cores: int,
) -> Dict[str, Any]:
    wheel = ctx._host_wheel
    return {
        "id": ctx.run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "project_root": str(planned.root),
        "wheel": str(wheel) if wheel else None,
        "wheel_key": host_wheel.source_key(planned.root),
        "build_seconds": round(ctx.build_seconds, 2),
        "jobs": jobs,
        "cores": cores,
        "strict": planned.strict,
        "python": sys.version.split()[0],
        "cells_selected": len(planned.cells),
        "argv": sys.argv[1:],
    }

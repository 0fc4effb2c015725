"""Running the selected cells in parallel and recording each result as it ends.

`RunContext` holds what every cell shares (wheels, caches, limits, the staged
tests); `execute` schedules the cells over `-j` workers. A cell that crashes,
hangs or raises inside the runner is recorded as failed and the others go on;
each result is written to disk the moment its cell ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from sky_matrix.build import host_wheel
from sky_matrix.config.suites import SUITES, Suite, layout
from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Cell, CellResult, RunPaths
from sky_matrix.execute import staging
from sky_matrix.execute.platforms import Platform
from sky_matrix.plan.planner import PlannedCell, matches
from sky_matrix.report import store

PLUGIN_SOURCE = Path(__file__).with_name("cell_plugin") / "conftest.py"


@dataclasses.dataclass
class RunContext:
    project_root: Path
    paths: RunPaths
    requirements: Path
    env_cache: Path
    run_id: str
    log: Callable[[str], None]
    pytest_args: List[str] = dataclasses.field(default_factory=list)
    cell_timeout_override: Optional[float] = None
    test_timeout_override: Optional[float] = None
    # Runner self-tests only: (kind, cell-id pattern or None); the first match wins.
    canaries: List[Tuple[str, Optional[str]]] = dataclasses.field(default_factory=list)
    keep_workdirs: bool = False
    wheel_override: Optional[Path] = None
    container_wheel_override: Optional[Path] = None
    scratch_root: Optional[Path] = None
    build_seconds: float = 0.0
    container_wheel_error: Optional[str] = None
    _host_wheel: Optional[Path] = None
    _container_wheel: Optional[Path] = None
    _container_wheel_tried: bool = False
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _procs: Set[subprocess.Popen] = dataclasses.field(default_factory=set)  # type: ignore[type-arg]

    # ---------------------------------------------------------------- wheels

    def ensure_host_wheel(self) -> Path:
        """The host wheel: --wheel, else the cached build (built now if needed)."""
        if self._host_wheel is not None:
            return self._host_wheel
        if self.wheel_override is not None:
            if not self.wheel_override.is_file():
                raise UsageError(f"--wheel {self.wheel_override}: no such file")
            self._host_wheel = self.wheel_override.resolve()
            return self._host_wheel
        try:
            wheel, _cached, seconds = host_wheel.build_wheel(self.project_root, log=self.log)
        except host_wheel.BuildError as exc:
            raise UsageError(str(exc)) from None
        self.build_seconds = seconds
        self._host_wheel = wheel
        return wheel

    def host_wheel(self) -> Path:
        assert self._host_wheel is not None, "ensure_host_wheel() runs before any host cell"
        return self._host_wheel

    def container_wheel(self) -> Optional[Path]:
        """The manylinux wheel for containers, built once; None if it cannot be built."""
        with self._lock:
            if self._container_wheel_tried:
                return self._container_wheel
            self._container_wheel_tried = True
            if self.container_wheel_override is not None:
                self._container_wheel = self.container_wheel_override.resolve()
                return self._container_wheel
            from sky_matrix.build import manylinux_wheel

            out_dir = host_wheel.cache_root(self.project_root) / "manylinux"
            try:  # reuses a wheel verified for the same sources
                self._container_wheel = manylinux_wheel.build_manylinux_wheel(
                    self.project_root, out_dir, self.log
                )
            except Exception as exc:  # reported on every container cell
                self.container_wheel_error = str(exc)
                self.log(f"container wheel: cannot build it: {exc}")
                self._container_wheel = None
            return self._container_wheel

    # ---------------------------------------------------------------- cells

    def suite(self, name: str) -> Suite:
        return SUITES[name]

    def cell_timeout(self, suite: str) -> float:
        return self.cell_timeout_override or SUITES[suite].cell_timeout

    def test_timeout(self, suite: str) -> float:
        return self.test_timeout_override or SUITES[suite].test_timeout

    def suite_pytest_args(self, cell: Cell, workers: int) -> List[str]:
        """pytest options every platform uses (paths are the platform's business)."""
        return [
            "-p", "no:cacheprovider",
            "-n", str(workers),
            f"--timeout={self.test_timeout(cell.suite):g}",
            "-rfEs",
            "--color=no",
            *self.pytest_args,
        ]  # fmt: skip

    def canary_for(self, cell: Cell) -> Optional[str]:
        for kind, pattern in self.canaries:
            if pattern is None or matches(cell.id, pattern):
                return kind
        return None

    def scratch_dir(self) -> Path:
        if self.scratch_root is None:
            self.scratch_root = Path(tempfile.mkdtemp(prefix="sky-matrix-"))
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        return self.scratch_root

    def fresh_cell_dir(self, cell: Cell) -> Path:
        """The cell's report folder, emptied of an earlier run's files but its result.json."""
        cell_dir = self.paths.cell_dir(cell)
        if cell_dir.is_dir():
            for child in cell_dir.iterdir():
                if child.name == "result.json":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        cell_dir.mkdir(parents=True, exist_ok=True)
        return cell_dir

    @contextlib.contextmanager
    def staged_suite(
        self, cell: Cell, parent: Optional[Path] = None
    ) -> Iterator[Tuple[Path, List[str]]]:
        """A temporary copy of tests/ plus the runner's conftest: (directory, suite paths)."""
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=parent or self.scratch_dir()))
        try:
            suite_layout = layout(self.project_root, SUITES[cell.suite])
            try:
                staging.stage(self.project_root, [Path("tests")], run_dir)
            except staging.StagingError as exc:
                raise UsageError(str(exc)) from None
            shutil.copyfile(PLUGIN_SOURCE, run_dir / "conftest.py")
            yield run_dir, list(suite_layout.present)
        finally:
            if not self.keep_workdirs:
                self.remove_tree(run_dir)

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    # ---------------------------------------------------------------- processes

    def register(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        with self._lock:
            self._procs.add(proc)

    def unregister(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Observer:
    """What the scheduler reports to (the live progress display)."""

    def cell_started(self, cell: Cell) -> None:
        pass

    def cell_finished(self, result: CellResult) -> None:
        pass


def _planned_result(planned: PlannedCell, verdict: str, reason: str) -> CellResult:
    return CellResult(
        cell=planned.cell, verdict=verdict, reason=reason, interpreter=planned.slot.interpreter
    )


def execute(
    ctx: RunContext,
    cells: List[PlannedCell],
    *,
    jobs: int,
    cores: int,
    observer: Observer,
) -> List[CellResult]:
    """Run `cells`; every result is on disk when this returns (or raises)."""
    results: List[CellResult] = []
    results_lock = threading.Lock()
    abort: List[BaseException] = []
    running = [0]

    def record(planned: PlannedCell, result: CellResult) -> None:
        result.required = planned.required
        result.run_id = ctx.run_id
        result.finished_at = time.time()
        if result.verdict != "pass" and result.log_tail is None and result.reason:
            result.log_tail = result.reason
        try:
            store.write_result(ctx.paths, result)
        except UsageError as exc:
            abort.append(exc)
            ctx.kill_all()
            raise
        with results_lock:
            results.append(result)
        observer.cell_finished(result)

    # Cells whose fate is known before running are recorded first.
    runnable: List[PlannedCell] = []
    for planned in cells:
        if planned.error:
            record(planned, _planned_result(planned, "error", planned.error))
        elif planned.skip:
            record(planned, _planned_result(planned, "skipped", planned.skip))
        else:
            runnable.append(planned)

    # Container platforms prepare (build images) in the background while host cells run.
    prepared: Dict[str, threading.Event] = {}
    failures: Dict[str, Optional[str]] = {}
    to_prepare: List[Platform] = []
    for planned in runnable:
        name = planned.platform.name
        if name != "host" and name not in prepared:
            prepared[name] = threading.Event()
            to_prepare.append(planned.platform)

    def prepare_all() -> None:
        for platform in to_prepare:
            try:
                failures[platform.name] = platform.prepare(ctx)
            except Exception as exc:  # a bug in preparing must not hang the run
                failures[platform.name] = f"preparing {platform.name} failed: {exc!r}"
            prepared[platform.name].set()

    preparer = threading.Thread(target=prepare_all, name="prepare-platforms", daemon=True)
    if to_prepare:
        preparer.start()

    def run_one(planned: PlannedCell) -> None:
        if abort:
            return
        cell = planned.cell
        slot = planned.slot
        if cell.platform != "host":
            prepared[cell.platform].wait()
            failure = failures.get(cell.platform)
            if failure:
                record(planned, _planned_result(planned, "error", failure))
                return
            slot = planned.platform.slots().get(cell.python, slot)
            if slot.interpreter is None:
                record(planned, _planned_result(planned, "skipped", slot.missing or "not found"))
                return
        with results_lock:
            running[0] += 1
            workers = max(1, cores // running[0])
        observer.cell_started(cell)
        try:
            result = planned.platform.run_cell(cell, slot, ctx, workers)
        except UsageError as exc:
            result = _planned_result(planned, "error", str(exc))
        except Exception as exc:  # recorded as this cell's failure; the others go on
            result = _planned_result(planned, "error", f"runner error: {exc!r}")
            result.log_tail = traceback.format_exc()
        finally:
            with results_lock:
                running[0] -= 1
        record(planned, result)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="cell") as pool:
        futures: Set[Future[None]] = {pool.submit(run_one, p) for p in runnable}
        try:
            while futures:
                done, futures = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.cancelled():
                        continue
                    exc = future.exception()
                    if exc is not None and not abort:
                        abort.append(exc)
                if abort:
                    for future in futures:
                        future.cancel()
                    ctx.kill_all()
        except KeyboardInterrupt:
            abort.append(KeyboardInterrupt())
            for future in futures:
                future.cancel()
            ctx.kill_all()
            raise
    if abort:
        raise abort[0]
    return results

"""What every cell of a run shares: wheels, caches, limits, the staged tests, the processes.

The platforms and the cells read it; the scheduler owns one per run.
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
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from sky_matrix.build import host_wheel, manylinux_wheel, pure_wheel
from sky_matrix.config.suites import SUITES, Suite, layout
from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Cell, Interpreter, RunPaths
from sky_matrix.docker import interpreter_wheel
from sky_matrix.execute import staging
from sky_matrix.plan.planner import matches

PLUGIN_SOURCE = Path(__file__).with_name("cell_plugin") / "conftest.py"


class RunStopped(RuntimeError):
    """Work asked for after the run ended (a cell thread still winding down after an interrupt)."""


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
    container_wheel_error: Optional[str] = None  # x86_64's (container_wheel_errors has all)
    container_wheel_errors: Dict[str, str] = dataclasses.field(default_factory=dict)
    _host_wheel: Optional[Path] = None
    # The container wheel per architecture, once tried (None: it could not be built).
    _container_wheels: Dict[str, Optional[Path]] = dataclasses.field(default_factory=dict)
    # The signal that stopped the run (RunInterrupted), once it came: every cell process is
    # killed, and one registered afterwards is killed at once.
    interrupted: Optional[int] = None
    _scratch_closed: bool = False
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _procs: Set[subprocess.Popen] = dataclasses.field(default_factory=set)  # type: ignore[type-arg]
    # Wheels built for one interpreter (PyPy's pp311): (wheel or None, why not) per wheel ABI.
    _interpreter_wheels: Dict[str, Tuple[Optional[Path], Optional[str]]] = dataclasses.field(
        default_factory=dict
    )
    _interpreter_wheel_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    # The pure-Python wheel, built once per run on first need: (wheel or None, why not).
    _pure_wheel: Optional[Tuple[Optional[Path], Optional[str]]] = None

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

    def container_wheel(self, architecture: str = "x86_64") -> Optional[Path]:
        """The manylinux wheel for `architecture`'s containers, built once; None if it cannot be
        built (the reason in `container_wheel_errors`). `--container-wheel` is x86_64's."""
        with self._lock:
            if architecture in self._container_wheels:
                return self._container_wheels[architecture]
            wheel: Optional[Path] = None
            if self.container_wheel_override is not None and architecture == "x86_64":
                wheel = self.container_wheel_override.resolve()
            else:
                suffix = "" if architecture == "x86_64" else f"-{architecture}"
                out_dir = host_wheel.cache_root(self.project_root) / f"manylinux{suffix}"
                try:  # reuses a wheel verified for the same sources
                    wheel = manylinux_wheel.build_manylinux_wheel(
                        self.project_root, out_dir, self.log, architecture
                    )
                except Exception as exc:  # reported on every container cell
                    self.container_wheel_errors[architecture] = str(exc)
                    if architecture == "x86_64":
                        self.container_wheel_error = str(exc)
                    self.log(f"container wheel ({architecture}): cannot build it: {exc}")
            self._container_wheels[architecture] = wheel
            return wheel

    def interpreter_wheel(
        self, interp: Interpreter, image_tag: str
    ) -> Tuple[Optional[Path], Optional[str]]:
        """(the wheel, None), or (None, why) for an interpreter the abi3 wheel cannot serve:
        built once per run and wheel ABI inside the image (docker/interpreter_wheel.py)."""
        with self._interpreter_wheel_lock:
            known = self._interpreter_wheels.get(interp.wheel_abi)
            if known is None:
                try:
                    built = interpreter_wheel.build_interpreter_wheel(
                        self.project_root, image_tag, interp, self.log
                    )
                    known = (built, None)
                except (interpreter_wheel.InterpreterWheelError, OSError) as exc:
                    known = (None, f"no native wheel for {interp.short}: {exc}")
                    self.log(known[1])
                self._interpreter_wheels[interp.wheel_abi] = known
            return known

    def pure_wheel(self) -> Tuple[Optional[Path], Optional[str]]:
        """(the py3-none-any wheel, None), or (None, why): what pip installs where no binary
        wheel fits (build/pure_wheel.py; seconds to build, so built afresh once per run)."""
        with self._interpreter_wheel_lock:
            if self._pure_wheel is None:
                out_dir = host_wheel.cache_root(self.project_root) / "pure"
                shutil.rmtree(out_dir, ignore_errors=True)  # no wheel of older sources
                try:
                    built = pure_wheel.build_pure_wheel(self.project_root, out_dir)
                    self._pure_wheel = (built, None)
                except (pure_wheel.PureWheelError, OSError) as exc:
                    self._pure_wheel = (None, f"no pure-Python wheel: {exc}")
                    self.log(self._pure_wheel[1] or "")
            return self._pure_wheel

    # ---------------------------------------------------------------- cells

    def suite(self, name: str) -> Suite:
        return SUITES[name]

    def cell_timeout(self, suite: str, factor: float = 1.0) -> float:
        """The wall-clock limit of a cell of `suite`; an emulated platform's suite limit is
        scaled by its measured `factor` (an explicit --cell-timeout is taken as given)."""
        return self.cell_timeout_override or round(SUITES[suite].cell_timeout * factor, 1)

    def test_timeout(self, suite: str, factor: float = 1.0) -> float:
        return self.test_timeout_override or round(SUITES[suite].test_timeout * factor, 1)

    def suite_pytest_args(self, cell: Cell, workers: int, factor: float = 1.0) -> List[str]:
        """pytest options every platform uses (paths are the platform's business); `factor`
        scales the per-test limit as `cell_timeout`'s."""
        return [
            "-p", "no:cacheprovider",
            "-n", str(workers),
            f"--timeout={self.test_timeout(cell.suite, factor):g}",
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
        """The run's scratch root (venvs, staged suites), made on first use. Once the run has
        removed it (`close_scratch`), a late cell thread gets an error instead of making it
        again: an interrupted run must leave nothing behind."""
        with self._lock:
            if self._scratch_closed:
                raise RunStopped("the run is over: its scratch space is gone")
            if self.scratch_root is None:
                self.scratch_root = Path(tempfile.mkdtemp(prefix="sky-matrix-"))
            self.scratch_root.mkdir(parents=True, exist_ok=True)
            return self.scratch_root

    def close_scratch(self) -> None:
        """Remove the scratch root (unless the workdirs are kept) and refuse to make it again."""
        with self._lock:
            self._scratch_closed = True
            root = self.scratch_root
        if root is not None and not self.keep_workdirs:
            shutil.rmtree(root, ignore_errors=True)

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
            stopping = self.interrupted is not None
        if stopping:  # started while the run was being stopped
            _kill_group(proc.pid)

    def unregister(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc.pid)

    def interrupt(self, signum: int) -> None:
        """The run is being stopped: kill every cell's process group now and from now on."""
        with self._lock:
            if self.interrupted is None:
                self.interrupted = signum
        self.kill_all()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

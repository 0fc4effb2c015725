"""The matrix's vocabulary: interpreters, cells and their results.

Every other module speaks in these types, so the planner, the host runner, the
container runner and the reporters never need to know each other.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

# A cell's verdict. "skipped" always carries a reason; "error" means the runner
# itself could not run the cell (bad interpreter, failed venv), "fail" that the
# suite ran and something failed, crashed or hung; "interrupted" that the run was
# stopped (SIGINT/SIGTERM/SIGHUP to the runner) while the cell ran: no verdict on it.
VERDICTS = ("pass", "fail", "error", "skipped", "interrupted")


_LABEL = re.compile(r"^(pp)?(\d+)\.(\d+)(t?)(d?)$")


def abi_tag(label: str) -> str:
    """The implementation and ABI of an interpreter label, as wheel tags spell them:
    `3.13` -> `cp313`, `3.14d` -> `cp314d`, `3.14t` -> `cp314t`, `pp3.11` -> `pp311`.

    Derived from the label alone, so a planned cell whose image is not built yet has it too.
    A label of no known shape is returned as it is.
    """
    match = _LABEL.match(label)
    if not match:
        return label
    pypy, major, minor, free_threaded, debug = match.groups()
    return f"{'pp' if pypy else 'cp'}{major}{minor}{free_threaded}{debug}"


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """One Python interpreter, on the host or inside an image."""

    path: str  # executable path (inside the image for container platforms)
    version: str  # "3.11.7"
    implementation: str  # "cpython"
    abi: str  # "cp311", "cp314d" ...
    debug: bool  # a --with-pydebug build (sys.gettotalrefcount exists)
    source: str  # "pyenv", "PATH", "--python", "pyproject", "image:<name>"
    free_threaded: bool = False  # a --disable-gil build (3.13t, 3.14t)
    soabi: Optional[str] = None  # sysconfig SOABI, where probed: "pypy311-pp80" names PyPy's ABI

    @property
    def wheel_abi(self) -> str:
        """The ABI tag of this interpreter's own wheels: `cp313`, `cp314t`, `pypy311_pp80`."""
        if self.implementation == "pypy" and self.soabi:
            return self.soabi.replace("-", "_").replace(".", "_")
        return self.abi

    @property
    def wheel_implementation(self) -> str:
        """pip's `--implementation`: `cp` or `pp`."""
        return "pp" if self.implementation == "pypy" else "cp"

    @property
    def short(self) -> str:
        """The column/row label: `3.11`; `3.14d` for a debug build, `3.14t` for a free-threaded
        one, `pp3.11` for PyPy implementing Python 3.11."""
        major_minor = ".".join(self.version.split(".")[:2])
        prefix = "pp" if self.implementation == "pypy" else ""
        return (
            prefix + major_minor + ("t" if self.free_threaded else "") + ("d" if self.debug else "")
        )


@dataclasses.dataclass(frozen=True)
class Cell:
    """(interpreter, platform, suite, profile): the unit the matrix runs."""

    python: str  # Interpreter.short, e.g. "3.11" or "3.14d"
    platform: str  # "host" or "docker:<image>"
    suite: str  # "parity", "cgroup", "eperm", "leaks", "stability"
    profile: str  # "default", "cpus-1.5", ...

    @property
    def id(self) -> str:
        return f"{self.platform}-py{self.python}-{self.suite}-{self.profile}"

    @property
    def abi(self) -> str:
        """`cp313`, `cp314t`, `pp311`...: the interpreter axis's implementation and ABI."""
        return abi_tag(self.python)


@dataclasses.dataclass
class CellResult:
    """What one cell produced. Written to disk as soon as the cell ends."""

    cell: Cell
    verdict: str  # one of VERDICTS
    reason: Optional[str] = None  # why skipped/failed/error, one line
    interpreter: Optional[Interpreter] = None
    counts: Dict[str, int] = dataclasses.field(default_factory=dict)  # passed/failed/...
    durations: Dict[str, float] = dataclasses.field(default_factory=dict)  # env/tests/total
    log_path: Optional[str] = None
    junit_path: Optional[str] = None
    log_tail: Optional[str] = None  # last lines of the log when the cell failed
    returncode: Optional[int] = None
    signal: Optional[str] = None  # "SIGSEGV" when the process died of a signal
    stats: Optional[Dict[str, Any]] = None  # sky_rs.stats() fallback counts
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)  # suite reports
    required: bool = True  # a failed required cell makes the run's exit status non-zero
    run_id: Optional[str] = None  # the run that produced this result
    finished_at: Optional[float] = None  # time.time() when the cell ended
    # `uname -m` where the cell ran (`aarch64` for an emulated image); None in older records.
    architecture: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["id"] = self.cell.id
        data["abi"] = self.cell.abi
        return data


@dataclasses.dataclass
class RunPaths:
    """Where a matrix run writes its files."""

    report_dir: Path

    @property
    def cells_dir(self) -> Path:
        return self.report_dir / "cells"

    def cell_dir(self, cell: Cell) -> Path:
        return self.cells_dir / cell.id


__all__: List[str] = ["VERDICTS", "Cell", "CellResult", "Interpreter", "RunPaths"]

"""Where the evidence lives and how the sign-off runs the commands it runs itself."""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

COVERAGE_TARGET = 90.0  # percent of lines, Rust and Python alike (the seed's quality target)
SOAK_REQUIRED_S = 24 * 3600.0  # the seed's "long-running stability tests (24h+)"


@dataclasses.dataclass(frozen=True)
class CommandResult:
    returncode: Optional[int]  # None when the command could not start or timed out
    stdout: str
    stderr: str
    seconds: float
    error: Optional[str] = None  # why it did not run to completion

    @property
    def ok(self) -> bool:
        return self.returncode == 0


Runner = Callable[[Sequence[str], Path, float], CommandResult]


def run_command(args: Sequence[str], cwd: Path, timeout: float) -> CommandResult:
    """Run a command to completion, capturing its output; never raises for the command's sake."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(args),
            cwd=str(cwd),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return CommandResult(None, "", "", time.monotonic() - started, f"{args[0]} not found")
    except subprocess.TimeoutExpired:
        return CommandResult(
            None, "", "", time.monotonic() - started, f"timed out after {timeout:.0f}s"
        )
    return CommandResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@dataclasses.dataclass(frozen=True)
class EvidencePaths:
    """The files the expensive runs leave behind; relative paths are under the project root."""

    matrix_reports: Sequence[Path] = (Path("matrix-report/report.json"),)
    bench: Path = Path("bench-report/bench.json")
    leaks: Path = Path("leaks-report/verdict.json")
    soak_dir: Path = Path("soak-report")
    coverage_dir: Path = Path("coverage-report")
    wheels: Path = Path("release-report/wheels.json")


@dataclasses.dataclass
class Context:
    root: Path
    evidence: EvidencePaths = dataclasses.field(default_factory=EvidencePaths)
    run: Runner = run_command
    host_system: str = dataclasses.field(default_factory=platform.system)
    soak_required_s: float = SOAK_REQUIRED_S
    coverage_target: float = COVERAGE_TARGET
    cargo_timeout_s: float = 1800.0

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else self.root / relative

    def show(self, path: Path) -> str:
        """A path as the report prints it: relative to the project root when inside it."""
        full = self.path(path)
        try:
            return str(full.relative_to(self.root))
        except ValueError:
            return str(full)

    @property
    def rust_dir(self) -> Path:
        return self.root / "rust"


class EvidenceError(Exception):
    """An evidence file exists but cannot be used; the message says why."""


def read_json(path: Path, shown: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{shown} unreadable: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{shown} is not valid JSON: {exc}") from None


def existing(paths: List[Path]) -> List[Path]:
    return [p for p in paths if p.is_file()]

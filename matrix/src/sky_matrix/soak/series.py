"""The samples file: one JSON record per line, appended and fsynced as it comes.

Record types, in file order:

- ``header``  — once, first: the run's parameters (duration, interval,
  rates, warm-up, budget), the interpreter, ``sky_rs.backend_info()``, the
  memory and fd limits.
- ``resume``  — each time ``--resume`` continues the run: the new segment's
  number, the series time it continues from, the new pid.
- ``sample``  — every interval: process metrics, cumulative calls and errors
  per (function, backend), the interval's latency summary and its encoded
  HdrHistogram per stream.
- ``error``   — the first few unexpected outcomes per stream and segment,
  with the input and what happened (the counts are in the samples).
- ``end``     — when a segment stops cleanly: why (completed, interrupted,
  segment-limit).

A run killed with SIGKILL may leave half a line at the end; :func:`repair`
cuts it off before a resume appends, so the file stays one valid series.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

FORMAT_VERSION = 1


class SeriesError(Exception):
    """The samples file can't be read as a soak series."""


class SeriesWriter:
    """Appends records; each one is on disk (flushed and fsynced) when ``write`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def write(self, record: Dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclasses.dataclass
class Series:
    """A samples file, parsed."""

    header: Dict[str, Any]
    samples: List[Dict[str, Any]]
    resumes: List[Dict[str, Any]]
    errors: List[Dict[str, Any]]
    ends: List[Dict[str, Any]]
    dropped_partial_line: bool = False

    @property
    def last_t(self) -> float:
        return float(self.samples[-1]["t"]) if self.samples else 0.0

    @property
    def segments(self) -> int:
        return 1 + len(self.resumes)

    @property
    def completed(self) -> bool:
        return bool(self.ends) and self.ends[-1].get("reason") == "completed"


def repair(path: Path) -> bool:
    """Cut a trailing partial line (a write cut short by SIGKILL). True if one was cut."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(keep)
    return True


def load(path: Path) -> Series:
    """Parse a samples file; a partial last line is ignored (not removed: see repair)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeriesError(f"cannot read {path}: {exc}") from exc
    lines = text.split("\n")
    dropped = False
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # no newline after it: a write cut short
        dropped = True
    header: Optional[Dict[str, Any]] = None
    series = Series(header={}, samples=[], resumes=[], errors=[], ends=[])
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SeriesError(f"{path}:{number}: not a JSON record: {exc}") from exc
        kind = record.get("type")
        if number == 1:
            if kind != "header":
                raise SeriesError(f"{path}: first record is {kind!r}, expected a header")
            if record.get("version") != FORMAT_VERSION:
                raise SeriesError(f"{path}: format version {record.get('version')!r} unsupported")
            header = record
        elif kind == "sample":
            series.samples.append(record)
        elif kind == "resume":
            series.resumes.append(record)
        elif kind == "error":
            series.errors.append(record)
        elif kind == "end":
            series.ends.append(record)
        else:
            raise SeriesError(f"{path}:{number}: unknown record type {kind!r}")
    if header is None:
        raise SeriesError(f"{path}: empty, no header")
    series.header = header
    series.dropped_partial_line = dropped
    return series

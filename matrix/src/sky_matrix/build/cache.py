"""The one content-keyed cache of build/: a directory per key, made under an exclusive lock and
marked complete only at the end, so a half-made entry (an interrupted run) is made again and
two runners asking for the same key build it once.

Every cache of the runner takes its lock here: the host wheel, the manylinux wheel, test venvs,
container wheelhouses (`Entry`), and the image builds of `docker/images.py` (`locked`).
Stdlib only and Python 3.8 compatible: `host_wheel.py` runs as a plain script under tox.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

COMPLETE = ".complete"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive `flock` on `path` (made, with its parents) for the `with` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Entry:
    """One key's directory, looked at while its lock is held (see `entry`)."""

    def __init__(self, path: Path, marker: str = COMPLETE) -> None:
        self.path = path
        self.marker = path / marker

    def record(self) -> Optional[Dict[str, Any]]:
        """What `complete` wrote ({} for an empty marker), or None: not complete."""
        try:
            text = self.marker.read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def start(self) -> Path:
        """An empty directory for the key (a half-made one from an interrupted run removed)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        return self.path

    def complete(self, record: Optional[Dict[str, Any]] = None) -> None:
        self.marker.write_text(json.dumps(record) if record is not None else "", encoding="utf-8")


@contextlib.contextmanager
def entry(path: Path, *, marker: str = COMPLETE) -> Iterator[Entry]:
    """`path`'s entry, its lock (`<path>.lock` beside it) held for the `with` block."""
    with locked(path.with_name(path.name + ".lock")):
        yield Entry(path, marker)

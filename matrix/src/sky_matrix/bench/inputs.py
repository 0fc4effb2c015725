"""The files and directories the bench reads, made once in a work directory.

Text files hold deterministic lines of 10 to 120 characters, so every run and
every machine reads the same bytes. The sparse file is one hole followed by the
1 MiB text block, so `read_last_n_lines(path, 100)` has a real tail to find and
a correct implementation never touches the hole; `hash_file` must read it all.

A manifest (`inputs.json`) records what was made; a later run (or a memory
probe child) given the same directory reuses the files instead of rewriting them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

MANIFEST = "inputs.json"
KIB = 1024
MIB = 1024**2
GIB = 1024**3
_UNITS = {"": 1, "B": 1, "KIB": KIB, "MIB": MIB, "GIB": GIB, "K": KIB, "M": MIB, "G": GIB}
_SIZE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")
_TEXT_SEED = 20241031


def parse_size(text: str) -> int:
    """`1KiB`, `1MiB`, `10GiB`, `4096` -> bytes (binary units only: a KiB is 1024 bytes)."""
    match = _SIZE.match(text)
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 1KiB, 1MiB, 1GiB, 4096)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def format_size(size: int) -> str:
    """Bytes -> the shortest exact binary-unit label: 1024 -> `1KiB`, 1000 -> `1000B`."""
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def text_block(size: int) -> bytes:
    """Exactly `size` bytes of `\\n`-terminated lines (10-120 chars), the same on every run."""
    if size <= 0:
        raise ValueError("size must be positive")
    rng = random.Random(_TEXT_SEED)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    parts: List[bytes] = []
    total = 0
    number = 0
    while total < size:
        body = "".join(rng.choices(alphabet, k=rng.randint(10, 120)))
        line = f"{number:08d} {body}\n".encode("ascii")
        parts.append(line)
        total += len(line)
        number += 1
    data = b"".join(parts)[:size]
    return data[:-1] + b"\n"


@dataclasses.dataclass(frozen=True)
class InputFile:
    label: str  # "1MiB", "10GiB-sparse"
    path: str
    size: int  # apparent size in bytes
    allocated: int  # bytes the file system really stores (st_blocks * 512)
    sparse: bool


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything a case may read; all paths are absolute."""

    directory: str
    files: Tuple[InputFile, ...]
    dirs: Dict[str, str]  # "100-entries" -> path
    dead_pid: int  # a pid that belonged to a reaped child: no process has it (barring reuse)

    def file(self, label: str) -> Optional[InputFile]:
        for item in self.files:
            if item.label == label:
                return item
        return None

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: Dict[str, Any]) -> Inputs:
        return Inputs(
            directory=data["directory"],
            files=tuple(InputFile(**item) for item in data["files"]),
            dirs=dict(data["dirs"]),
            dead_pid=int(data["dead_pid"]),
        )


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def _write_text_file(path: Path, size: int) -> None:
    block = text_block(min(size, MIB))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as out:
        remaining = size
        while remaining >= len(block):
            out.write(block)
            remaining -= len(block)
        if remaining:
            out.write(text_block(remaining))
    os.replace(tmp, path)


def _write_sparse_file(path: Path, size: int) -> None:
    tail = text_block(min(MIB, size))
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as out:
        out.truncate(size - len(tail))  # the hole: no blocks are written
        out.seek(size - len(tail))
        out.write(tail)
    os.replace(tmp, path)


def _reaped_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _make_dir(path: Path, entries: int) -> None:
    if path.is_dir() and len(os.listdir(path)) == entries:
        return
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for index in range(entries):
        (tmp / f"entry-{index:06d}").touch()
    tmp.rename(path)


def required_disk_bytes(sizes: Sequence[int], sparse_size: int) -> int:
    return sum(sizes) + (min(MIB, sparse_size) if sparse_size else 0)


def prepare(
    directory: Path,
    sizes: Sequence[int],
    sparse_size: int,
    dir_entries: Sequence[int],
) -> Inputs:
    """Make (or reuse) the inputs in `directory` and write the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    existing = sum(p.stat().st_blocks * 512 for p in directory.glob("text-*") if p.is_file())
    needed = required_disk_bytes(sizes, sparse_size) - existing
    if needed > free:
        raise OSError(
            f"the bench inputs need {needed / GIB:.1f} GiB more in {directory}, "
            f"which has {free / GIB:.1f} GiB free: pass --workdir elsewhere or smaller --sizes"
        )
    files: List[InputFile] = []
    for size in sorted(set(sizes)):
        path = directory / f"text-{format_size(size)}.txt"
        if not (path.is_file() and path.stat().st_size == size):
            _write_text_file(path, size)
        files.append(InputFile(format_size(size), str(path), size, _allocated(path), False))
    if sparse_size:
        label = f"{format_size(sparse_size)}-sparse"
        path = directory / f"text-{label}.txt"
        if not (path.is_file() and path.stat().st_size == sparse_size):
            _write_sparse_file(path, sparse_size)
        allocated = _allocated(path)
        files.append(InputFile(label, str(path), sparse_size, allocated, True))
    dirs: Dict[str, str] = {}
    for entries in sorted(set(dir_entries)):
        path = directory / f"dir-{entries}"
        _make_dir(path, entries)
        dirs[f"{entries}-entries"] = str(path)
    inputs = Inputs(str(directory.resolve()), tuple(files), dirs, _reaped_pid())
    (directory / MANIFEST).write_text(json.dumps(inputs.to_json(), indent=2), encoding="utf-8")
    return inputs


def load(directory: Path) -> Inputs:
    """The inputs a previous `prepare` made in `directory`."""
    data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    return Inputs.from_json(data)

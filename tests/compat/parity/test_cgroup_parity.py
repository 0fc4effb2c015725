"""The cgroup resolution of both backends over generated /proc + /sys/fs/cgroup trees."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import Parity

_counter = itertools.count()

COMPONENTS = [
    "a",
    "b",
    "kubepods",
    "pod 1",
    "tab\there",
    "back\\slash",
    "..",
    ".",
    "",
    "c:d",
    "é",
    "burstable",
    "user.slice",
]
CPU_MAX = [
    b"max 100000",
    b"max",
    b"50000 100000",
    b"150000 100000 extra",
    b"  200000\t100000\n",
    b"0 100000",
    b"-1 100000",
    b"100000 0",
    b"100000 -5",
    b"",
    b"\n",
    b"+5 10",
    b"1.5 1",
    b"0x10 1",
    b"9223372036854775807 1",
    b"9223372036854775808 1",
    b"100000",
    "\u0663 1".encode(),
    b"\xff 1",
    b"1000 1000",
    b"250000 100000",
    b"99999 100000",
    b"max 0",
    b"\x0b300000\x0c100000\r\n",
    b"400000  100000",
    b"-0 5",
]
CFS_QUOTA = [
    b"-1",
    b"50000",
    b"150000",
    b"0",
    b"",
    b"abc",
    b" 200000\n",
    b"9223372036854775808",
    b"+5",
    b"250000",
    b"1",
    b"-0",
]
CFS_PERIOD = [b"100000", b"0", b"-1", b"", b"100000\n", b"x", b"1", b"50000"]
MEMORY_MAX = [
    b"max",
    b"",
    b"0",
    b"-1",
    b"1073741824",
    b" 2147483648\n",
    b"max\n",
    b"9223372036854775807",
    b"9223372036854775808",
    b"1.5",
    b"+5",
    b"0x10",
    b"524288000",
    b"MAX",
    b"1 2",
]
MEMORY_V1 = [
    b"9223372036854771712",
    b"1073741824",
    b"0",
    b"-1",
    b"",
    b"abc",
    b"2147483648\n",
    b"999999999999",
    b"524288000",
    b"\t3221225472 ",
]

limit_file = st.one_of(st.none(), st.just("dir"))  # absent, or a directory in its place


def escape(path: str) -> str:
    """mountinfo's octal escapes for space, tab, newline and backslash."""
    return "".join(f"\\{ord(ch):03o}" if ch in " \t\n\\" else ch for ch in path)


def content(options: List[bytes]) -> st.SearchStrategy:
    """Mostly a value that sets a limit; else any listed value, absent, a directory, noise."""
    limiting = st.sampled_from([value for value in options if sets_limit(value)])
    listed = st.sampled_from(options)
    return st.one_of(
        limiting, limiting, limiting, listed, listed, limit_file, st.binary(max_size=12)
    )


def sets_limit(value: bytes) -> bool:
    """A positive plain number first (the period files use it too)."""
    fields = value.split()
    return bool(fields) and fields[0].isdigit() and 0 < int(fields[0]) < 2**63


@st.composite
def cgroup_trees(draw: st.DrawFn) -> Dict[str, object]:
    """A description of a small file system: {relative path: bytes | 'dir'}."""
    files: Dict[str, object] = {}
    parts = draw(st.lists(st.sampled_from(COMPONENTS), max_size=4))
    cgroup_path = "/" + "/".join(parts)
    layout = draw(
        st.sampled_from(["v2", "v2", "v1", "v1", "hybrid", "hybrid", "v1-nocpu", "empty", "none"])
    )
    cgroup_lines: List[str] = []
    mount_lines: List[str] = []
    mounts: List[Tuple[str, str, bool]] = []  # (mount point, root, v1)

    def mount_root() -> str:
        choice = draw(st.sampled_from(["slash", "slash", "prefix", "prefix", "decoy", "self"]))
        if choice == "slash":
            return "/"
        if choice == "self":
            return cgroup_path
        if choice == "prefix":
            return "/" + "/".join(parts[: draw(st.integers(0, len(parts)))])
        return cgroup_path.rstrip("/") + draw(st.sampled_from(["x", "/zz", "_1"]))

    if layout in ("v1", "hybrid", "v1-nocpu"):
        controllers = (
            "memory"
            if layout == "v1-nocpu"
            else draw(
                st.sampled_from(
                    ["cpu,cpuacct", "cpu", "cpuacct,cpu", "cpuset", "memory", "cpu,memory"]
                )
            )
        )
        cgroup_lines.append(f"4:{controllers}:{cgroup_path}")
        cgroup_lines.append(f"3:cpuset:{cgroup_path}")
        cgroup_lines.append(f"2:memory:{cgroup_path}")
        for index in range(draw(st.sampled_from([0, 1, 1, 2, 2]))):
            point = f"/sys/fs/cgroup/{controllers if index == 0 else 'memory'}"
            options = controllers if index == 0 else "memory"
            mounts.append((point, mount_root(), True))
            mount_lines.append(
                f"{30 + index} 25 0:{26 + index} {escape(mounts[-1][1])} {escape(point)} "
                f"rw,nosuid - cgroup cgroup rw,{options}"
            )
    if layout in ("v2", "hybrid"):
        cgroup_lines.append(f"0::{cgroup_path}")
        point = draw(st.sampled_from(["/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/", "/c g"]))
        mounts.append((point, mount_root(), False))
        optional = draw(st.sampled_from(["", " shared:9", " shared:9 master:2"]))
        mount_lines.append(
            f"35 25 0:30 {escape(mounts[-1][1])} {escape(point)} rw,nosuid{optional} - cgroup2 "
            f"cgroup2 rw,nsdelegate"
        )
    cgroup_lines.append("1:name=systemd:/init.scope")
    mount_lines.insert(0, "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw")
    mount_lines.append(
        draw(st.sampled_from(["", "garbage", "1 2 3 4 5 6 - cgroup2", "36 25 0:31"]))
    )
    if draw(st.booleans()):
        draw(st.randoms()).shuffle(mount_lines)
    if layout != "none":
        files["proc/self/cgroup"] = "\n".join(cgroup_lines).encode() + b"\n"
        files["proc/self/mountinfo"] = "\n".join(mount_lines).encode() + b"\n"
    elif draw(st.booleans()):
        files["proc/self/cgroup"] = b"0::/\n"  # no mountinfo: resolution fails

    # Directories and limit files along the walk, for every mount.
    for point, root, _ in mounts:
        relative = (
            cgroup_path[len(root.rstrip("/")) :] if cgroup_path.startswith(root.rstrip("/")) else ""
        )
        levels = [p for p in relative.split("/") if p]
        create = draw(st.one_of(st.just(len(levels)), st.integers(0, len(levels))))
        for depth in range(min(create, len(levels)) + 1):
            directory = "/".join([point.strip("/"), *levels[:depth]]).strip("/")
            if ".." in levels[:depth]:
                continue  # do not escape the tree
            add_limits(draw, files, directory)
    # The fixed paths.
    if draw(st.booleans()):
        files["sys/fs/cgroup/cgroup.controllers"] = b"cpu memory\n"
    add_limits(draw, files, "sys/fs/cgroup")
    add_limits(draw, files, "sys/fs/cgroup/cpu")
    add_limits(draw, files, "sys/fs/cgroup/memory")
    if draw(st.booleans()):
        files["proc/meminfo"] = b"MemTotal:       16315948 kB\n"
    return files


def add_limits(draw: st.DrawFn, files: Dict[str, object], directory: str) -> None:
    directory = os.path.normpath(directory) if directory else "."
    prefix = "" if directory == "." else f"{directory}/"
    files.setdefault(directory, "dir")
    for name, options in (
        ("cpu.max", CPU_MAX),
        ("cpu.cfs_quota_us", CFS_QUOTA),
        ("cpu.cfs_period_us", CFS_PERIOD),
        ("memory.max", MEMORY_MAX),
        ("memory.limit_in_bytes", MEMORY_V1),
    ):
        value = draw(content(options))
        if value is not None:
            files.setdefault(prefix + name, value)


def materialize(base: Path, files: Dict[str, object]) -> str:
    root = base / f"t{next(_counter)}"
    root.mkdir()
    for relative, value in sorted(files.items(), key=lambda item: item[0].count("/")):
        path = root / relative
        if value == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value)  # type: ignore[arg-type]
    return str(root)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cgroups")


physical_memory = st.one_of(
    st.none(), st.sampled_from([2**30, 2**33, 3 * 2**30, 10**12, 2**63 - 1])
)


# Each example writes a whole tree: half the profile's examples keep the suite fast.
@settings(max_examples=max(settings.default.max_examples // 2, 10))
@given(files=cgroup_trees(), physical=physical_memory)
def test_cgroup_limits_agree(
    parity: Parity, trees: Path, files: Dict[str, object], physical: int | None
) -> None:
    root = materialize(trees, files)
    cpu = parity.same("_cgroup_cpu_limit", root)
    assert cpu.ok and (cpu.value is None or isinstance(cpu.value, int)), cpu.describe()
    memory = parity.same("_cgroup_memory_limit", root, physical)
    assert memory.ok and (memory.value is None or memory.value > 0), memory.describe()


def test_cgroup_limits_of_the_real_system(parity: Parity) -> None:
    parity.same("_cgroup_cpu_limit", "/")
    parity.same("_cgroup_memory_limit", "/", None)
    parity.same("_cgroup_memory_limit", "/", 2**40)


def test_cgroup_limits_of_an_empty_root(parity: Parity, tmp_path: Path) -> None:
    parity.returns(None, "_cgroup_cpu_limit", str(tmp_path))
    parity.returns(None, "_cgroup_memory_limit", str(tmp_path), None)
    parity.returns(None, "_cgroup_memory_limit", str(tmp_path / "missing"), 2**30)

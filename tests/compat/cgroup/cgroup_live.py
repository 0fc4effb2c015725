"""Real cgroups for the live tests: find this process's hierarchy, create limited children.

Test infrastructure, independent of ``sky_rs``: the expected answers of the live tests come from
the limits written here and the limit files read here, never from the code under test.

Children are created *under this process's own cgroup* (on this sandbox the memory cgroup is
``/process_api/<id>``), named after the pid so parallel test workers never collide, and removed
again by :meth:`CgroupTree.cleanup`. The eperm suite imports this module too (the cgroup-files-
unreadable restriction needs a limited cgroup to hide).
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import re
from typing import Dict, List, Sequence, Tuple

V1_CPU_FILES = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
V1_MEMORY_FILE = "memory.limit_in_bytes"
V2_CPU_FILE = "cpu.max"
V2_MEMORY_FILE = "memory.max"
GIB = 1024**3
_COUNTER = itertools.count()


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    """Where one controller of this process lives."""

    controller: str  # "cpu" or "memory"
    version: int  # 1 or 2
    mount_point: str  # e.g. /sys/fs/cgroup/cpu
    directory: str  # this process's cgroup directory in that mount

    def levels(self, start: str | None = None) -> List[str]:
        """Directories from ``start`` (default: ours) up to and including the mount point."""
        current = os.path.normpath(start or self.directory)
        top = os.path.normpath(self.mount_point)
        levels = [current]
        while current != top:
            current = os.path.dirname(current)
            levels.append(current)
        return levels

    def limit_files(self) -> Tuple[str, ...]:
        if self.controller == "cpu":
            return V1_CPU_FILES if self.version == 1 else (V2_CPU_FILE,)
        return (V1_MEMORY_FILE,) if self.version == 1 else (V2_MEMORY_FILE,)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def find_hierarchy(controller: str) -> Hierarchy | None:
    """This process's hierarchy for ``controller`` (a v1 line wins over ``0::``), or None."""
    with open("/proc/self/cgroup") as handle:
        lines = [line.rstrip("\n").split(":", 2) for line in handle if line.count(":") >= 2]
    v1 = [path for _, controllers, path in lines if controller in controllers.split(",")]
    v2 = [path for hid, controllers, path in lines if hid == "0" and controllers == ""]
    version, cgroup_path = (1, v1[0]) if v1 else (2, v2[0]) if v2 else (0, "")
    if not version:
        return None
    best: Tuple[str, str] | None = None
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            if "-" not in fields[6:]:
                continue
            dash = fields.index("-", 6)
            fstype, options = fields[dash + 1], fields[dash + 3].split(",")
            if version == 1 and (fstype != "cgroup" or controller not in options):
                continue
            if version == 2 and fstype != "cgroup2":
                continue
            root, mount_point = _unescape(fields[3]), _unescape(fields[4])
            prefix = root.rstrip("/")
            if prefix and cgroup_path != prefix and not cgroup_path.startswith(prefix + "/"):
                continue
            if best is None or len(root) > len(best[0]):
                best = (root, mount_point)
    if best is None:
        return None
    relative = cgroup_path[len(best[0].rstrip("/")) :].strip("/")
    directory = os.path.join(best[1], relative) if relative else best[1]
    if not os.path.isdir(directory):
        return None
    return Hierarchy(controller, version, best[1], directory)


def v2_controllers(hierarchy: Hierarchy) -> List[str]:
    try:
        with open(os.path.join(hierarchy.directory, "cgroup.controllers")) as handle:
            return handle.read().split()
    except OSError:
        return []


def live_unavailable(controllers: Sequence[str], version: int | None = None) -> str | None:
    """Why real child cgroups of ``controllers`` cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return f"creating cgroups needs root (running as uid {os.geteuid()})"
    for controller in controllers:
        hierarchy = find_hierarchy(controller)
        if hierarchy is None:
            return f"this process has no cgroup hierarchy with the {controller} controller"
        if version is not None and hierarchy.version != version:
            return (
                f"the {controller} controller is on cgroup v{hierarchy.version} here, "
                f"not v{version}"
            )
        if hierarchy.version == 2 and controller not in v2_controllers(hierarchy):
            return f"host has no cgroup v2 {controller} controller"
        if not os.access(hierarchy.directory, os.W_OK):
            return f"{hierarchy.directory} is not writable (read-only cgroup file system?)"
        probe = os.path.join(hierarchy.directory, f"sky-rs-probe-{os.getpid()}-{next(_COUNTER)}")
        try:
            os.mkdir(probe)
        except OSError as exc:
            return f"cannot create a cgroup under {hierarchy.directory}: {exc.strerror}"
        os.rmdir(probe)
    return None


def v2_cpu_unavailable() -> str | None:
    """Why a live cgroup v2 CPU test cannot run here, or None."""
    hierarchy = find_hierarchy("cpu")
    if hierarchy is not None and hierarchy.version == 1:
        return "host has no cgroup v2 cpu controller (cpu is bound to the v1 hierarchy)"
    return live_unavailable(("cpu",), version=2)


class CgroupTree:
    """Nested child cgroups under this process's own, for one test; ``cleanup()`` removes them."""

    def __init__(self, label: str) -> None:
        self.label = f"sky-rs-{label}-{os.getpid()}-{next(_COUNTER)}"
        self.created: List[str] = []
        self.hierarchies: Dict[str, Hierarchy] = {}

    def hierarchy(self, controller: str) -> Hierarchy:
        if controller not in self.hierarchies:
            found = find_hierarchy(controller)
            if found is None:
                raise RuntimeError(f"no {controller} cgroup hierarchy for this process")
            self.hierarchies[controller] = found
        return self.hierarchies[controller]

    def base(self, controller: str) -> str:
        """The directory our tree hangs from: this process's cgroup, except on v2 when that
        one holds processes and so cannot delegate the controller (the no-internal-processes
        rule); then the mount root, which is exempt from it."""
        hierarchy = self.hierarchy(controller)
        if hierarchy.version == 1:
            return hierarchy.directory
        try:
            _enable_v2(hierarchy.directory, controller)
            return hierarchy.directory
        except OSError as exc:
            if exc.errno != errno.EBUSY or hierarchy.directory == hierarchy.mount_point:
                raise
        _enable_v2(hierarchy.mount_point, controller)
        return hierarchy.mount_point

    def make(self, controller: str, *names: str) -> str:
        """Create ``<base>/<label>/<names...>`` (each level once); returns the deepest."""
        version = self.hierarchy(controller).version
        directory = os.path.join(self.base(controller), self.label)
        chain = [directory] + [os.path.join(directory, *names[: i + 1]) for i in range(len(names))]
        for depth, level in enumerate(chain):
            if not os.path.isdir(level):
                os.mkdir(level)
                self.created.append(level)
                # Readable by the unprivileged children some tests run, whatever the umask.
                os.chmod(level, 0o755)
            if version == 2 and depth < len(chain) - 1:
                _enable_v2(level, controller)
        return chain[-1]

    def set_cpu(self, directory: str, quota: int, period: int = 100000) -> None:
        """A CFS quota (``-1``: none) on a directory made by :meth:`make`."""
        version = self.hierarchy("cpu").version
        if version == 1:
            _write(os.path.join(directory, "cpu.cfs_period_us"), str(period))
            _write(os.path.join(directory, "cpu.cfs_quota_us"), str(quota))
        else:
            text = "max" if quota < 0 else str(quota)
            _write(os.path.join(directory, V2_CPU_FILE), f"{text} {period}")

    def set_memory(self, directory: str, limit: int) -> None:
        version = self.hierarchy("memory").version
        name = V1_MEMORY_FILE if version == 1 else V2_MEMORY_FILE
        _write(os.path.join(directory, name), str(limit))

    def procs_file(self, directory: str) -> str:
        return os.path.join(directory, "cgroup.procs")

    def cleanup(self) -> List[str]:
        """Remove every created cgroup, deepest first; the ones that would not go."""
        left: List[str] = []
        for directory in sorted(self.created, key=len, reverse=True):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    _evict(directory)
                    try:
                        os.rmdir(directory)
                        continue
                    except OSError:
                        pass
                left.append(f"{directory}: {exc.strerror}")
        self.created.clear()
        return left


def _enable_v2(directory: str, controller: str) -> None:
    """Give ``directory``'s children the ``controller`` (its files appear in them)."""
    control = os.path.join(directory, "cgroup.subtree_control")
    if controller in _read(control).split():
        return
    _write(control, f"+{controller}")


def _evict(directory: str) -> None:
    """Move leftover processes (a child that outlived its test) to the parent cgroup."""
    parent = os.path.join(os.path.dirname(directory), "cgroup.procs")
    try:
        with open(os.path.join(directory, "cgroup.procs")) as handle:
            pids = handle.read().split()
    except OSError:
        return
    for pid in pids:
        try:
            _write(parent, pid)
        except OSError:
            pass


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def read_cpu_limit(hierarchy: Hierarchy, levels: Sequence[str]) -> int | None:
    """``floor(quota / period)`` of the smallest limit over ``levels``; None when none."""
    found: List[int] = []
    for level in levels:
        try:
            if hierarchy.version == 1:
                quota = int(_read(os.path.join(level, "cpu.cfs_quota_us")))
                period = int(_read(os.path.join(level, "cpu.cfs_period_us")))
            else:
                fields = _read(os.path.join(level, V2_CPU_FILE)).split()
                if fields[0] == "max":
                    continue
                quota, period = int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
        if quota > 0 and period > 0:
            found.append(quota // period)
    return min(found) if found else None


def read_memory_limit(
    hierarchy: Hierarchy, levels: Sequence[str], physical: int | None
) -> int | None:
    """The smallest memory limit over ``levels``; None when none. v1: a limit above
    ``physical`` is none (with ``physical`` unknown that rule cannot apply)."""
    found: List[int] = []
    for level in levels:
        try:
            text = _read(os.path.join(level, hierarchy.limit_files()[0])).strip()
            if text == "max":
                continue
            limit = int(text)
        except (OSError, ValueError):
            continue
        above_physical = physical is not None and limit > physical
        if limit <= 0 or (hierarchy.version == 1 and above_physical):
            continue
        found.append(limit)
    return min(found) if found else None


def physical_memory() -> int:
    """MemTotal in bytes (what sysinfo(2) reports as totalram * mem_unit)."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemTotal")


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()

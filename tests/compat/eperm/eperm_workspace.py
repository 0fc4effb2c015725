"""Where the EPERM suite's probes run: files, a zombie, broken package copies, a cgroup.

:class:`Workspace` holds what every scenario's child reads: a world-readable directory with the
probe, the files and directories the cases use, a zombie, copies of the package with a broken
native module, and a limited cgroup when one can be made. :meth:`Workspace.run` runs the probe
under a scenario (once) and returns its report; :meth:`Workspace.unavailable` says why this
environment cannot create a scenario's restriction.

Every child runs with its CPU affinity pinned to one CPU and a soft ``RLIMIT_NOFILE`` of 4096,
so that losing the affinity source (``sched_getaffinity`` denied: "no affinity limit") or the
rlimit source (``getrlimit`` denied: "1024") changes the answer and a build that ignored the
loss could not pass by accident.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import eperm_restrict
from eperm_contract import CgroupOracle
from eperm_scenarios import RESTRICTED_UID, Scenario, cases

import sky_rs

# The cgroup suite's helper for real cgroups (the runner stages the whole tests/ tree).
_CGROUP_SUITE = Path(__file__).resolve().parent.parent / "cgroup"
if str(_CGROUP_SUITE) not in sys.path:
    sys.path.append(str(_CGROUP_SUITE))
import cgroup_live  # noqa: E402

# Seconds; a child still running then has hung. Under emulation (an aarch64 image through qemu)
# every instruction is translated: the runner measures how much slower that is and says so in
# SKY_RS_MATRIX_EMULATION_FACTOR, and the limit grows by that factor.
EMULATION_FACTOR = max(1.0, float(os.environ.get("SKY_RS_MATRIX_EMULATION_FACTOR") or 1))
PROBE_TIMEOUT = 90.0 * EMULATION_FACTOR
NOFILE_SOFT = 4096
ENTRIES = 300  # files in the "entries" directory: 1500 fds per rsync, so the rlimit matters
LIMITED_CPU_QUOTA = (100000, 100000)  # one CPU
LIMITED_MEMORY = 1024**3
TAIL_TEXT = b"first\nsecond\r\nthird\n"
SECRET_TEXT = b"only root reads this\n"
_CAP_SETGID, _CAP_SETUID, _CAP_SYS_ADMIN = 6, 7, 21


# ------------------------------------------------------------------------------ capabilities


def _effective_capabilities() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def has_capability(bit: int) -> bool:
    return bool(_effective_capabilities() & (1 << bit))


def libseccomp_missing() -> str | None:
    try:
        eperm_restrict.load_libseccomp()
    except eperm_restrict.RestrictionError as exc:
        return str(exc)
    return seccomp_unloadable()


# A child loads an allow-everything filter (loading one cannot be undone in this process).
_LOAD_NOTHING = "import eperm_restrict; eperm_restrict.install_seccomp([])"
_seccomp_unloadable: List[str | None] = []


def seccomp_unloadable() -> str | None:
    """Why no seccomp filter can be loaded here, or None (asked of a child, once).

    qemu-user refuses its guest's filters (prctl(PR_SET_SECCOMP) is EINVAL: a guest's filter
    would judge the host's syscalls qemu makes for it), so in an emulated image the scenarios
    that deny syscalls themselves cannot be created; the container's own seccomp profile, which
    Docker loads for qemu, still applies (test_eperm_profile.py).
    """
    if not _seccomp_unloadable:
        env = {**os.environ, "PYTHONPATH": str(Path(eperm_restrict.__file__).resolve().parent)}
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _LOAD_NOTHING], env=env, capture_output=True, text=True,
                timeout=PROBE_TIMEOUT,
            )  # fmt: skip
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            why = (
                None
                if proc.returncode == 0
                else (lines[-1] if lines else f"exit {proc.returncode}")
            )
        except subprocess.TimeoutExpired:
            why = f"timed out after {PROBE_TIMEOUT:g} s"
        _seccomp_unloadable.append(
            None if why is None else f"no seccomp filter can be loaded here ({why})"
        )
    return _seccomp_unloadable[0]


# ------------------------------------------------------------------------------ std's statx


# The functions whose Rust side stats a path through std::fs::metadata (tail.rs, fds.rs is_dir).
STD_STAT_FUNCTIONS = ("read_last_n_lines", "get_max_workers_for_file_mounts")
_SYS_STATX = {"x86_64": 332, "aarch64": 291}.get(platform.machine())
_STATX_ALL = 0xFFF


def statx_denial_hidden_from_std() -> str | None:
    """Why Rust's std cannot see that statx is denied here, or None (it can, or it is not).

    std tells a seccomp denial from a file's own error by calling statx(0, NULL, 0, STATX_ALL,
    NULL): the kernel runs statx and answers EFAULT; anything else (a filter's EPERM) means
    "denied", and std falls back to stat. qemu-user checks the NULL path itself and answers
    EFAULT without asking the kernel, so under emulation std takes the filter's EPERM for the
    file's own and `std::fs::metadata` fails (on arm64 hardware the kernel's filter answers
    EPERM to the probe as on x86_64). Asked of the kernel (or qemu) here, never assumed.
    """
    if _SYS_STATX is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(256)
    at_fdcwd = -100
    if libc.syscall(_SYS_STATX, at_fdcwd, b"/", 0, _STATX_ALL, buffer) == 0:
        return None  # statx is not denied
    if ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS):
        return None
    denied = errno.errorcode[ctypes.get_errno()]
    if libc.syscall(_SYS_STATX, 0, None, 0, _STATX_ALL, None) == 0:
        return None
    if ctypes.get_errno() != errno.EFAULT:
        return None  # std sees the denial and falls back to stat
    return (
        f"statx is denied ({denied}) but statx(0, NULL, ...) answers EFAULT: the denial is "
        "hidden from Rust's std, which then reports it as the file's error instead of falling "
        "back to stat (qemu-user answers the NULL path itself; the kernel would say "
        f"{denied}): {', '.join(STD_STAT_FUNCTIONS)} cannot be judged here"
    )


# ------------------------------------------------------------------------------ workspace


class Workspace:
    """Files, processes and cgroups the probes of one test module share; ``close()`` ends them."""

    def __init__(self) -> None:
        # World-readable (mkdtemp makes 0700): the restricted user must reach all of it.
        self.root = tempfile.mkdtemp(prefix="sky-rs-eperm-")
        os.chmod(self.root, 0o755)
        self.bin = os.path.join(self.root, "bin")
        os.mkdir(self.bin)
        os.chmod(self.bin, 0o755)  # explicitly: the umask may be 077
        here = os.path.dirname(os.path.abspath(__file__))
        for name in ("eperm_probe.py", "eperm_restrict.py"):
            shutil.copyfile(os.path.join(here, name), os.path.join(self.bin, name))
            os.chmod(os.path.join(self.bin, name), 0o644)
        self.paths = self._make_files()
        self.contents = {
            "lines": {"tail": ["first\n", "second\n", "third"], "secret": ["only root reads this"]},
            "sha256": {"tail": hashlib.sha256(TAIL_TEXT).hexdigest()},
        }
        self.package_dir = os.path.dirname(os.path.abspath(sky_rs.__file__))
        self.native_copies: Dict[str, str] = {}
        # Apart from other test workers, and near the top: with bind() denied every port up
        # to 65535 is tried, twice per case.
        self.port = 60000 + os.getpid() % 5000
        with open("/proc/sys/kernel/pid_max") as handle:
            self.dead_pid = int(handle.read()) + 1  # never a live pid
        self.zombie = self._make_zombie()
        self.cgroups: cgroup_live.CgroupTree | None = None
        self.cgroup_dirs: Dict[str, str] = {}
        self.cgroup_error: str | None = None
        self.reports: Dict[str, Dict[str, Any]] = {}
        self.failures: Dict[str, str] = {}  # scenario -> why its probe failed (not re-run)

    def _make_files(self) -> Dict[str, str]:
        paths = {
            key: os.path.join(self.root, name)
            for key, name in (
                ("tail", "tail.txt"),
                ("missing", "missing.txt"),
                ("secret", "secret.txt"),
                ("entries", "entries"),
                ("locked", "locked"),
            )
        }
        with open(paths["tail"], "wb") as handle:
            handle.write(TAIL_TEXT)
        os.chmod(paths["tail"], 0o644)
        with open(paths["secret"], "wb") as handle:
            handle.write(SECRET_TEXT)
        os.chmod(paths["secret"], 0o600)
        os.mkdir(paths["entries"])
        os.chmod(paths["entries"], 0o755)
        for index in range(ENTRIES):
            open(os.path.join(paths["entries"], f"entry-{index:03d}"), "wb").close()
        os.mkdir(paths["locked"])
        os.chmod(paths["locked"], 0o700)
        for index in range(3):
            open(os.path.join(paths["locked"], f"entry-{index}"), "wb").close()
        return paths

    def _make_zombie(self) -> subprocess.Popen | None:  # type: ignore[type-arg]
        """A child that has exited and is not reaped yet (``Z`` in /proc/<pid>/stat)."""
        child = subprocess.Popen([sys.executable, "-c", ""])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{child.pid}/stat", "rb") as handle:
                    if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        return child
            except OSError:
                break
            time.sleep(0.01)
        child.wait()
        return None

    # ---------------------------------------------------------------- native copies

    def native_copy(self, kind: str) -> str:
        """A copy of the installed package whose native module is broken; its sys.path dir."""
        if kind not in self.native_copies:
            base = os.path.join(self.root, f"native-{kind}")
            os.mkdir(base)
            os.chmod(base, 0o755)
            target = os.path.join(base, "sky_rs")
            shutil.copytree(self.package_dir, target)
            natives = [name for name in os.listdir(target) if name.startswith("_native")]
            natives = [name for name in natives if name.endswith((".so", ".pyd"))]
            if not natives:
                raise RuntimeError(f"no _native*.so in the installed package {self.package_dir}")
            for name in natives:
                path = os.path.join(target, name)
                if kind == "corrupt":
                    with open(path, "wb") as handle:
                        handle.write(b"this is not an ELF shared object\n")
                    os.chmod(path, 0o644)
                else:
                    os.chmod(path, 0)
            for directory, _, files in os.walk(base):
                if directory != base:
                    os.chmod(directory, 0o755)
                for name in files:
                    if not name.startswith("_native"):
                        os.chmod(os.path.join(directory, name), 0o644)
            self.native_copies[kind] = base
        return self.native_copies[kind]

    # ---------------------------------------------------------------- cgroups

    def limited_cgroup(self) -> Dict[str, str]:
        """{controller: directory} of a cgroup limited to 1 CPU and 1 GiB (made once)."""
        if self.cgroup_error is not None:
            raise RuntimeError(self.cgroup_error)
        if not self.cgroup_dirs:
            self.cgroups = cgroup_live.CgroupTree("eperm")
            try:
                cpu = self.cgroups.make("cpu")
                self.cgroups.set_cpu(cpu, *LIMITED_CPU_QUOTA)
                memory = self.cgroups.make("memory")
                self.cgroups.set_memory(memory, LIMITED_MEMORY)
            except OSError as exc:
                self.cgroup_error = f"cannot make the limited cgroup: {exc}"
                raise RuntimeError(self.cgroup_error) from exc
            self.cgroup_dirs = {"cpu": cpu, "memory": memory}
        return self.cgroup_dirs

    def cgroup_limit_files(self) -> List[str]:
        """Every limit file the walk from the limited cgroup reads, both controllers."""
        assert self.cgroups is not None
        files: List[str] = []
        for controller, directory in self.cgroup_dirs.items():
            hierarchy = self.cgroups.hierarchy(controller)
            for level in hierarchy.levels(directory):
                for name in hierarchy.limit_files():
                    path = os.path.join(level, name)
                    if os.path.exists(path) and path not in files:
                        files.append(path)
        return files

    # ---------------------------------------------------------------- requirements

    def unavailable(self, scenario: Scenario) -> str | None:
        """Why this environment cannot create the scenario's restriction, or None."""
        if scenario.ambient:
            return None
        if scenario.denied:
            missing = libseccomp_missing()
            if missing:
                return missing
        if scenario.user and not (has_capability(_CAP_SETUID) and has_capability(_CAP_SETGID)):
            return f"switching to uid {RESTRICTED_UID} needs CAP_SETUID and CAP_SETGID"
        if self._needs_mount_namespace(scenario) and not has_capability(_CAP_SYS_ADMIN):
            why = (
                "hidepid"
                if scenario.hidepid
                else "hiding files"
                if scenario.hide
                else (f"exposing the interpreter to uid {RESTRICTED_UID}")
            )
            return f"{why} needs a mount namespace, and this process lacks CAP_SYS_ADMIN"
        if scenario.cgroup:
            reason = cgroup_live.live_unavailable(("cpu", "memory"))
            if reason:
                return reason
            try:
                self.limited_cgroup()
            except RuntimeError as exc:
                return str(exc)
        return None

    def _needs_mount_namespace(self, scenario: Scenario) -> bool:
        if scenario.hidepid or scenario.hide:
            return True
        return scenario.user and bool(
            eperm_restrict.blocked_directories(self.expose_paths(scenario), RESTRICTED_UID)
        )

    def expose_paths(self, scenario: Scenario) -> List[str]:
        """What the restricted user must reach: the interpreter, its libraries, the package."""
        paths = {
            sys.executable,
            os.path.realpath(sys.executable),
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sys.base_exec_prefix,
            os.path.dirname(self.package_dir),
            self.root,
        }
        paths.update(value for value in sysconfig.get_paths().values() if os.path.exists(value))
        return sorted(path for path in paths if os.path.exists(path))

    # ---------------------------------------------------------------- running

    def restriction(self, scenario: Scenario) -> eperm_restrict.Restriction:
        if scenario.ambient:
            return eperm_restrict.Restriction()
        hide: List[str] = []
        for item in scenario.hide:
            hide.extend(self.cgroup_limit_files() if item == "cgroup-limit-files" else [item])
        cpus = _own_cpus()
        hard = _hard_nofile()
        return eperm_restrict.Restriction(
            deny=list(scenario.deny),
            hidepid=scenario.hidepid,
            hide=hide,
            user=RESTRICTED_UID if scenario.user else None,
            expose=self.expose_paths(scenario) if scenario.user else [],
            join_cgroups=(
                sorted({os.path.join(d, "cgroup.procs") for d in self.cgroup_dirs.values()})
                if scenario.cgroup
                else []
            ),
            affinity=cpus[:1] if cpus else None,
            nofile=None
            if hard is None
            else (min(NOFILE_SOFT, hard) if hard >= 0 else NOFILE_SOFT, hard),
        )

    def plan(self, scenario: Scenario) -> Dict[str, Any]:
        pids = {"one": 1, "dead": self.dead_pid}
        if self.zombie is not None:
            pids["zombie"] = self.zombie.pid
        restriction = self.restriction(scenario)
        return {
            "pids": pids,
            "paths": self.paths,
            "files": restriction.hide,
            "cases": cases(
                self.port,
                zombie=self.zombie is not None,
                pid_namespace=scenario.hidepid and not scenario.ambient,
                user=scenario.user or (scenario.ambient and os.geteuid() != 0),
            ),
            "deny_in_process": [list(item) for item in scenario.deny_in_process],
            "block_native_in_sys_modules": scenario.native == "sys-modules",
            "cgroup_dirs": self.cgroup_dirs if scenario.cgroup else {},
        }

    def run(self, scenario: Scenario) -> Dict[str, Any]:
        """The probe's report under ``scenario`` (run once per workspace)."""
        if scenario.name in self.failures:
            raise ProbeFailed(self.failures[scenario.name])
        if scenario.name not in self.reports:
            try:
                self.reports[scenario.name] = self._run(scenario)
            except ProbeFailed as exc:
                self.failures[scenario.name] = str(exc)
                raise
        return self.reports[scenario.name]

    def _run(self, scenario: Scenario) -> Dict[str, Any]:
        plan = self.plan(scenario)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SKYPILOT_")
            and key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")
        }
        env["SKY_RS_PROBE_PLAN"] = json.dumps(plan)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if scenario.native in ("corrupt", "unreadable"):
            env["PYTHONPATH"] = self.native_copy(scenario.native)
        probe = os.path.join(self.bin, "eperm_probe.py")
        try:
            done = eperm_restrict.run_restricted(
                self.restriction(scenario),
                [sys.executable, probe],
                env=env,
                timeout=PROBE_TIMEOUT,
                helper=os.path.join(self.bin, "eperm_restrict.py"),
            )
        except subprocess.TimeoutExpired as exc:
            stderr = (exc.stderr or b"").decode(errors="replace")
            last = stderr.strip().splitlines()[-1:] or ["(before the first case)"]
            raise ProbeFailed(
                f"hung: the probe was still running after {PROBE_TIMEOUT:g} s; last: {last[0]}"
            ) from None
        stderr = done.stderr.decode(errors="replace")
        if done.returncode == eperm_restrict.SETUP_FAILED_EXIT:
            raise ProbeFailed(f"the restriction could not be applied: {stderr.strip()}")
        if done.returncode != 0:
            how = (
                f"died of signal {-done.returncode}"
                if done.returncode < 0
                else f"exited {done.returncode}"
            )
            raise ProbeFailed(f"the probe {how} (a crash is a failure):\n{stderr[-3000:]}")
        if "panicked at" in stderr:
            raise ProbeFailed(f"a Rust panic was printed:\n{stderr[-3000:]}")
        report: Dict[str, Any] = json.loads(done.stdout)
        report["plan"] = plan
        report["stderr"] = stderr
        return report

    def cgroup_oracle(self, scenario: Scenario) -> CgroupOracle:
        """The cgroup limits the restricted process must find, from what the test set up."""
        source = scenario.cgroup_source
        physical = cgroup_live.physical_memory()
        if source == "none":
            return CgroupOracle(None, None, None)
        if source in ("fixed", "fixed-v1"):
            return fixed_path_limits(physical, v1_only=source == "fixed-v1")
        start = self.cgroup_dirs if source == "limited" else {}
        cpu_limit: int | None = None
        memory: Tuple[int | None, int | None] = (None, None)
        cpu_hierarchy = cgroup_live.find_hierarchy("cpu")
        memory_hierarchy = cgroup_live.find_hierarchy("memory")
        fixed = fixed_path_limits(physical, v1_only=False)
        if cpu_hierarchy is None:
            cpu_limit = fixed.cpu
        else:
            levels = cpu_hierarchy.levels(start.get("cpu"))
            cpu_limit = cgroup_live.read_cpu_limit(cpu_hierarchy, levels)
        if memory_hierarchy is None:
            memory = (fixed.memory_if_physical_known, fixed.memory_if_physical_unknown)
        else:
            levels = memory_hierarchy.levels(start.get("memory"))
            memory = (
                cgroup_live.read_memory_limit(memory_hierarchy, levels, physical),
                cgroup_live.read_memory_limit(memory_hierarchy, levels, None),
            )
        return CgroupOracle(cpu_limit, memory[0], memory[1])

    def close(self) -> List[str]:
        """Reap the zombie, remove cgroups and files; what could not be removed."""
        problems: List[str] = []
        if self.zombie is not None:
            self.zombie.wait()
        if self.cgroups is not None:
            problems.extend(self.cgroups.cleanup())
        for base in self.native_copies.values():
            for directory, _, files in os.walk(base):
                for name in files:
                    os.chmod(os.path.join(directory, name), 0o644)
        shutil.rmtree(self.root, ignore_errors=True)
        return problems


class ProbeFailed(AssertionError):
    """The probe crashed, hung, panicked or could not be restricted."""


def _hard_nofile() -> int | None:
    """The hard RLIMIT_NOFILE; None where getrlimit itself is denied (a seccomp profile)."""
    import resource

    try:
        return int(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    except OSError:
        return None


def _own_cpus() -> List[int]:
    """This process's CPUs; empty where sched_getaffinity itself is denied."""
    try:
        return sorted(os.sched_getaffinity(0))
    except OSError:
        return []


def fixed_path_limits(physical: int, v1_only: bool) -> CgroupOracle:
    """The limits at the fixed paths, read the way the contract's fallback reads them."""
    base = "/sys/fs/cgroup"
    if not v1_only and os.path.exists(os.path.join(base, "cgroup.controllers")):
        hierarchy = cgroup_live.Hierarchy("cpu", 2, base, base)
        memory_hierarchy = cgroup_live.Hierarchy("memory", 2, base, base)
        cpu_levels = memory_levels = [base]
    else:
        hierarchy = cgroup_live.Hierarchy("cpu", 1, f"{base}/cpu", f"{base}/cpu")
        memory_hierarchy = cgroup_live.Hierarchy("memory", 1, f"{base}/memory", f"{base}/memory")
        cpu_levels, memory_levels = [f"{base}/cpu"], [f"{base}/memory"]
    return CgroupOracle(
        cgroup_live.read_cpu_limit(hierarchy, cpu_levels),
        cgroup_live.read_memory_limit(memory_hierarchy, memory_levels, physical),
        cgroup_live.read_memory_limit(memory_hierarchy, memory_levels, None),
    )

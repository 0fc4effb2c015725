"""The restrictions of the EPERM-degradation suite, and running the probe under each.

A :class:`Scenario` names one restriction (or a combination that proves a branch, e.g.
hidepid + a denied ``kill``). :class:`Workspace` holds what every scenario's child reads: a
world-readable directory with the probe, the files and directories the cases use, a zombie,
copies of the package with a broken native module, and a limited cgroup when one can be made.
:meth:`Workspace.run` runs the probe under a scenario and returns its report.

Every child runs with its CPU affinity pinned to one CPU and a soft ``RLIMIT_NOFILE`` of 4096,
so that losing the affinity source (``sched_getaffinity`` denied: "no affinity limit") or the
rlimit source (``getrlimit`` denied: "1024") changes the answer and a build that ignored the
loss could not pass by accident.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import eperm_restrict
import sky_rs
from eperm_contract import CgroupOracle

# The cgroup suite's helper for real cgroups (the runner stages the whole tests/ tree).
_CGROUP_SUITE = Path(__file__).resolve().parent.parent / "cgroup"
if str(_CGROUP_SUITE) not in sys.path:
    sys.path.append(str(_CGROUP_SUITE))
import cgroup_live  # noqa: E402

RESTRICTED_UID = 65534  # nobody
PROBE_TIMEOUT = 90.0  # seconds; a child still running then has hung
NOFILE_SOFT = 4096
ENTRIES = 300  # files in the "entries" directory: 1500 fds per rsync, so the rlimit matters
LIMITED_CPU_QUOTA = (100000, 100000)  # one CPU
LIMITED_MEMORY = 1024**3
# The syscalls the container profiles deny (matrix/src/sky_matrix/profiles.py), as groups.
PROFILE_GROUPS = ("sched_getaffinity", "sysinfo", "kill", "bind", "getrlimit", "statx")

_CAP_SETGID, _CAP_SETUID, _CAP_SYS_ADMIN = 6, 7, 21
TAIL_TEXT = b"first\nsecond\r\nthird\n"
SECRET_TEXT = b"only root reads this\n"


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    deny: Tuple[Tuple[str, str], ...] = ()  # installed before exec
    deny_in_process: Tuple[Tuple[str, str], ...] = ()  # installed by the probe after imports
    user: bool = False  # run as RESTRICTED_UID
    hidepid: bool = False
    hide: Tuple[str, ...] = ()  # paths, or "cgroup-limit-files" for every limit file walked
    cgroup: bool = False  # join the limited cgroup
    native: str = "loaded"  # loaded | corrupt | unreadable | sys-modules
    # Applied by the environment (a container profile), not by this suite: run plain.
    ambient: bool = False
    # Where the cgroup limits come from: own (this process's cgroup), none (unreadable),
    # fixed (resolution fails: the fixed paths), fixed-v1 (stat denied: cgroup.controllers
    # seems absent, so the v1 fixed paths), limited (the cgroup joined).
    cgroup_source: str = "own"

    @property
    def denied(self) -> Tuple[Tuple[str, str], ...]:
        return self.deny + self.deny_in_process


def _seccomp_scenarios() -> List[Scenario]:
    found: List[Scenario] = []
    for errno_name in eperm_restrict.ERRNO_NAMES:
        for group in ("sched_getaffinity", "sysinfo", "kill", "bind", "getrlimit", "statx"):
            found.append(
                Scenario(
                    f"seccomp-{group}-{errno_name}",
                    f"{'/'.join(eperm_restrict.SYSCALL_GROUPS[group])} denied with {errno_name}",
                    deny=((group, errno_name),),
                )
            )
        found.append(
            Scenario(
                f"seccomp-stat-{errno_name}",
                f"the stat family denied with {errno_name} (after the probe's imports)",
                deny_in_process=(("stat", errno_name),),
                cgroup_source="fixed-v1",
            )
        )
        found.append(
            Scenario(
                f"seccomp-openat-{errno_name}",
                f"openat/open denied with {errno_name} (after the probe's imports)",
                deny_in_process=(("openat", errno_name),),
                cgroup_source="none",
            )
        )
        found.append(
            Scenario(
                f"seccomp-profile-{errno_name}",
                f"everything the seccomp-{errno_name.lower()} container profile denies, at once",
                deny=tuple((group, errno_name) for group in PROFILE_GROUPS),
            )
        )
    return found


SCENARIOS: Dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in [
        Scenario("unrestricted", "no restriction: the baseline (fallback rate exactly 0)"),
        *_seccomp_scenarios(),
        Scenario("nonroot", f"uid {RESTRICTED_UID} instead of root", user=True),
        Scenario(
            "hidepid",
            f"/proc with hidepid=2 in a new PID + mount namespace, as uid {RESTRICTED_UID}",
            user=True,
            hidepid=True,
        ),
        Scenario(
            "hidepid-kill-EPERM",
            "hidepid=2 and kill denied with EPERM: every pid without a /proc entry is alive",
            user=True,
            hidepid=True,
            deny=(("kill", "EPERM"),),
        ),
        Scenario(
            "cgroup-limited",
            "in a cgroup limited to 1 CPU and 1 GiB (the control for the two below)",
            user=True,
            cgroup=True,
            cgroup_source="limited",
        ),
        Scenario(
            "cgroup-limit-files-unreadable",
            "in that cgroup, every limit file on the walk covered by an unreadable file",
            user=True,
            cgroup=True,
            hide=("cgroup-limit-files",),
            cgroup_source="none",
        ),
        Scenario(
            "proc-self-cgroup-unreadable",
            "in that cgroup, /proc/self/cgroup unreadable: resolution fails, fixed paths",
            user=True,
            cgroup=True,
            hide=("/proc/self/cgroup",),
            cgroup_source="fixed",
        ),
        Scenario(
            "no-physical-memory-source",
            "in that cgroup, sysinfo denied and /proc/meminfo unreadable: the limit alone",
            user=True,
            cgroup=True,
            deny=(("sysinfo", "EPERM"),),
            hide=("/proc/meminfo",),
            cgroup_source="limited",
        ),
        Scenario(
            "native-corrupt",
            "the native module is not an ELF file: the loader fails",
            native="corrupt",
        ),
        Scenario(
            "native-unreadable",
            f"the native module is mode 000, loaded by uid {RESTRICTED_UID}",
            native="unreadable",
            user=True,
        ),
        Scenario(
            "native-sys-modules",
            "sys.modules['sky_rs._native'] = None before the import",
            native="sys-modules",
        ),
    ]
}


# ------------------------------------------------------------------------------ the cases


def cases(port: int, zombie: bool, pid_namespace: bool, user: bool) -> List[Dict[str, Any]]:
    """Every function, with arguments that touch the restricted sources."""
    mounts_entries = {"mapping": {"src": {"path": "entries"}}}
    mounts_files = {"mapping": {"a": {"path": "tail"}, "b": {"path": "missing"}}}
    mounts_locked = {"mapping": {"src": {"path": "locked"}}}
    table: List[Dict[str, Any]] = [
        _case("read_last_n_lines", "tail", {"path": "tail"}, 2),
        _case("read_last_n_lines", "tail-n0", {"path": "tail"}, 0),
        _case("read_last_n_lines", "missing", {"path": "missing"}, 1),
        _case("read_last_n_lines", "secret", {"path": "secret"}, 1),
        _case("hash_file", "tail", {"path": "tail"}, "sha256"),
        _case("hash_file", "missing-unknown-alg", {"path": "missing"}, "no-such-hash"),
        _case("find_free_port", "high", port),
        _case("base36_encode", "ff", "ff", expect="73"),
        _case("format_float", "tie", 2.55, 1, expect="2.5"),
        _case("truncate_long_string", "words", "a b c d e f", 10, expect="a b c d e ..."),
        _case("get_cpu_count", "-"),
        _case("get_mem_size_gb", "-"),
        _case("get_parallel_threads", "none", None),
        _case("get_parallel_threads", "kubernetes", "Kubernetes"),
        _case("is_process_alive", "self", {"pid": "self"}),
        _case("is_process_alive", "init", {"pid": "one"}),
        _case("is_process_alive", "dead", {"pid": "dead"}),
        _case("get_max_workers_for_file_mounts", "entries", mounts_entries),
        _case("get_max_workers_for_file_mounts", "files", mounts_files, "kubernetes"),
        _case("get_max_workers_for_file_mounts", "locked", mounts_locked),
        _case("estimate_fd_for_directory", "entries", {"path": "entries"}),
        _case("estimate_fd_for_directory", "file", {"path": "tail"}),
        _case("estimate_fd_for_directory", "locked", {"path": "locked"}),
    ]
    if user:  # below 1024 only root may bind: the first port must be an unprivileged one
        table.append(_case("find_free_port", "privileged", 1000))
    if zombie and not pid_namespace:  # the host's zombie has no pid inside a new namespace
        table.append(_case("is_process_alive", "zombie", {"pid": "zombie"}))
    return table


def _case(function: str, label: str, *args: Any, expect: Any = None) -> Dict[str, Any]:
    case: Dict[str, Any] = {"id": f"{function}/{label}", "function": function, "args": list(args)}
    if expect is not None:
        case["expect"] = expect
    return case


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
    return None


# ------------------------------------------------------------------------------ workspace


class Workspace:
    """Files, processes and cgroups the probes of one test module share; ``close()`` ends them."""

    def __init__(self) -> None:
        # World-readable (mkdtemp makes 0700): the restricted user must reach all of it.
        self.root = tempfile.mkdtemp(prefix="sky-rs-eperm-")
        os.chmod(self.root, 0o755)
        self.bin = os.path.join(self.root, "bin")
        os.mkdir(self.bin, 0o755)
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
        os.mkdir(paths["entries"], 0o755)
        for index in range(ENTRIES):
            open(os.path.join(paths["entries"], f"entry-{index:03d}"), "wb").close()
        os.mkdir(paths["locked"], 0o700)
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
            os.mkdir(base, 0o755)
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
        cpus = sorted(os.sched_getaffinity(0))
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
            affinity=cpus[:1],
            nofile=(min(NOFILE_SOFT, hard) if hard >= 0 else NOFILE_SOFT, hard),
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


def _hard_nofile() -> int:
    import resource

    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[1])


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


# ------------------------------------------------------------------------------ observations


def restriction_problems(scenario: Scenario, report: Mapping[str, Any]) -> List[str]:
    """Ways the child was *not* restricted as the scenario says (a vacuous run)."""
    sources = report["sources"]
    problems: List[str] = []
    for group, errno_name in scenario.denied:
        code = int(getattr(errno, errno_name))
        observed = _observation(group, sources)
        if observed is None:
            continue  # not observable here (glibc without a statx wrapper)
        if observed.get("ok") or observed.get("errno") != code:
            problems.append(f"{group} should fail with {errno_name}; the probe saw {observed}")
    if scenario.user and sources["euid"] != RESTRICTED_UID:
        problems.append(f"the probe ran as uid {sources['euid']}, not {RESTRICTED_UID}")
    if scenario.hidepid:
        init = sources["pids"]["one"]
        if init["state"].get("ok") or init["kill0"].get("errno") != errno.EPERM:
            problems.append(f"pid 1 should be hidden and unsignalable (EPERM); saw {init}")
    for path, observed in sources["files"].items():
        if observed.get("ok") or observed.get("errno") != errno.EACCES:
            problems.append(f"{path} should be unreadable (EACCES); the probe saw {observed}")
    if scenario.cgroup and scenario.cgroup_source == "limited":
        text = sources.get("proc_self_cgroup", {})
        wanted = report["plan"]["cgroup_dirs"]
        if text.get("ok"):
            names = [os.path.basename(d) for d in wanted.values()]
            if not all(f"/{name}\n" in text["value"] for name in names):
                problems.append(f"the probe is not in the limited cgroup: {text['value']!r}")
    return problems


def _observation(group: str, sources: Mapping[str, Any]) -> Dict[str, Any] | None:
    if group == "sched_getaffinity":
        return sources["affinity"]
    if group == "sysinfo":
        return sources["sysinfo_total"]
    if group == "kill":
        return sources["pids"]["dead"]["kill0"]
    if group == "bind":
        return sources["bind"]
    if group == "getrlimit":
        return sources["nofile"]
    if group == "statx":
        return sources["statx"]
    if group == "stat":
        return sources["paths"]["tail"]["stat"]
    if group == "openat":
        return sources["paths"]["tail"]["open"]
    raise ValueError(group)

"""Run a command under chosen restrictions: seccomp, namespaces, hidden files, another user.

Two halves in one module:

- the test process describes a :class:`Restriction` and calls :func:`run_restricted`;
- the child side is this file run as a script (``python eperm_restrict.py SPEC -- ARGV``): it
  applies the restriction to itself, in the order below, and then ``exec``s ``ARGV``.

Choices, and why:

- **Seccomp through libseccomp, loaded with ctypes.** libseccomp is what runc, Docker and
  systemd use: it resolves syscall names for the running architecture, adds the architecture
  check and handles x32, which a hand-written BPF program would have to repeat. ctypes needs no
  compiler and no PyPI package (libseccomp's own Python bindings are built with Cython and are
  not published as wheels; ``pyseccomp`` is a thin ctypes wrapper with a single maintainer).
  ``libseccomp.so.2`` is installed wherever ``apt`` is (apt depends on it).
- **Files are made unreadable with bind mounts in a private mount namespace**, not Landlock:
  seccomp cannot filter by path; Landlock is an allow-list, so hiding one file among
  ``/proc/<pid>/*`` would mean listing every other path the interpreter touches. A mode-000
  file bind-mounted over the target gives ``EACCES`` to a non-root reader — the mechanism
  container runtimes use for their masked ``/proc`` paths.
- **hidepid** is a fresh ``proc`` mounted with ``hidepid=2`` in a new PID + mount namespace.
  PID 1 of that namespace stays a root process waiting for the command, so the command (run as
  another user) has a live process it can neither see in ``/proc`` nor signal (``EPERM``).
- **Another user** also needs the interpreter: a directory on the way to it that the user may
  not traverse (``/root`` is ``0700`` where pyenv lives; ``mkdtemp`` makes ``0700`` directories)
  is covered, in the mount namespace only, by a ``0755`` tmpfs into which the needed entries are
  bind-mounted back.

Order on the child side: namespaces, mounts, cgroup, affinity, rlimit, user, seccomp, exec.
Seccomp comes last so the set-up itself is never denied. A filter installed before ``exec``
covers the whole new interpreter, so only syscalls the interpreter can start without are
denied that way (:data:`EXEC_SAFE_GROUPS`); ``openat`` and the ``stat`` family are denied from
inside the probe instead, after its imports (:func:`install_seccomp`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import json
import os
import signal
import stat
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

# The syscalls behind each function's sources, by the name the suite uses for the group.
# glibc's getrlimit() is the prlimit64 syscall; stat()/fstat() are newfstatat; Rust's std tries
# statx first and falls back to the stat family, so every one of them is in the group.
SYSCALL_GROUPS: Dict[str, Tuple[str, ...]] = {
    "sched_getaffinity": ("sched_getaffinity",),
    "sysinfo": ("sysinfo",),
    "kill": ("kill",),
    "bind": ("bind",),
    "getrlimit": ("getrlimit", "prlimit64"),
    # statx alone: what the container profiles deny (they cannot deny newfstatat).
    "statx": ("statx",),
    "stat": ("statx", "newfstatat", "stat", "lstat", "fstat", "fstatat64", "stat64", "lstat64"),
    "openat": ("openat", "open", "openat2", "creat"),
}
# Groups an interpreter starts without (the loader opens and stats its libraries).
EXEC_SAFE_GROUPS = frozenset({"sched_getaffinity", "sysinfo", "kill", "bind", "getrlimit", "statx"})
ERRNO_NAMES = ("EPERM", "ENOSYS")

SETUP_FAILED_EXIT = 97  # the child could not apply its restriction; stderr says why

# libseccomp's constants (seccomp.h, stable since 2.2).
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
_SCMP_FLTATR_CTL_TSYNC = 4

# <sched.h> and <sys/mount.h>
_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1


class RestrictionError(RuntimeError):
    """A restriction could not be applied (not: the restricted command failed)."""


# ------------------------------------------------------------------------------ seccomp


def errno_value(name: str) -> int:
    if name not in ERRNO_NAMES:
        raise ValueError(f"deny with one of {ERRNO_NAMES}, not {name!r}")
    return int(getattr(errno, name))


def expand_groups(deny: Sequence[Tuple[str, str]]) -> List[Tuple[str, int]]:
    """``[(group, 'EPERM')]`` -> ``[(syscall, errno)]`` for every syscall of each group."""
    rules: List[Tuple[str, int]] = []
    for group, errno_name in deny:
        if group not in SYSCALL_GROUPS:
            raise ValueError(
                f"unknown syscall group {group!r}; choose from {sorted(SYSCALL_GROUPS)}"
            )
        rules.extend((syscall, errno_value(errno_name)) for syscall in SYSCALL_GROUPS[group])
    return rules


def load_libseccomp() -> ctypes.CDLL:
    """libseccomp, or :class:`RestrictionError` saying it is missing."""
    candidates = [ctypes.util.find_library("seccomp"), "libseccomp.so.2"]
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        # seccomp_rule_add is variadic; with arg_cnt 0 no variadic argument follows.
        lib.seccomp_rule_add.restype = ctypes.c_int
        lib.seccomp_rule_add.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
        ]
        lib.seccomp_attr_set.restype = ctypes.c_int
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_load.restype = ctypes.c_int
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        return lib
    raise RestrictionError("libseccomp.so.2 is not installed (Debian: apt-get install libseccomp2)")


def install_seccomp(rules: Sequence[Tuple[str, int]], lib: ctypes.CDLL | None = None) -> List[str]:
    """Deny each ``(syscall, errno)`` for this process and all its threads; allow the rest.

    Sets ``no_new_privs`` (libseccomp's default), so an unprivileged process may call it.
    Returns the syscalls this architecture has (names it lacks, e.g. ``stat`` on arm64, are
    skipped). Must be called after everything that opens files has been loaded.
    """
    lib = lib or load_libseccomp()
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise RestrictionError("seccomp_init failed")
    installed: List[str] = []
    try:
        # Rust may answer on another thread (GIL released); the filter must cover it too.
        code = lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_TSYNC, 1)
        if code < 0:
            raise RestrictionError(f"seccomp_attr_set(TSYNC): {os.strerror(-code)}")
        for syscall, err in rules:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:  # not a syscall of this architecture
                continue
            code = lib.seccomp_rule_add(ctx, _SCMP_ACT_ERRNO | (err & 0xFFFF), number, 0)
            if code < 0:
                raise RestrictionError(f"seccomp_rule_add({syscall}): {os.strerror(-code)}")
            installed.append(syscall)
        code = lib.seccomp_load(ctx)
        if code < 0:
            raise RestrictionError(f"seccomp_load: {os.strerror(-code)}")
    finally:
        lib.seccomp_release(ctx)
    return installed


# ------------------------------------------------------------------------------ the spec


@dataclasses.dataclass
class Restriction:
    """What the child applies to itself before ``exec``. Every field is optional."""

    # (group, 'EPERM' | 'ENOSYS'), installed before exec: EXEC_SAFE_GROUPS only.
    deny: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    hidepid: bool = False  # new PID + mount namespace, /proc with hidepid=2
    # Paths covered by an unreadable file in a new mount namespace. "/proc/self/X" means the
    # command's own /proc entry (the pid that execs it).
    hide: List[str] = dataclasses.field(default_factory=list)
    user: int | None = None  # uid = gid to switch to (65534: nobody)
    # Paths the user must reach (interpreter, package, data); see the module doc.
    expose: List[str] = dataclasses.field(default_factory=list)
    join_cgroups: List[str] = dataclasses.field(default_factory=list)  # cgroup.procs files
    affinity: List[int] | None = None
    nofile: Tuple[int, int] | None = None  # RLIMIT_NOFILE (soft, hard)

    def needs_mount_namespace(self) -> bool:
        if self.hidepid or self.hide:
            return True
        return self.user is not None and bool(blocked_directories(self.expose, self.user))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Restriction:
        data = json.loads(text)
        data["deny"] = [tuple(item) for item in data["deny"]]
        if data["nofile"] is not None:
            data["nofile"] = tuple(data["nofile"])
        return cls(**data)


def run_restricted(
    restriction: Restriction,
    argv: Sequence[str],
    env: Dict[str, str],
    timeout: float,
    python: str = sys.executable,
    helper: str = __file__,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run ``argv`` under ``restriction``; raise ``subprocess.TimeoutExpired`` on a hang.

    ``helper`` is this file (or a copy of it), which the child runs before ``exec``."""
    for group, errno_name in restriction.deny:
        errno_value(errno_name)
        if group not in EXEC_SAFE_GROUPS:
            raise ValueError(f"{group} cannot be denied before exec; deny it in-process")
    command = [python, os.path.abspath(helper), restriction.to_json(), "--", *argv]
    return subprocess.run(command, env=env, capture_output=True, timeout=timeout)


# ------------------------------------------------------------------------------ child side


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise RestrictionError(f"{what}: {os.strerror(code)}")


def _mount(
    libc: ctypes.CDLL,
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    _check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {source} on {target} ({fstype})",
    )


def blocked_directories(paths: Sequence[str], uid: int) -> Dict[str, List[str]]:
    """Directories on the way to ``paths`` that ``uid`` may not traverse -> needed entries.

    Ordered top-down (a dict keeps insertion order), so a blocked directory inside another
    one is handled after it.
    """
    blocked: Dict[str, List[str]] = {}
    for path in sorted({os.path.realpath(p) for p in paths}):
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts)):
            directory = "/" + "/".join(parts[:depth])
            info = os.stat(directory)
            if info.st_uid == uid:
                allowed = bool(info.st_mode & stat.S_IXUSR)
            else:
                allowed = bool(info.st_mode & stat.S_IXOTH)
            if not allowed:
                entries = blocked.setdefault(directory, [])
                if parts[depth] not in entries:
                    entries.append(parts[depth])
    return dict(
        sorted(blocked.items(), key=lambda item: item[0].count("/") if item[0] != "/" else 0)
    )


def _expose(libc: ctypes.CDLL, paths: Sequence[str], uid: int) -> None:
    """Cover each blocked directory with a 0755 tmpfs holding binds of the needed entries."""
    for directory, entries in blocked_directories(paths, uid).items():
        # O_PATH descriptors keep the originals reachable once the tmpfs hides them.
        handles = {entry: os.open(os.path.join(directory, entry), os.O_PATH) for entry in entries}
        is_dir = {entry: stat.S_ISDIR(os.fstat(fd).st_mode) for entry, fd in handles.items()}
        _mount(libc, "tmpfs", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755")
        for entry, fd in handles.items():
            target = os.path.join(directory, entry)
            if is_dir[entry]:
                os.mkdir(target)
            else:
                open(target, "wb").close()
            _mount(libc, f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC)
            os.close(fd)


def _hide(libc: ctypes.CDLL, paths: Sequence[str]) -> None:
    """Bind a mode-000 empty file over each path (``/proc/self/...`` -> this pid)."""
    cover = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
    fd, cover_path = _make_cover(cover)
    try:
        for path in paths:
            if path.startswith("/proc/self/"):
                path = f"/proc/{os.getpid()}/" + path[len("/proc/self/") :]
            _mount(libc, cover_path, path, None, _MS_BIND)
    finally:
        os.close(fd)
        os.unlink(cover_path)  # the mounts keep the inode


def _make_cover(directory: str) -> Tuple[int, str]:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="sky-rs-unreadable-", dir=directory)
    os.fchmod(fd, 0)
    return fd, path


def _wait_and_exit(pid: int) -> None:
    """Reap ``pid`` (and, as a PID namespace's init, any orphan); exit with its status."""
    while True:
        try:
            waited, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(SETUP_FAILED_EXIT)
        if waited == pid:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.WEXITSTATUS(status))


def _apply(restriction: Restriction) -> None:
    libc = _libc() if restriction.needs_mount_namespace() else None
    if libc is not None:
        flags = _CLONE_NEWNS | (_CLONE_NEWPID if restriction.hidepid else 0)
        _check(libc.unshare(flags), "unshare")
        # Nothing mounted from here on may reach the host's namespace.
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        if restriction.hidepid:
            # The first child is PID 1 of the new namespace; the caller waits for it.
            child = os.fork()
            if child:
                _wait_and_exit(child)
            # If the caller is killed (a hang's timeout), PID 1 dies and takes the namespace.
            _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
            _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "hidepid=2")
            # PID 1 stays a root process, alive and hidden from the command.
            command = os.fork()
            if command:
                _wait_and_exit(command)
        if restriction.hide:
            _hide(libc, restriction.hide)
        if restriction.user is not None and restriction.expose:
            _expose(libc, restriction.expose, restriction.user)
    for procs in restriction.join_cgroups:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    # Best effort: these only make a lost source visible in the answer. Where the environment
    # already denies them (a container's seccomp profile denies prlimit64), the probe observes
    # the denial itself and the expected answers follow from that.
    if restriction.affinity is not None:
        try:
            os.sched_setaffinity(0, restriction.affinity)
        except OSError as exc:
            sys.stderr.write(f"eperm_restrict: affinity not pinned: {exc}\n")
    if restriction.nofile is not None:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, restriction.nofile)
        except OSError as exc:
            sys.stderr.write(f"eperm_restrict: RLIMIT_NOFILE not set: {exc}\n")
    if restriction.user is not None:
        os.setgroups([])
        os.setgid(restriction.user)
        os.setuid(restriction.user)
        for path in restriction.expose:
            if not os.access(path, os.R_OK):
                raise RestrictionError(f"uid {restriction.user} cannot read {path}")
    if restriction.deny:
        install_seccomp(expand_groups(restriction.deny))


def main(args: Sequence[str]) -> None:
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: eperm_restrict.py SPEC_JSON -- ARGV...\n")
        os._exit(2)
    restriction = Restriction.from_json(args[0])
    argv = list(args[2:])
    try:
        _apply(restriction)
    except (RestrictionError, OSError) as exc:
        sys.stderr.write(f"eperm_restrict: cannot apply the restriction: {exc}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED_EXIT)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

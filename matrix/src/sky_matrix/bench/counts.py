"""Deterministic figures beside the times: system calls and CPU instructions per call.

Each (case, backend) runs in a fresh child interpreter, twice:

- under `strace -f` the child calls the function `CALLS_STRACE` times between two
  marker system calls (a `stat` of a path that does not exist); the system calls
  between the markers, divided by the calls, are the figure;
- under `valgrind --tool=callgrind --toggle-collect=starmap_next` the child makes
  a first call, then `CALLS_CALLGRIND` calls through `itertools.starmap`, so only
  the instructions executed inside those calls are counted (user space, the
  interpreter's share included): the same count on a loaded or a quiet machine.

Instruction counts depend on the interpreter build, glibc and the CPU's
dispatch (memcpy variants, SHA extensions), so the baseline is keyed by what it
measured (`environment_key`). `--check` compares like with like: the probe
always runs under the interpreter the baseline was recorded with (the pyenv
CPython 3.11.7 the tests session uses, found by `baseline_python`), and a
machine whose key is not in the baseline fails the check with the command that
records one; it never passes silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

CALLS_STRACE = 20
CALLS_CALLGRIND = 200
INSTRUCTION_TOLERANCE = 0.05  # a regression above 5 % fails --check
BASELINE_PATH = Path(__file__).with_name("counts_baseline.json")
BASELINE_PYTHON_VERSION = "3.11.7"
MARK_BEGIN = "/nonexistent-sky-bench-mark-begin"
NO_FLOOR_EXIT_STATUS = 3  # the probe's exit status when the wheel has no `_noop`
NO_FLOOR_REASON = "skipped: the wheel was built without the bench-floor cargo feature"
MARK_END = "/nonexistent-sky-bench-mark-end"
TAIL_LINES = 100
TAIL_FILE_LINES = 2000
TAIL_LINE = b"x" * 44 + b"\n"  # ~45-byte lines, as in issue 16

# (case id, function, argument expression): evaluated in the child with `tail`
# bound to the input file. `noop` is the floor of a call: a C builtin
# (`len('')`) called the same way, the bare cost of the interpreter's call path.
# `native_noop` is `_native._noop()`, a PyO3 function that does nothing: the floor
# of the pure functions. Only a wheel built with the `bench-floor` cargo feature
# has it; for any other the case is skipped, with that reason.
CASES: Tuple[Tuple[str, str, str], ...] = (
    ("noop/len('')", "noop", "('',)"),
    ("noop/_native._noop()", "native_noop", "()"),
    ("get_cpu_count", "get_cpu_count", "()"),
    ("get_mem_size_gb", "get_mem_size_gb", "()"),
    ("read_last_n_lines/n=100", "read_last_n_lines", "(tail, 100)"),
    ("base36_encode/64 hex", "base36_encode", "('f' * 64,)"),
    ("format_float/3.14159,2", "format_float", "(3.14159, 2)"),
    ("truncate_long_string/200,end", "truncate_long_string", "('a b ' * 50, 20)"),
    ("hash_file/1KiB,sha256", "hash_file", "(small, 'sha256')"),
    ("is_process_alive/own pid", "is_process_alive", "(os.getpid(),)"),
    ("find_free_port/start=20000", "find_free_port", "(20000,)"),
    ("get_parallel_threads/None", "get_parallel_threads", "(None,)"),
    ("estimate_fd_for_directory/100-entries", "estimate_fd_for_directory", "(tree,)"),
    (
        "get_max_workers_for_file_mounts/dir of 100 + file + URL",
        "get_max_workers_for_file_mounts",
        "({'/mnt/dir': tree, '/mnt/file': small, '/mnt/bucket': 's3://bucket/x'},)",
    ),
)
TREE_ENTRIES = 100
SMALL_CASES = ("get_cpu_count", "read_last_n_lines/n=100", "base36_encode/64 hex")

_PROBE = (
    r"""
import os, sys
from collections import deque
from itertools import repeat, starmap
case_fn, backend, argexpr, mode, calls, tail, small, tree = sys.argv[1:9]
calls = int(calls)
if case_fn == "noop":
    fn = len
elif case_fn == "native_noop":
    from sky_rs import _native
    fn = getattr(_native, "_noop", None)
    if fn is None:
        raise SystemExit(NO_FLOOR_EXIT)
else:
    import sky_rs
    if backend == "rust":
        fn = getattr(sky_rs, case_fn)
        if type(fn).__name__ != "builtin_function_or_method":
            raise SystemExit("the native module is not active: " + repr(fn))
    else:
        import sky_rs.fallback
        fn = getattr(sky_rs.fallback, case_fn)
args = eval(argexpr, {"os": os, "tail": tail, "small": small, "tree": tree})
fn(*args)
fn(*args)
def mark(path):
    try:
        os.stat(path)
    except OSError:
        pass
if mode == "strace":
    mark(MARK_BEGIN)
    deque(starmap(fn, repeat(args, calls)), maxlen=0)
    mark(MARK_END)
else:
    deque(starmap(fn, repeat(args, calls)), maxlen=0)
""".replace("MARK_BEGIN", repr(MARK_BEGIN))
    .replace("MARK_END", repr(MARK_END))
    .replace("NO_FLOOR_EXIT", str(NO_FLOOR_EXIT_STATUS))
)


class CountError(Exception):
    """A figure could not be measured; the message says why."""


class _Skipped(Exception):
    """A case this wheel cannot run (the message is the reason)."""


def environment_key(python: str) -> str:
    """What instruction counts depend on: interpreter, libc, machine."""
    out = subprocess.run(
        [
            python,
            "-c",
            "import platform, sys; print(platform.python_implementation(), "
            "platform.python_version(), sys.platform, platform.machine(), "
            "*platform.libc_ver())",
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return "-".join(out.split())


def baseline_python() -> Optional[str]:
    """The pyenv CPython the baseline was recorded with, if this machine has it."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidate = Path(root) / "versions" / BASELINE_PYTHON_VERSION / "bin" / "python3"
    return str(candidate) if candidate.exists() else None


def _child_env(sky_rs_path: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYPILOT_")}
    env["PYTHONPATH"] = sky_rs_path
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


def _inputs(workdir: Path) -> Tuple[str, str, str]:
    tail = workdir / "tail.txt"
    tail.write_bytes(TAIL_LINE * TAIL_FILE_LINES)
    small = workdir / "small.bin"
    small.write_bytes(bytes(range(256)) * 4)
    tree = workdir / "tree"
    tree.mkdir()
    for index in range(TREE_ENTRIES):
        (tree / f"f{index:03d}").write_bytes(b"x")
    return str(tail), str(small), str(tree)


def _probe_cmd(python: str, case: Tuple[str, str, str], backend: str, mode: str,
               calls: int, files: Tuple[str, str, str]) -> List[str]:  # fmt: skip
    return [python, "-S", "-c", _PROBE, case[1], backend, case[2], mode, str(calls), *files]


# The cgroup cases read /proc/self/mountinfo, and the kernel hands it out a page per read(2):
# every running container adds mount lines (its root, its network namespace), hence read
# calls and parsing instructions. The probe runs where those mounts are detached, in a mount
# namespace of its own, so the figures measure the code and not what else the host runs.
ENGINE_MOUNTS = ("/var/lib/docker/", "/run/docker/", "/var/lib/containerd/", "/run/containerd/",
                 "/run/netns/")  # fmt: skip
_DETACH_ENGINE_MOUNTS = (
    'awk -v prefixes="$0" \'BEGIN { n = split(prefixes, p, " ") }'
    " { for (i = 1; i <= n; i++) if (index($5, p[i]) == 1) print $5 }' /proc/self/mountinfo"
    ' | sort -r | while read -r m; do umount -l "$(printf \'%b\' "$m")" 2>/dev/null; done;'
    ' exec "$@"'
)


def isolated(cmd: List[str], prefixes: Sequence[str] = ENGINE_MOUNTS) -> List[str]:
    """`cmd` in a private mount namespace without the container engines' mounts (root only:
    elsewhere as it is, and the host's containers may then show in the cgroup cases)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return cmd
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", _DETACH_ENGINE_MOUNTS, " ".join(prefixes), *cmd,
    ]  # fmt: skip


def _syscalls(python: str, case, backend, files, env, workdir: Path) -> float:
    out = workdir / "strace.txt"
    cmd = ["strace", "-f", "-qq", "-o", str(out)]
    cmd = isolated(cmd + _probe_cmd(python, case, backend, "strace", CALLS_STRACE, files))
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode == NO_FLOOR_EXIT_STATUS and case[1] == "native_noop":
        raise _Skipped(NO_FLOOR_REASON)
    if done.returncode != 0:
        raise CountError(f"strace {case[0]} {backend}: {done.stderr.decode()[-400:]}")
    inside = False
    count = 0
    for line in out.read_text(errors="replace").splitlines():
        if MARK_BEGIN in line:
            inside = True
            continue
        if MARK_END in line:
            break
        if inside and not line.split(maxsplit=1)[-1].startswith(("+++", "---")):
            if "resumed>" not in line:
                count += 1
    return count / CALLS_STRACE


def _instructions(python: str, case, backend, files, env, workdir: Path) -> float:
    out = workdir / "callgrind.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--toggle-collect=starmap_next",
        f"--callgrind-out-file={out}",
    ]
    cmd = isolated(cmd + _probe_cmd(python, case, backend, "callgrind", CALLS_CALLGRIND, files))
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = done.stderr.decode(errors="replace")
    found = re.search(r"Collected : (\d+)", text)
    if done.returncode != 0 or not found:
        raise CountError(f"callgrind {case[0]} {backend}: {text[-400:]}")
    return int(found.group(1)) / CALLS_CALLGRIND


def measure(
    python: str,
    sky_rs_path: str,
    only: Sequence[str] = (),
    backends: Sequence[str] = ("rust", "python"),
) -> Dict[str, Any]:
    """Figures per case id and backend: {"syscalls": .., "instructions": ..}."""
    for tool in ("strace", "valgrind"):
        if shutil.which(tool) is None:
            raise CountError(f"{tool} is not on PATH (apt-get install -y {tool})")
    env = _child_env(sky_rs_path)
    figures: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sky-bench-counts-") as tmp:
        workdir = Path(tmp)
        files = _inputs(workdir)
        for case in CASES:
            if only and case[0] not in only:
                continue
            wanted = ("python",) if case[1] == "noop" else backends
            if case[1] == "native_noop":
                wanted = ("rust",)
            for backend in wanted:
                try:
                    syscalls = _syscalls(python, case, backend, files, env, workdir)
                except _Skipped as skipped:
                    figures.setdefault(case[0], {})[backend] = {"skipped": str(skipped)}
                    continue
                figures.setdefault(case[0], {})[backend] = {
                    "syscalls": syscalls,
                    "instructions": round(
                        _instructions(python, case, backend, files, env, workdir)
                    ),
                }
    return figures


def compare(baseline: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """Regressions: instructions more than 5 % above, or any more system calls."""
    problems = []
    for case_id, backends in current.items():
        for backend, figures in backends.items():
            if backend != "rust" or "skipped" in figures:
                continue  # the Python reference is the yardstick, not the product
            base = baseline.get(case_id, {}).get(backend)
            if base is None:
                problems.append(f"{case_id} [{backend}]: not in the baseline")
                continue
            if figures["syscalls"] > base["syscalls"]:
                problems.append(
                    f"{case_id} [{backend}]: {figures['syscalls']:g} system calls per call, "
                    f"baseline {base['syscalls']:g}"
                )
            limit = base["instructions"] * (1 + INSTRUCTION_TOLERANCE)
            if figures["instructions"] > limit:
                problems.append(
                    f"{case_id} [{backend}]: {figures['instructions']:,} instructions per call, "
                    f"baseline {base['instructions']:,} (+"
                    f"{figures['instructions'] / base['instructions'] - 1:.1%}, limit +5 %)"
                )
    return problems


def load_baseline(path: Path = BASELINE_PATH) -> Dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def sky_rs_location() -> str:
    """The directory holding the `sky_rs` package this interpreter imports."""
    import sky_rs

    return str(Path(sky_rs.__file__).resolve().parent.parent)


def table(figures: Dict[str, Any]) -> str:
    lines = [
        "| case | Rust syscalls/call | Python syscalls/call | Rust instructions/call | "
        "Python instructions/call |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for case_id, backends in figures.items():
        rust = backends.get("rust", {})
        py = backends.get("python", {})

        def cell(d: Dict[str, Any], key: str) -> str:
            if "skipped" in d:
                return d["skipped"] if key == "syscalls" else ""
            return "" if key not in d else f"{d[key]:,g}" if key == "syscalls" else f"{d[key]:,}"

        lines.append(
            f"| {case_id} | {cell(rust, 'syscalls')} | {cell(py, 'syscalls')} | "
            f"{cell(rust, 'instructions')} | {cell(py, 'instructions')} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m sky_matrix.bench.counts [--check | --record] [--small]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="sky-rs-bench-counts")
    parser.add_argument("--check", action="store_true", help="compare with the baseline")
    parser.add_argument("--record", action="store_true", help="write this key's baseline")
    parser.add_argument("--small", action="store_true", help="the tests session's case set")
    parser.add_argument("--python", help="probe interpreter (default: pyenv CPython 3.11.7)")
    parser.add_argument("--baseline", default=str(BASELINE_PATH))
    args = parser.parse_args(argv)
    python = args.python or baseline_python()
    if python is None:
        print(
            f"sky-rs-bench: the baseline interpreter (pyenv CPython {BASELINE_PYTHON_VERSION}) "
            "is missing: `pyenv install 3.11.7`, or --python to record another key",
            file=sys.stderr,
        )
        return 2
    key = environment_key(python)
    only = SMALL_CASES if args.small else ()
    try:
        # --check compares the Rust backend only: the Python reference is not measured.
        backends = ("rust",) if args.check else ("rust", "python")
        figures = measure(python, sky_rs_location(), only, backends)
    except CountError as exc:
        print(f"sky-rs-bench: {exc}", file=sys.stderr)
        return 2
    print(f"environment: {key}")
    print(table(figures))
    path = Path(args.baseline)
    baselines = load_baseline(path)
    if args.record:
        measured = {
            case_id: backends
            for case_id, backends in figures.items()
            if not all("skipped" in entry for entry in backends.values())
        }
        baselines.setdefault(key, {}).update(measured)
        path.write_text(json.dumps(baselines, indent=1, sort_keys=True) + "\n")
        print(f"recorded {path} [{key}]")
        return 0
    if args.check:
        if key not in baselines:
            print(
                f"sky-rs-bench: FAIL: no baseline for {key} in {path}: record one on main "
                "with `python -m sky_matrix.bench.counts --record`",
                file=sys.stderr,
            )
            return 1
        problems = compare(baselines[key], figures)
        for problem in problems:
            print(f"REGRESSION {problem}", file=sys.stderr)
        print("counts check: " + ("FAIL" if problems else "pass"))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Many short-lived processes, each ending while native calls are in flight.

A crash at interpreter exit, in a fork child or on Ctrl-C shows in a small
fraction of processes, so one process proves nothing: this runs N of them,
several at a time, and counts every abnormal end. With N exits a fault that
hits a fraction p of them goes unseen with probability (1 - p) ** N; the
default N (`exits_for`) makes that at most 1 % for p = 0.5 %.

Three scenarios, each a child script:

- ``exit``: daemon threads call native functions in a loop; the main thread
  calls ``sys.exit(0)`` while they are inside them (workloads below).
- ``fork``: threads call native functions while the main thread forks; each
  child calls all twelve functions and exits 0 (a lock held across fork()
  hangs it).
- ``sigint``: SIGINT arrives while the main thread is inside a long native
  call; ``KeyboardInterrupt`` must reach Python. Each child takes
  ``SIGNALS_PER_CHILD`` signals in turn, each a trial of its own (a signal
  that is lost hangs the child, one that crashes it ends it): N trials take
  N / SIGNALS_PER_CHILD children, and the same power to see a fault.

Every child is forked from a zygote (`Zygote`): an interpreter that has
imported the standard library modules `import sky_rs` uses, and not sky_rs.
The child then runs its script as `python -c` would, in a fresh ``__main__``:
it imports sky_rs, loading the native module for the first time in that
process, makes its calls, and ends through a full interpreter exit (or its
signal). The interpreter's start and those imports, the same in every child
and not under test, were two thirds of a child's CPU time (~50 ms here); the
scenarios keep the rest short (1 MiB inputs, exits within a few of the
threads' loops) so the matrix spends its time on exits, not on hashing.

Run as a script for a measurement outside pytest::

    python exit_stress.py --scenario exit --workload hash --exits 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, NoReturn, Optional, Sequence, Tuple

# What each daemon thread of the ``exit`` scenario calls in its loop. ``hash``
# spends most of a call in Python code the native function calls back
# (`hashlib.new`, `FileDigest`), where a thread that wants the GIL back during
# finalization used to crash the exit; ``tail`` and ``cgroup`` are the other
# functions that release the GIL; ``mixed`` runs both kinds.
WORKLOADS: Dict[str, str] = {
    "hash": """
        native.hash_file(small, "sha512")
        native.hash_file(small, "md5")
        native.hash_file(big, "sha256")
    """,
    "tail": """
        native.read_last_n_lines(sparse, 100)
    """,
    "cgroup": """
        native.get_cpu_count()
        native.get_mem_size_gb()
        native.get_parallel_threads(None)
    """,
    # What the stability suite runs: both kinds of call back into Python.
    "mixed": """
        native.hash_file(small, "sha512")
        native.get_cpu_count()
        native.hash_file(big, "sha256")
        native.get_mem_size_gb()
    """,
}

EXIT_SCRIPT = """
import sys, threading, time
import sky_rs
native = sky_rs._native
small, big, sparse = sys.argv[1], sys.argv[2], sys.argv[3]
# The exit comes once every thread is running, into its first calls or past
# them (not still waking from a barrier's lock: a thread woken there after
# finalization crashes CPython 3.10 on its own, which is not what this measures).
looping = [threading.Event() for _ in range({threads})]

def hammer(ready):
    ready.set()
    while True:
{body}

for ready in looping:
    threading.Thread(target=hammer, args=(ready,), daemon=True).start()
for ready in looping:
    ready.wait()
time.sleep({linger})
sys.exit(0)
"""

FORK_SCRIPT = """
import os, sys, threading, warnings
# Hand the GIL over as often as possible: the fork then lands inside the
# threads' first calls, where one-time objects are being made (a cell left
# "being made" in the child made its first call hang for ever).
sys.setswitchinterval(1e-6)
import sky_rs
native = sky_rs._native
small, big, sparse = sys.argv[1], sys.argv[2], sys.argv[3]
directory = os.path.dirname(small)
stop = threading.Event()

def hammer():
    while not stop.is_set():
        native.hash_file(big, "sha256")
        native.read_last_n_lines(small, 50)
        native.get_cpu_count()
        native.estimate_fd_for_directory(directory)

threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
for thread in threads:
    thread.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
    pid = os.fork()
if pid == 0:
    code = 1
    try:
        native.read_last_n_lines(small, 3)
        native.hash_file(small, "sha256").hexdigest()
        native.base36_encode("ff")
        native.format_float(2.5, 1)
        native.truncate_long_string("a b c d e f", 5)
        native.get_cpu_count()
        native.get_mem_size_gb()
        native.get_parallel_threads(None)
        native.is_process_alive(os.getpid())
        native.get_max_workers_for_file_mounts({})
        native.estimate_fd_for_directory(directory)
        native.find_free_port(42000)
        code = 0
    finally:
        os._exit(code)
# The fork has landed; the threads' further calls would only burn CPU while
# the child runs. They end inside a call or between calls: the exit below
# still meets them in flight.
stop.set()
_, status = os.waitpid(pid, 0)
sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 3)
"""

SIGINT_SCRIPT = """
import os, signal, sys, threading
import sky_rs
native = sky_rs._native
big = sys.argv[2]
# The precondition, asserted rather than assumed: a caller that ignores SIGINT
# (nohup, `trap '' INT`) would make this test about the caller.
if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
    print("SIGINT is not Python's default handler here", flush=True)
    sys.exit(4)
for delay in {delays}:
    try:
        # Started inside the try: a loaded host may deliver the signal at once.
        threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        while True:
            native.hash_file(big, "sha512")
    except KeyboardInterrupt:
        pass
sys.exit(0)
"""

# The control: the same child with no sky_rs at all. Every call becomes pure
# Python that releases the GIL in I/O and hashing, as the native calls do. Some
# interpreters crash at exit on their own when daemon threads wait for the GIL
# (CPython 3.10.13 here: a thread woken after finalization reads the freed
# interpreter; seen with no extension loaded), so abnormal ends of the real
# run count against sky_rs only beyond what the control shows.
NATIVE_IMPORT = "import sky_rs\nnative = sky_rs._native\n"
CONTROL_IMPORT = """import hashlib, os, sys as _sys

class _Digest:
    def __init__(self, h):
        self._h = h

    def hexdigest(self):
        return self._h.hexdigest()

def _io(*args, **kwargs):
    path = next((a for a in args if isinstance(a, str) and os.path.isfile(a)), _sys.argv[1])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - (1 << 20)))
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return _Digest(h)

class _Control:
    def __getattr__(self, name):
        return _io

native = _Control()
"""

# What a zygote imports before its first fork (see `Zygote` and the module docstring).
PRELOAD_SCRIPT = """
import sys
before = set(sys.modules)
import sky_rs
print("\\n".join(sorted(
    name for name in set(sys.modules) - before if name.split(".")[0] != "sky_rs"
)))
"""

# One zygote: reads a job (JSON) a line, forks, writes back the child's pid and
# then its wait status; the child leaves `serve` and becomes the job's script.
ZYGOTE_SCRIPT = """
import json, os, sys, types
for name in sys.argv[1:]:
    try:
        __import__(name)
    except Exception:
        pass  # a module that imports only inside sky_rs's context loads in the child
# What the zygote holds now stays out of the children's garbage collections:
# they would write to every page of it, which fork() shares until written.
import gc
getattr(gc, "freeze", lambda: None)()

def serve():
    while True:
        line = sys.stdin.readline()
        if not line:
            os._exit(0)
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return job
        os.write(1, b"%d\\n" % pid)
        _, status = os.waitpid(pid, 0)
        os.write(1, b"%d\\n" % status)

job = serve()
# The child: a session of its own (a hung child is killed with its own
# children), its own standard streams, and the script as `python -c` runs it.
os.setsid()
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(target, fd)
    os.close(target)
os.close(null)
sys.argv = ["-c"] + job["argv"]
main = types.ModuleType("__main__")
main.__builtins__ = __builtins__
sys.modules["__main__"] = main
del job["stdout"], job["stderr"]
exec(compile(job.pop("script"), "<string>", "exec"), main.__dict__)
"""


SCENARIOS = ("exit", "fork", "sigint")
# Signals one ``sigint`` child takes, one after another (see the module docstring).
SIGNALS_PER_CHILD = 5
# A child lives well under a second; on a host loaded far beyond its cores it
# can take tens of seconds. Past this it is hung (a deadlock at exit or fork).
CHILD_TIMEOUT_S = 300.0
STOP_AFTER = 10


def exits_for(rate: float = 0.005, confidence: float = 0.99) -> int:
    """Exits needed to see a fault of this per-exit rate with this probability."""
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - rate))


def child_script(
    scenario: str, workload: str = "hash", index: int = 0, control: bool = False
) -> str:
    script = _scenario_script(scenario, workload, index)
    if control:
        assert NATIVE_IMPORT in script
        script = script.replace(NATIVE_IMPORT, CONTROL_IMPORT)
    return script


def _scenario_script(scenario: str, workload: str, index: int) -> str:
    if scenario == "exit":
        body = textwrap.indent(textwrap.dedent(WORKLOADS[workload]).strip(), " " * 8)
        # Exits at spread-out moments of the threads' loops (a loop is ~2-3 ms
        # here: 1 MiB hashed, four threads on two cores).
        linger = 0.002 + (index % 7) * 0.001
        return EXIT_SCRIPT.format(threads=4, body=body, linger=linger)
    if scenario == "fork":
        return FORK_SCRIPT
    if scenario == "sigint":
        # 2-10 ms: one to five of the 1 MiB sha512 calls (~2 ms each) before it.
        delays = [0.002 + ((index + k) % 5) * 0.002 for k in range(SIGNALS_PER_CHILD)]
        return SIGINT_SCRIPT.format(delays=delays)
    raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")


@dataclass
class Inputs:
    """The files the children read: small, 1 MiB, and a 10 GiB sparse one."""

    directory: Path
    small: Path = field(init=False)
    big: Path = field(init=False)
    sparse: Path = field(init=False)

    def __post_init__(self) -> None:
        self.small = self.directory / "small.bin"
        self.small.write_bytes(b"line of text\n" * 64)
        self.big = self.directory / "big.bin"
        self.big.write_bytes(os.urandom(1 << 20))
        self.sparse = self.directory / "sparse.log"
        with self.sparse.open("wb") as handle:
            handle.truncate(10 << 30)
            handle.seek((10 << 30) - 4096)
            handle.write(b"tail line\n" * 400)

    def argv(self) -> List[str]:
        return [str(self.small), str(self.big), str(self.sparse)]


@dataclass
class StressResult:
    scenario: str
    workload: Optional[str]
    python: str
    exits: int
    abnormal: int
    seconds: float
    returncodes: Dict[str, int]
    first_failure: Optional[str]

    @property
    def trials(self) -> int:
        """Trials the children made in all."""
        return self.exits * trials_per_child(self.scenario)

    @property
    def rate(self) -> float:
        return self.abnormal / self.exits if self.exits else 0.0

    def to_json(self) -> Dict[str, object]:
        return {**asdict(self), "trials": self.trials, "rate": self.rate}

    def summary(self) -> str:
        what = self.scenario if self.workload is None else f"{self.scenario}/{self.workload}"
        trials = f" ({self.trials} signals)" if self.trials != self.exits else ""
        return (
            f"{what}: {self.abnormal} abnormal of {self.exits}{trials} "
            f"({100 * self.rate:.2f} %) in {self.seconds:.0f} s, return codes {self.returncodes}"
        )


def trials_per_child(scenario: str) -> int:
    """Trials one child of `scenario` makes: an exit or a fork is once per process."""
    return SIGNALS_PER_CHILD if scenario == "sigint" else 1


def excess_p_value(abnormal: int, exits: int, control_abnormal: int, control_exits: int) -> float:
    """One-sided Fisher exact test: the chance of at least `abnormal` of the
    `abnormal + control_abnormal` abnormal ends falling in the real run if both
    runs had the same rate (small: sky_rs adds abnormal ends of its own)."""
    total, bad = exits + control_exits, abnormal + control_abnormal
    denominator = math.comb(total, exits)
    tail = sum(
        math.comb(bad, k) * math.comb(total - bad, exits - k)
        for k in range(abnormal, min(bad, exits) + 1)
    )
    return tail / denominator


EXCESS_P = 0.01


def verdict(result: StressResult, control: Optional[StressResult]) -> Optional[str]:
    """None when the run is clean, or no worse than the interpreter alone (the
    control, run only when the real run had abnormal ends); else why not."""
    if result.abnormal == 0:
        return None
    if control is None or control.abnormal == 0:
        alone = "" if control is None else f"; the interpreter alone: {control.summary()}"
        return f"{result.summary()}{alone}\nfirst:\n{result.first_failure}"
    p = excess_p_value(result.abnormal, result.exits, control.abnormal, control.exits)
    if p < EXCESS_P:
        return (
            f"{result.summary()}: more than the interpreter alone ({control.summary()},"
            f" p = {p:.2g})\nfirst:\n{result.first_failure}"
        )
    return None


def _reset_signals() -> None:
    # Children start with default dispositions whatever the caller ignored
    # (a backgrounded shell ignores SIGINT, and an ignored signal is inherited).
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)


def preloaded_modules(python: str) -> List[str]:
    """The modules `import sky_rs` brings in under `python`, but for sky_rs's own."""
    listed = subprocess.run(
        [python, "-c", PRELOAD_SCRIPT],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        preexec_fn=_reset_signals,
    )
    if listed.returncode != 0:
        raise RuntimeError(f"{python}: import sky_rs failed\n{listed.stderr[-3000:]}")
    return listed.stdout.split()


def _returncode(status: int) -> int:
    """A wait status as subprocess reports it (os.waitstatus_to_exitcode is 3.9+)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class ZygoteGone(RuntimeError):
    """The zygote ended; it never runs sky_rs, so that is the runner's fault."""


class Zygote:
    """One interpreter forking the children, one at a time (ZYGOTE_SCRIPT)."""

    FORK_TIMEOUT_S = 60.0

    def __init__(self, python: str, preload: Sequence[str], scratch: Path, number: int) -> None:
        self._scratch = scratch
        self._number = number
        self._log = scratch / f"zygote-{number}.stderr"
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [python, "-c", ZYGOTE_SCRIPT, *preload],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=scratch,
                preexec_fn=_reset_signals,
                start_new_session=True,
            )
        self._pending = b""

    def run(self, script: str, argv: Sequence[str], timeout_s: float) -> Tuple[int, str, str, bool]:
        """Fork a child that runs `script` with `argv`: its return code, output, error
        output, and whether it hung (then it was killed after `timeout_s`)."""
        out = self._scratch / f"child-{self._number}.stdout"
        err = self._scratch / f"child-{self._number}.stderr"
        job = {"script": script, "argv": list(argv), "stdout": str(out), "stderr": str(err)}
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(job).encode() + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            self._gone()
        pid = self._reply(self.FORK_TIMEOUT_S)
        if pid is None:
            self._gone()
        status = self._reply(timeout_s)
        hung = status is None
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            status = self._reply(self.FORK_TIMEOUT_S)
            if status is None:
                self._gone()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # whatever it left behind
        stdout = out.read_text(errors="replace") if out.exists() else ""
        stderr = err.read_text(errors="replace") if err.exists() else ""
        return _returncode(status), stdout, stderr, hung

    def _reply(self, timeout_s: float) -> Optional[int]:
        """The zygote's next line (a pid, then its wait status), or None after `timeout_s`."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                self._gone()
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return int(line)

    def _gone(self) -> NoReturn:
        self._proc.kill()
        self._proc.wait()
        raise ZygoteGone(
            f"the zygote ended (return code {self._proc.returncode}):\n"
            f"{self._log.read_text(errors='replace')[-3000:]}"
        )

    def close(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=self.FORK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def run(
    scenario: str,
    trials: int,
    *,
    workload: str = "hash",
    python: str = sys.executable,
    parallel: Optional[int] = None,
    timeout_s: float = CHILD_TIMEOUT_S,
    inputs: Optional[Inputs] = None,
    progress: bool = False,
    stop_after: int = STOP_AFTER,
    control: bool = False,
) -> StressResult:
    """Run children of `scenario` making `trials` trials in all (one per child
    but for ``sigint``: `trials_per_child`), `parallel` at a time; count abnormal ends.

    After `stop_after` abnormal ends the rest are not started (the verdict is
    known, and each hang costs `timeout_s`); `exits` then says how many ran.
    """
    parallel = parallel or os.cpu_count() or 1
    exits = math.ceil(trials / trials_per_child(scenario))
    with tempfile.TemporaryDirectory(prefix="sky-rs-exit-stress-") as scratch:
        inputs = inputs or Inputs(Path(scratch))
        argv_tail = inputs.argv()
        codes: Dict[str, int] = {}
        first_failure: List[str] = []
        started = time.monotonic()

        def one(index: int) -> int:
            script = child_script(scenario, workload, index, control=control)
            zygote = zygotes.get()
            try:
                returncode, stdout, stderr, hung = zygote.run(script, argv_tail, timeout_s)
            finally:
                zygotes.put(zygote)
            if hung:
                if not first_failure:
                    first_failure.append(f"hung for {timeout_s} s\n{stderr[-3000:]}")
                return -9999
            if returncode != 0 and not first_failure:
                first_failure.append(
                    f"exit {returncode}\nstdout: {stdout[-500:]}\nstderr: {stderr[-3000:]}"
                )
            return returncode

        done = 0
        failed = 0
        stop = threading.Event()

        def guarded(index: int) -> Optional[int]:
            return None if stop.is_set() else one(index)

        preload = preloaded_modules(python)
        zygotes: queue.Queue[Zygote] = queue.Queue()
        # Closed after the pool has finished (and if a later zygote fails to start).
        with contextlib.ExitStack() as cleanup, ThreadPoolExecutor(parallel) as pool:
            for number in range(parallel):
                zygote = Zygote(python, preload, Path(scratch), number)
                cleanup.callback(zygote.close)
                zygotes.put(zygote)
            for code in pool.map(guarded, range(exits)):
                if code is None:
                    continue
                codes[str(code)] = codes.get(str(code), 0) + 1
                done += 1
                if code != 0:
                    failed += 1
                    if failed >= stop_after:
                        stop.set()
                if progress and done % 200 == 0:
                    print(f"  {done}/{exits} exits", file=sys.stderr, flush=True)
        exits = done
        abnormal = exits - codes.get("0", 0)
        return StressResult(
            scenario=scenario,
            workload=workload if scenario == "exit" else None,
            python=python,
            exits=exits,
            abnormal=abnormal,
            seconds=round(time.monotonic() - started, 1),
            returncodes=dict(sorted(codes.items())),
            first_failure=first_failure[0] if first_failure else None,
        )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="exit")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="hash")
    parser.add_argument(
        "--exits", type=int, default=exits_for(), help="trials (sigint: signals) in all"
    )
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--parallel", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--control", action="store_true", help="the same children with no sky_rs at all"
    )
    args = parser.parse_args(argv)
    result = run(
        args.scenario,
        args.exits,
        workload=args.workload,
        python=args.python,
        parallel=args.parallel,
        progress=True,
        control=args.control,
    )
    print(f"{args.python}: {result.summary()}")
    if result.first_failure:
        print(result.first_failure)
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 1 if result.abnormal else 0


if __name__ == "__main__":
    sys.exit(main())

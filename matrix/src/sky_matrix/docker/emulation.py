"""Running another architecture's containers through qemu, and how much slower they run.

The kernel hands a foreign executable to the interpreter its binfmt_misc entry names;
qemu-user-static registers `qemu-aarch64` (with the F flag: the interpreter is opened at
registration, so it works inside containers too). With it, `docker import` of an arm64 root file
system runs arm64 containers on an x86_64 host.

`ensure_emulation` checks the entry and, when the runner is root and apt-get can install the
packages, makes it: mounts binfmt_misc when /proc/sys/fs/binfmt_misc is empty, installs
qemu-user-static, binfmt-support and arch-test, and proves it with `arch-test <arch>`. Anything
else is a reason (`no arm64 emulation (...)`) naming the command that would enable it.

`measure_factor` times one CPU-bound workload in the same interpreter version natively and under
emulation: the factor the cells' time limits are scaled by (measured per run, never assumed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from sky_matrix.config import architectures
from sky_matrix.core.text import last_lines
from sky_matrix.docker import containers

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = ("qemu-user-static", "binfmt-support", "arch-test")
_APT_TIMEOUT = 1800.0
_CHECK_TIMEOUT = 300.0

Log = Callable[[str], None]
# Runs argv to its end: (exit code, output); never raises.
Runner = Callable[[Sequence[str], float], Tuple[int, str]]


def run_command(argv: Sequence[str], timeout: float) -> Tuple[int, str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout,
            stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} timed out after {timeout:.0f}s"
    except OSError as exc:
        return 127, f"{argv[0]} could not run: {exc}"
    return proc.returncode, proc.stdout + proc.stderr


def registered(architecture: str, binfmt_dir: Path = BINFMT_DIR) -> bool:
    """qemu's binfmt entry for `architecture` exists and is enabled."""
    entry = binfmt_dir / architectures.get(architecture).binfmt_entry
    try:
        first = entry.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    except OSError:
        return False
    return first == ["enabled"]


def enable_command(architecture: str, binfmt_dir: Path = BINFMT_DIR) -> str:
    """The shell command, run as root, that gives this host `architecture`'s emulation."""
    debian = architectures.get(architecture).debian
    return (
        f"mountpoint -q {binfmt_dir} || mount -t binfmt_misc binfmt_misc {binfmt_dir};"
        f" apt-get install -y {' '.join(PACKAGES)} && arch-test {debian}"
    )


def no_emulation(architecture: str, why: str, binfmt_dir: Path = BINFMT_DIR) -> str:
    """The reason an emulated platform's cells are skipped with."""
    debian = architectures.get(architecture).debian
    return f"no {debian} emulation ({why}; as root: {enable_command(architecture, binfmt_dir)})"


def unusable(
    architecture: str, binfmt_dir: Path = BINFMT_DIR, is_root: Optional[bool] = None
) -> Optional[str]:
    """Why `architecture` cannot run here and the runner cannot make it (known before any
    set-up: not registered and not root), else None."""
    if architecture == architectures.host_architecture() or registered(architecture, binfmt_dir):
        return None
    root = os.geteuid() == 0 if is_root is None else is_root
    if root:
        return None  # ensure_emulation will try
    entry = architectures.get(architecture).binfmt_entry
    return no_emulation(architecture, f"no {binfmt_dir / entry} and not root", binfmt_dir)


def ensure_emulation(
    architecture: str,
    *,
    log: Log,
    binfmt_dir: Path = BINFMT_DIR,
    is_root: Optional[bool] = None,
    run: Runner = run_command,
    have: Callable[[str], Optional[str]] = shutil.which,
) -> Optional[str]:
    """None when `architecture`'s executables run here (made so when root), else the reason."""
    if architecture == architectures.host_architecture():
        return None
    arch = architectures.get(architecture)
    if registered(architecture, binfmt_dir):
        return None
    why_not = unusable(architecture, binfmt_dir, is_root)
    if why_not:
        return why_not

    def failed(step: str, output: str) -> str:
        return no_emulation(architecture, f"{step}: {last_lines(output)}", binfmt_dir)

    if not (binfmt_dir / "register").exists():
        log(f"emulation: mounting binfmt_misc on {binfmt_dir}")
        code, out = run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)], 60)
        if code != 0:
            return failed("mounting binfmt_misc failed", out)
    if have("apt-get") is None:
        return no_emulation(architecture, "no apt-get to install qemu-user-static", binfmt_dir)
    log(f"emulation: apt-get install -y {' '.join(PACKAGES)}")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    code, out = run(install, _APT_TIMEOUT)
    if code != 0:  # stale package lists: once more after an update
        run(["apt-get", "update"], _APT_TIMEOUT)
        code, out = run(install, _APT_TIMEOUT)
        if code != 0:
            return failed(f"apt-get install {' '.join(PACKAGES)} failed", out)
    if not registered(architecture, binfmt_dir) and have("update-binfmts"):
        # binfmt-support imports qemu's formats when installed; enable it if it did not
        run(["update-binfmts", "--enable", arch.binfmt_entry], 120)
    if not registered(architecture, binfmt_dir):
        entry = binfmt_dir / arch.binfmt_entry
        return no_emulation(architecture, f"{entry} is still missing after the install", binfmt_dir)
    code, out = run(["arch-test", arch.debian], _CHECK_TIMEOUT)
    if code != 0:
        return failed(f"arch-test {arch.debian} failed", out)
    log(f"emulation: {arch.binfmt_entry} registered; arch-test: {last_lines(out)}")
    return None


# --------------------------------------------------------------------------- the factor

# Pure-Python, CPU-bound, deterministic: what dominates the suites' run time under qemu (every
# interpreter instruction is translated). Prints its own elapsed seconds, so the container's
# start and the interpreter's start-up are not in the figure. No hashing: OpenSSL's sha256 runs
# on qemu's helpers for the arm64 SHA instructions, and a workload with 20 MB of it measured
# 11.5x where the loop alone measured 20-24x. Sized to take ~0.4 s natively (~10 s emulated):
# at a fifth of that, two runs' factors differed by a fifth.
WORKLOAD = """
import time
t = time.perf_counter()
acc = 0
table = {}
for i in range(2000000):
    acc = (acc * 31 + i) % 1000003
    if i % 100 == 0:
        key = str(acc)
        table[key] = table.get(key, 0) + len(key)
print("elapsed %.6f" % (time.perf_counter() - t))
"""
REPEATS = 3  # each side's figure is its fastest of these (the least disturbed by other load)
_ELAPSED = re.compile(r"^elapsed ([0-9.]+)$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Factor:
    """How many times slower `architecture` runs the workload than this host natively."""

    architecture: str
    factor: float
    native_seconds: float  # the fastest of REPEATS native runs
    emulated_seconds: float  # the fastest of REPEATS emulated runs
    native: str  # what ran natively: image tag and interpreter
    emulated: str
    method: str

    def to_json(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def parse_elapsed(output: str) -> Optional[float]:
    match = _ELAPSED.search(output)
    return float(match.group(1)) if match else None


def factor_from(native: Sequence[float], emulated: Sequence[float]) -> float:
    """Emulated over native, each its fastest run; at least 1."""
    if not native or not emulated or min(native) <= 0:
        raise ValueError("no timings to compare")
    return max(1.0, min(emulated) / min(native))


def measure_factor(
    architecture: str,
    emulated: Tuple[str, str],
    native: Optional[Tuple[str, str]],
    *,
    log: Log,
    run: Optional[Runner] = None,
) -> Factor:
    """Time WORKLOAD REPEATS times on each side, alternating: `emulated` is (image tag,
    interpreter path) of the foreign image; `native` the same for a native image with the same
    interpreter version, or None for this runner's own interpreter. RuntimeError when a run
    fails."""
    timings: Dict[str, List[float]] = {"native": [], "emulated": []}

    def argv(side: Optional[Tuple[str, str]]) -> List[str]:
        if side is None:
            return [sys.executable, "-I", "-c", WORKLOAD]
        tag, python = side
        return containers.run_argv(tag, [python, "-I", "-c", WORKLOAD], remove=True)

    for _ in range(REPEATS):
        for key, side in (("native", native), ("emulated", emulated)):
            command = argv(side)
            if run is not None:
                code, out = run(command, 1800.0)
            elif side is None:
                code, out = run_command(command, 1800.0)
            else:
                code, out = containers.run(command, 1800.0)
            elapsed = parse_elapsed(out)
            if code != 0 or elapsed is None:
                raise RuntimeError(f"the {key} timing run failed (exit {code}): {last_lines(out)}")
            timings[key].append(elapsed)
    factor = factor_from(timings["native"], timings["emulated"])
    where = native[0] + " " + native[1] if native else f"the runner's {sys.executable}"
    result = Factor(
        architecture=architecture,
        factor=round(factor, 2),
        native_seconds=round(min(timings["native"]), 4),
        emulated_seconds=round(min(timings["emulated"]), 4),
        native=where,
        emulated=f"{emulated[0]} {emulated[1]}",
        method=(
            f"a pure-Python CPU-bound loop (emulation.WORKLOAD), timed inside the"
            f" interpreter, {REPEATS} runs a side alternating, fastest of each"
        ),
    )
    log(
        f"emulation: {architecture} runs {result.factor:g}x slower"
        f" ({result.emulated_seconds:g} s against {result.native_seconds:g} s natively)"
    )
    return result


def scaled(seconds: float, factor: float) -> float:
    """A time limit for an emulated cell: the native one times the measured factor."""
    return round(seconds * max(1.0, factor), 1)


def exits_for(rate: float, confidence: float) -> int:
    """Processes an exit-stress scenario needs to see a per-exit fault of `rate` with
    `confidence` (the formula of tests/stability/exit_stress.py)."""
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - rate))


# Under emulation every process start costs ~a factor more: exit-stress sized to see a fault of
# 2 % per exit with 99 % probability (228 processes a scenario) instead of 0.5 % (919).
EMULATED_EXIT_STRESS_RATE = 0.02
EMULATED_EXIT_STRESS_CONFIDENCE = 0.99

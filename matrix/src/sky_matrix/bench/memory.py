"""Peak memory per backend: a fresh child process per (case, backend), peak resident set size.

Why a child and the resident set, not `tracemalloc`: tracemalloc sees only
Python's allocator, so the Rust side's buffers would be invisible and the
comparison meaningless. The resident set sees both.

How, on Linux: the child imports `sky_rs`, builds the case's arguments, hands
free heap pages back (`malloc_trim(0)`) and resets the kernel's peak-RSS mark
(`echo 5 > /proc/self/clear_refs`), so the baseline is what the process holds
right then; after the calls, `VmHWM` from /proc/self/status is the peak they
reached. The growth is what the calls cost above everything else the process
needed. Without /proc/self/clear_refs (macOS), `ru_maxrss` before and after
the calls is used instead, which hides growth that fits under the import
phase's peak; each result names its method.

Run as `python -m sky_matrix.bench.memory --inputs DIR --case ID --backend rust --calls N`;
it prints one JSON object.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

METHOD = (
    "a fresh child process per (case, backend): peak resident set (VmHWM) during the calls "
    "minus the resident set just before them, after malloc_trim and a reset of the peak mark"
)


def _maxrss_kib() -> int:
    # Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def reset_peak() -> Tuple[str, int]:
    """(method, baseline KiB): make the next peak reading about the calls that follow only."""
    try:
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)
            if trim is not None:
                trim(0)
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return "vmhwm", _status_kib("VmRSS")
    except OSError:
        return "ru_maxrss", _maxrss_kib()


def read_peak(method: str) -> int:
    return _status_kib("VmHWM") if method == "vmhwm" else _maxrss_kib()


def child_env(extra_paths: Sequence[str]) -> Dict[str, str]:
    """The parent's environment with `extra_paths` first on PYTHONPATH."""
    env = dict(os.environ)
    parts: List[str] = list(extra_paths)
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def measure_peak(
    inputs_dir: str,
    case_id: str,
    backend: str,
    calls: int,
    hash_sparse: bool,
    env: Dict[str, str],
    timeout_s: float = 600.0,
) -> Dict[str, Any]:
    """Run the probe child; returns its JSON, or {"error": ...} when it failed."""
    command = [
        sys.executable,
        "-m",
        "sky_matrix.bench.memory",
        "--inputs",
        inputs_dir,
        "--case",
        case_id,
        "--backend",
        backend,
        "--calls",
        str(calls),
    ]
    if hash_sparse:
        command.append("--hash-sparse")
    try:
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"memory probe timed out after {timeout_s:.0f}s"}
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        return {"error": f"memory probe exited {done.returncode}: {' '.join(tail)}"}
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def probe(
    inputs_dir: str, case_id: str, backend: str, calls: int, hash_sparse: bool
) -> Dict[str, Any]:
    """The child's side: baseline peak, the calls, peak again."""
    import sky_rs
    from sky_matrix.bench import inputs as inputs_module
    from sky_matrix.bench.cases import build_cases, contenders

    inputs = inputs_module.load(Path(inputs_dir))
    cases = {case.id: case for case in build_cases(inputs, hash_sparse)}
    if case_id not in cases:
        raise SystemExit(f"unknown case {case_id!r}")
    chosen: Optional[Any] = None
    for contender in contenders(cases[case_id], sky_rs):
        if contender.name == backend:
            chosen = contender
    if chosen is None:
        raise SystemExit(f"case {case_id!r} has no contender {backend!r}")
    method, baseline = reset_peak()
    for _ in range(calls):
        chosen.call()
    peak = read_peak(method)
    return {
        "method": method,
        "calls": calls,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "growth_kib": peak - baseline,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.bench.memory")
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--case", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--hash-sparse", action="store_true")
    args = parser.parse_args(argv)
    result = probe(args.inputs, args.case, args.backend, args.calls, args.hash_sparse)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

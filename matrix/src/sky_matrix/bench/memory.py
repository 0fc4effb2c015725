"""Peak memory per backend: a fresh child process per (case, backend), read with `ru_maxrss`.

Why a child and `ru_maxrss`, not `tracemalloc`: tracemalloc sees only Python's
allocator, so the Rust side's buffers would be invisible and the comparison
meaningless. `ru_maxrss` is the process's resident high-water mark and sees
both. It only ever grows, hence one child per (case, backend): the child
imports `sky_rs`, builds the case's arguments, reads its peak (the baseline),
makes the calls, and reads its peak again. The growth is what the calls cost
above everything else the process needed.

Run as `python -m sky_matrix.bench.memory --inputs DIR --case ID --backend rust --calls N`;
it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

METHOD = (
    "ru_maxrss of a fresh child process per (case, backend): the peak after the calls "
    "minus the peak after importing sky_rs and building the arguments"
)


def _maxrss_kib() -> int:
    # Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


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
    baseline = _maxrss_kib()
    for _ in range(calls):
        chosen.call()
    peak = _maxrss_kib()
    return {
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

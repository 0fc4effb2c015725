"""Measure coverage and write coverage-report/ for the sign-off.

`python -m sky_matrix.signoff.coverage_run [--out coverage-report] [TEST_DIR ...]`

One run of the Python tests measures both languages:

- Rust: the workspace is built with `-C instrument-coverage` through
  `cargo llvm-cov show-env` (in its own target dir, so no instrumented
  artifact can reach a normal build): `cargo test --workspace` runs the Rust
  tests, then the wheel built the same way is installed into this
  interpreter's environment, so the PyO3 binding's lines count when the Python
  tests call them. `rust.json` is cargo llvm-cov's JSON summary over both.
  When cargo-llvm-cov or llvm-tools cannot be had, `rust-unavailable.txt` says
  why (the sign-off reports "not verifiable here") and a normal wheel is used.
- Python: coverage.py over the installed `sky_rs` while pytest runs the test
  directories (default tests/compat) from the project root: `python.json`,
  and the test results in `python-junit.xml`.

Exit status 0 when both measurements ran and every test passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

COVERAGE_TARGET_DIR = "target/coverage"  # under rust/, gitignored with the rest of target/


def _run(command: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(list(command), cwd=str(cwd), env=env, check=False).returncode


def _have_llvm_cov(rust_dir: Path) -> Optional[str]:
    """None when cargo llvm-cov is usable, else why not (after trying to install it)."""
    probe = subprocess.run(
        ["cargo", "llvm-cov", "--version"], cwd=str(rust_dir), capture_output=True, check=False
    )
    if probe.returncode != 0:
        if _run(["cargo", "install", "cargo-llvm-cov", "--locked"], rust_dir) != 0:
            return "cargo install cargo-llvm-cov failed (crates.io unreachable?)"
    if shutil.which("rustup"):
        if _run(["rustup", "component", "add", "llvm-tools"], rust_dir) != 0:
            return "rustup could not add the llvm-tools component (its server is unreachable)"
    return None


def instrumented_env(rust_dir: Path) -> Dict[str, str]:
    """This environment plus what `cargo llvm-cov show-env` sets, in a target dir of its own."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(rust_dir / COVERAGE_TARGET_DIR))
    shown = subprocess.run(
        ["cargo", "llvm-cov", "show-env", "--sh"],
        cwd=str(rust_dir),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in shown.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


def build_and_install_wheel(root: Path, env: Optional[Dict[str, str]]) -> int:
    """Build the wheel (instrumented when `env` says so) and install it here."""
    with tempfile.TemporaryDirectory(prefix="sky-rs-coverage-") as out:
        status = _run([sys.executable, "-m", "maturin", "build", "-o", out], root, env)
        wheels = sorted(Path(out).glob("*.whl"))
        if status != 0 or not wheels:
            return status or 1
        return _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--force-reinstall",
                "--no-deps",
                str(wheels[0]),
            ],
            root,
        )


def python_tests(root: Path, out: Path, test_dirs: Sequence[str], env: Dict[str, str]) -> int:
    env = dict(env, COVERAGE_FILE=str(out / ".coverage"))
    status = _run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=sky_rs",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={out / 'python-junit.xml'}",
            *test_dirs,
        ],
        root,
        env,
    )
    report = _run(
        [sys.executable, "-m", "coverage", "json", "-o", str(out / "python.json")], root, env
    )
    return status or report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.signoff.coverage_run")
    parser.add_argument("test_dirs", nargs="*", default=["tests/compat"])
    parser.add_argument("--out", type=Path, default=Path("coverage-report"))
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    root = args.project_root.resolve()
    rust_dir = root / "rust"
    out = args.out if args.out.is_absolute() else root / args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("python.json", "python-junit.xml", "rust.json", "rust-unavailable.txt"):
        (out / stale).unlink(missing_ok=True)
    failures: List[str] = []
    why = _have_llvm_cov(rust_dir)
    env: Dict[str, str] = dict(os.environ)
    if why is None:
        env = instrumented_env(rust_dir)
        _run(["cargo", "llvm-cov", "clean", "--workspace"], rust_dir, env)
        if _run(["cargo", "test", "--workspace"], rust_dir, env) != 0:
            failures.append("rust tests")
    else:
        (out / "rust-unavailable.txt").write_text(why + "\n", encoding="utf-8")
        failures.append("rust coverage")
    if build_and_install_wheel(root, env if why is None else None) != 0:
        print("the wheel did not build or install", file=sys.stderr)
        return 1
    if python_tests(root, out, args.test_dirs, env) != 0:
        failures.append("python tests")
    if why is None:
        command = ["cargo", "llvm-cov", "report", "--json", "--summary-only"]
        if _run([*command, "--output-path", str(out / "rust.json")], rust_dir, env) != 0:
            failures.append("rust report")
    print(f"wrote {out}" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

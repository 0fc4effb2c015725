"""Build and audit the distributions; write release-report/wheels.json for the sign-off.

`python -m sky_matrix.signoff.wheels [--build] [--dist dist] [--out FILE] [DIR ...]`

- `--build` makes the sdist (`maturin sdist`) and the manylinux2014 abi3 wheels
  for x86_64 and aarch64 (`maturin build --release --zig --compatibility
  manylinux2014 --target ...`, as the container wheel is made) into `--dist`.
- Every `*.whl` and `*.tar.gz` in `--dist` and the extra DIRs (e.g. wheels
  downloaded from the release workflow) is checked: `twine check --strict`
  for all; `auditwheel show` (the symbols need no newer glibc than the wheel's
  manylinux tag promises) for Linux wheels; `abi3audit --strict` (no symbol
  outside the stable ABI) for every wheel.

Exit status 0 when every artifact passed its checks, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from sky_matrix.build.manylinux_wheel import parse_auditwheel_show, wheel_glibc, wheel_tags

_OUTPUT_LIMIT = 4000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINUX_TAG = re.compile(r"^(?:manylinux|musllinux)(?:_\d+_\d+|1|2010|2014)?_(.+)$")


def classify(name: str) -> str:
    """`sdist`, `linux-x86_64`, `linux-aarch64`, `macos-universal2`, ... from a file name."""
    if name.endswith(".tar.gz"):
        return "sdist"
    platforms = wheel_tags(name)[2]
    for tag in platforms:
        linux = _LINUX_TAG.match(tag)
        if linux:
            return f"linux-{linux.group(1)}"
        if tag.startswith("macosx_"):
            return f"macos-{tag.rsplit('_', 1)[-1]}"
    return f"other-{platforms[0]}"


def version_of(name: str) -> Optional[str]:
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else name
    parts = stem.split("-")
    if name.endswith(".tar.gz"):
        return parts[-1] if len(parts) >= 2 else None
    return parts[1] if len(parts) >= 5 else None


def _tool(name: str) -> List[str]:
    """A tool from this interpreter's environment, or PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else [name]


def _run(command: Sequence[str]) -> Dict[str, Any]:
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
            check=False,
            # One line per message: no colours, no wrapping at a guessed terminal width.
            env=dict(os.environ, NO_COLOR="1", COLUMNS="1000"),
        )
    except FileNotFoundError:
        return {"ok": False, "summary": f"{command[0]} not found", "output": ""}
    except subprocess.TimeoutExpired:
        return {"ok": False, "summary": "timed out", "output": ""}
    output = _ANSI.sub("", done.stdout + done.stderr).strip()
    lines = [line for line in output.splitlines() if line.strip()]
    return {
        "ok": done.returncode == 0,
        "returncode": done.returncode,
        "summary": " ".join(" ".join(lines[-2:]).split())[:300],
        "output": output[-_OUTPUT_LIMIT:],
    }


def check_twine(path: Path) -> Dict[str, Any]:
    return _run([sys.executable, "-m", "twine", "check", "--strict", str(path)])


def check_abi3audit(path: Path) -> Dict[str, Any]:
    return _run([*_tool("abi3audit"), "--strict", "--summary", str(path)])


def check_auditwheel(path: Path) -> Dict[str, Any]:
    result = _run([*_tool("auditwheel"), "show", str(path)])
    if not result["ok"]:
        return result
    needed = parse_auditwheel_show(result["output"])
    promised = wheel_glibc(path.name)
    if needed is None or promised is None:
        result["ok"] = False
        result["summary"] = "auditwheel found no manylinux tag for this wheel"
    elif needed > promised:
        result["ok"] = False
        result["summary"] = (
            f"the tag promises glibc {promised[0]}.{promised[1]}, the symbols need "
            f"{needed[0]}.{needed[1]}"
        )
    else:
        result["summary"] = (
            f"symbols need glibc {needed[0]}.{needed[1]}, the tag promises "
            f"{promised[0]}.{promised[1]}"
        )
    return result


def audit(path: Path) -> Dict[str, Any]:
    platform_name = classify(path.name)
    checks: Dict[str, Any] = {"twine": check_twine(path)}
    if platform_name != "sdist":
        checks["abi3audit"] = check_abi3audit(path)
    if platform_name.startswith("linux-"):
        checks["auditwheel"] = check_auditwheel(path)
    return {
        "file": path.name,
        "path": str(path),
        "kind": "sdist" if platform_name == "sdist" else "wheel",
        "platform": platform_name,
        "version": version_of(path.name),
        "size": path.stat().st_size,
        "checks": checks,
    }


LINUX_TARGETS = ("x86_64", "aarch64")


def build(project_root: Path, dist: Path, arches: Sequence[str]) -> List[str]:
    """The sdist and a manylinux2014 wheel per architecture; returns what could not be built.

    zig links against glibc 2.17 stubs for any target, so aarch64 cross-builds here once
    rustup has its standard library; a failure is reported, and the other artifacts are
    still audited.
    """
    dist.mkdir(parents=True, exist_ok=True)
    maturin = _tool("maturin")
    # maturin finds zig through `python -m ziglang` on PATH: this environment's python first.
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    subprocess.run(
        [*maturin, "sdist", "--out", str(dist)], cwd=str(project_root), env=env, check=True
    )
    failed: List[str] = []
    for arch in arches:
        target = f"{arch}-unknown-linux-gnu"
        if shutil.which("rustup"):
            subprocess.run(["rustup", "target", "add", target], env=env, check=False)
        done = subprocess.run(
            [
                *maturin,
                "build",
                "--release",
                "--zig",
                "--compatibility",
                "manylinux2014",
                "--target",
                target,
                "--out",
                str(dist),
            ],
            cwd=str(project_root),
            env=env,
            check=False,
        )
        if done.returncode != 0:
            failed.append(arch)
    return failed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.signoff.wheels")
    parser.add_argument("dirs", nargs="*", type=Path, help="more directories of artifacts")
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--out", type=Path, default=Path("release-report/wheels.json"))
    parser.add_argument(
        "--build", action="store_true", help="build the sdist and Linux wheels first"
    )
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument(
        "--arch",
        action="append",
        choices=LINUX_TARGETS,
        help="Linux wheels to build (default: all)",
    )
    args = parser.parse_args(argv)
    unbuilt: List[str] = []
    if args.build:
        if args.dist.is_dir():
            for old in list(args.dist.glob("*.whl")) + list(args.dist.glob("*.tar.gz")):
                old.unlink()  # only what this build makes is audited
        try:
            unbuilt = build(args.project_root, args.dist, args.arch or LINUX_TARGETS)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"sky-rs-wheels: the build failed: {exc}", file=sys.stderr)
            return 1
        for arch in unbuilt:
            print(f"sky-rs-wheels: the linux {arch} wheel did not build", file=sys.stderr)
    files: List[Path] = []
    for directory in [args.dist, *args.dirs]:
        if directory.is_dir():
            files += sorted(directory.glob("*.whl")) + sorted(directory.glob("*.tar.gz"))
    if not files:
        print(f"sky-rs-wheels: no *.whl or *.tar.gz in {args.dist}: pass --build", file=sys.stderr)
        return 1
    artifacts = [audit(path) for path in files]
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "artifacts": artifacts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = 0
    for artifact in artifacts:
        for tool, result in artifact["checks"].items():
            mark = "ok  " if result["ok"] else "FAIL"
            failed += not result["ok"]
            print(f"{mark} {tool:<10} {artifact['file']}: {result['summary']}")
    print(f"wrote {args.out}")
    return 1 if failed or (args.build and unbuilt) else 0


if __name__ == "__main__":
    sys.exit(main())

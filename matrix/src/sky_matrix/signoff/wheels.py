"""Build and audit the distributions; write release-report/wheels.json for the sign-off.

`python -m sky_matrix.signoff.wheels [--build] [--platform P] [--dist dist] [--out FILE] [DIR ...]`

- `--build` makes the five release artifacts into `--dist` with maturin and zig: the sdist
  (`maturin sdist`), the manylinux2014 abi3 wheels for x86_64 and aarch64 (`maturin build
  --release --zig --compatibility manylinux2014 --target ...`, as the container wheel is made)
  and the macOS abi3 wheels for arm64 and x86_64 (`--zig --target aarch64-apple-darwin` /
  `x86_64-apple-darwin`: zig links against its own libSystem stubs, no Apple SDK needed).
  `--platform` (repeatable) builds and expects a subset.
- Every `*.whl` and `*.tar.gz` in `--dist` and the extra DIRs (e.g. wheels downloaded from the
  release workflow) is checked: `twine check --strict` for all; for every wheel its tags
  (`binaries.check_tags`) and `abi3audit --strict` (no symbol outside the stable ABI); for
  Linux wheels the ELF machine (`binaries.check_elf`) and `auditwheel show` (the symbols need
  no newer glibc than the tag promises); for macOS wheels the Mach-O facts
  (`binaries.check_macho`: architecture, minos = the tag's version, /usr/lib/libSystem.B.dylib
  the only dylib, Python symbols by dynamic lookup).
- `--build` also makes the pure-Python wheel (`py3-none-any`, `sky_rs` without `_native`;
  `build/pure_wheel.py`, with hatchling because maturin builds nothing without Rust). It is
  checked by `twine`, its tags, `contents` (the binary wheels' files but `_native`, the same
  metadata) and `installer`: pip's offline choice for CPython 3.8/3.13 on glibc x86_64
  (binary), 3.14t and PyPy (their own wheel when one is there, else pure), musl and Windows
  (pure) and macOS arm64 (binary) (`installer.py`).
- A wheel is only built and audited here: whether its cells can run on this host is written
  beside it (`runnable_here`); macOS cells run on GitHub's macOS runners (matrix.yml).

Exit status 0 when every expected artifact is there and passed its checks, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence

from sky_matrix.build import pure_wheel
from sky_matrix.build.manylinux_wheel import parse_auditwheel_show, wheel_glibc, wheel_tags
from sky_matrix.signoff import binaries, installer

_OUTPUT_LIMIT = 4000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINUX_TAG = re.compile(r"^(?:manylinux|musllinux)(?:_\d+_\d+|1|2010|2014)?_(.+)$")
_MACOS_TAG = re.compile(r"^macosx_\d+_\d+_(.+)$")


def classify(name: str) -> str:
    """`sdist`, `linux-x86_64`, `linux-aarch64`, `macos-arm64`, `pure`, ... from a file name."""
    if name.endswith(".tar.gz"):
        return "sdist"
    platforms = wheel_tags(name)[2]
    if platforms == ["any"]:
        return binaries.PURE  # the pure-Python wheel (py3-none-any)
    for tag in platforms:
        linux = _LINUX_TAG.match(tag)
        if linux:
            return f"linux-{linux.group(1)}"
        macos = _MACOS_TAG.match(tag)
        if macos:
            return f"macos-{macos.group(1)}"
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
    result = _run([*_tool("abi3audit"), "--strict", "--summary", str(path)])
    # "[19:35:40] 💁 name.whl: 1 extensions scanned; ..." without the clock and the emoji
    result["summary"] = re.sub(r"^\[[\d:]+\]\s*\S+\s+", "", result["summary"])
    return result


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


def runnable_here(
    platform_name: str, machine: Optional[str] = None, system: Optional[str] = None
) -> str:
    """Whether this host can run the cells of an artifact: "yes", or why not."""
    target = binaries.BY_NAME.get(platform_name)
    if target is None:
        if platform_name in ("sdist", binaries.PURE):
            return "yes"
        return f"unknown platform {platform_name}"
    machine = (machine or platform.machine()).lower()
    system = system or platform.system()
    if target.is_macos:
        return "yes" if system == "Darwin" else f"not runnable on this host ({system} {machine})"
    if system == "Linux" and machine in target.runnable_here:
        return "yes"
    return f"not run here yet (this host is {system} {machine}; emulation is another step)"


def audit(path: Path) -> Dict[str, Any]:
    platform_name = classify(path.name)
    target = binaries.BY_NAME.get(platform_name)
    checks: Dict[str, Any] = {"twine": check_twine(path)}
    if platform_name == binaries.PURE:
        checks["tag"] = binaries.check_pure_tags(path.name)
    elif platform_name != "sdist":
        if target is not None:
            checks["tag"] = binaries.check_tags(path.name, target)
        if target is not None and platform_name.startswith("linux-"):
            checks["elf"] = binaries.check_elf(path, target)
        if target is not None and target.is_macos:
            checks["macho"] = binaries.check_macho(path, target)
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
        "runnable_here": runnable_here(platform_name),
        "checks": checks,
    }


def _stream(command: Sequence[str], cwd: Path, env: Dict[str, str]) -> Dict[str, Any]:
    """Run a build with its output shown as it comes; (ok, seconds, the last lines)."""
    started = time.monotonic()
    tail: Deque[str] = collections.deque(maxlen=25)
    try:
        process = subprocess.Popen(
            list(command),
            cwd=str(cwd),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        return {"ok": False, "seconds": 0.0, "output": str(exc)}
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        tail.append(_ANSI.sub("", line.rstrip()))
    returncode = process.wait()
    seconds = round(time.monotonic() - started, 1)
    result: Dict[str, Any] = {"ok": returncode == 0, "returncode": returncode, "seconds": seconds}
    if returncode != 0:
        result["output"] = "\n".join(tail)
    if any("xcrun" in line and "MacOSX.sdk" in line for line in tail):
        result["note"] = "no Apple SDK here: linked against zig's libSystem stubs"
    return result


def build(project_root: Path, dist: Path, platforms: Sequence[str]) -> List[Dict[str, Any]]:
    """The sdist and a wheel per release platform, each timed; returns one record per build.

    zig links against glibc 2.17 stubs for any Linux target and carries libSystem stubs for
    macOS, so every wheel cross-builds here once rustup has the target's standard library. A
    failed build is recorded with its last lines, and the other artifacts are still audited.
    """
    dist.mkdir(parents=True, exist_ok=True)
    maturin = _tool("maturin")
    # maturin finds zig through `python -m ziglang` on PATH: this environment's python first.
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    records = [
        {"platform": "sdist", **_stream([*maturin, "sdist", "--out", str(dist)], project_root, env)}
    ]
    for name in platforms:
        if name == binaries.PURE:
            continue  # after the binary wheels (below)
        target = binaries.BY_NAME[name]
        if shutil.which("rustup"):
            subprocess.run(
                ["rustup", "target", "add", target.rust_target], env=env, check=False,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        command = [
            *maturin, "build", "--release", "--zig", *target.maturin_args,
            "--target", target.rust_target, "--out", str(dist),
        ]  # fmt: skip
        print(f"sky-rs-wheels: {name}: {' '.join(command[len(maturin) :])}", flush=True)
        done = _stream(command, project_root, dict(env, **dict(target.env)))
        records.append({"platform": name, "target": target.rust_target, **dict(target.env), **done})
    if binaries.PURE in platforms:
        records.append(build_pure(project_root, dist))
    return records


def build_pure(project_root: Path, dist: Path) -> Dict[str, Any]:
    """The pure-Python wheel, timed, as a build record."""
    print("sky-rs-wheels: pure: hatchling from a generated build directory", flush=True)
    started = time.monotonic()
    record: Dict[str, Any] = {"platform": binaries.PURE, "backend": "hatchling"}
    try:
        built = pure_wheel.build_pure_wheel(project_root, dist)
    except (pure_wheel.PureWheelError, OSError) as exc:
        record.update(ok=False, output=str(exc))
    else:
        record.update(ok=True, file=built.name)
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def check_pure_against_binaries(artifacts: List[Dict[str, Any]]) -> None:
    """Add `contents` and `installer` to each pure artifact: they need every file of the set."""
    pures = [a for a in artifacts if a["platform"] == binaries.PURE]
    binary_wheels = [a for a in artifacts if a["platform"] in binaries.BY_NAME]
    names = [a["file"] for a in artifacts if a["kind"] == "wheel"]
    directories = sorted({str(Path(a["path"]).parent) for a in artifacts if a["kind"] == "wheel"})
    for pure in pures:
        pure_files = installer.read_wheel(Path(pure["path"]))
        if not binary_wheels:
            pure["checks"]["contents"] = {"ok": False, "summary": "no binary wheel to compare with"}
        else:
            results = [
                installer.compare_contents(
                    pure_files, installer.read_wheel(Path(b["path"])), b["file"]
                )
                for b in binary_wheels
            ]
            failed = [r for r in results if not r["ok"]]
            pure["checks"]["contents"] = (
                failed[0]
                if failed
                else {
                    "ok": True,
                    "summary": f"equal to each of {len(results)} binary wheels without _native: "
                    + results[0]["summary"],
                }
            )
        pure["checks"]["installer"] = installer.check_installer_choice(
            [Path(d) for d in directories], names, classify
        )


def _expected(platforms: Sequence[str]) -> List[str]:
    return ["sdist", *platforms]


def _print_report(report: Dict[str, Any]) -> int:
    """The terminal view of the report; returns the number of failures."""
    failed = 0
    for artifact in report["artifacts"]:
        facts = [f"{artifact['size'] / 1024:.0f} KiB"]
        tag = artifact["checks"].get("tag", {})
        if tag.get("tags"):
            facts.append(tag["tags"])
        if artifact.get("runnable_here", "yes") != "yes":
            facts.append(artifact["runnable_here"])
        print(f"---- {artifact['platform']}: {artifact['file']} ({', '.join(facts)})")
        for tool, result in artifact["checks"].items():
            mark = "ok  " if result["ok"] else "FAIL"
            failed += not result["ok"]
            print(f"{mark} {tool:<10} {result['summary']}")
    for record in report.get("builds", []):
        mark = "ok  " if record["ok"] else "FAIL"
        failed += not record["ok"]
        note = f" ({record['note']})" if record.get("note") else ""
        print(f"{mark} build      {record['platform']}: {record['seconds']:.0f}s{note}")
        if not record["ok"]:
            print("     " + "\n     ".join(record.get("output", "").splitlines()[-8:]))
    for name in report["missing"]:
        failed += 1
        print(f"FAIL missing    no {name} artifact")
    return failed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.signoff.wheels")
    parser.add_argument("dirs", nargs="*", type=Path, help="more directories of artifacts")
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--out", type=Path, default=Path("release-report/wheels.json"))
    parser.add_argument("--build", action="store_true", help="build the sdist and the wheels first")
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument(
        "--platform",
        action="append",
        choices=[*binaries.BY_NAME, binaries.PURE],
        help="wheels to build and expect (default: all of them)",
    )
    args = parser.parse_args(argv)
    platforms = args.platform or [*binaries.BY_NAME, binaries.PURE]
    builds: List[Dict[str, Any]] = []
    if args.build:
        if args.dist.is_dir():
            for old in list(args.dist.glob("*.whl")) + list(args.dist.glob("*.tar.gz")):
                old.unlink()  # only what this build makes is audited
        builds = build(args.project_root, args.dist, platforms)
    files: List[Path] = []
    for directory in [args.dist, *args.dirs]:
        if directory.is_dir():
            files += sorted(directory.glob("*.whl")) + sorted(directory.glob("*.tar.gz"))
    if not files:
        print(f"sky-rs-wheels: no *.whl or *.tar.gz in {args.dist}: pass --build", file=sys.stderr)
        return 1
    order = {name: index for index, name in enumerate(binaries.RELEASE_ARTIFACTS)}
    artifacts = sorted(
        (audit(path) for path in files), key=lambda a: (order.get(a["platform"], 99), a["file"])
    )
    check_pure_against_binaries(artifacts)
    present = {a["platform"] for a in artifacts}
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": {"system": platform.system(), "machine": platform.machine()},
        "expected": _expected(platforms),
        "missing": [name for name in _expected(platforms) if name not in present],
        "builds": builds,
        "artifacts": artifacts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = _print_report(report)
    print(f"wrote {args.out}: {len(artifacts)} artifacts, {failed} problem(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

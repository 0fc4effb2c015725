"""The wheel for containers: one manylinux2014 (glibc 2.17) abi3 wheel per architecture, built
on the host (aarch64's cross-compiled by the same zig linker, for the emulated images).

The host's own wheel links against the host's glibc, so it would not load in bullseye or a
manylinux2014 image. This one is built with maturin's `--zig` (zig from PyPI's `ziglang` links
against glibc 2.17 stubs) and `--compatibility manylinux2014`, then checked with `auditwheel
show`: a wheel whose tag or symbol versions need a newer glibc than the oldest image is refused
with the reason, so no container cell silently runs the pure-Python fallback.

Cached by the sources' content (`host_wheel.source_key`); the tools (maturin, ziglang,
auditwheel) live in a venv of their own (see `tools_cache`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from sky_matrix.build import cache as build_cache, host_wheel
from sky_matrix.config import architectures
from sky_matrix.core.text import telling_line

# The oldest glibc any image of the matrix has (manylinux2014).
REQUIRED_GLIBC: Tuple[int, int] = (2, 17)
TOOLS = ("maturin>=1.7,<2", "ziglang", "auditwheel")
TOOLS_FORMAT = 1  # bump when TOOLS changes, to remake the tools venv
VERIFIED_FILE = "verified.json"
CACHE_ENV = "SKY_RS_MATRIX_CACHE"

Log = Callable[[str], None]

# Legacy manylinux names and the glibc they stand for (PEP 600).
_LEGACY_TAGS = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_ERROR = re.compile("error", re.IGNORECASE)
_TAG = re.compile(r"^(manylinux1|manylinux2010|manylinux2014|manylinux_(\d+)_(\d+))_\w+$")


class ContainerWheelError(Exception):
    """The container wheel could not be built or is unfit; the message says why and what to do."""


def platform_tag_glibc(tag: str) -> Optional[Tuple[int, int]]:
    """The glibc a manylinux platform tag needs; None for a tag that is not manylinux."""
    match = _TAG.match(tag)
    if not match:
        return None
    if match.group(2):
        return int(match.group(2)), int(match.group(3))
    return _LEGACY_TAGS[match.group(1)]


def wheel_tags(wheel_name: str) -> Tuple[List[str], List[str], List[str]]:
    """(python tags, abi tags, platform tags) of a wheel file name (compressed sets expanded)."""
    stem = wheel_name[: -len(".whl")] if wheel_name.endswith(".whl") else wheel_name
    parts = stem.split("-")
    if len(parts) < 5:
        raise ValueError(f"not a wheel file name: {wheel_name}")
    python, abi, platform = parts[-3:]
    return python.split("."), abi.split("."), platform.split(".")


def wheel_glibc(wheel_name: str) -> Optional[Tuple[int, int]]:
    """The oldest glibc the wheel installs on (its most permissive manylinux tag), or None."""
    needs = [g for g in map(platform_tag_glibc, wheel_tags(wheel_name)[2]) if g is not None]
    return min(needs) if needs else None


def check_wheel_name(
    wheel_name: str, required: Tuple[int, int] = REQUIRED_GLIBC, architecture: str = "x86_64"
) -> None:
    """ContainerWheelError unless the name says abi3 and manylinux at or below `required`, for
    `architecture`."""
    _, abis, platforms = wheel_tags(wheel_name)
    if not all(p.endswith("_" + architecture) for p in platforms):
        raise ContainerWheelError(
            f"{wheel_name} is not a wheel for {architecture} (platform tags {'.'.join(platforms)})"
        )
    if "abi3" not in abis:
        raise ContainerWheelError(
            f"{wheel_name} is not an abi3 wheel (abi tags {'.'.join(abis)}): build it with"
            " PyO3's abi3 feature"
        )
    glibc = wheel_glibc(wheel_name)
    if glibc is None:
        raise ContainerWheelError(f"{wheel_name} has no manylinux tag: it would not install")
    if glibc > required:
        raise ContainerWheelError(
            f"{wheel_name} needs glibc {glibc[0]}.{glibc[1]}, newer than the oldest image's"
            f" {required[0]}.{required[1]}: build with --zig or --compatibility manylinux2014"
        )


def parse_auditwheel_show(output: str) -> Optional[Tuple[int, int]]:
    """The glibc of the platform tag `auditwheel show` says the wheel is consistent with."""
    text = " ".join(output.split())  # auditwheel wraps its sentences
    match = re.search(r'consistent with the following platform tag:\s*"([^"]+)"', text)
    if not match:
        return None
    return platform_tag_glibc(match.group(1))


def check_auditwheel(output: str, required: Tuple[int, int] = REQUIRED_GLIBC) -> None:
    glibc = parse_auditwheel_show(output)
    if glibc is None:
        raise ContainerWheelError(
            "auditwheel show found no manylinux tag for the wheel: "
            + " ".join(output.split())[:300]
        )
    if glibc > required:
        raise ContainerWheelError(
            f"auditwheel show: the wheel's symbols need glibc {glibc[0]}.{glibc[1]}, newer than"
            f" the oldest image's {required[0]}.{required[1]}: " + " ".join(output.split())[:300]
        )


def maturin_build_command(
    maturin: Sequence[str], out: Path, python: str, target: str = "x86_64-unknown-linux-gnu"
) -> List[str]:
    return [
        *maturin, "build", "--release", "--zig",
        "--compatibility", "manylinux2014",
        "--target", target,
        "--interpreter", python,
        "--out", str(out),
    ]  # fmt: skip


def _run(
    argv: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    env: Optional[dict] = None,
    log_path: Optional[Path] = None,
    timeout: float = 3600,
) -> Tuple[int, str]:
    try:
        proc = subprocess.run(
            list(argv),
            cwd=str(cwd) if cwd else None,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ContainerWheelError(f"cannot run {argv[0]}: {exc}") from None
    output = proc.stdout + proc.stderr
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(argv)}\n{output}\n")
    return proc.returncode, output


def ensure_tools(tools_dir: Path, log: Log) -> Path:
    """A venv holding maturin, ziglang and auditwheel (from PyPI); its bin directory."""
    marker = tools_dir / f".complete-{TOOLS_FORMAT}"
    bin_dir = tools_dir / "bin"
    if marker.is_file():
        return bin_dir
    shutil.rmtree(tools_dir, ignore_errors=True)
    log(f"container wheel: installing {', '.join(TOOLS)} into {tools_dir}")
    code, out = _run([sys.executable, "-m", "venv", str(tools_dir)])
    if code != 0:
        raise ContainerWheelError(f"cannot make the tools venv: {out.strip()[-300:]}")
    code, out = _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *TOOLS])
    if code != 0:
        raise ContainerWheelError(
            f"cannot install {', '.join(TOOLS)} from PyPI: {out.strip()[-300:]}"
        )
    marker.write_text("", encoding="utf-8")
    return bin_dir


def ensure_rust_target(target: str, log: Log) -> None:
    """Install the Rust standard library of `target` with rustup when it is missing; a
    ContainerWheelError naming the command when that is impossible."""
    if target == "x86_64-unknown-linux-gnu":
        return  # the host's own (cargo builds the host wheel with it)
    if shutil.which("rustup") is None:
        raise ContainerWheelError(
            f"rustup is not on PATH: cannot install the Rust target {target}"
            f" (`rustup target add {target}`)"
        )
    code, out = _run(["rustup", "target", "list", "--installed"], timeout=120)
    if code == 0 and target in out.split():
        return
    log(f"container wheel: rustup target add {target}")
    code, out = _run(["rustup", "target", "add", target], timeout=1800)
    if code != 0:
        raise ContainerWheelError(f"`rustup target add {target}` failed: {_why(out)}")


def tools_cache(project_root: Path) -> Path:
    """Where the tools venv and the zig build's target directory live.

    `$SKY_RS_MATRIX_CACHE/container-wheel` when set, else the runner's `.build-cache/`.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override) / "container-wheel"
    return host_wheel.cache_root(project_root)


def build_manylinux_wheel(
    project_root: Path, out_dir: Path, log: Log, architecture: str = "x86_64"
) -> Path:
    """The verified manylinux2014 abi3 wheel of `project_root`'s sources for `architecture`, in
    `out_dir`. A foreign architecture's Rust target must be installed (`rustup target add`).

    Reused when `out_dir` already holds one verified for the same sources. Raises
    ContainerWheelError with the reason (tool install, build, or verification).
    """
    started = time.monotonic()
    key = host_wheel.source_key(project_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    tools = tools_cache(project_root)
    arch = architectures.get(architecture)
    # x86_64 keeps the target directory it always had; another architecture has its own
    suffix = "" if architecture == "x86_64" else f"-{architecture}"
    with build_cache.locked(tools / ".manylinux.lock"):
        cached = _verified_wheel(out_dir, key)
        if cached is not None:
            log(f"container wheel: reusing {cached}")
            return cached
        bin_dir = ensure_tools(tools / "manylinux-tools", log)
        ensure_rust_target(arch.rust_target, log)
        scratch = out_dir / f".building-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        build_log = out_dir / "build.log"
        build_log.write_text("", encoding="utf-8")
        env = dict(os.environ)
        # maturin finds zig through `python -m ziglang` of the tools venv; a target directory
        # of its own keeps zig-linked objects apart from the host build's.
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["CARGO_TARGET_DIR"] = str(tools / f"target-manylinux{suffix}")
        argv = maturin_build_command(
            [str(bin_dir / "maturin")], scratch, sys.executable, arch.rust_target
        )
        log(f"container wheel: {' '.join(argv)} (log: {build_log})")
        code, output = _run(argv, cwd=project_root, env=env, log_path=build_log)
        wheels = sorted(scratch.glob(f"{host_wheel.WHEEL_DIST}-*.whl"))
        if code != 0 or not wheels:
            shutil.rmtree(scratch, ignore_errors=True)
            raise ContainerWheelError(
                f"maturin --zig failed (exit {code}): {_why(output)} -- log: {build_log}"
            )
        wheel = wheels[-1]
        check_wheel_name(wheel.name, architecture=architecture)
        code, shown = _run([str(bin_dir / "auditwheel"), "show", str(wheel)], log_path=build_log)
        if code != 0:
            raise ContainerWheelError(f"auditwheel show failed: {_why(shown)}")
        check_auditwheel(shown)
        for old in out_dir.glob(f"{host_wheel.WHEEL_DIST}-*.whl"):
            old.unlink()
        final = out_dir / wheel.name
        os.replace(wheel, final)
        shutil.rmtree(scratch, ignore_errors=True)
        (out_dir / VERIFIED_FILE).write_text(
            json.dumps({"key": key, "wheel": final.name, "auditwheel": " ".join(shown.split())}),
            encoding="utf-8",
        )
        log(f"container wheel: built {final} in {time.monotonic() - started:.1f} s")
        return final


def _verified_wheel(out_dir: Path, key: str) -> Optional[Path]:
    try:
        record = json.loads((out_dir / VERIFIED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wheel = out_dir / str(record.get("wheel", ""))
    if record.get("key") == key and wheel.is_file():
        return wheel
    return None


def _why(output: str) -> str:
    """The line of a tool's output that says why it failed: its last error, else its last."""
    return telling_line(output.splitlines(), _ERROR)

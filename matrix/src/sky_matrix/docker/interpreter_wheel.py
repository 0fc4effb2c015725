"""A wheel for one interpreter of an image, built inside that image: PyPy's `pp311` wheel.

The abi3 wheel loads on CPython with the GIL only. PyO3 supports PyPy, but not its abi3, so PyPy
needs a wheel built against that very interpreter: `maturin build --release -i <interpreter>`
runs in a container of the image (which carries gcc for the link), with the host's Rust
toolchain and crate registry mounted (the container has no network: the crates come from the
host's registry, `CARGO_NET_OFFLINE`), the sources read-only, and maturin from the runner's
environment. The wheel is cached by the sources' key and the interpreter's wheel ABI
(`pypy311_pp80`), and the Cargo target directory is kept between builds.

About 5 minutes the first time on a 2-core host (release profile, LTO); reused afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, List, Mapping, Optional

from sky_matrix.build import cache, host_wheel
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import last_lines
from sky_matrix.docker import containers

BUILD_TIMEOUT = 3600.0
SOURCE_MOUNT = "/opt/sky-rs/src"
RUSTUP_MOUNT = "/opt/sky-rs/rustup"
CARGO_MOUNT = "/opt/sky-rs/cargo"
TARGET_MOUNT = "/opt/sky-rs/target"
OUT_MOUNT = "/opt/sky-rs/out"
MATURIN_MOUNT = "/opt/sky-rs/bin/maturin"

Log = Callable[[str], None]


class InterpreterWheelError(Exception):
    """The wheel could not be built; the message says which input is missing or what failed."""


def toolchain_dirs(env: Mapping[str, str] = os.environ) -> tuple:
    """(RUSTUP_HOME, CARGO_HOME) of the host: the variables, else ~/.rustup and ~/.cargo."""
    home = Path.home()
    rustup = Path(env.get("RUSTUP_HOME") or home / ".rustup")
    cargo = Path(env.get("CARGO_HOME") or home / ".cargo")
    return rustup, cargo


def find_maturin() -> Optional[Path]:
    """maturin beside this interpreter (the runner's venv), else on PATH."""
    beside = Path(sys.executable).parent / "maturin"
    if beside.is_file():
        return beside
    found = shutil.which("maturin")
    return Path(found) if found else None


def build_argv(
    image_tag: str, interp: Interpreter, project_root: Path, out_dir: Path, target_dir: Path,
    maturin: Path, rustup: Path, cargo: Path,
) -> List[str]:  # fmt: skip
    """The `docker run` of the build: nice'd (a shared host), root (writes the target dir)."""
    mounts = [
        containers.Mount(project_root, SOURCE_MOUNT),
        containers.Mount(rustup, RUSTUP_MOUNT),
        # The registry's cache and locks are written: the one mount of the host's that is not
        # read-only (cargo serialises concurrent use of it with its own file locks).
        containers.Mount(cargo, CARGO_MOUNT, read_only=False),
        containers.Mount(target_dir, TARGET_MOUNT, read_only=False),
        containers.Mount(out_dir, OUT_MOUNT, read_only=False),
        containers.Mount(maturin, MATURIN_MOUNT),
    ]
    env = {
        "RUSTUP_HOME": RUSTUP_MOUNT,
        "CARGO_HOME": CARGO_MOUNT,
        "CARGO_TARGET_DIR": TARGET_MOUNT,
        "CARGO_NET_OFFLINE": "true",
        "PATH": f"{CARGO_MOUNT}/bin:/usr/local/bin:/usr/bin:/bin",
    }
    command = [
        "nice", "-n", "10", MATURIN_MOUNT, "build", "--release", "-i", interp.path,
        "--out", OUT_MOUNT,
    ]  # fmt: skip
    return containers.run_argv(
        image_tag, command, remove=True, workdir=SOURCE_MOUNT, env=env, mounts=mounts
    )


def build_interpreter_wheel(
    project_root: Path, image_tag: str, interp: Interpreter, log: Log
) -> Path:
    """The cached wheel for `interp` (built in `image_tag` when missing); InterpreterWheelError."""
    maturin = find_maturin()
    if maturin is None:
        raise InterpreterWheelError("maturin is not installed beside the runner nor on PATH")
    rustup, cargo = toolchain_dirs()
    for what, path in (("RUSTUP_HOME", rustup), ("CARGO_HOME", cargo)):
        if not path.is_dir():
            raise InterpreterWheelError(f"no Rust toolchain to mount: {what} {path} is missing")
    root = host_wheel.cache_root(project_root) / "interpreter-wheels"
    key = host_wheel.source_key(project_root)[:20]
    entry_dir = root / f"{interp.wheel_abi}-{key}"
    with cache.entry(entry_dir) as entry:
        if entry.record() is not None:
            wheels = sorted(entry_dir.glob("*.whl"))
            if len(wheels) == 1:
                return wheels[0]
        entry.start()
        target_dir = root / f"target-{interp.wheel_abi}"
        target_dir.mkdir(parents=True, exist_ok=True)
        argv = build_argv(
            image_tag, interp, project_root, entry_dir, target_dir, maturin, rustup, cargo
        )
        log(f"wheel for {interp.short} ({interp.wheel_abi}): maturin build in {image_tag}")
        started = time.monotonic()
        code, output = containers.run(argv, BUILD_TIMEOUT)
        (entry_dir / "build.log").write_text(output, encoding="utf-8")
        wheels = sorted(entry_dir.glob("*.whl"))
        if code != 0 or len(wheels) != 1:
            raise InterpreterWheelError(
                f"maturin build for {interp.path} in {image_tag} failed (exit {code}): "
                + last_lines(output, 3)
            )
        seconds = round(time.monotonic() - started, 1)
        entry.complete({"wheel": wheels[0].name, "seconds": seconds, "image": image_tag})
        log(f"wheel for {interp.short}: {wheels[0].name} in {seconds:.0f} s")
        return wheels[0]

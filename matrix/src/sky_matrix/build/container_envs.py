"""Prepared test environments of container cells: one per image and interpreter, reused.

A container cell used to make a venv and install pytest, hypothesis, memray... from the
wheelhouse on every run (about 19 s a cell, 1,728 s of one full matrix). Now, like the host's
base venvs (`build/venvs.py`), the test requirements are installed once per image, interpreter
and wheelhouse into a directory of the host cache, built inside a container of that image (the
same interpreter, the same glibc), and mounted read-only into each of its cells at
`CONTAINER_ENV_PATH`. The cell driver then makes a fresh venv that layers it (a `.pth` file) and
installs only the wheel under test, so every cell still tests its own install of sky_rs.

Keyed by the image tag (which carries the image's content hash), the interpreter and the
wheelhouse (whose name carries the requirements' hash and the ABI), so a change to any of them
makes a new environment and an unchanged one is reused across cells and runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

from sky_matrix.build import cache
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import last_lines

CONTAINER_ENV_PATH = "/opt/sky-rs/test-env"
MARKER = ".prepared"
SITE_DIRS_LINE = "site-dirs: "

# Runs argv in the image with the wheelhouse at its container path and `env_dir` (read-write)
# at CONTAINER_ENV_PATH; returns (exit code, output).
EnvBuilder = Callable[[Path, Sequence[str]], Tuple[int, str]]
Log = Callable[[str], None]

# Made by root in the container; the cell's user (often not root) only reads it, so every file
# is made readable by all. pip compiles the bytecode at install: the mount is read-only.
BUILD_SCRIPT = r"""
set -eu
python="$1"; wheelhouse="$2"; env="$3"; pip_wheel="$4"
umask 022
"$python" -m venv --without-pip "$env"
"$env/bin/python" "$wheelhouse/$pip_wheel/pip" install --no-index --find-links "$wheelhouse" \
    --progress-bar off --no-color --disable-pip-version-check --no-warn-script-location \
    -r "$wheelhouse/requirements.txt"
"$env/bin/python" -c 'import json, site; print("site-dirs: " + json.dumps(site.getsitepackages()))'
chmod -R a+rX "$env"
"""


class ContainerEnvError(Exception):
    """The prepared environment could not be made; the message says why."""


def env_key(image_tag: str, interp: Interpreter, wheelhouse: Path) -> str:
    text = "\0".join((image_tag, interp.path, interp.version, interp.abi, wheelhouse.name))
    return hashlib.sha256((text + "\0" + BUILD_SCRIPT).encode()).hexdigest()[:16]


def env_dir(
    root: Path, image_name: str, image_tag: str, interp: Interpreter, wheelhouse: Path
) -> Path:
    return (
        root
        / "container-envs"
        / f"{image_name}-py{interp.short}-{env_key(image_tag, interp, wheelhouse)}"
    )


def build_command(interp: Interpreter, wheelhouse_path: str, pip_wheel_name: str) -> List[str]:
    return [
        "/bin/sh", "-c", BUILD_SCRIPT, "build-test-env",
        interp.path, wheelhouse_path, CONTAINER_ENV_PATH, pip_wheel_name,
    ]  # fmt: skip


def parse_site_dirs(output: str) -> List[str]:
    """The container paths of the environment's site-packages, from the build's last report."""
    for line in reversed(output.splitlines()):
        if line.startswith(SITE_DIRS_LINE):
            found = json.loads(line[len(SITE_DIRS_LINE) :])
            dirs = [d for d in found if isinstance(d, str) and d.startswith(CONTAINER_ENV_PATH)]
            if dirs:
                return dirs
    raise ContainerEnvError("the build did not report the environment's site-packages")


def ensure_container_env(
    dest: Path,
    interp: Interpreter,
    wheelhouse_path: str,
    pip_wheel_name: str,
    build_in_image: EnvBuilder,
    *,
    log: Log,
) -> Tuple[List[str], bool, float]:
    """(site-packages inside the container, reused?, seconds): the prepared environment at
    `dest` (see `env_dir`), built first if it is missing or half-made."""
    started = time.monotonic()
    with cache.entry(dest, marker=MARKER) as entry:
        record = entry.record()
        if record is not None and record.get("site_dirs"):
            return list(record["site_dirs"]), True, time.monotonic() - started
        entry.start()
        log(f"test environment {dest.name}: installing the test requirements for {interp.path}")
        code, output = build_in_image(dest, build_command(interp, wheelhouse_path, pip_wheel_name))
        if code != 0:
            raise ContainerEnvError(
                f"installing the test requirements in the image failed (exit {code}): "
                + last_lines(output, 3)
            )
        site_dirs = parse_site_dirs(output)
        entry.complete({"site_dirs": site_dirs, "python": interp.path})
        seconds = time.monotonic() - started
        log(f"test environment {dest.name}: ready in {seconds:.0f} s")
        return site_dirs, False, seconds

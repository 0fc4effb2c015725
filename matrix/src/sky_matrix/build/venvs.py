"""Virtual environments: a cached base with the test dependencies, a fresh one per cell.

The base environment (pytest, xdist, hypothesis, ...) is keyed by the
interpreter and the requirements file, built once, and never holds the wheel.
A cell gets a brand-new venv (no pip of its own) whose site-packages points at
the base through a `.pth` file, and the wheel is installed into it with
`--no-index --force-reinstall --no-deps`. So every cell starts clean and a
second run needs no network and starts its first test within seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, List

from sky_matrix.build import cache, host_wheel
from sky_matrix.core import hygiene
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import last_lines

ENV_FORMAT = 1  # bump when the layout of a base environment changes
BASE_MARKER = ".sky-matrix-complete"
PIP_QUIET = ("--disable-pip-version-check", "--no-input")


class EnvError(Exception):
    """An environment could not be made; the message says which step and why."""


@dataclasses.dataclass(frozen=True)
class BaseEnv:
    path: Path
    site_dirs: List[str]
    cached: bool
    seconds: float


def base_env_key(interp: Interpreter, requirements_text: str) -> str:
    identity = {
        "format": ENV_FORMAT,
        "python": os.path.realpath(interp.path),
        "version": interp.version,
        "abi": interp.abi,
        "debug": interp.debug,
        "requirements": requirements_text,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


# A guard against a hung interpreter, not a speed limit: `-m venv` runs ensurepip, which took
# over 300 s on 2 cores at a load average of 30 (the first limit killed the preparation there).
VENV_TIMEOUT = 1800.0


def base_env_dir(cache_dir: Path, interp: Interpreter, requirements_text: str) -> Path:
    return cache_dir / f"py{interp.short}-{base_env_key(interp, requirements_text)}"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_dirs(python: Path) -> List[str]:
    proc = subprocess.run(
        [str(python), "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=hygiene.clean_environ(network=True),  # no PYTHONPATH/PYTHONHOME of the caller
        umask=hygiene.UMASK,
    )
    if proc.returncode != 0:
        raise EnvError(f"cannot ask {python} for its site-packages: {last_lines(proc.stderr, 5)}")
    return [d for d in json.loads(proc.stdout) if os.path.isdir(d)]


def ensure_base_env(
    interp: Interpreter,
    requirements: Path,
    cache_dir: Path,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    pip_timeout: float = 1800,
) -> BaseEnv:
    """The cached base environment for this interpreter, built if missing or stale."""
    started = time.monotonic()
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvError(f"cannot read {requirements}: {exc.strerror}") from None
    path = base_env_dir(cache_dir, interp, text)
    with cache.entry(path, marker=BASE_MARKER) as entry:
        site_dirs = (entry.record() or {}).get("site_dirs")
        if site_dirs and all(os.path.isdir(d) for d in site_dirs):
            return BaseEnv(path, site_dirs, True, time.monotonic() - started)
        shutil.rmtree(path, ignore_errors=True)
        log(f"env: creating the test environment for {interp.short} ({path.name})")
        _run_step(
            [interp.path, "-m", "venv", str(path)], f"python {interp.short} -m venv", VENV_TIMEOUT
        )
        python = venv_python(path)
        _run_step(
            [str(python), "-m", "pip", "install", *PIP_QUIET, "-r", str(requirements)],
            f"installing {requirements.name} into the {interp.short} environment",
            pip_timeout,
        )
        site_dirs = _site_dirs(python)
        entry.complete({"site_dirs": site_dirs})
        log(f"env: {interp.short} ready in {time.monotonic() - started:.0f} s")
        return BaseEnv(path, site_dirs, False, time.monotonic() - started)


def _run_step(argv: List[str], what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env=hygiene.clean_environ(network=True), umask=hygiene.UMASK,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise EnvError(f"{what}: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise EnvError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise EnvError(
            f"{what} failed (status {proc.returncode}): {last_lines(proc.stderr or proc.stdout, 5)}"
        )


def make_cell_env(interp: Interpreter, base: BaseEnv, dest: Path, wheel: Path) -> Path:
    """A fresh venv layered on the base, with the wheel installed into it alone."""
    _run_step(
        [interp.path, "-m", "venv", "--without-pip", str(dest)],
        f"python {interp.short} -m venv (cell)",
        VENV_TIMEOUT,
    )
    python = venv_python(dest)
    own_sites = _site_dirs(python)
    if not own_sites:
        raise EnvError(f"the new venv {dest} has no site-packages directory")
    # addsitedir (not a bare path) so that .pth files inside the base run too.
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in base.site_dirs)
    (Path(own_sites[0]) / "_sky_matrix_base.pth").write_text(lines, encoding="utf-8")
    _run_step(host_wheel.install_command(str(python), wheel), f"installing {wheel.name}", 600)
    return python

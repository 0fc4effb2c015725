"""The test dependencies of container cells: a wheelhouse downloaded on the host.

Containers run with no network, so pytest and friends come from a directory of wheels that is
mounted read-only and installed with `pip install --no-index --find-links`. One wheelhouse per
interpreter ABI (`cp39`, `cp314d`, ...) and requirements text, cached by their hash.

`pip download --python-version` checks tags and Requires-Python for the target but evaluates
environment markers for the interpreter pip runs on (`exceptiongroup; python_version < "3.11"`
is dropped when the host runs 3.11). So the target decides: the requirements file's markers
are evaluated by the image's interpreter (with the `packaging` inside the downloaded pip wheel),
each applicable requirement is downloaded on the host, and a dry-run install in the image names
any dependency still missing, until nothing is. A requirement that has no wheel for the target
at all (memray for a debug build) is left out and said so in `left-out.txt`, which the cell
reports; the suite that needs it decides what that means.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

from sky_matrix.build import cache
from sky_matrix.config import architectures
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import last_lines

CACHE_ENV = "SKY_RS_MATRIX_CACHE"
REQUIREMENTS_FILE = "requirements.txt"  # in a wheelhouse: what applies to its target
DEFAULT_REQUIREMENTS = ("pytest", "pytest-xdist", "pytest-timeout", "hypothesis", "psutil")
# The wheel platform tags a wheelhouse takes, per architecture (config/architectures.py): on
# x86_64 wheels built for glibc 2.17 or older, which install in every image, manylinux2014 too.
PLATFORMS = architectures.ARCHITECTURES["x86_64"].wheel_platforms
MAX_COMPLETION_ROUNDS = 8
COMPLETE_MARKER = ".complete"
SOURCE_FILE = "requirements.in"  # the requirements text as given
LEFT_OUT_FILE = "left-out.txt"  # requirement<TAB>why, one a line

Log = Callable[[str], None]
# Runs argv inside the image with the given wheelhouse directory mounted at
# CONTAINER_WHEELHOUSE; returns (exit code, output).
ContainerRunner = Callable[[Path, Sequence[str]], Tuple[int, str]]

CONTAINER_WHEELHOUSE = "/opt/sky-rs/wheelhouse"


class WheelhouseError(Exception):
    """The wheelhouse could not be made; the message says which step and why."""


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    """`$SKY_RS_MATRIX_CACHE`, else `$XDG_CACHE_HOME/sky-rs-matrix`, else `~/.cache/...`."""
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sky-rs-matrix"


def read_requirements(tests_root: Optional[Path]) -> str:
    """The text of `tests/requirements.txt`, else the default list, one requirement a line."""
    if tests_root is not None:
        path = tests_root / REQUIREMENTS_FILE
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return "\n".join(DEFAULT_REQUIREMENTS) + "\n"


def abi_tags(interp: Interpreter) -> Tuple[str, ...]:
    """The ABI tags pip may take wheels for: the interpreter's own, the stable ABI (CPython
    with the GIL only: PyPy and free-threaded builds cannot load abi3), none."""
    if interp.implementation == "pypy" or interp.free_threaded:
        return (interp.wheel_abi, "none")
    return (interp.abi, "abi3", "none")


def platforms_for(architecture: str) -> Tuple[str, ...]:
    return architectures.get(architecture).wheel_platforms


def wheelhouse_dir(
    root: Path, interp: Interpreter, requirements: str, architecture: str = "x86_64"
) -> Path:
    # wheel_abi is abi for CPython (the key of existing wheelhouses stays), pypy311_pp80 for PyPy;
    # the platform tags name the architecture (x86_64's keys stay as they were)
    parts = (interp.wheel_abi, *platforms_for(architecture), requirements)
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    suffix = "" if architecture == "x86_64" else f"-{architecture}"
    return root / "wheelhouse" / f"{interp.abi}{suffix}-{key}"


def download_command(
    pip: Sequence[str],
    interp: Interpreter,
    dest: Path,
    requirements: Sequence[str],
    architecture: str = "x86_64",
) -> List[str]:
    """`pip download` of `requirements` (arguments or `-r FILE`) for the target interpreter."""
    major, minor = interp.version.split(".")[:2]
    cmd = [
        *pip, "download", "--quiet", "--only-binary=:all:",
        "--python-version", f"{major}.{minor}", "--implementation", interp.wheel_implementation,
        "--dest", str(dest),
    ]  # fmt: skip
    for abi in abi_tags(interp):
        cmd += ["--abi", abi]
    for platform in platforms_for(architecture):
        cmd += ["--platform", platform]
    return cmd + list(requirements)


def dry_run_command(interp: Interpreter, pip_wheel_name: str) -> List[str]:
    """The in-image check that the wheelhouse satisfies the requirements for `interp`.

    In a throwaway venv, as a cell installs: a distribution's own Python refuses installs into
    itself (PEP 668), even dry runs.
    """
    house = CONTAINER_WHEELHOUSE
    install = [
        "/tmp/dry-run-venv/bin/python", f"{house}/{pip_wheel_name}/pip",
        "install", "--dry-run", "--no-index", "--find-links", house,
        "-r", f"{house}/{REQUIREMENTS_FILE}",
    ]  # fmt: skip
    make_venv = [interp.path, "-m", "venv", "--without-pip", "/tmp/dry-run-venv"]
    script = " ".join(map(shlex.quote, make_venv)) + " && " + " ".join(map(shlex.quote, install))
    return ["/bin/sh", "-c", script]


_MISSING = re.compile(
    r"(?:Could not find a version that satisfies the requirement|"
    r"No matching distribution found for)\s+(\S+)"
)


def missing_requirements(pip_output: str) -> List[str]:
    """Requirements a failed `--no-index` install could not find, in order, without repeats."""
    found: List[str] = []
    for match in _MISSING.finditer(pip_output):
        requirement = match.group(1)
        if requirement not in found:
            found.append(requirement)
    return found


# Run by the target interpreter with the pip wheel on sys.path: prints `applies: <requirement>`
# for each requirement of the file whose marker holds for this interpreter, marker removed (the
# prefix sets them apart from warnings a debug build prints). Options (-r, --index-url) are not
# requirements and are ignored.
MARKER_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from pip._vendor.packaging.requirements import Requirement
with open(sys.argv[2], encoding="utf-8") as lines:
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            req.marker = None
            print("applies:", req)
"""
APPLIES = "applies: "


def markers_command(interp: Interpreter, pip_wheel_name: str) -> List[str]:
    house = CONTAINER_WHEELHOUSE
    return [
        interp.path, "-I", "-c", MARKER_SCRIPT,
        f"{house}/{pip_wheel_name}", f"{house}/{SOURCE_FILE}",
    ]  # fmt: skip


def no_wheel_for_target(pip_output: str) -> bool:
    """pip download failed because no distribution fits the target (not a network error):
    none at all, or none whose dependencies have wheels (pytest-memray needs memray)."""
    return bool(_MISSING.search(pip_output)) or "ResolutionImpossible" in pip_output


def read_left_out(wheelhouse: Path) -> List[str]:
    """`requirement: why` for each requirement the wheelhouse had to leave out."""
    try:
        lines = (wheelhouse / LEFT_OUT_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [": ".join(line.split("\t", 1)) for line in lines if line.strip()]


def find_pip_wheel(directory: Path) -> Optional[Path]:
    wheels = sorted(directory.glob("pip-*.whl"))
    return wheels[-1] if wheels else None


def host_pip() -> List[str]:
    """The pip that downloads: the runner's own interpreter's."""
    return [sys.executable, "-m", "pip"]


def ensure_wheelhouse(
    interp: Interpreter,
    requirements: str,
    run_in_image: ContainerRunner,
    *,
    log: Log,
    root: Optional[Path] = None,
    pip: Optional[Sequence[str]] = None,
    architecture: str = "x86_64",
) -> Path:
    """A complete wheelhouse for `interp` on `architecture` (cached), or WheelhouseError.

    A requirement with no wheel for the target is left out with `no wheel for <abi>` (on
    x86_64) or `no wheel for <abi> on <architecture>` in LEFT_OUT_FILE."""
    root = root or cache_root()
    pip = list(pip or host_pip())
    dest = wheelhouse_dir(root, interp, requirements, architecture)
    target = interp.abi if architecture == "x86_64" else f"{interp.abi} on {architecture}"

    def download(requirements: Sequence[str]) -> List[str]:
        return download_command(pip, interp, dest, requirements, architecture)

    with cache.entry(dest, marker=COMPLETE_MARKER) as entry:
        if entry.record() is not None:
            return dest
        entry.start()
        (dest / SOURCE_FILE).write_text(requirements, encoding="utf-8")
        log(f"wheelhouse {dest.name}: downloading for Python {interp.version} ({target})")
        _download(download(["pip"]))
        pip_wheel = find_pip_wheel(dest)
        if pip_wheel is None:
            raise WheelhouseError(f"no pip wheel for Python {interp.version} was downloaded")

        code, output = run_in_image(dest, markers_command(interp, pip_wheel.name))
        if code != 0:
            raise WheelhouseError(
                f"evaluating the requirements' markers with {interp.path} failed (exit {code}): "
                + last_lines(output, 3)
            )
        applicable = [
            line[len(APPLIES) :].strip() for line in output.splitlines() if line.startswith(APPLIES)
        ]
        kept: List[str] = []
        left_out: List[str] = []
        for requirement in applicable:
            ok, out = _try_download(download([requirement]))
            if ok:
                kept.append(requirement)
            elif no_wheel_for_target(out):
                left_out.append(f"{requirement}\tno wheel for {target}: {last_lines(out)}")
                log(f"wheelhouse {dest.name}: left out {requirement}: no wheel for {target}")
            else:
                raise WheelhouseError(f"pip download {requirement} failed: {last_lines(out, 3)}")
        (dest / REQUIREMENTS_FILE).write_text("".join(r + "\n" for r in kept), encoding="utf-8")
        (dest / LEFT_OUT_FILE).write_text("".join(r + "\n" for r in left_out), encoding="utf-8")

        for _ in range(MAX_COMPLETION_ROUNDS):
            code, output = run_in_image(dest, dry_run_command(interp, pip_wheel.name))
            if code == 0:
                entry.complete()
                return dest
            missing = missing_requirements(output)
            if not missing:
                raise WheelhouseError(
                    f"dry-run install for {interp.path} failed (exit {code}): "
                    + last_lines(output, 3)
                )
            log(f"wheelhouse {dest.name}: completing with {', '.join(missing)}")
            _download(download(missing))
        raise WheelhouseError(
            f"wheelhouse for {interp.path} still incomplete after {MAX_COMPLETION_ROUNDS} rounds"
        )


def _try_download(cmd: Sequence[str]) -> Tuple[bool, str]:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WheelhouseError(f"pip download could not run: {exc}") from None
    return proc.returncode == 0, proc.stderr or proc.stdout


def _download(cmd: Sequence[str]) -> None:
    ok, out = _try_download(cmd)
    if not ok:
        raise WheelhouseError(f"pip download failed: {last_lines(out, 3)}")

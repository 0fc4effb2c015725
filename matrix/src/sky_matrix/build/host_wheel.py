"""The host wheel: built once with maturin, reused while the sources are unchanged.

The cache key is a hash of every file under rust/ (but target/) and python/,
plus pyproject.toml, Cargo.lock and README.md. Wheels live in
`.build-cache/wheels/<key>/`.

This module (and `build/cache.py`, its lock) is stdlib-only and runs on Python 3.8 as a
plain script, because tox environments (which may be 3.8) install the cached wheel with it:
`python matrix/src/sky_matrix/build/host_wheel.py install --project-root .`
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

try:
    from sky_matrix.build import cache
except ImportError:  # run as a plain script (`python -I .../host_wheel.py`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sky_matrix.build import cache

SOURCE_DIRS = ("rust", "python")
SOURCE_FILES = ("pyproject.toml", "Cargo.lock", "rust/Cargo.lock", "README.md")
# Build outputs and caches that live among the sources but are not sources.
EXCLUDED_DIRS = {"target", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".so")
WHEEL_DIST = "skypilot_rust"


class BuildError(Exception):
    """The wheel could not be built or found; the message says what to do."""


def _source_files(project_root: Path) -> Iterator[Path]:
    for name in SOURCE_FILES:
        path = project_root / name
        if path.is_file():
            yield path
    for top in SOURCE_DIRS:
        base = project_root / top
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
            for filename in sorted(filenames):
                if not filename.endswith(EXCLUDED_SUFFIXES):
                    yield Path(dirpath) / filename


def source_key(project_root: Path) -> str:
    """A hash of the sources the wheel is built from (paths and contents)."""
    digest = hashlib.sha256()
    for path in _source_files(project_root):
        rel = path.relative_to(project_root).as_posix()
        digest.update(rel.encode() + b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:20]


def cache_root(project_root: Path) -> Path:
    return project_root / ".build-cache"


def wheel_dir(project_root: Path, key: str) -> Path:
    return cache_root(project_root) / "wheels" / key


def cached_wheel(project_root: Path, key: Optional[str] = None) -> Optional[Path]:
    key = key or source_key(project_root)
    wheels = sorted(wheel_dir(project_root, key).glob(WHEEL_DIST + "-*.whl"))
    return wheels[-1] if wheels else None


def maturin_command() -> List[str]:
    try:
        import maturin  # noqa: F401
    except ImportError:
        found = shutil.which("maturin")
        if found:
            return [found]
        raise BuildError(
            "maturin is not installed: pip install 'maturin>=1.7,<2' (or run `nox -s build`)"
        ) from None
    return [sys.executable, "-m", "maturin"]


def build_wheel(
    project_root: Path,
    *,
    log: Callable[[str], None] = print,
    maturin: Optional[List[str]] = None,
    force: bool = False,
) -> Tuple[Path, bool, float]:
    """(wheel, was it cached, seconds spent). Concurrent callers build it once."""
    started = time.monotonic()
    if not (project_root / "pyproject.toml").is_file():
        raise BuildError(f"no pyproject.toml in {project_root}: pass the project root")
    key = source_key(project_root)
    target = wheel_dir(project_root, key)
    with cache.locked(target.parent / ".lock"):
        found = None if force else cached_wheel(project_root, key)
        if found is not None:
            log(f"wheel: reusing {found} (sources unchanged, key {key})")
            return found, True, time.monotonic() - started
        command = list(maturin or maturin_command())
        scratch = target.parent / f".building-{key}-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        build_log = cache_root(project_root) / f"build-{key}.log"
        argv = [*command, "build", "--release", "--out", str(scratch)]
        log(f"wheel: building with `{' '.join(argv)}` (log: {build_log})")
        try:
            code = run_logged(argv, project_root, build_log)
        except OSError as exc:
            raise BuildError(f"cannot run {argv[0]}: {exc}: install maturin") from None
        wheels = sorted(scratch.glob(WHEEL_DIST + "-*.whl"))
        if code != 0 or not wheels:
            shutil.rmtree(scratch, ignore_errors=True)
            last = _last_error_line(build_log)
            raise BuildError(
                f"the wheel does not build (maturin exit {code}): {last}"
                f" -- full log: {build_log}; fix the build, or pass --wheel PATH"
            )
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
        wheel = target / wheels[-1].name
        log(f"wheel: built {wheel} in {time.monotonic() - started:.1f} s")
        return wheel, False, time.monotonic() - started


def run_logged(argv: List[str], cwd: Path, log_path: Path) -> int:
    """Run a build in `cwd`, its whole output in `log_path`: its exit status (OSError when it
    cannot start)."""
    with open(log_path, "wb") as out:
        return subprocess.run(
            argv, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        ).returncode


def _last_error_line(log_path: Path) -> str:
    """The first compiler error or maturin cause: the line that says what is wrong."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no build log"
    for line in lines:
        text = line.strip()
        if (
            text.startswith(("error[", "error:", "Caused by:", "💥"))
            and "maturin failed" not in text
        ):
            return text[:300]
    return (lines[-1].strip() if lines else "no output")[:300]


def install_cached(project_root: Path) -> Path:
    """pip-install the wheel built for the current sources into this interpreter."""
    wheel = cached_wheel(project_root)
    if wheel is None:
        raise BuildError(
            "no wheel built for the current sources: run `tox -e build` or `nox -s build` first"
        )
    subprocess.run(install_command(sys.executable, wheel), check=True)
    return wheel


def install_command(python: str, wheel: Path) -> List[str]:
    """pip-install `wheel` alone, offline, over whatever is there: how every cell gets it."""
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    return [*pip, "--no-index", "--force-reinstall", "--no-deps", "--quiet", str(wheel)]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="host_wheel", description="Build, find or install the cached host wheel."
    )
    parser.add_argument("action", choices=("build", "path", "install", "key"))
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    root = args.project_root.resolve()
    try:
        if args.action == "key":
            print(source_key(root))
        elif args.action == "build":
            print(build_wheel(root, log=lambda m: print(m, file=sys.stderr))[0])
        elif args.action == "path":
            wheel = cached_wheel(root)
            if wheel is None:
                raise BuildError("no wheel built for the current sources: run `nox -s build`")
            print(wheel)
        else:
            print(f"installed {install_cached(root)}")
    except BuildError as exc:
        print(f"host_wheel: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"host_wheel: pip failed with status {exc.returncode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

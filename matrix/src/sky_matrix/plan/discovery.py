"""Finding this host's Python interpreters and describing each one.

Sources, in order of precedence: explicit `--python PATH`, the pyproject table,
pyenv's versions, then PATH. Every candidate is described by running it with a
tiny probe script (with a timeout), so a broken interpreter is reported, not
trusted. Only CPython >= 3.8 (not free-threaded: abi3 cannot load there) is
eligible; one interpreter is kept per label (`3.11`, `3.14d`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sky_matrix.core.errors import UsageError
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import version_key

# The interpreters a release must pass on; newer ones join when found.
PLANNED = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
MIN_VERSION = (3, 8)
PROBE_TIMEOUT = 20.0

# Runs on every interpreter we may meet, Python 2.7 included, hence no f-strings.
PROBE_SCRIPT = r"""
import json, platform, sys
try:
    import sysconfig
    gil_disabled = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
except Exception:
    gil_disabled = False
try:
    import importlib.util as iu
    has_venv = iu.find_spec("venv") is not None and iu.find_spec("ensurepip") is not None
except Exception:
    has_venv = False
print(json.dumps({
    "sky_matrix_probe": 1,
    "version": platform.python_version(),
    "version_info": list(sys.version_info[:3]),
    "implementation": platform.python_implementation().lower(),
    "abiflags": getattr(sys, "abiflags", ""),
    "debug": hasattr(sys, "gettotalrefcount"),
    "freethreaded": gil_disabled,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "has_venv": has_venv,
}))
"""

SOURCE_RANK = {"--python": 0, "pyproject": 1, "pyenv": 2, "PATH": 3}
_PATH_NAME = re.compile(r"^python(\d+(\.\d+)?[dt]?)?$")


@dataclasses.dataclass(frozen=True)
class Candidate:
    path: str
    source: str


@dataclasses.dataclass(frozen=True)
class Probe:
    """What the probe script printed, or why it could not be run."""

    candidate: Candidate
    data: Optional[Dict[str, object]]
    error: Optional[str]  # "broken: ..." when data is None


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A candidate that will not get cells, and why (shown by `--list`)."""

    path: str
    source: str
    version: Optional[str]
    reason: str


@dataclasses.dataclass
class Discovery:
    interpreters: Dict[str, Interpreter]  # label -> the chosen interpreter
    rejected: List[Rejected]
    explicit_labels: Tuple[str, ...]  # labels given by --python (they select too)

    def labels(self) -> List[str]:
        return sorted(self.interpreters, key=label_sort_key)


def label_sort_key(label: str) -> Tuple[int, ...]:
    """By version; at one version CPython, its debug, free-threaded builds, then PyPy."""
    pypy = label.startswith("pp")
    bare = label[2:] if pypy else label
    digits = bare.rstrip("dt")
    flags = bare[len(digits) :]
    try:
        version = tuple(int(part) for part in digits.split("."))
    except ValueError:
        return (999, 0)
    return (*version, int(pypy), ("t" in flags) * 2 + ("d" in flags))


def pyenv_root(env: Mapping[str, str]) -> Optional[Path]:
    """$PYENV_ROOT, else what `pyenv root` says, else None (no pyenv here)."""
    if env.get("PYENV_ROOT"):
        return Path(env["PYENV_ROOT"])
    pyenv = shutil.which("pyenv", path=env.get("PATH"))
    if not pyenv:
        return None
    try:
        out = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def pyenv_candidates(root: Optional[Path]) -> List[Candidate]:
    if root is None:
        return []
    found = []
    for version_dir in sorted((root / "versions").glob("*")):
        binary = version_dir / "bin" / "python3"
        if not binary.exists():
            binary = version_dir / "bin" / "python"
        if binary.exists():
            found.append(Candidate(str(binary), "pyenv"))
    return found


def path_candidates(env: Mapping[str, str], skip_dirs: Iterable[Path] = ()) -> List[Candidate]:
    skip = {os.path.realpath(d) for d in skip_dirs}
    found = []
    for entry in env.get("PATH", "").split(os.pathsep):
        if not entry or os.path.realpath(entry) in skip:
            continue
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for name in names:
            full = os.path.join(entry, name)
            if _PATH_NAME.match(name) and os.path.isfile(full) and os.access(full, os.X_OK):
                found.append(Candidate(full, "PATH"))
    return found


def probe(candidate: Candidate, timeout: float = PROBE_TIMEOUT) -> Probe:
    try:
        proc = subprocess.run(
            [candidate.path, "-E", "-s", "-c", PROBE_SCRIPT],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return Probe(candidate, None, f"broken: probe timed out after {timeout:g} s")
    except OSError as exc:
        return Probe(candidate, None, f"broken: cannot run it: {exc.strerror or exc}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        return Probe(candidate, None, f"broken: probe exited with status {proc.returncode}: {tail}")
    for line in reversed(proc.stdout.splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("sky_matrix_probe") == 1:
            return Probe(candidate, data, None)
    return Probe(candidate, None, "broken: probe printed no description")


def describe(probe_result: Probe) -> Tuple[Optional[Interpreter], Optional[str]]:
    """The interpreter, or the reason it is not eligible."""
    data = probe_result.data
    if data is None:
        return None, probe_result.error
    impl = str(data["implementation"])
    info = [int(part) for part in data["version_info"]]  # type: ignore[union-attr]
    version = str(data["version"])
    if impl != "cpython":
        return None, f"unsupported: {impl} (CPython only)"
    if tuple(info[:2]) < MIN_VERSION:
        return None, "unsupported: < 3.8"
    if data.get("freethreaded"):
        return None, "unsupported: free-threaded build (an abi3 wheel cannot load there)"
    if not data.get("has_venv"):
        return None, "unsupported: no venv/ensurepip module (install its -venv package)"
    abiflags = str(data.get("abiflags") or "")
    interp = Interpreter(
        path=probe_result.candidate.path,
        version=version,
        implementation=impl,
        abi=f"cp{info[0]}{info[1]}{abiflags}",
        debug=bool(data["debug"]),
        source=probe_result.candidate.source,
    )
    return interp, None


def discover(
    *,
    explicit: Sequence[str] = (),
    configured: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    use_pyenv: bool = True,
    use_path: bool = True,
    timeout: float = PROBE_TIMEOUT,
) -> Discovery:
    """Probe every candidate; explicit or configured ones that fail are a UsageError."""
    env = os.environ if env is None else env
    for path in explicit:
        if not os.path.exists(path):
            raise UsageError(f"--python {path}: no such file: pass an interpreter's path")
    for path in configured:
        if not os.path.exists(path):
            raise UsageError(
                f"[tool.sky-rs-matrix] pythons: {path}: no such file: fix pyproject.toml"
            )
    root = pyenv_root(env) if use_pyenv else None
    candidates: List[Candidate] = [Candidate(p, "--python") for p in explicit]
    candidates += [Candidate(p, "pyproject") for p in configured]
    candidates += pyenv_candidates(root)
    if use_path:
        shims = [root / "shims"] if root else []
        candidates += path_candidates(env, skip_dirs=shims)

    unique: List[Candidate] = []
    seen_paths: Dict[str, Candidate] = {}
    for cand in candidates:
        real = os.path.realpath(cand.path)
        if real in seen_paths:
            continue
        seen_paths[real] = cand
        unique.append(cand)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        probes = list(pool.map(lambda c: probe(c, timeout), unique))

    rejected: List[Rejected] = []
    chosen: Dict[str, Interpreter] = {}
    seen_exec: Dict[Tuple[str, str], str] = {}
    explicit_labels: List[str] = []
    for result in probes:
        interp, why = describe(result)
        cand = result.candidate
        version = str(result.data["version"]) if result.data else None
        if interp is None:
            if cand.source == "--python":
                raise UsageError(f"--python {cand.path}: {why}: pass a working CPython >= 3.8")
            if cand.source == "pyproject":
                raise UsageError(
                    f"[tool.sky-rs-matrix] pythons: {cand.path}: {why}: fix pyproject.toml"
                )
            rejected.append(Rejected(cand.path, cand.source, version, str(why)))
            continue
        # The same binary under two names (python3 -> python3.11) is one interpreter.
        exec_key = (os.path.realpath(str(result.data["executable"])), interp.version)  # type: ignore[index]
        if exec_key in seen_exec:
            rejected.append(
                Rejected(cand.path, cand.source, version, f"same as {seen_exec[exec_key]}")
            )
            continue
        seen_exec[exec_key] = cand.path
        if cand.source == "--python":
            explicit_labels.append(interp.short)
        label = interp.short
        held = chosen.get(label)
        if held is None or _better(interp, held):
            if held is not None:
                rejected.append(
                    Rejected(held.path, held.source, held.version, f"shadowed by {interp.path}")
                )
            chosen[label] = interp
        else:
            rejected.append(Rejected(cand.path, cand.source, version, f"shadowed by {held.path}"))
    return Discovery(chosen, rejected, tuple(dict.fromkeys(explicit_labels)))


def _better(new: Interpreter, held: Interpreter) -> bool:
    new_rank, held_rank = SOURCE_RANK.get(new.source, 9), SOURCE_RANK.get(held.source, 9)
    if new_rank != held_rank:
        return new_rank < held_rank
    return version_key(new.version) > version_key(held.version)


def planned_labels(found: Iterable[str]) -> List[str]:
    """3.8-3.13, plus any newer (or debug) label that was found."""
    labels = set(PLANNED) | set(found)
    return sorted(labels, key=label_sort_key)

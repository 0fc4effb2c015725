"""`docker run` and the calls around a container: one argv builder, the mounts, the labels, the
in-container paths, and the clean-up. Every container of the runner (a cell, a wheelhouse check,
an image probe, a soak run) is started from `run_argv`; nothing else spells `docker run`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from sky_matrix.build.wheelhouses import CONTAINER_WHEELHOUSE

# Where the runner's inputs appear inside a container (mounted read-only).
CONTAINER_ROOT = "/opt/sky-rs"
WHEEL_DIR = f"{CONTAINER_ROOT}/wheel"  # the sky_rs wheel under test, by its own file name
WHEELHOUSE_PATH = CONTAINER_WHEELHOUSE  # the test dependencies (build/wheelhouses.py)
LABEL_PREFIX = "org.skypilot-rust.matrix"

DOCKER_TIMEOUT = 120.0  # a docker call that is not a container's own run


class Mount(NamedTuple):
    source: Path
    target: str
    read_only: bool = True


def wheel_path(wheel: Path) -> str:
    """Where `wheel` is mounted in a container (see `wheel_mount`)."""
    return f"{WHEEL_DIR}/{wheel.name}"


def wheel_mount(wheel: Path) -> Mount:
    return Mount(wheel, wheel_path(wheel))


def bind_mount(source: Path, target: str, *, read_only: bool) -> str:
    """A `--mount` value (`--volume` would split a cell directory like `docker:sid-...` at ':').

    `--mount` is read as one CSV record, so a field holding a comma or a quote is quoted.
    """
    fields = ["type=bind", f"source={source}", f"target={target}"]
    if read_only:
        fields.append("readonly")
    quoted = ['"' + f.replace('"', '""') + '"' if ("," in f or '"' in f) else f for f in fields]
    return ",".join(quoted)


def run_argv(
    image: str,
    command: Sequence[str] = (),
    *,
    name: Optional[str] = None,
    remove: bool = False,
    labels: Optional[Mapping[str, str]] = None,
    init: bool = False,
    user: Optional[str] = None,
    workdir: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    mounts: Sequence[Mount] = (),
    entrypoint: Optional[str] = None,
    extra: Sequence[str] = (),
) -> List[str]:
    """A whole `docker run` command line. Always without network: no container of the runner
    may reach one (tests, wheelhouse checks and probes run offline, from mounted inputs)."""
    args = ["docker", "run"]
    if remove:
        args.append("--rm")
    if name is not None:
        args += ["--name", name]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    if init:
        args.append("--init")  # a real PID 1 that reaps the suite's orphans and forwards signals
    args += ["--network", "none"]
    if user is not None:
        args += ["--user", user]
    if workdir is not None:
        args += ["--workdir", workdir]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    for mount in mounts:
        source = Path(mount.source).resolve()
        args += ["--mount", bind_mount(source, mount.target, read_only=mount.read_only)]
    args += list(extra)  # security options, a profile's limits
    if entrypoint is not None:
        args += ["--entrypoint", entrypoint]
    return [*args, image, *command]


def docker(args: Sequence[str], timeout: float = DOCKER_TIMEOUT) -> Tuple[int, str]:
    """(exit code, stdout + stderr) of `docker ARGS`; 124 when it timed out, 127 when docker
    could not run. Never raises."""
    try:
        proc = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return 124, f"docker {args[0]} timed out after {timeout:.0f}s"
    except OSError as exc:
        return 127, f"docker could not run: {exc}"
    return proc.returncode, proc.stdout + proc.stderr


def run(argv: Sequence[str], timeout: float = DOCKER_TIMEOUT) -> Tuple[int, str]:
    """Run a `run_argv` command to its end: (exit code, output)."""
    assert argv[:2] == ["docker", "run"], argv
    return docker(argv[1:], timeout)


def start(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a `run_argv` command in the foreground (its output on this terminal)."""
    assert argv[:2] == ["docker", "run"], argv
    return subprocess.Popen(list(argv))


def run_with_wheelhouse(
    image: str, wheelhouse: Path, argv: Sequence[str], timeout: float = 600
) -> Tuple[int, str]:
    """`argv` in `image` with `wheelhouse` at WHEELHOUSE_PATH: build/wheelhouses' runner."""
    mounts = [Mount(wheelhouse, WHEELHOUSE_PATH)]
    return run(run_argv(image, argv, remove=True, mounts=mounts), timeout)


def run_building_env(
    image: str,
    wheelhouse: Path,
    env_dir: Path,
    env_path: str,
    argv: Sequence[str],
    timeout: float = 1800,
) -> Tuple[int, str]:
    """`argv` in `image` with the wheelhouse mounted and `env_dir` writable at `env_path`:
    build/container_envs' builder (a prepared test environment is made inside the image)."""
    mounts = [Mount(wheelhouse, WHEELHOUSE_PATH), Mount(env_dir, env_path, read_only=False)]
    return run(run_argv(image, argv, remove=True, mounts=mounts), timeout)


def state(name: str) -> Optional[Dict[str, Any]]:
    """`docker inspect`'s State of a container (ExitCode, OOMKilled, ...), None when unknown."""
    code, out = docker(["inspect", "--format", "{{json .State}}", name])
    if code != 0:
        return None
    try:
        found = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return found if isinstance(found, dict) else None


def kill(name: str) -> None:
    docker(["kill", name])


def stop(name: str, grace: float = 30) -> None:
    """SIGTERM to the container's PID 1 (with `--init`, forwarded), SIGKILL after `grace`."""
    docker(["stop", "--time", f"{grace:.0f}", name])


def remove(name: str) -> None:
    docker(["rm", "--force", name])


def run_logged(
    argv: Sequence[str], name: str, log_path: Path, timeout: float, *, kill_wait: float = 60.0
) -> Tuple[Optional[int], bool, Optional[Dict[str, Any]]]:
    """Run container `name` (`argv` from `run_argv`), its output appended to `log_path`, killed
    at `timeout` seconds: (exit code of `docker run`, timed out, its State). Then removed."""
    timed_out = False
    try:
        with open(log_path, "ab") as log:
            # A session of its own: a terminal's Ctrl-C to the runner's process group does not
            # reach the CLI (which would pass it into the container); the runner stops the
            # container itself (remove_containers_labelled) and records the cell as interrupted.
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            try:
                code: Optional[int] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill(name)
                try:
                    code = proc.wait(timeout=kill_wait)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
            finally:
                if proc.poll() is None:  # interrupted: don't leave the CLI behind
                    proc.kill()
                    proc.wait()
        return code, timed_out, state(name)
    finally:
        remove(name)


def remove_containers_labelled(label: str, value: Optional[str] = None) -> List[str]:
    """Remove every container (running or not) carrying `label` (`=value` when given): the
    clean-up of an interrupted run. The ids removed."""
    selector = label if value is None else f"{label}={value}"
    code, out = docker(["ps", "--all", "--quiet", "--filter", f"label={selector}"])
    ids = out.split() if code == 0 else []
    if ids:
        docker(["rm", "--force", *ids])
    return ids

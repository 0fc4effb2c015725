"""One cell in a container: `docker run` of the cell driver, and what came out of it.

The container starts as root with no network; `docker/cell_driver.py` (mounted read-only) does
any root-only set-up of the profile, then as the cell's user copies the read-only suite to a
temporary directory, makes a fresh venv layered on the image's prepared test environment
(`build/container_envs.py`: the test dependencies, installed once per image and interpreter from
the host's wheelhouse and mounted read-only), installs the wheel into it `--no-index`, and runs
pytest. Results (driver.json, JUnit XML, the
suite's stats files) come back through the mounted cell directory; the log is the container's
output. A container that crashes, hangs (`docker kill` at the wall-clock limit) or is OOM-killed
(`docker inspect` State.OOMKilled) is that cell's failure, with the reason.

Nothing here raises for a bad environment: no docker, a failed image, a missing interpreter or
a daemon that refuses a profile's flags make the cell `skipped` or `error` with the reason.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sky_matrix.build import container_envs, wheelhouses
from sky_matrix.build.manylinux_wheel import wheel_glibc
from sky_matrix.config.architectures import host_architecture
from sky_matrix.config.profiles import PROFILES, Profile
from sky_matrix.config.suites import SUITES
from sky_matrix.core.model import Cell, CellResult, Interpreter
from sky_matrix.core.text import last_lines
from sky_matrix.docker import containers, emulation as emulation_, images
from sky_matrix.docker.containers import CONTAINER_ROOT, Mount
from sky_matrix.execute import outcome
from sky_matrix.execute.cell_env import cell_environment

DRIVER_PATH = f"{CONTAINER_ROOT}/cell_driver.py"
SUITE_PATH = f"{CONTAINER_ROOT}/suite"
CELL_PATH = "/cell"
CELL_LABEL = f"{containers.LABEL_PREFIX}.cell"
RUN_LABEL = f"{containers.LABEL_PREFIX}.run"  # the run's id: an interrupted run removes its own

LOG_FILE = "log.txt"
CONFIG_FILE = "cell.json"
DRIVER_RESULT = "driver.json"
INFO_FILE = "sky-rs-info.json"
JUNIT_FILE = "junit.xml"
# Files a previous run of the same cell may have left; removed before the container starts.
CELL_OUTPUTS = (
    LOG_FILE, CONFIG_FILE, DRIVER_RESULT, INFO_FILE, JUNIT_FILE, "first-test",
    outcome.CPU_USAGE_FILE,
)  # fmt: skip

KILL_WAIT = 60.0  # seconds docker gets to report a killed container


# --------------------------------------------------------------------------- pure parts


def container_name(cell: Cell) -> str:
    """A unique, docker-valid name that still says which cell it is."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "_", cell.id).strip("_.-")[:80]
    return f"sky-rs-{slug}-{uuid.uuid4().hex[:8]}"


def cell_config(
    interp: Interpreter,
    user: str,
    profile: Profile,
    wheel: Path,
    pytest_args: Sequence[str],
    test_env_site_dirs: Sequence[str] = (),
) -> Dict[str, Any]:
    """The driver's instructions (written to the cell directory as cell.json).

    With `test_env_site_dirs` (the prepared environment mounted at CONTAINER_ENV_PATH), the
    driver layers its fresh venv on them and installs only the wheel; without, it installs the
    test requirements from the wheelhouse too."""
    return {
        "python": interp.path,
        "user": user,
        "hidepid": profile.hidepid,
        "wheel": containers.wheel_path(wheel),
        "wheelhouse": containers.WHEELHOUSE_PATH,
        "test_env_site_dirs": list(test_env_site_dirs),
        "suite": SUITE_PATH,
        "pytest_args": list(pytest_args),
    }


def docker_run_args(
    *,
    name: str,
    cell: Cell,
    interp: Interpreter,
    image_tag: str,
    profile: Profile,
    user: str,
    docker_dir: Path,
    wheel: Path,
    wheelhouse: Path,
    suite_dir: Path,
    cell_dir: Path,
    run_id: Optional[str] = None,
    test_env: Optional[Path] = None,
    extra_env: Optional[Mapping[str, str]] = None,
) -> List[str]:
    """The whole `docker run` command of one cell (`extra_env`: variables beyond the ones
    every cell gets, such as an emulated platform's sizes)."""
    mounts = [
        Mount(docker_dir / "cell_driver.py", DRIVER_PATH),
        Mount(suite_dir, SUITE_PATH),
        containers.wheel_mount(wheel),
        Mount(wheelhouse, containers.WHEELHOUSE_PATH),
        *([Mount(test_env, container_envs.CONTAINER_ENV_PATH)] if test_env else []),
        Mount(cell_dir, CELL_PATH, read_only=False),
    ]
    return containers.run_argv(
        image_tag,
        [interp.path, DRIVER_PATH, f"{CELL_PATH}/{CONFIG_FILE}"],
        name=name,
        labels={CELL_LABEL: cell.id, **({RUN_LABEL: run_id} if run_id else {})},
        init=True,
        user="0:0",  # the driver needs root for set-up; it drops to `user` itself
        workdir="/tmp",
        # SKY_RS_MATRIX_CELL_DIR is set by the driver: the copy the dropped user can write.
        env={**cell_environment(cell, user=user, wheel=wheel.name), **(extra_env or {})},
        mounts=mounts,
        # no setuid way back to root after the drop; then the profile's limits and options
        extra=[
            *("--security-opt", "no-new-privileges"),
            *("--tmpfs", SCRATCH_TMPFS),
            *profile.run_args(docker_dir),
        ],
    )


# The cell's /tmp (its venv, the suite's copy, every test's files) on a tmpfs, as writable and
# executable as the image's /tmp was. On the image's own file system every read of a test file
# went through Docker's storage driver: with fuse-overlayfs (this host's) its daemon spent ~9 %
# of a core beside each stability cell, whose exit-stress children hash a 1 MiB file in /tmp.
SCRATCH_TMPFS = "/tmp:rw,exec,nosuid,nodev,mode=1777"


def parse_glibc(text: Optional[str]) -> Optional[Tuple[int, int]]:
    match = re.match(r"^\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def wheel_fits_image(wheel: Path, image_glibc: Optional[str]) -> Optional[str]:
    """Why the wheel cannot install in an image with this glibc, or None when it can."""
    if wheel.name.endswith("-none-any.whl"):
        return None  # pure Python: installs anywhere
    needs = wheel_glibc(wheel.name)
    has = parse_glibc(image_glibc)
    if needs is None:
        return f"{wheel.name} has no manylinux tag: it installs in no container"
    if has is not None and needs > has:
        return (
            f"{wheel.name} needs glibc {needs[0]}.{needs[1]} but the image has"
            f" {has[0]}.{has[1]}: build the container wheel for manylinux2014"
        )
    return None


def classify_container(
    *,
    exit_code: Optional[int],
    timed_out: bool,
    oom_killed: bool,
    limit: float,
    driver: Optional[Mapping[str, Any]],
    counts: Dict[str, int],
    log_text: str,
    info: Optional[Mapping[str, Any]],
    interp_path: str,
    wheel_name: str,
) -> Tuple[str, str, Optional[str]]:
    """(verdict, reason, signal name) of a finished container cell."""
    if timed_out:
        return (
            "fail",
            f"hung: still running at the {limit:g} s wall-clock limit (container killed)",
            None,
        )
    if oom_killed:
        return "fail", "OOM-killed: the container hit its memory limit (State.OOMKilled)", "SIGKILL"
    if driver is None:
        if exit_code in (126, 127):
            return "error", f"{interp_path} cannot run in the image (exit {exit_code})", None
        sig = outcome.died_of(exit_code)
        if sig is not None:
            name = outcome.signal_name(sig)
            return "fail", f"crashed: the container died of {name} before reporting", name
        return "error", f"the container exited {exit_code} before the cell driver reported", None
    stage = str(driver.get("stage", "setup"))
    if stage != "tests":
        return "error", f"{stage}: {driver.get('error') or 'failed'}", None
    if driver.get("error") and driver.get("returncode") is None:
        return "error", f"tests: {driver['error']}", None
    returncode = driver.get("returncode")
    verdict, reason, sig = outcome.classify(
        returncode if isinstance(returncode, int) else None,
        timed_out=False,
        wall_limit=limit,
        counts=counts,
        log_text=log_text,
    )
    if verdict in ("pass", "skipped"):
        problem = outcome.installed_wheel_problem(info, wheel_name)
        if problem:
            return "fail", problem, None
    return verdict, reason, sig


_DISTRIBUTION = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def missing_required(suite: str, left_out: Sequence[str], target: str) -> Optional[str]:
    """`<package> has no wheel for <target>` when the wheelhouse left out a requirement the
    suite cannot run without (Suite.requires), else None. `left_out` as read_left_out gives."""
    needed = {_normalized(name) for name in SUITES[suite].requires} if suite in SUITES else set()
    for entry in left_out:
        match = _DISTRIBUTION.match(entry)
        if match and _normalized(match.group(1)) in needed:
            return f"{match.group(1)} has no wheel for {target}"
    return None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def emulation_environment(factor: Optional[emulation_.Factor]) -> Dict[str, str]:
    """What an emulated cell's tests are told: the architecture, the measured factor, and the
    exit-stress size for emulation (emulation.EMULATED_EXIT_STRESS_RATE)."""
    if factor is None:
        return {}
    exits = emulation_.exits_for(
        emulation_.EMULATED_EXIT_STRESS_RATE, emulation_.EMULATED_EXIT_STRESS_CONFIDENCE
    )
    return {
        "SKY_RS_MATRIX_EMULATED": factor.architecture,
        "SKY_RS_MATRIX_EMULATION_FACTOR": f"{factor.factor:g}",
        "SKY_RS_EXIT_STRESS_EXITS": str(exits),
    }


def find_requirements(suite_dir: Path) -> Optional[Path]:
    """tests/requirements.txt of the staged suite, or of a directory above it."""
    for base in (suite_dir, *suite_dir.parents):
        for candidate in (base / "tests" / "requirements.txt", base / "requirements.txt"):
            if candidate.is_file() and candidate.parent.name == "tests":
                return candidate
    return None


# --------------------------------------------------------------------------- docker calls


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _refused_reason(image_tag: str, profile: Profile, docker_dir: Path, log_text: str) -> str:
    """After `docker run` exit 125: is it the profile's flags (skip) or docker itself (error)?"""
    message = last_lines(log_text)
    if not profile.docker_args:
        return f"error: docker run failed: {message}"
    code, _out = containers.run(containers.run_argv(image_tag, remove=True, entrypoint="/bin/true"))
    if code == 0:
        flags = " ".join(profile.run_args(docker_dir))
        return f"skipped: docker refuses profile {profile.name} ({flags}): {message}"
    return f"error: docker run failed: {message}"


# --------------------------------------------------------------------------- the entry point


def run_cell(
    cell: Cell,
    interp: Interpreter,
    image: images.ImageBuild,
    wheel: Path,
    suite_dir: Path,
    cell_dir: Path,
    timeout: float,
    pytest_args: List[str],
    run_id: Optional[str] = None,
    notes: Sequence[str] = (),
    emulation: Optional[emulation_.Factor] = None,
) -> CellResult:
    """Run one cell in `image`; the result, never an exception for a bad environment.

    `notes` are written to the cell's log after its header (why it runs fewer workers).
    `emulation`: the image runs through qemu this much slower (the caller scaled `timeout`
    and pytest's limit by it); recorded with the result, and the tests are told.

    `run_id` labels the container (RUN_LABEL) so that `remove_cell_containers(run_id)` finds it.

    `suite_dir` is the directory pytest runs from (the runner's staged copy of the tests);
    `pytest_args` are passed as given and name the test paths relative to it.
    """
    started = time.monotonic()
    started_wall = time.time()
    cell_dir.mkdir(parents=True, exist_ok=True)
    for name in CELL_OUTPUTS:
        (cell_dir / name).unlink(missing_ok=True)
    for stale in cell_dir.glob("suite-stats-*.json"):
        stale.unlink()
    log_path = cell_dir / LOG_FILE
    result = CellResult(cell=cell, verdict="error", interpreter=interp, log_path=str(log_path))
    result.extra["image"] = image.tag
    spec = images.IMAGES.get(image.name)
    architecture = image.architecture or (spec.machine if spec else host_architecture())
    slower = emulation.factor if emulation is not None else 1.0  # scales the set-up's limits
    result.extra["architecture"] = architecture
    if emulation is not None:
        result.extra["emulation"] = emulation.to_json()

    def finish(verdict: str, reason: Optional[str]) -> CellResult:
        result.verdict, result.reason = verdict, reason
        result.durations["total"] = round(time.monotonic() - started, 3)
        if verdict != "pass" and log_path.exists():
            result.log_tail = outcome.tail(log_path.read_text("utf-8", errors="replace"))
        return result

    def note(line: str) -> None:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")

    usable, why = images.docker_status()
    if not usable:
        return finish("skipped", why)
    if not image.ok or not image.tag:
        return finish("skipped", f"image {image.name} unavailable: {image.error}")
    profile = PROFILES.get(cell.profile)
    if profile is None:
        return finish("error", f"unknown profile {cell.profile!r}")
    if cell.suite not in profile.suites:
        return finish("skipped", f"profile {profile.name} does not apply to suite {cell.suite}")
    if image.pythons.get(interp.short) != interp:
        return finish("skipped", f"Python {interp.short} ({interp.path}) not in image {image.name}")
    if not wheel.is_file():
        return finish("error", f"container wheel {wheel} does not exist")
    misfit = wheel_fits_image(wheel, image.glibc)
    if misfit:
        return finish("fail", misfit)
    docker_dir = images.find_docker_dir()
    if docker_dir is None:
        return finish("error", "the project's docker/ directory was not found")

    run_dir, test_args = suite_dir, list(pytest_args)

    user = profile.user_for(cell.suite)
    note(f"cell {cell.id}\nimage {image.tag}\ninterpreter {interp.path} ({interp.version})")
    note(f"wheel {wheel}\nprofile {profile.name}: {' '.join(profile.docker_args) or '-'}")
    for line in notes:
        note(line)
    requirements_path = find_requirements(run_dir)
    requirements = wheelhouses.read_requirements(
        requirements_path.parent if requirements_path else None
    )
    t0 = time.monotonic()
    try:
        wheelhouse = wheelhouses.ensure_wheelhouse(
            interp,
            requirements,
            lambda house, argv: containers.run_with_wheelhouse(
                image.tag or "", house, argv, timeout=600 * slower
            ),
            log=note,
            architecture=architecture,
        )
    except wheelhouses.WheelhouseError as exc:
        return finish("error", f"wheelhouse: {exc}")
    result.durations["wheelhouse"] = round(time.monotonic() - t0, 3)
    left_out = wheelhouses.read_left_out(wheelhouse)
    if left_out:
        result.extra["left_out_requirements"] = left_out
        note("test requirements left out (no wheel for this target): " + "; ".join(left_out))
    target = interp.abi if architecture == "x86_64" else architecture
    unmet = missing_required(cell.suite, left_out, target)
    if unmet:
        return finish("skipped", unmet)

    pip_wheel = wheelhouses.find_pip_wheel(wheelhouse)
    if pip_wheel is None:
        return finish("error", f"wheelhouse {wheelhouse} has no pip wheel")
    t_env = time.monotonic()
    test_env = container_envs.env_dir(
        wheelhouses.cache_root(), image.name, image.tag, interp, wheelhouse
    )
    try:
        site_dirs, reused, _seconds = container_envs.ensure_container_env(
            test_env, interp, containers.WHEELHOUSE_PATH, pip_wheel.name,
            lambda env, argv: containers.run_building_env(
                image.tag or "", wheelhouse, env, container_envs.CONTAINER_ENV_PATH, argv,
                timeout=1800 * slower,
            ),
            log=note,
        )  # fmt: skip
    except container_envs.ContainerEnvError as exc:
        return finish("error", f"test environment: {exc}")
    result.durations["test_env"] = round(time.monotonic() - t_env, 3)
    result.extra["test_env"] = {"path": str(test_env), "reused": reused}

    (cell_dir / CONFIG_FILE).write_text(
        json.dumps(cell_config(interp, user, profile, wheel, test_args, site_dirs)),
        encoding="utf-8",
    )
    name = container_name(cell)
    argv = docker_run_args(
        name=name, cell=cell, interp=interp, image_tag=image.tag, profile=profile, user=user,
        docker_dir=docker_dir, wheel=wheel, wheelhouse=wheelhouse, suite_dir=run_dir,
        cell_dir=cell_dir, run_id=run_id, test_env=test_env,
        extra_env=emulation_environment(emulation),
    )  # fmt: skip
    result.extra.update(container=name, user=user, docker_args=list(profile.docker_args))
    note("$ " + " ".join(argv) + "\n")
    t1 = time.monotonic()
    exit_code, timed_out, state = _run_container(argv, name, log_path, timeout)
    result.durations["container"] = round(time.monotonic() - t1, 3)

    log_text = log_path.read_text("utf-8", errors="replace")
    driver = _read_json(cell_dir / DRIVER_RESULT)
    if exit_code == 125 and driver is None and not timed_out:
        verdict, _, reason = _refused_reason(image.tag, profile, docker_dir, log_text).partition(
            ": "
        )
        return finish(verdict, reason)
    oom = bool(state and state.get("OOMKilled"))
    if state is not None and isinstance(state.get("ExitCode"), int) and not timed_out:
        exit_code = state["ExitCode"]
    result.returncode = (driver or {}).get("returncode", exit_code)
    junit_path = cell_dir / JUNIT_FILE
    counts = outcome.read_counts(junit_path) or {}
    if junit_path.exists():
        result.junit_path = str(junit_path)
    result.counts = counts
    for key, value in ((driver or {}).get("durations") or {}).items():
        result.durations[key] = value
    cpu = outcome.read_cpu_usage(cell_dir)
    if cpu is not None:
        result.extra["cpu"] = cpu
    first = outcome.read_first_test(cell_dir)
    if first is not None:  # the run's "first test after" counts container cells too
        result.extra["first_test_at"] = first
        result.extra["first_test_after"] = round(first - started_wall, 3)
    info = _read_json(cell_dir / INFO_FILE)
    result.stats = {
        "backend_info": (info or {}).get("backend_info"),
        "fresh": (info or {}).get("stats"),
        "suite": outcome.merge_suite_stats(cell_dir),
    }
    verdict, reason, sig = classify_container(
        exit_code=exit_code, timed_out=timed_out, oom_killed=oom, limit=timeout, driver=driver,
        counts=counts, log_text=log_text, info=info, interp_path=interp.path, wheel_name=wheel.name,
    )  # fmt: skip
    result.signal = sig or (driver or {}).get("signal")
    return finish(verdict, reason)


def remove_cell_containers(run_id: Optional[str] = None) -> int:
    """Remove the cell containers still there; how many were removed.

    With `run_id`, only that run's (an interrupted run cleans up after itself and leaves other
    runs on the same daemon alone); without, every container with the cell label."""
    if run_id:
        return len(containers.remove_containers_labelled(RUN_LABEL, run_id))
    return len(containers.remove_containers_labelled(CELL_LABEL))


def _run_container(
    argv: Sequence[str], name: str, log_path: Path, timeout: float
) -> Tuple[Optional[int], bool, Optional[Dict[str, Any]]]:
    """(exit code of `docker run`, timed out, container State). The container is removed."""
    return containers.run_logged(argv, name, log_path, timeout, kill_wait=KILL_WAIT)

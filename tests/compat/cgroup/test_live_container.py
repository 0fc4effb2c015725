"""Live limits in containers: the cell's own profile, `docker run` flags, and `docker update`.

``test_answers_under_this_profile`` runs wherever the suite runs. Inside a container cell the
profile (``SKY_RS_MATRIX_PROFILE``) set the limits with `docker run` flags, and the answers
must be the ones in ``PROFILE_ANSWERS`` (``--cpus 1.5`` -> 1, ``--cpus 0.5`` -> 1,
``--cpuset-cpus 0`` -> 1, ``--memory 512m`` -> 0.5 GiB); everywhere they must also equal the
contract's answer computed from this process's own limit files, affinity and online CPUs.

The docker tests run on the host, where they start containers themselves from the image named
by ``SKY_RS_TEST_IMAGE`` (the matrix runner passes one of its built images), with the
installed package mounted read-only: ``--cpus 3`` is refused by Docker on a host with fewer
CPUs, so the 3-CPU quota is given as ``--cpu-quota``; and ``docker update`` changes the
limits of a running container whose Python reports both backends' answers every 0.2 s: the
answers must follow, since nothing may be cached.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from typing import IO, Any, Dict, Iterator, List, Tuple

import cgroup_live
import pytest
from live_answers import ANSWERS_PROGRAM, measure_in_cgroups, record_row

import sky_rs

PROFILE = os.environ.get("SKY_RS_MATRIX_PROFILE", "default")
PLATFORM = os.environ.get("SKY_RS_MATRIX_PLATFORM", "host")
IMAGE = os.environ.get("SKY_RS_TEST_IMAGE", "")
MIB = 1024**2
# What the issue fixes for each container profile (the matrix's profile table sets the flags).
PROFILE_ANSWERS: Dict[str, Dict[str, float]] = {
    "cpus-1.5": {"cpus": 1},
    "cpus-0.5": {"cpus": 1},
    "cpuset-0": {"cpus": 1, "affinity": 1},
    "memory-512m": {"memory_gb": 0.5},
}
CONTAINER_PACKAGE_ROOT = "/opt/sky-rs-live"
UPDATE_DEADLINE = 15.0  # seconds for the answers to follow a `docker update`
_NAMES = itertools.count()


def contract_answers(affinity: int) -> Dict[str, float]:
    """The contract's answers for this process, from its own cgroup files (not from sky_rs)."""
    physical = cgroup_live.physical_memory()
    limits = [os.sysconf("SC_NPROCESSORS_ONLN"), affinity]
    cpu = cgroup_live.find_hierarchy("cpu")
    if cpu is not None:
        limit = cgroup_live.read_cpu_limit(cpu, cpu.levels())
        if limit is not None:
            limits.append(limit)
    memory_limit = None
    memory = cgroup_live.find_hierarchy("memory")
    if memory is not None:
        memory_limit = cgroup_live.read_memory_limit(memory, memory.levels(), physical)
    return {
        "cpus": max(min(limits), 1),
        "memory_gb": min(physical, memory_limit or physical) / cgroup_live.GIB,
    }


def _answer_problems(answers: Dict[str, Any], want: Dict[str, float]) -> List[str]:
    problems = []
    for backend in ("rust", "python"):
        if "cpus" in want and answers[f"{backend}_cpus"] != want["cpus"]:
            problems.append(f"{backend} says {answers[f'{backend}_cpus']} CPUs, not {want['cpus']}")
        memory = answers[f"{backend}_memory_gb"]
        if "memory_gb" in want and memory != want["memory_gb"]:
            problems.append(f"{backend} says {memory} GiB, not {want['memory_gb']}")
    if "affinity" in want and answers["affinity"] != want["affinity"]:
        problems.append(f"the affinity mask has {answers['affinity']} CPUs, not {want['affinity']}")
    return problems


def test_answers_under_this_profile() -> None:
    answers = measure_in_cgroups([])
    assert answers["backend"] == "rust", f"the native module did not load: {answers}"
    want = contract_answers(answers["affinity"])
    fixed = PROFILE_ANSWERS.get(PROFILE, {})
    record_row(f"{PLATFORM}/profile-{PROFILE}", answers, {**want, **fixed})
    problems = _answer_problems(answers, want)
    problems += [f"profile {PROFILE}: {p}" for p in _answer_problems(answers, fixed)]
    assert not problems, (
        f"{PLATFORM}, profile {PROFILE}:\n" + "\n".join(problems) + (f"\nanswers: {answers}")
    )


# ------------------------------------------------------------------------------ docker


def _docker_skip_reason() -> str | None:
    if PLATFORM != "host":
        return f"starts containers from the host; this cell runs on {PLATFORM}"
    if not IMAGE:
        return "SKY_RS_TEST_IMAGE is not set (the matrix runner names a built image)"
    return None


def _docker_problem() -> str | None:
    """An image was named, so docker must work: why it does not, or None."""
    if shutil.which("docker") is None:
        return "SKY_RS_TEST_IMAGE is set but docker is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    if info.returncode != 0:
        return f"the docker daemon is not usable: {info.stderr.decode().strip()[:200]}"
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60)
    if found.returncode != 0:
        return f"image {IMAGE} (SKY_RS_TEST_IMAGE) does not exist"
    return None


@pytest.fixture(scope="module")
def image_python() -> str:
    reason = _docker_skip_reason()
    if reason:
        pytest.skip(reason)
    problem = _docker_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    listed = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", IMAGE, "sh", "-c", "ls /usr/bin"],
        capture_output=True,
        timeout=120,
    )
    names = listed.stdout.decode().split()
    versions = sorted(
        (tuple(int(part) for part in match.group(1).split(".")), name)
        for name in names
        for match in [re.fullmatch(r"python(3\.\d+)", name)]
        if match
    )
    if not versions:
        pytest.fail(f"image {IMAGE} has no /usr/bin/python3.X: {names}", pytrace=False)
    return f"/usr/bin/{versions[-1][1]}"


def _docker_command(name: str, flags: List[str], python: str, *args: str) -> List[str]:
    package = os.path.dirname(os.path.abspath(sky_rs.__file__))
    return [
        "docker", "run", "--rm", "--name", name, "--network", "none",
        "--volume", f"{package}:{CONTAINER_PACKAGE_ROOT}/sky_rs:ro",
        "--env", f"PYTHONPATH={CONTAINER_PACKAGE_ROOT}",
        "--env", "PYTHONDONTWRITEBYTECODE=1",
        *flags, IMAGE, python, "-c", ANSWERS_PROGRAM, *args,
    ]  # fmt: skip


def _container_name() -> str:
    return f"sky-rs-live-{os.getpid()}-{next(_NAMES)}"


def _remove(name: str) -> None:
    subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)


RUN_CASES: List[Tuple[str, List[str], Dict[str, float]]] = [
    ("cpus-1.5", ["--cpus", "1.5"], {"cpus": 1}),
    ("cpus-0.5", ["--cpus", "0.5"], {"cpus": 1}),
    # Docker refuses --cpus above the host's CPU count; the same quota, spelled out:
    ("cpu-quota-3", ["--cpu-period", "100000", "--cpu-quota", "300000"], {"cpus": 3}),
    ("cpuset-0", ["--cpuset-cpus", "0"], {"cpus": 1, "affinity": 1}),
    ("memory-512m", ["--memory", "512m", "--memory-swap", "512m"], {"memory_gb": 0.5}),
]


@pytest.mark.parametrize("label,flags,limits", RUN_CASES, ids=[case[0] for case in RUN_CASES])
def test_docker_run_limits(
    image_python: str, label: str, flags: List[str], limits: Dict[str, float]
) -> None:
    name = _container_name()
    try:
        done = subprocess.run(
            _docker_command(name, flags, image_python), capture_output=True, timeout=180
        )
    finally:
        _remove(name)
    assert done.returncode == 0, f"docker run {flags} failed: {done.stderr.decode()[-2000:]}"
    answers = json.loads(done.stdout.decode().splitlines()[0])
    assert answers["backend"] == "rust", (
        f"the native module does not load in {IMAGE}: {answers['backend_reason']}"
    )
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    want = {
        "cpus": min(limits.get("cpus", online), online, answers["affinity"]),
        "memory_gb": limits.get("memory_gb", cgroup_live.physical_memory() / cgroup_live.GIB),
    }
    if "affinity" in limits:
        want["affinity"] = limits["affinity"]
    record_row(f"docker:{IMAGE}/run {' '.join(flags)}", answers, want)
    problems = _answer_problems(answers, want)
    assert not problems, f"docker run {' '.join(flags)}:\n" + "\n".join(problems)


class _Samples:
    """Lines of JSON from a running container, read on a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: queue.Queue[Dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                continue

    def wait_for(self, want: Dict[str, float], deadline: float) -> Tuple[bool, Dict[str, Any]]:
        """The first sample (both backends) that gives ``want``, or the last one seen."""
        last: Dict[str, Any] = {}
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                last = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if not _answer_problems(last, want):
                return True, last
        return False, last


@pytest.fixture
def running_container(image_python: str) -> Iterator[Tuple[str, _Samples]]:
    name = _container_name()
    flags = ["--cpus", "1", "--memory", "1g", "--memory-swap", "2g"]
    process = subprocess.Popen(
        _docker_command(name, flags, image_python, "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        yield name, _Samples(process.stdout)
    finally:
        _remove(name)
        process.wait(timeout=60)


def test_docker_update_is_followed(running_container: Tuple[str, _Samples]) -> None:
    name, samples = running_container
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    steps: List[Tuple[List[str], Dict[str, float]]] = [
        ([], {"cpus": 1, "memory_gb": 1.0}),
        (["--cpus", str(min(2, online)), "--memory", "512m"], {"cpus": min(2, online)}),
        (["--cpus", "0.5", "--memory", "768m"], {"cpus": 1, "memory_gb": 0.75}),
    ]
    steps[1][1]["memory_gb"] = 0.5
    for flags, want in steps:
        if flags:
            updated = subprocess.run(
                ["docker", "update", *flags, name], capture_output=True, timeout=60
            )
            assert updated.returncode == 0, f"docker update {flags}: {updated.stderr.decode()}"
        followed, sample = samples.wait_for(want, UPDATE_DEADLINE)
        label = "start" if not flags else "update " + " ".join(flags)
        if sample:
            record_row(f"docker:{IMAGE}/{label}", sample, want)
        assert followed, (
            f"after {label} the answers did not become {want} within {UPDATE_DEADLINE:g} s; "
            f"last sample: {sample}"
        )
        assert sample["backend"] == "rust", f"the native module does not load: {sample}"

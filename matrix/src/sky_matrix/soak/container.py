"""``--platform docker:<image>``: the same driver inside a container, judged on the host.

The container runs only the driver (``--driver-only``: psutil, hdrhistogram
and the sky_rs wheel, installed ``--no-index`` into a fresh venv from a
wheelhouse the host prepared); it appends to ``samples.jsonl`` in a mounted
directory. The host follows that file for progress and, when the container
ends, builds the verdict and charts from it — so numpy, scipy and matplotlib
never need to exist in the image. The memory limit in the verdict is the one
the driver read inside the container (``--profile memory-512m`` → 512 MiB).

Images, profiles, the manylinux wheel and the wheelhouse come from the matrix
runner (:mod:`sky_matrix.docker.images`, :mod:`sky_matrix.config.profiles`,
:mod:`sky_matrix.build.manylinux_wheel`, :mod:`sky_matrix.build.wheelhouses`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from sky_matrix.build import manylinux_wheel, wheelhouses
from sky_matrix.config import profiles
from sky_matrix.core.model import Interpreter
from sky_matrix.docker import containers, images
from sky_matrix.docker.containers import CONTAINER_ROOT, Mount

from . import driver as driver_module, results

SOAK_SRC = f"{CONTAINER_ROOT}/soak-src"
OUT = "/soak-out"
WHEEL_ENV = "SKY_RS_WHEEL"
REQUIREMENTS = "psutil\nhdrhistogram\n"
# The soak's suite label for profiles.user_for: no root needed.
SUITE = "stability"


def _log(line: str) -> None:
    print(f"soak: {line}", file=sys.stderr, flush=True)


def project_root() -> Path:
    """The checkout holding pyproject.toml (this file is matrix/src/sky_matrix/soak/)."""
    return Path(__file__).resolve().parents[4]


def pick_interpreter(pythons: Mapping[str, Interpreter]) -> Optional[Interpreter]:
    """The newest release (non-debug) CPython of the image."""
    release = [i for i in pythons.values() if not i.debug]
    if not release:
        return None
    return max(release, key=lambda i: tuple(int(p) for p in i.version.split(".")[:3]))


def find_wheel(args: argparse.Namespace) -> Path:
    if args.wheel is not None:
        return args.wheel
    if os.environ.get(WHEEL_ENV):
        return Path(os.environ[WHEEL_ENV])
    root = project_root()
    return manylinux_wheel.build_manylinux_wheel(
        root, manylinux_wheel.tools_cache(root) / "soak-wheel", _log
    )


def _run_in_image(tag: str) -> wheelhouses.ContainerRunner:
    return lambda wheelhouse, argv: containers.run_with_wheelhouse(tag, wheelhouse, argv)


def driver_argv(args: argparse.Namespace, resume: bool) -> List[str]:
    """The container side's arguments: the same run, driver only, into the mounted dir."""
    argv = ["--driver-only", "--out", OUT, "--backends", args.backends]
    if resume:
        return [*argv, "--resume", f"{OUT}/samples.jsonl", *_segment(args)]
    interval = args.interval or driver_module.default_interval(args.duration)
    warmup = args.warmup if args.warmup is not None else driver_module.default_warmup(args.duration)
    argv += [
        "--duration", repr(args.duration), "--interval", repr(interval),
        "--warmup", repr(warmup), "--rate", repr(args.rate),
        "--p99-budget-ms", repr(args.p99_budget_ms),
        "--platform", "host", "--recorded-platform", args.platform, "--profile", args.profile,
    ]  # fmt: skip
    if args.allow_python_only:
        argv.append("--allow-python-only")
    return [*argv, *_segment(args)]


def _segment(args: argparse.Namespace) -> List[str]:
    return ["--segment-limit", repr(args.segment_limit)] if args.segment_limit else []


def container_script(
    interp: Interpreter, wheel_name: str, pip_wheel: str, soak_args: Sequence[str]
) -> str:
    """Shell run inside the image: venv, offline install, then the driver."""
    house = containers.WHEELHOUSE_PATH
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in soak_args)
    return (
        "set -e; "
        f"{interp.path} -m venv --without-pip /tmp/soak-venv; "
        f"/tmp/soak-venv/bin/python {house}/{pip_wheel}/pip install --quiet --no-index "
        f"--find-links {house} -r {house}/requirements.txt {containers.WHEEL_DIR}/{wheel_name}; "
        # The platform field of the header says where it really ran.
        f"exec /tmp/soak-venv/bin/python -m sky_matrix.soak {quoted}"
    )


def run(args: argparse.Namespace) -> int:
    image = args.platform.split(":", 1)[1]
    profile = profiles.PROFILES.get(args.profile)
    if profile is None:
        _log(f"unknown profile {args.profile!r}: choose from {', '.join(profiles.PROFILES)}")
        return 2
    build = images.ensure_image(image, log=_log)
    if not build.ok or build.tag is None:
        _log(f"image {image} unavailable: {build.error}")
        return 2
    interp = pick_interpreter(build.pythons)
    if interp is None:
        _log(f"image {image} has no release CPython")
        return 2
    try:
        wheel = find_wheel(args).resolve()
        wheelhouse = wheelhouses.ensure_wheelhouse(
            interp, REQUIREMENTS, _run_in_image(build.tag), log=_log
        )
    except (manylinux_wheel.ContainerWheelError, wheelhouses.WheelhouseError) as exc:
        _log(str(exc))
        return 2
    pip_wheel = wheelhouses.find_pip_wheel(wheelhouse)
    assert pip_wheel is not None  # ensure_wheelhouse checked it
    resume = args.resume is not None
    samples = args.resume if resume else args.out / "samples.jsonl"
    out_dir = samples.parent.resolve()
    if not resume:
        problem = results.make_room(args.out)
        if problem is not None:
            _log(problem)
            return 2
    if resume and samples.name != "samples.jsonl":
        _log("in a container, --resume takes the samples.jsonl written by a container run")
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    user = profile.user_for(SUITE)
    # The driver runs as the profile's user, possibly uid 1000, and appends to the samples.
    os.chmod(out_dir, 0o777)
    if samples.exists():
        os.chmod(samples, 0o666)
    docker_dir = images.find_docker_dir()
    if docker_dir is None:
        _log("docker/ directory not found")
        return 2
    name = f"sky-rs-soak-{uuid.uuid4().hex[:12]}"
    mounts = [
        Mount(wheelhouse, containers.WHEELHOUSE_PATH),
        containers.wheel_mount(wheel),
        Mount(project_root() / "matrix" / "src", SOAK_SRC),
        Mount(out_dir, OUT, read_only=False),
    ]
    script = container_script(interp, wheel.name, pip_wheel.name, driver_argv(args, resume))
    cmd = containers.run_argv(
        build.tag,
        ["sh", "-c", script],
        name=name,
        remove=True,
        init=True,
        user="0:0" if user == "root" else str(profiles.UNPRIVILEGED_UID),
        workdir="/tmp",
        env={"PYTHONPATH": SOAK_SRC, "SKY_RS_MATRIX_PROFILE": profile.name},
        mounts=mounts,
        extra=profile.run_args(docker_dir),
    )
    _log(f"running in {build.tag} ({interp.path}, profile {profile.name}, as {user})")
    code = _follow(cmd, name, samples, args)
    if code != 0:
        _log(f"container exited {code}")
    if not samples.exists():
        return 2
    verdict = results.judge_and_report(
        samples, out_dir if args.resume else args.out, charts=not args.no_charts
    )
    reason = _end_reason(samples)
    if code != 0 and reason is None:
        return 1 if verdict["status"] == "fail" else 2
    return results.exit_status(verdict, reason)


def _end_reason(samples: Path) -> Optional[str]:
    from . import series

    ends = series.load(samples).ends
    return ends[-1].get("reason") if ends else None


def _follow(cmd: List[str], name: str, samples: Path, args: argparse.Namespace) -> int:
    """Run the container; show progress from the samples it appends; stop it on Ctrl-C."""
    progress = None
    if not args.no_progress:
        from .report import LiveProgress

        requested = args.duration
        if samples.exists():  # a resume: the run's own duration, not the flag's default
            from . import series

            requested = float(series.load(samples).header["config"]["duration_s"])
        progress = LiveProgress(requested)
    proc = containers.start(cmd)
    done = threading.Event()

    def tail() -> None:
        offset = 0  # from the start: the header gives the duration on a fresh run too
        while not done.wait(1.0):
            if not samples.exists():
                continue
            with samples.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.splitlines():
                record = json.loads(line)
                if record.get("type") == "header" and progress is not None:
                    progress.requested_s = float(record["config"]["duration_s"])
                if record.get("type") == "sample" and progress is not None:
                    progress.on_sample(record, {})

    follower = threading.Thread(target=tail, daemon=True)
    follower.start()
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # docker stop sends SIGTERM to the driver (via --init), which ends the segment cleanly.
        containers.stop(name, grace=30)
        return proc.wait()
    finally:
        done.set()
        follower.join(timeout=5)
        if progress is not None:
            progress.close()

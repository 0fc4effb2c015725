"""Container cells: docker arguments, result mapping, the wheelhouse, the container wheel's checks.

Everything here is pure logic or runs against a docker that is absent or unreachable; the real
containers are exercised by the matrix itself (`nox -s matrix`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

from sky_matrix.build import container_envs, wheelhouses
from sky_matrix.build.manylinux_wheel import (
    ContainerWheelError,
    check_auditwheel,
    check_wheel_name,
    maturin_build_command,
    parse_auditwheel_show,
    platform_tag_glibc,
    wheel_glibc,
    wheel_tags,
)
from sky_matrix.build.wheelhouses import (
    WheelhouseError,
    abi_tags,
    download_command,
    dry_run_command,
    ensure_wheelhouse,
    missing_requirements,
    read_requirements,
    wheelhouse_dir,
)
from sky_matrix.config.profiles import PROFILES
from sky_matrix.core.model import Cell, Interpreter
from sky_matrix.docker import containers, images
from sky_matrix.docker.containers import bind_mount
from sky_matrix.execute import container_cell
from sky_matrix.execute.container_cell import (
    cell_config,
    classify_container,
    container_name,
    docker_run_args,
    find_requirements,
    run_cell,
    wheel_fits_image,
)
from sky_matrix.execute.outcome import installed_wheel_problem

WHEEL_2_17 = "skypilot_rust-0.1.0-cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
WHEEL_2_34 = "skypilot_rust-0.1.0-cp38-abi3-manylinux_2_34_x86_64.whl"
SID_314D = Interpreter("/usr/bin/python3.14d", "3.14.10", "cpython", "cp314d", True, "image:sid")
BULLSEYE_39 = Interpreter("/usr/bin/python3.9", "3.9.2", "cpython", "cp39", False, "image:bullseye")
GOOD_INFO = {
    "file": "/tmp/c/venv/lib/python3.9/site-packages/sky_rs/__init__.py",
    "prefix": "/tmp/c/venv",
    "backend_info": {"backend": "rust", "version": "0.1.0", "reason": None},
}


def _build(name: str = "sid", **overrides: object) -> images.ImageBuild:
    build = images.ImageBuild(
        name=name,
        tag=f"sky-rs-matrix/{name}:0123456789abcdef",
        ok=True,
        glibc="2.43",
        pythons={"3.14d": SID_314D},
    )
    for key, value in overrides.items():
        setattr(build, key, value)
    return build


# ---------------------------------------------------------------- docker run arguments


def test_container_names_are_valid_and_unique() -> None:
    cell = Cell("3.14d", "docker:sid", "eperm", "seccomp-enosys")
    first, second = container_name(cell), container_name(cell)
    assert first != second
    for name in (first, second):
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name)
        assert "sid-py3.14d-eperm-seccomp-enosys" in name


def test_bind_mount_survives_colons_and_quotes_commas() -> None:
    colon = bind_mount(Path("/r/cells/docker:sid-py3.14-parity-default"), "/cell", read_only=False)
    assert colon == "type=bind,source=/r/cells/docker:sid-py3.14-parity-default,target=/cell"
    comma = bind_mount(Path("/tmp/a,b"), "/x", read_only=True)
    assert comma == 'type=bind,"source=/tmp/a,b",target=/x,readonly'


def _run_args(profile: str, suite: str, tmp_path: Path) -> List[str]:
    cell = Cell("3.14d", "docker:sid", suite, profile)
    return docker_run_args(
        name="sky-rs-x",
        cell=cell,
        interp=SID_314D,
        image_tag="sky-rs-matrix/sid:0123",
        profile=PROFILES[profile],
        user=PROFILES[profile].user_for(suite),
        docker_dir=tmp_path / "docker",
        wheel=tmp_path / WHEEL_2_17,
        wheelhouse=tmp_path / "wh",
        suite_dir=tmp_path / "run",
        cell_dir=tmp_path / "cell",
    )


def _values(args: Sequence[str], flag: str) -> List[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_docker_run_args_isolate_and_inform_the_cell(tmp_path: Path) -> None:
    args = _run_args("default", "parity", tmp_path)
    assert args[:4] == ["docker", "run", "--name", "sky-rs-x"]
    assert "--init" in args
    assert _values(args, "--network") == ["none"]
    assert _values(args, "--user") == ["0:0"]
    assert "no-new-privileges" in _values(args, "--security-opt")
    assert _values(args, "--tmpfs") == ["/tmp:rw,exec,nosuid,nodev,mode=1777"]
    env = dict(v.split("=", 1) for v in _values(args, "--env"))
    assert env["SKY_RS_MATRIX_PROFILE"] == "default"
    assert env["SKY_RS_MATRIX_PLATFORM"] == "docker:sid"
    assert env["SKY_RS_MATRIX_PYTHON"] == "3.14d"
    assert env["SKY_RS_MATRIX_USER"] == "sky"
    mounts = _values(args, "--mount")
    assert f"type=bind,source={tmp_path}/run,target=/opt/sky-rs/suite,readonly" in mounts
    assert f"type=bind,source={tmp_path}/wh,target=/opt/sky-rs/wheelhouse,readonly" in mounts
    assert f"type=bind,source={tmp_path}/cell,target=/cell" in mounts  # the only writable one
    assert sum(not m.endswith(",readonly") for m in mounts) == 1
    assert (
        f"type=bind,source={tmp_path}/docker/cell_driver.py,"
        "target=/opt/sky-rs/cell_driver.py,readonly"
    ) in mounts
    assert args[-4:] == [
        "sky-rs-matrix/sid:0123", "/usr/bin/python3.14d", "/opt/sky-rs/cell_driver.py",
        "/cell/cell.json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "profile, suite, expected",
    [
        ("cpus-0.5", "cgroup", ["--cpus", "0.5"]),
        ("cpuset-0", "cgroup", ["--cpuset-cpus", "0"]),
        ("memory-512m", "cgroup", ["--memory", "512m", "--memory-swap", "512m"]),
        ("hidepid", "eperm", ["--cap-add", "SYS_ADMIN"]),
    ],
)
def test_profile_flags_come_before_the_image(
    tmp_path: Path, profile: str, suite: str, expected: List[str]
) -> None:
    args = _run_args(profile, suite, tmp_path)
    image_at = args.index("sky-rs-matrix/sid:0123")
    start = args.index(expected[0])
    assert args[start : start + len(expected)] == expected
    assert start < image_at


def test_seccomp_profile_path_is_filled_in(tmp_path: Path) -> None:
    args = _run_args("seccomp-enosys", "eperm", tmp_path)
    assert f"seccomp={tmp_path}/docker/seccomp/deny-enosys.json" in _values(args, "--security-opt")
    env = dict(v.split("=", 1) for v in _values(args, "--env"))
    assert env["SKY_RS_MATRIX_USER"] == "root"  # eperm needs root unless the profile forces


def test_cell_config_for_the_driver(tmp_path: Path) -> None:
    config = cell_config(SID_314D, "sky", PROFILES["hidepid"], tmp_path / WHEEL_2_17, ["-x"])
    assert config == {
        "python": "/usr/bin/python3.14d",
        "user": "sky",
        "hidepid": True,
        "wheel": f"/opt/sky-rs/wheel/{WHEEL_2_17}",
        "wheelhouse": "/opt/sky-rs/wheelhouse",
        "test_env_site_dirs": [],
        "suite": "/opt/sky-rs/suite",
        "pytest_args": ["-x"],
    }
    site = "/opt/sky-rs/test-env/lib/python3.14d/site-packages"
    layered = cell_config(
        SID_314D, "sky", PROFILES["hidepid"], tmp_path / WHEEL_2_17, ["-x"], [site]
    )
    assert layered["test_env_site_dirs"] == [site]


def test_a_prepared_test_environment_is_mounted_read_only(tmp_path: Path) -> None:
    cell = Cell("3.14d", "docker:sid", "parity", "default")
    args = docker_run_args(
        name="sky-rs-x", cell=cell, interp=SID_314D, image_tag="sky-rs-matrix/sid:0123",
        profile=PROFILES["default"], user="root", docker_dir=tmp_path / "docker",
        wheel=tmp_path / WHEEL_2_17, wheelhouse=tmp_path / "wh", suite_dir=tmp_path / "run",
        cell_dir=tmp_path / "cell", test_env=tmp_path / "env",
    )  # fmt: skip
    assert f"type=bind,source={tmp_path / 'env'},target=/opt/sky-rs/test-env,readonly" in _values(
        args, "--mount"
    )
    assert not any(
        "test-env" in m for m in _values(_run_args("default", "parity", tmp_path), "--mount")
    )


def test_wheel_fits_image() -> None:
    assert wheel_fits_image(Path(WHEEL_2_17), "2.31") is None
    assert wheel_fits_image(Path(WHEEL_2_17), "2.17") is None
    too_new = wheel_fits_image(Path(WHEEL_2_34), "2.31")
    assert too_new and "needs glibc 2.34 but the image has 2.31" in too_new
    plain = wheel_fits_image(Path("skypilot_rust-0.1.0-cp38-abi3-linux_x86_64.whl"), "2.43")
    assert plain and "no manylinux tag" in plain
    assert wheel_fits_image(Path("skypilot_rust-0.1.0-py3-none-any.whl"), "2.17") is None


def test_find_requirements(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "tests" / "compat").mkdir(parents=True)
    assert find_requirements(run) is None
    (run / "tests" / "requirements.txt").write_text("pytest\n")
    assert find_requirements(run) == run / "tests" / "requirements.txt"
    assert find_requirements(run / "tests" / "compat") == run / "tests" / "requirements.txt"


# ---------------------------------------------------------------- result mapping


def _classify(**kwargs: object) -> Tuple[str, str, object]:
    base: Dict[str, object] = dict(
        exit_code=0,
        timed_out=False,
        oom_killed=False,
        limit=1800.0,
        driver={"stage": "tests", "ok": True, "returncode": 0},
        counts={"tests": 3, "failures": 0, "errors": 0, "skipped": 0, "passed": 3},
        log_text="",
        info=GOOD_INFO,
        interp_path="/usr/bin/python3.9",
        wheel_name=WHEEL_2_17,
    )
    base.update(kwargs)
    return classify_container(**base)  # type: ignore[arg-type]


def test_a_passing_cell() -> None:
    assert _classify() == ("pass", "", None)


def test_timeout_and_oom_are_failures_with_the_reason() -> None:
    verdict, reason, _ = _classify(exit_code=137, timed_out=True, driver=None, limit=60.0)
    assert verdict == "fail" and "60 s wall-clock limit (container killed)" in reason
    verdict, reason, sig = _classify(exit_code=137, oom_killed=True, driver=None)
    assert (verdict, sig) == ("fail", "SIGKILL") and "OOM-killed" in reason


def test_container_deaths_without_a_driver_report() -> None:
    assert _classify(exit_code=139, driver=None)[:1] == ("fail",)
    assert "SIGSEGV" in _classify(exit_code=139, driver=None)[1]
    verdict, reason, _ = _classify(exit_code=127, driver=None)
    assert verdict == "error" and "/usr/bin/python3.9 cannot run in the image" in reason
    verdict, reason, _ = _classify(exit_code=1, driver=None)
    assert verdict == "error" and "exited 1 before the cell driver reported" in reason


def test_setup_stages_are_errors() -> None:
    driver = {"stage": "install", "ok": False, "error": "pip install --no-index exited 1"}
    assert _classify(exit_code=1, driver=driver)[:2] == (
        "error", "install: pip install --no-index exited 1"
    )  # fmt: skip
    driver = {"stage": "setup", "ok": False, "error": "remounting /proc with hidepid=2: denied"}
    assert _classify(exit_code=3, driver=driver)[0] == "error"


def test_pytest_outcomes_inside_the_container() -> None:
    failed = {"tests": 3, "failures": 1, "errors": 0, "skipped": 0, "passed": 2}
    verdict, reason, _ = _classify(
        exit_code=1, driver={"stage": "tests", "returncode": 1}, counts=failed
    )
    assert verdict == "fail" and "1 failed" in reason
    verdict, reason, _ = _classify(
        exit_code=5, driver={"stage": "tests", "returncode": 5}, counts={}
    )
    assert verdict == "fail" and "no test" in reason
    verdict, reason, sig = _classify(
        exit_code=0, driver={"stage": "tests", "returncode": -11, "signal": "SIGSEGV"}, counts={}
    )
    assert (verdict, sig) == ("fail", "SIGSEGV")


def test_a_pass_on_the_python_fallback_is_a_failure() -> None:
    fallback = dict(GOOD_INFO, backend_info={"backend": "python", "reason": "ImportError: GLIBC"})
    verdict, reason, _ = _classify(info=fallback)
    assert verdict == "fail" and "Python fallback" in reason and "GLIBC" in reason
    assert _classify(info=None)[0] == "fail"


def test_installed_wheel_problem_is_one_rule_for_host_and_container(tmp_path: Path) -> None:
    assert installed_wheel_problem(GOOD_INFO, WHEEL_2_17) is None
    assert "does not import" in (installed_wheel_problem({"error": "x"}, WHEEL_2_17) or "")
    elsewhere = dict(GOOD_INFO, file="/work/main/python/sky_rs/__init__.py")
    assert "not from the cell's venv" in (installed_wheel_problem(elsewhere, WHEEL_2_17) or "")
    # A host cell names its venv; the fallback answering for a native wheel fails there too.
    venv = tmp_path / "venv"
    host = dict(GOOD_INFO, file=f"{venv}/lib/sky_rs/__init__.py", prefix="(ignored)")
    assert installed_wheel_problem(host, WHEEL_2_34, venv=str(venv)) is None
    on_python = dict(host, backend_info={"backend": "python", "reason": "disabled"})
    problem = installed_wheel_problem(on_python, WHEEL_2_34, venv=str(venv))
    assert problem and "Python fallback" in problem and WHEEL_2_34 in problem
    # Only a pure-Python wheel (the runner's own fake one) may answer from Python.
    assert (
        installed_wheel_problem(on_python, "skypilot_rust-0.1.0-py3-none-any.whl", str(venv))
        is None
    )


# ---------------------------------------------------------------- run_cell never raises


@pytest.fixture
def cell_inputs(tmp_path: Path) -> Dict[str, object]:
    wheel = tmp_path / WHEEL_2_17
    wheel.write_bytes(b"")
    (tmp_path / "run").mkdir()
    return dict(
        wheel=wheel,
        suite_dir=tmp_path / "run",
        cell_dir=tmp_path / "cells" / "x",
        timeout=60.0,
        pytest_args=["tests/compat/eperm"],
    )


def _run(cell: Cell, interp: Interpreter, image: images.ImageBuild, inputs: Dict[str, object]):
    return run_cell(cell, interp, image, **inputs)  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_unreachable_daemon_skips_the_cell(
    monkeypatch: pytest.MonkeyPatch, cell_inputs: Dict[str, object]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    result = _run(Cell("3.14d", "docker:sid", "eperm", "hidepid"), SID_314D, _build(), cell_inputs)
    assert result.verdict == "skipped"
    assert result.reason and result.reason.startswith("docker daemon not reachable")


def test_no_docker_cli_skips_the_cell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cell_inputs: Dict[str, object]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = _run(Cell("3.14d", "docker:sid", "eperm", "default"), SID_314D, _build(), cell_inputs)
    assert (result.verdict, result.reason) == ("skipped", "docker CLI not found on PATH")


@pytest.fixture
def docker_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker_status says yes; no container may start in these tests."""
    monkeypatch.setattr(images, "docker_status", lambda: (True, ""))

    def no_container(*args: object, **kwargs: object) -> None:
        raise AssertionError("a container was started")

    monkeypatch.setattr(container_cell, "_run_container", no_container)
    monkeypatch.setattr(wheelhouses, "ensure_wheelhouse", no_container)


@pytest.mark.usefixtures("docker_up")
def test_cells_that_cannot_run_say_why(cell_inputs: Dict[str, object]) -> None:
    cell = Cell("3.14d", "docker:sid", "eperm", "default")
    failed_image = _build(ok=False, tag=None, error="build failed (exit 25): E: expired")
    result = _run(cell, SID_314D, failed_image, cell_inputs)
    assert result.verdict == "skipped"
    assert result.reason == "image sid unavailable: build failed (exit 25): E: expired"

    result = _run(Cell("3.14d", "docker:sid", "parity", "hidepid"), SID_314D, _build(), cell_inputs)
    assert (result.verdict, result.reason) == (
        "skipped", "profile hidepid does not apply to suite parity"
    )  # fmt: skip

    result = _run(Cell("3.14d", "docker:sid", "eperm", "turbo"), SID_314D, _build(), cell_inputs)
    assert result.verdict == "error" and "unknown profile 'turbo'" in (result.reason or "")

    result = _run(Cell("3.9", "docker:sid", "eperm", "default"), BULLSEYE_39, _build(), cell_inputs)
    assert result.verdict == "skipped" and "not in image sid" in (result.reason or "")


@pytest.mark.usefixtures("docker_up")
def test_wheel_problems_fail_before_any_container(
    tmp_path: Path, cell_inputs: Dict[str, object]
) -> None:
    cell = Cell("3.14d", "docker:sid", "eperm", "default")
    missing = dict(cell_inputs, wheel=tmp_path / "nope.whl")
    result = _run(cell, SID_314D, _build(), missing)
    assert result.verdict == "error" and "does not exist" in (result.reason or "")

    too_new = tmp_path / WHEEL_2_34
    too_new.write_bytes(b"")
    result = _run(cell, SID_314D, _build(glibc="2.31"), dict(cell_inputs, wheel=too_new))
    assert result.verdict == "fail"
    assert "needs glibc 2.34 but the image has 2.31" in (result.reason or "")


def _fake_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A wheelhouse with a pip wheel and a prepared test environment, without docker."""
    house = tmp_path / "wh"
    house.mkdir(exist_ok=True)
    (house / "pip-24.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(wheelhouses, "ensure_wheelhouse", lambda *a, **k: house)
    site = "/opt/sky-rs/test-env/lib/python3.14/site-packages"
    monkeypatch.setattr(container_envs, "ensure_container_env", lambda *a, **k: ([site], True, 0.0))


@pytest.mark.usefixtures("docker_up")
def test_docker_refusing_a_profile_flag_skips_the_cell(
    monkeypatch: pytest.MonkeyPatch, cell_inputs: Dict[str, object], tmp_path: Path
) -> None:
    refusal = (
        "docker: Error response from daemon: NanoCPUs can not be set, as your kernel does not"
        " support CPU CFS scheduler or the cgroup is not mounted."
    )

    def refused(argv: Sequence[str], name: str, log_path: Path, timeout: float):
        with open(log_path, "a") as log:
            log.write(refusal + "\n")
        return 125, False, None

    monkeypatch.setattr(container_cell, "_run_container", refused)
    _fake_environment(monkeypatch, tmp_path)
    monkeypatch.setattr(containers, "docker", lambda args, timeout=0: (0, ""))  # plain run works
    cell = Cell("3.14d", "docker:sid", "cgroup", "cpus-1.5")
    result = _run(cell, SID_314D, _build(), cell_inputs)
    assert result.verdict == "skipped"
    assert result.reason == f"docker refuses profile cpus-1.5 (--cpus 1.5): {refusal}"

    monkeypatch.setattr(containers, "docker", lambda args, timeout=0: (125, "no"))
    result = _run(cell, SID_314D, _build(), cell_inputs)
    assert result.verdict == "error" and result.reason == f"docker run failed: {refusal}"


@pytest.mark.usefixtures("docker_up")
def test_a_finished_container_is_read_back(
    monkeypatch: pytest.MonkeyPatch, cell_inputs: Dict[str, object], tmp_path: Path
) -> None:
    """The host half of a cell: what the driver wrote in the cell directory becomes the result."""
    cell_dir = Path(str(cell_inputs["cell_dir"]))

    def finished(argv: Sequence[str], name: str, log_path: Path, timeout: float):
        (cell_dir / "driver.json").write_text(
            '{"stage": "tests", "ok": false, "returncode": 1,'
            ' "durations": {"env": 2.5, "tests": 7.0}}'
        )
        (cell_dir / "junit.xml").write_text(
            '<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1"/></testsuites>'
        )
        (cell_dir / "sky-rs-info.json").write_text(
            '{"file": "/v/lib/sky_rs/__init__.py", "prefix": "/v",'
            ' "backend_info": {"backend": "rust"}, "stats": {"functions": {}}}'
        )
        (cell_dir / "suite-stats-7.json").write_text(
            '{"functions": {"hash_file": {"rust": 3, "python": 1, "fallbacks": {}}}}'
        )
        with open(log_path, "a") as log:
            log.write("FAILED tests/compat/eperm/test_x.py::test_y\n")
        return 1, False, {"ExitCode": 1, "OOMKilled": False}

    monkeypatch.setattr(container_cell, "_run_container", finished)
    _fake_environment(monkeypatch, tmp_path)
    result = _run(Cell("3.14d", "docker:sid", "eperm", "hidepid"), SID_314D, _build(), cell_inputs)
    assert result.verdict == "fail"
    assert result.reason.startswith("1 failed, 0 errors of 4 tests")
    assert result.counts["passed"] == 2
    assert result.durations["env"] == 2.5 and result.durations["tests"] == 7.0
    assert result.returncode == 1
    assert result.junit_path == str(cell_dir / "junit.xml")
    assert result.stats and result.stats["suite"]["functions"]["hash_file"]["rust"] == 3
    assert result.extra["user"] == "sky"
    assert result.log_tail and "FAILED tests/compat/eperm/test_x.py::test_y" in result.log_tail
    config = (cell_dir / "cell.json").read_text()
    assert '"hidepid": true' in config and '"pytest_args": ["tests/compat/eperm"]' in config
    assert '"test_env_site_dirs": ["/opt/sky-rs/test-env/lib/python3.14/site-packages"]' in config
    assert result.extra["test_env"]["reused"] is True


# ---------------------------------------------------------------- the wheelhouse


def test_download_command_targets_the_interpreter(tmp_path: Path) -> None:
    cmd = download_command(["pip"], SID_314D, tmp_path, ["-r", "req.txt"])
    assert cmd[:3] == ["pip", "download", "--quiet"]
    assert "--only-binary=:all:" in cmd
    assert _values(cmd, "--python-version") == ["3.14"]
    assert _values(cmd, "--implementation") == ["cp"]
    assert _values(cmd, "--abi") == ["cp314d", "abi3", "none"]
    platforms = _values(cmd, "--platform")
    assert "manylinux2014_x86_64" in platforms
    assert all(
        platform_tag_glibc(p) is not None and platform_tag_glibc(p) <= (2, 17)  # type: ignore[operator]
        for p in platforms
    )
    assert cmd[-2:] == ["-r", "req.txt"]
    assert abi_tags(BULLSEYE_39) == ("cp39", "abi3", "none")


def test_dry_run_uses_a_throwaway_venv() -> None:
    (argv0, flag, script) = dry_run_command(BULLSEYE_39, "pip-26.0.1-py3-none-any.whl")
    assert (argv0, flag) == ("/bin/sh", "-c")
    assert script.startswith("/usr/bin/python3.9 -m venv --without-pip /tmp/dry-run-venv && ")
    assert "/opt/sky-rs/wheelhouse/pip-26.0.1-py3-none-any.whl/pip install --dry-run" in script
    assert "--no-index" in script


def test_missing_requirements_from_pip_output() -> None:
    output = (
        "ERROR: Could not find a version that satisfies the requirement exceptiongroup>=1"
        " (from pytest) (from versions: none)\n"
        "ERROR: No matching distribution found for exceptiongroup>=1\n"
        "ERROR: Could not find a version that satisfies the requirement tomli>=1; (from x)\n"
    )
    assert missing_requirements(output) == ["exceptiongroup>=1", "tomli>=1;"]
    assert missing_requirements("Would install pytest-9.0") == []


def test_wheelhouse_keys_and_requirements(tmp_path: Path) -> None:
    a = wheelhouse_dir(tmp_path, SID_314D, "pytest\n")
    assert a.name.startswith("cp314d-")
    assert wheelhouse_dir(tmp_path, SID_314D, "pytest\n") == a
    assert wheelhouse_dir(tmp_path, SID_314D, "pytest\nhypothesis\n") != a
    assert wheelhouse_dir(tmp_path, BULLSEYE_39, "pytest\n") != a
    assert read_requirements(None).split() == list(wheelhouses.DEFAULT_REQUIREMENTS)
    (tmp_path / "requirements.txt").write_text("pytest>=8\n")
    assert read_requirements(tmp_path) == "pytest>=8\n"


FAKE_PIP = """\
import sys, pathlib
args = sys.argv[1:]
dest = pathlib.Path(args[args.index("--dest") + 1])
with open(dest.parent / "downloads.log", "a") as handle:
    handle.write(args[-1] + "\\n")
if args[-1] == "memray":
    sys.exit("ERROR: No matching distribution found for memray")
if args[-1] == "pytest-memray":
    sys.exit("ERROR: Cannot install pytest-memray because these package versions have"
             " conflicting dependencies.\\nERROR: ResolutionImpossible: for help visit ...")
if args[-1] == "broken":
    sys.exit("WARNING: Retrying after connection broken by NewConnectionError")
(dest / (args[-1] + "-1.0-py3-none-any.whl")).write_bytes(b"")
"""


def _fake_pip(tmp_path: Path) -> List[str]:
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    return [sys.executable, str(script)]


class FakeImage:
    """Answers the wheelhouse's two in-image steps: marker evaluation, then dry runs."""

    def __init__(self, applicable: str, dry_runs: List[Tuple[int, str]]) -> None:
        self.applicable = applicable
        self.dry_runs = dry_runs
        self.calls: List[Tuple[Path, str]] = []

    def __call__(self, house: Path, argv: Sequence[str]) -> Tuple[int, str]:
        if argv[1:3] == ["-I", "-c"]:
            assert argv[3] == wheelhouses.MARKER_SCRIPT
            assert argv[-1] == "/opt/sky-rs/wheelhouse/requirements.in"
            self.calls.append((house, "markers"))
            noise = "<string>:5: ResourceWarning: unclosed file\n"  # a debug build's stderr
            return 0, noise + "".join(f"applies: {r}\n" for r in self.applicable.split())
        self.calls.append((house, "dry-run"))
        return self.dry_runs.pop(0)


def test_wheelhouse_is_completed_against_the_target_and_cached(tmp_path: Path) -> None:
    text = 'pytest>=7\nmemray; python_version < "3.15"\npytest-memray\n'
    image = FakeImage(
        "pytest>=7\nmemray\npytest-memray\n",
        [
            (1, "ERROR: No matching distribution found for exceptiongroup>=1\n"),
            (0, "Would install"),
        ],
    )
    lines: List[str] = []
    house = ensure_wheelhouse(
        SID_314D, text, image, log=lines.append, root=tmp_path, pip=_fake_pip(tmp_path)
    )
    assert (house / ".complete").is_file()
    assert (house / "requirements.in").read_text() == text
    assert (house / "requirements.txt").read_text() == "pytest>=7\n"  # what the cell installs
    assert [step for _, step in image.calls] == ["markers", "dry-run", "dry-run"]
    assert {h for h, _ in image.calls} == {house}
    downloads = (house.parent / "downloads.log").read_text().split()
    assert downloads == ["pip", "pytest>=7", "memray", "pytest-memray", "exceptiongroup>=1"]
    assert wheelhouses.read_left_out(house) == [
        "memray: no wheel for cp314d: ERROR: No matching distribution found for memray",
        "pytest-memray: no wheel for cp314d: ERROR: ResolutionImpossible: for help visit ...",
    ]
    assert any("left out memray" in line for line in lines)
    assert any("completing with exceptiongroup>=1" in line for line in lines)

    def must_not_run(house: Path, argv: Sequence[str]) -> Tuple[int, str]:
        raise AssertionError("a complete wheelhouse is reused as it is")

    again = ensure_wheelhouse(
        SID_314D, text, must_not_run, log=lines.append, root=tmp_path, pip=_fake_pip(tmp_path)
    )
    assert again == house


def test_wheelhouse_failures_say_why(tmp_path: Path) -> None:
    pip = _fake_pip(tmp_path)
    unrelated = FakeImage(
        "pytest\n", [(1, "Traceback ...\nModuleNotFoundError: No module named 'distutils.cmd'")]
    )
    with pytest.raises(WheelhouseError, match=r"distutils\.cmd"):
        ensure_wheelhouse(BULLSEYE_39, "pytest\n", unrelated, log=print, root=tmp_path, pip=pip)
    offline = FakeImage("broken\n", [])
    with pytest.raises(WheelhouseError, match=r"pip download broken failed: .*NewConnectionError"):
        ensure_wheelhouse(BULLSEYE_39, "broken\n", offline, log=print, root=tmp_path, pip=pip)

    def markers_fail(house: Path, argv: Sequence[str]) -> Tuple[int, str]:
        return 1, "SyntaxError: invalid marker"

    with pytest.raises(WheelhouseError, match="evaluating the requirements' markers"):
        ensure_wheelhouse(BULLSEYE_39, "x; y\n", markers_fail, log=print, root=tmp_path, pip=pip)
    assert not list(tmp_path.glob("wheelhouse/*/.complete"))


# ---------------------------------------------------------------- the container wheel


def test_wheel_tags_and_glibc() -> None:
    assert wheel_tags(WHEEL_2_17) == (
        ["cp38"], ["abi3"], ["manylinux2014_x86_64", "manylinux_2_17_x86_64"]
    )  # fmt: skip
    assert wheel_glibc(WHEEL_2_17) == (2, 17)
    assert wheel_glibc(WHEEL_2_34) == (2, 34)
    # A wheel installs where any of its tags fits: the most permissive one counts.
    assert wheel_glibc("x-1-cp38-abi3-manylinux_2_28_x86_64.manylinux2010_x86_64.whl") == (2, 12)
    assert wheel_glibc("x-1-cp38-abi3-linux_x86_64.whl") is None
    assert platform_tag_glibc("manylinux1_x86_64") == (2, 5)
    assert platform_tag_glibc("musllinux_1_2_x86_64") is None
    with pytest.raises(ValueError):
        wheel_tags("not-a-wheel.whl")


def test_check_wheel_name() -> None:
    check_wheel_name(WHEEL_2_17)
    with pytest.raises(ContainerWheelError, match=r"needs glibc 2\.34, newer than the oldest"):
        check_wheel_name(WHEEL_2_34)
    with pytest.raises(ContainerWheelError, match="not an abi3 wheel"):
        check_wheel_name("skypilot_rust-0.1.0-cp311-cp311-manylinux_2_17_x86_64.whl")


AUDITWHEEL_OK = """\
skypilot_rust-0.1.0-cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl is consistent
with the following platform tag: "manylinux_2_17_x86_64".

The wheel references external versioned symbols in these
system-provided shared libraries: libc.so.6 with versions
{'GLIBC_2.2.5', 'GLIBC_2.3', 'GLIBC_2.14'}
"""


def test_auditwheel_show_is_parsed_across_line_breaks() -> None:
    assert parse_auditwheel_show(AUDITWHEEL_OK) == (2, 17)
    check_auditwheel(AUDITWHEEL_OK)
    too_new = AUDITWHEEL_OK.replace('"manylinux_2_17_x86_64"', '"manylinux_2_35_x86_64"')
    with pytest.raises(ContainerWheelError, match=r"symbols need glibc 2\.35"):
        check_auditwheel(too_new)
    with pytest.raises(ContainerWheelError, match="no manylinux tag"):
        check_auditwheel('x.whl is consistent with the following platform tag: "linux_x86_64".')


def test_maturin_is_asked_for_manylinux2014_with_zig(tmp_path: Path) -> None:
    cmd = maturin_build_command(["maturin"], tmp_path, "/usr/bin/python3")
    assert cmd[:3] == ["maturin", "build", "--release"]
    assert "--zig" in cmd
    assert _values(cmd, "--compatibility") == ["manylinux2014"]
    assert _values(cmd, "--out") == [str(tmp_path)]


def test_marker_script_evaluates_markers_for_the_interpreter_running_it(tmp_path: Path) -> None:
    """The in-image step, run here by this interpreter with its own pip's `packaging`."""
    pip = pytest.importorskip("pip", reason="the script reads markers with pip's packaging")
    requirements = tmp_path / "requirements.in"
    requirements.write_text(
        "# a comment\n"
        "pytest>=7.4  # inline comment\n"
        f'old-only; python_version < "{sys.version_info[0]}.{sys.version_info[1]}"\n'
        f'this-one; python_version == "{sys.version_info[0]}.{sys.version_info[1]}"\n'
        "--index-url https://example.invalid/simple\n"
        'linux-only; sys_platform == "linux"\n'
    )
    site = str(Path(pip.__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-I", "-c", wheelhouses.MARKER_SCRIPT, site, str(requirements)],
        capture_output=True,
        text=True,
        check=True,
    )
    applies = [line for line in proc.stdout.splitlines() if line.startswith("applies: ")]
    expected = ["pytest>=7.4", "this-one"] + (["linux-only"] if sys.platform == "linux" else [])
    assert applies == [f"applies: {r}" for r in expected]

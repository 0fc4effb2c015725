"""PyPy in the matrix: its wheel ABI, its wheelhouse, the wheel built for it in its image."""

from __future__ import annotations

from pathlib import Path

from sky_matrix.build import wheelhouses
from sky_matrix.core.model import Interpreter
from sky_matrix.docker import images, interpreter_wheel
from sky_matrix.execute.platforms import DockerPlatform

PYPY = Interpreter(
    "/usr/bin/pypy3", "3.11.17", "pypy", "pp311", False, "image:sid-pypy3", soabi="pypy311-pp80"
)
CPYTHON = Interpreter("/usr/bin/python3.13", "3.13.9", "cpython", "cp313", False, "image:sid")


def test_pypy_wheels_are_tagged_by_its_soabi_and_pip_calls_it_pp() -> None:
    assert (PYPY.wheel_abi, PYPY.wheel_implementation) == ("pypy311_pp80", "pp")
    assert (CPYTHON.wheel_abi, CPYTHON.wheel_implementation) == ("cp313", "cp")


def test_the_pypy_wheelhouse_asks_for_pypy_wheels_and_no_abi3() -> None:
    assert wheelhouses.abi_tags(PYPY) == ("pypy311_pp80", "none")
    command = wheelhouses.download_command(["pip"], PYPY, Path("/d"), ["pytest"])
    pairs = list(zip(command, command[1:]))
    assert ("--implementation", "pp") in pairs
    assert ("--python-version", "3.11") in pairs
    assert ("--abi", "abi3") not in pairs and ("--abi", "pypy311_pp80") in pairs


def test_a_cpython_wheelhouse_keeps_its_key(tmp_path: Path) -> None:
    # wheel_abi is abi for CPython: the key of wheelhouses made before PyPy came is unchanged.
    assert wheelhouses.wheelhouse_dir(tmp_path, CPYTHON, "pytest\n").name.startswith("cp313-")
    assert wheelhouses.wheelhouse_dir(tmp_path, PYPY, "pytest\n").name.startswith("pp311-")


def test_the_pypy_wheel_is_built_in_the_image_offline_with_the_hosts_toolchain(
    tmp_path: Path,
) -> None:
    argv = interpreter_wheel.build_argv(
        "sky-rs-matrix/sid-pypy3:abc", PYPY, tmp_path / "src", tmp_path / "out",
        tmp_path / "target", tmp_path / "maturin", tmp_path / "rustup", tmp_path / "cargo",
    )  # fmt: skip
    assert argv[:2] == ["docker", "run"] and "--network" in argv
    assert argv[argv.index("--network") + 1] == "none"
    assert "CARGO_NET_OFFLINE=true" in argv
    tail = argv[argv.index("sky-rs-matrix/sid-pypy3:abc") :]
    assert tail[1:6] == ["nice", "-n", "10", interpreter_wheel.MATURIN_MOUNT, "build"]
    assert tail[-4:] == ["-i", "/usr/bin/pypy3", "--out", interpreter_wheel.OUT_MOUNT]
    mounts = [a for a in argv if a.startswith("type=bind")]
    writable = sorted(m.split("target=")[1] for m in mounts if "readonly" not in m)
    assert writable == sorted(
        [interpreter_wheel.CARGO_MOUNT, interpreter_wheel.TARGET_MOUNT, interpreter_wheel.OUT_MOUNT]
    )


def test_only_images_with_a_cpython_need_the_abi3_container_wheel() -> None:
    assert DockerPlatform("sid", None).serves_abi3()
    assert not DockerPlatform("sid-pypy3", None).serves_abi3()
    assert images.LAYER_IMAGES["sid-pypy3"].pythons == ("pp3.11",)


def test_the_pypy_cells_are_required_now_that_their_findings_are_fixed() -> None:
    """The first run's PyPy findings (hashlib names, NUL in names, MemoryError for refused
    precisions, int subclasses, fstat denied, memory-512m) are fixed: a failing PyPy cell fails
    the run like any other."""
    from sky_matrix.plan.planner import Selection, full_plan, select

    pypy, sid = DockerPlatform("sid-pypy3", None), DockerPlatform("sid", None)
    assert pypy.optional_because is None
    plan = select(full_plan([pypy, sid], strict=False), Selection(suites=["parity"]))
    required = {p.cell.id: p.required for p in plan}
    assert required["docker:sid-pypy3-pypp3.11-parity-default"] is True
    assert required["docker:sid-py3.13-parity-default"] is True

"""The emulated (aarch64) platform: binfmt, the factor, opt-in planning, per-architecture
wheels and wheelhouses, skip reasons, and the architecture in reports and the sign-off."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from rich.console import Console

from sky_matrix.build import manylinux_wheel, wheelhouses
from sky_matrix.config import architectures
from sky_matrix.core.events import Observer
from sky_matrix.core.model import Cell, CellResult, Interpreter, RunPaths
from sky_matrix.docker import emulation, images
from sky_matrix.execute import container_cell
from sky_matrix.execute.context import RunContext
from sky_matrix.execute.platforms import DockerPlatform, HostPlatform, RunnablePlatform
from sky_matrix.execute.scheduler import execute
from sky_matrix.plan.discovery import Discovery
from sky_matrix.plan.planner import Selection, full_plan, github_matrix, select
from sky_matrix.plan.platform import Slot
from sky_matrix.report import html_report, table

ARM = "bookworm-arm64"
PY311 = Interpreter("/usr/bin/python3.11", "3.11.2", "cpython", "cp311", False, "image:x")


def _binfmt(tmp_path: Path, state: Optional[str]) -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir(parents=True)
    if state is not None:
        (root / "register").write_text("")
        (root / "qemu-aarch64").write_text(f"{state}\ninterpreter /usr/libexec/x\nflags: PF\n")
    return root


# --------------------------------------------------------------------------- binfmt


def test_registered_needs_an_enabled_entry(tmp_path: Path) -> None:
    assert emulation.registered("aarch64", _binfmt(tmp_path / "a", "enabled"))
    assert not emulation.registered("aarch64", _binfmt(tmp_path / "b", "disabled"))
    assert not emulation.registered("aarch64", _binfmt(tmp_path / "c", None))


def test_not_root_and_not_registered_names_the_command(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, None)
    why = emulation.unusable("aarch64", root, is_root=False)
    assert why is not None and why.startswith("no arm64 emulation (")
    assert f"mount -t binfmt_misc binfmt_misc {root}" in why
    assert "apt-get install -y qemu-user-static binfmt-support arch-test && arch-test arm64" in why
    assert emulation.unusable("aarch64", root, is_root=True) is None  # the runner will try
    assert emulation.unusable("aarch64", _binfmt(tmp_path / "r", "enabled"), is_root=False) is None


class FakeHost:
    """Commands as a root runner would see them; apt-get registers the entry."""

    def __init__(self, root: Path, apt_fails: bool = False, arch_test: int = 0) -> None:
        self.root, self.apt_fails, self.arch_test = root, apt_fails, arch_test
        self.calls: List[List[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> Tuple[int, str]:
        self.calls.append(list(argv))
        if argv[0] == "mount":
            (self.root / "register").write_text("")
            return 0, ""
        if argv[:2] == ["apt-get", "install"]:
            if self.apt_fails:
                return 100, "E: Unable to locate package qemu-user-static"
            (self.root / "qemu-aarch64").write_text("enabled\n")
            return 0, ""
        if argv[0] == "arch-test":
            return self.arch_test, "arm64: ok" if self.arch_test == 0 else "arm64: not supported"
        return 0, ""


def test_root_mounts_installs_and_proves_it(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, None)
    host = FakeHost(root)
    got = emulation.ensure_emulation(
        "aarch64", log=lambda _: None, binfmt_dir=root, is_root=True, run=host, have=lambda _: "x"
    )
    assert got is None
    assert host.calls[0] == ["mount", "-t", "binfmt_misc", "binfmt_misc", str(root)]
    assert host.calls[1][:2] == ["apt-get", "install"]
    assert set(emulation.PACKAGES) <= set(host.calls[1])
    assert host.calls[-1] == ["arch-test", "arm64"]


def test_a_failed_install_or_check_is_the_skip_reason(tmp_path: Path) -> None:
    def ensure(host: FakeHost) -> Optional[str]:
        return emulation.ensure_emulation(
            "aarch64", log=lambda _: None, binfmt_dir=host.root, is_root=True, run=host,
            have=lambda _: "x",
        )  # fmt: skip

    why = ensure(FakeHost(_binfmt(tmp_path / "a", None), apt_fails=True))
    assert why is not None and why.startswith("no arm64 emulation (apt-get install")
    assert "Unable to locate package" in why and "as root: " in why
    why = ensure(FakeHost(_binfmt(tmp_path / "b", None), arch_test=1))
    assert why is not None and "arch-test arm64 failed: arm64: not supported" in why


def test_the_host_architecture_needs_no_emulation(tmp_path: Path) -> None:
    native = architectures.host_architecture()
    assert emulation.unusable(native, _binfmt(tmp_path, None), is_root=False) is None


# --------------------------------------------------------------------------- the factor


def test_the_factor_is_fastest_emulated_over_fastest_native() -> None:
    times = iter([0.2, 6.0, 0.25, 5.0, 0.3, 7.0])  # native, emulated, alternating
    seen: List[List[str]] = []

    def run(argv: Sequence[str], timeout: float) -> Tuple[int, str]:
        seen.append(list(argv))
        return 0, f"noise\nelapsed {next(times):.6f}\n"

    got = emulation.measure_factor(
        "aarch64", ("arm-tag", "/usr/bin/python3.11"), ("x86-tag", "/usr/bin/python3.11"),
        log=lambda _: None, run=run,
    )  # fmt: skip
    assert got.factor == 25.0 and got.native_seconds == 0.2 and got.emulated_seconds == 5.0
    assert len(seen) == 2 * emulation.REPEATS
    assert seen[0][:2] == ["docker", "run"] and "x86-tag" in seen[0]
    assert "arm-tag" in seen[1] and "--network" in seen[1]
    assert "fastest" in got.method and json.dumps(got.to_json())


def test_a_failed_timing_run_is_an_error_not_a_guess() -> None:
    with pytest.raises(RuntimeError, match="emulated timing run failed"):
        emulation.measure_factor(
            "aarch64", ("arm", "/p"), None, log=lambda _: None,
            run=lambda argv, t: (0, "elapsed 0.1") if argv[0] != "docker" else (139, "boom"),
        )  # fmt: skip


def test_the_factor_scales_limits_and_never_shrinks_them() -> None:
    assert emulation.factor_from([0.2, 0.3], [6.0, 5.0]) == 25.0
    assert emulation.factor_from([1.0], [0.5]) == 1.0
    assert emulation.scaled(1800, 27.5) == 49500.0
    ctx = RunContext(Path("."), RunPaths(Path(".")), Path("r"), Path("e"), "run", print)
    assert ctx.cell_timeout("parity", 27.5) == 1800 * 27.5
    assert "--timeout=16500" in ctx.suite_pytest_args(
        Cell("3.11", "d", "parity", "default"), 1, 27.5
    )
    ctx.cell_timeout_override = 60
    assert ctx.cell_timeout("parity", 27.5) == 60  # an explicit limit is taken as given


def test_exit_stress_is_sized_for_emulation() -> None:
    factor = emulation.Factor("aarch64", 27.0, 0.2, 5.4, "n", "e", "m")
    env = container_cell.emulation_environment(factor)
    assert env["SKY_RS_EXIT_STRESS_EXITS"] == "228"  # a 2 % fault, 99 % of the time
    assert env["SKY_RS_MATRIX_EMULATED"] == "aarch64"
    assert container_cell.emulation_environment(None) == {}


# --------------------------------------------------------------------------- planning


def _platforms() -> List[DockerPlatform]:
    return [DockerPlatform("bookworm", None), DockerPlatform(ARM, None)]


def test_the_emulated_platform_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architectures, "host_architecture", lambda: "x86_64")
    monkeypatch.setattr(emulation, "registered", lambda *a, **k: True)
    plan = full_plan(_platforms(), strict=False)
    default = [p for p in select(plan, Selection()) if p.cell.platform == f"docker:{ARM}"]
    assert len(default) == 8  # parity, cgroup x3, eperm x2, leaks, stability
    assert {p.skip for p in default} == {
        f"emulated platform (aarch64 through qemu), opt-in (--platform docker:{ARM})"
    }
    assert all(p.cell.platform != f"docker:{ARM}" for p in [*github_matrix_cells(default)])
    assert select(plan, Selection(platforms=["docker"]))[-1].skip  # "docker" does not name it
    named = select(plan, Selection(platforms=[f"docker:{ARM}"]))
    assert named and all(p.skip is None for p in named)
    ids = {p.cell.id for p in default[:2]}
    assert all(p.skip is None for p in select(plan, Selection(cell_ids=ids)))


def github_matrix_cells(cells) -> List[Cell]:  # type: ignore[no-untyped-def]
    return [
        Cell(e["python"], e["platform"], e["suite"], e["profile"])
        for e in github_matrix(cells)["include"]
    ]


def test_cells_of_the_arm64_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architectures, "host_architecture", lambda: "x86_64")
    platform = DockerPlatform(ARM, None)
    assert platform.architecture == "aarch64" and platform.spec.emulated
    plan = full_plan([platform], strict=False)
    assert sorted(p.cell.id for p in plan) == sorted(
        f"docker:{ARM}-py3.11-{s}" for s in (
            "parity-default", "cgroup-default", "cgroup-cpus-1.5", "cgroup-memory-512m",
            "eperm-seccomp-eperm", "eperm-nonroot", "leaks-default", "stability-default",
        )
    )  # fmt: skip


def test_no_emulation_and_not_root_skips_before_preparing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(architectures, "host_architecture", lambda: "x86_64")
    monkeypatch.setattr(emulation, "registered", lambda *a, **k: False)
    monkeypatch.setattr(emulation.os, "geteuid", lambda: 1000)
    plan = select(full_plan([DockerPlatform(ARM, None)], strict=False), Selection(
        platforms=[f"docker:{ARM}"]))  # fmt: skip
    assert plan and all(p.skip and p.skip.startswith("no arm64 emulation (") for p in plan)


# --------------------------------------------------------------------------- wheels


def test_the_aarch64_wheel_is_cross_built_and_checked_for_its_architecture() -> None:
    argv = manylinux_wheel.maturin_build_command(
        ["maturin"], Path("/o"), "python", "aarch64-unknown-linux-gnu"
    )
    assert argv[argv.index("--target") + 1] == "aarch64-unknown-linux-gnu"
    assert argv[argv.index("--compatibility") + 1] == "manylinux2014" and "--zig" in argv
    arm = "skypilot_rust-0.1.0-cp38-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"
    manylinux_wheel.check_wheel_name(arm, architecture="aarch64")
    with pytest.raises(manylinux_wheel.ContainerWheelError, match="not a wheel for x86_64"):
        manylinux_wheel.check_wheel_name(arm)


def test_the_aarch64_wheelhouse_asks_for_aarch64_wheels(tmp_path: Path) -> None:
    cmd = wheelhouses.download_command(["pip"], PY311, tmp_path, ["memray"], "aarch64")
    platforms = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert platforms == [
        "manylinux2014_aarch64",
        "manylinux_2_17_aarch64",
        "manylinux_2_28_aarch64",
    ]
    x86 = wheelhouses.wheelhouse_dir(tmp_path, PY311, "pytest\n")
    arm = wheelhouses.wheelhouse_dir(tmp_path, PY311, "pytest\n", "aarch64")
    assert x86.name.startswith("cp311-") and arm.name.startswith("cp311-aarch64-") and x86 != arm


def test_a_required_package_without_an_aarch64_wheel_skips_its_suite() -> None:
    left_out = ["psutil>=5.9: no wheel for cp311 on aarch64: ERROR: ..."]
    assert (
        container_cell.missing_required("stability", left_out, "aarch64")
        == "psutil has no wheel for aarch64"
    )
    assert container_cell.missing_required("parity", left_out, "aarch64") is None
    assert (
        container_cell.missing_required("stability", ["hdrhistogram>=0.10: x"], "aarch64") is None
    )


# --------------------------------------------------------------------------- images


def test_the_arm64_image_has_its_own_build_script_and_leaves_the_native_hashes(
    tmp_path: Path,
) -> None:
    docker_dir = images.find_docker_dir()
    assert docker_dir is not None
    spec = images.EMULATED_IMAGES[ARM]
    inputs = [p.name for p in images.build_inputs(spec, docker_dir)]
    assert inputs[0] == "build-emulated-image.sh" and "build-image.sh" not in inputs
    cmd = images.build_command(spec, docker_dir, "h" * 64, mirror="http://mirror/debian")
    assert cmd[1].endswith("build-emulated-image.sh")
    assert cmd[cmd.index("--arch") + 1] == "arm64" and "--mirror" in cmd
    native = images.DEBIAN_IMAGES["bookworm"]
    assert "build-emulated-image.sh" not in [
        p.name for p in images.build_inputs(native, docker_dir)
    ]


def test_the_probe_reports_the_architecture() -> None:
    assert 'echo "arch $(uname -m)"' in images.probe_script(("/usr/bin/python3.*",))
    assert images.parse_probe_architecture("arch aarch64\nglibc 2.36\n") == "aarch64"
    assert images.parse_probe_architecture("glibc 2.36\n") is None


# --------------------------------------------------------------------------- reports


def _result(platform: str, arch: str, verdict: str = "pass") -> CellResult:
    result = CellResult(Cell("3.11", platform, "parity", "default"), verdict, architecture=arch)
    if arch == "aarch64":
        result.extra["emulation"] = emulation.Factor(
            "aarch64", 27.0, 0.2, 5.4, "n", "e", "m"
        ).to_json()
    return result


def test_the_architecture_is_in_the_table_and_the_html() -> None:
    results = [_result("docker:bookworm", "x86_64"), _result(f"docker:{ARM}", "aarch64")]
    out = io.StringIO()
    table.render(results, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert any("docker:bookworm-arm64" in line and "aarch64" in line for line in lines)
    assert any("docker:bookworm /" in line and "x86_64" in line for line in lines)
    html = html_report.render(results, {})
    assert "<th>arch</th>" in html and "<td>aarch64</td>" in html and "27x slower" in html
    assert json.loads(json.dumps(results[1].to_json()))["architecture"] == "aarch64"


def test_signoff_counts_emulated_cells_as_aarch64(tmp_path: Path) -> None:
    from sky_matrix.signoff import checks_matrix

    class Evidence:
        matrix_reports = ("report.json",)

    class Ctx:
        host_system = "Linux"
        evidence = Evidence()

        def path(self, rel: str) -> Path:
            return tmp_path / rel

        def show(self, rel: str) -> str:
            return rel

    cells = [
        {**_result(f"docker:{ARM}", "aarch64").to_json(), "runner": {"os": "Linux", "arch": "X64"}},
        {
            **_result("docker:bookworm", "x86_64").to_json(),
            "runner": {"os": "Linux", "arch": "X64"},
        },
    ]
    (tmp_path / "report.json").write_text(json.dumps({"cells": cells}))
    problem, records = checks_matrix.load_records(Ctx())  # type: ignore[arg-type]
    assert problem is None
    assert [(r.system, r.arch) for r in records] == [("Linux", "arm64"), ("Linux", "x86_64")]


def test_the_listing_shows_the_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    from sky_matrix.report import listing

    monkeypatch.setattr(architectures, "host_architecture", lambda: "x86_64")
    host = HostPlatform(Discovery({"3.11": PY311}, [], ()))
    platforms = [host, DockerPlatform(ARM, None)]
    cells = select(full_plan(platforms, strict=False), Selection())
    out = io.StringIO()
    listing.render(
        Console(file=out, width=250), project_root=Path("."), discovery=host.discovery,
        platforms=platforms, cells=cells,
    )  # fmt: skip
    text = out.getvalue()
    assert "┃ arch " in text and "│ aarch64 │" in text and "skip: emulated platform" in text


# --------------------------------------------------------------------------- the scheduler


class _NoEmulationHere(RunnablePlatform):
    """Prepares like an emulated image on a host where the runner could not set binfmt up."""

    name = "docker:fake-arm64"
    architecture = "aarch64"
    prepares_in_background = True

    def __init__(self) -> None:
        self.ran: List[str] = []

    def slots(self) -> Dict[str, Slot]:
        return {"3.11": Slot("3.11", PY311)}

    def profiles(self, suite: str) -> List[str]:
        return ["default"]

    def prepare(self, ctx: RunContext) -> Optional[str]:
        return None

    def prepared_skip(self) -> Optional[str]:
        return "no arm64 emulation (apt-get install failed; as root: ...)"

    def run_cell(self, cell: Cell, slot: Slot, ctx: RunContext, workers: int) -> CellResult:
        self.ran.append(cell.id)
        return CellResult(cell, "pass")


def test_a_platform_that_cannot_emulate_records_its_cells_skipped(tmp_path: Path) -> None:
    platform = _NoEmulationHere()
    cells = full_plan([platform], strict=False)
    ctx = RunContext(tmp_path, RunPaths(tmp_path), tmp_path / "r", tmp_path / "e", "run", print)
    results = execute(ctx, cells, jobs=2, cores=2, observer=Observer(), write_result=lambda r: None)
    assert platform.ran == []
    assert {r.verdict for r in results} == {"skipped"}
    assert {r.reason for r in results} == {platform.prepared_skip()}
    assert {r.architecture for r in results} == {"aarch64"}

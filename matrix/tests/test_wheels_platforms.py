"""The release wheels of every platform: tags, ELF and Mach-O facts, the report, the sign-off item.

The Mach-O facts are read from tiny fixtures (tests/data/macho, made by its make.sh with zig)
and, when `nox -s release-check` left them in dist/, from the real macOS wheels; nothing here
builds a wheel.
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sky_matrix.signoff import binaries, checklist, checks_release, wheels
from sky_matrix.signoff.context import Context
from sky_matrix.signoff.verdict import FAIL, INSUFFICIENT, NOT_VERIFIABLE, PASS

MACHO = Path(__file__).parent / "data" / "macho"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARM64 = binaries.BY_NAME["macos-arm64"]
X86_64 = binaries.BY_NAME["macos-x86_64"]
NAMES = {
    "sdist": "skypilot_rust-0.1.0.tar.gz",
    "linux-x86_64": "skypilot_rust-0.1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "linux-aarch64": (
        "skypilot_rust-0.1.0-cp38-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    ),
    "macos-arm64": "skypilot_rust-0.1.0-cp38-abi3-macosx_11_0_arm64.whl",
    "macos-x86_64": "skypilot_rust-0.1.0-cp38-abi3-macosx_10_12_x86_64.whl",
    "pure": "skypilot_rust-0.1.0-py3-none-any.whl",
}


def fixture(name: str) -> bytes:
    return gzip.decompress((MACHO / f"{name}.so.gz").read_bytes())


def make_wheel(directory: Path, name: str, module: bytes) -> Path:
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sky_rs/__init__.py", "")
        archive.writestr("sky_rs/_native.abi3.so", module)
    return path


# ----------------------------------------------------------------------------- names and tags


@pytest.mark.parametrize(("platform", "name"), sorted(NAMES.items()))
def test_each_release_artifact_is_classified_and_tagged_as_expected(
    platform: str, name: str
) -> None:
    assert wheels.classify(name) == platform
    assert wheels.version_of(name) == "0.1.0"
    if platform == "pure":
        assert binaries.check_pure_tags(name)["ok"]
    elif platform != "sdist":
        assert binaries.check_tags(name, binaries.BY_NAME[platform])["ok"]


def test_the_release_is_six_artifacts_the_pure_wheel_last() -> None:
    assert binaries.RELEASE_ARTIFACTS == (
        "sdist", "linux-x86_64", "linux-aarch64", "macos-arm64", "macos-x86_64", "pure",
    )  # fmt: skip
    assert set(binaries.WHEEL_CHECKS) == set(binaries.RELEASE_ARTIFACTS)
    assert wheels.classify("skypilot_rust-0.1.0-py3-none-any.whl") == "pure"
    assert wheels.runnable_here("pure") == "yes"


@pytest.mark.parametrize(
    ("name", "platform", "problem"),
    [
        (
            "s-0.1.0-cp38-abi3-macosx_10_13_x86_64.whl",
            X86_64,
            "platform tags macosx_10_13_x86_64, expected macosx_10_12_x86_64",
        ),
        (
            "s-0.1.0-cp312-cp312-macosx_11_0_arm64.whl",
            ARM64,
            "python-abi tags cp312-cp312, expected cp38-abi3",
        ),
        (
            "s-0.1.0-cp38-abi3-manylinux_2_28_aarch64.whl",
            binaries.BY_NAME["linux-aarch64"],
            "platform tags manylinux_2_28_aarch64, expected "
            "manylinux_2_17_aarch64.manylinux2014_aarch64",
        ),
        ("not-a-wheel.whl", ARM64, "not a wheel file name: not-a-wheel.whl"),
    ],
)
def test_tags_other_than_the_release_ones_fail(
    name: str, platform: binaries.ReleasePlatform, problem: str
) -> None:
    result = binaries.check_tags(name, platform)
    assert not result["ok"]
    assert result["summary"] == problem


def test_the_macos_tags_are_maturins_defaults_set_explicitly() -> None:
    assert ARM64.minos == (11, 0) and X86_64.minos == (10, 12)
    assert dict(ARM64.env) == {"MACOSX_DEPLOYMENT_TARGET": "11.0"}
    assert dict(X86_64.env) == {"MACOSX_DEPLOYMENT_TARGET": "10.12"}
    assert binaries.BY_NAME["linux-x86_64"].minos is None


@pytest.mark.parametrize(
    ("platform", "machine", "system", "expected"),
    [
        ("linux-x86_64", "x86_64", "Linux", "yes"),
        ("linux-aarch64", "aarch64", "Linux", "yes"),
        ("linux-aarch64", "x86_64", "Linux", "not run here yet"),
        ("macos-arm64", "x86_64", "Linux", "not runnable on this host (Linux x86_64)"),
        ("macos-x86_64", "arm64", "Darwin", "yes"),
        ("sdist", "x86_64", "Linux", "yes"),
    ],
)
def test_which_wheels_this_host_can_run(
    platform: str, machine: str, system: str, expected: str
) -> None:
    assert wheels.runnable_here(platform, machine, system).startswith(expected)


# ----------------------------------------------------------------------------- Mach-O

lief = pytest.importorskip("lief")


@pytest.mark.parametrize(
    ("name", "cputype", "minos"), [("arm64", "ARM64", "11.0"), ("x86_64", "X86_64", "10.12")]
)
def test_macho_facts_of_a_clean_module(name: str, cputype: str, minos: str) -> None:
    facts = binaries.macho_facts(fixture(name))
    (piece,) = facts["slices"]
    assert piece["cputype"] == cputype
    assert piece["minos"] == minos
    assert piece["dylibs"] == [binaries.LIBSYSTEM]
    assert piece["python_flat"] == 1 and piece["python_bound"] == []
    platform = ARM64 if name == "arm64" else X86_64
    assert binaries.judge_macho(facts, platform) == []


def test_macho_python_linked_to_a_framework_is_refused() -> None:
    facts = binaries.macho_facts(fixture("x86_64-linked"))
    framework = "/Library/Frameworks/Python.framework/Versions/3.12/Python"
    assert binaries.judge_macho(facts, X86_64) == [
        f"X86_64: links {framework}",
        "X86_64: Python symbols bound to a library, not looked up: "
        f"_PyLong_FromLong -> {framework}",
    ]


def test_macho_of_the_other_architecture_is_refused() -> None:
    assert binaries.judge_macho(binaries.macho_facts(fixture("arm64")), X86_64) == [
        "architectures ARM64, expected X86_64 alone",
        "ARM64: minos 11.0, the tag promises 10.12",
    ]


def test_macho_judgement_of_every_fact() -> None:
    clean = {
        "cputype": "ARM64",
        "minos": "11.0",
        "dylibs": [binaries.LIBSYSTEM],
        "python_flat": 90,
        "python_bound": [],
    }
    assert binaries.judge_macho({"slices": [clean]}, ARM64) == []
    iconv = dict(clean, dylibs=[binaries.LIBSYSTEM, "/usr/lib/libiconv.2.dylib"])
    newer = dict(clean, minos="12.0")
    none = dict(clean, minos=None, python_flat=0)
    assert binaries.judge_macho({"slices": [iconv]}, ARM64) == [
        "ARM64: links /usr/lib/libiconv.2.dylib"
    ]
    assert binaries.judge_macho({"slices": [newer]}, ARM64) == [
        "ARM64: minos 12.0, the tag promises 11.0"
    ]
    assert binaries.judge_macho({"slices": [none]}, ARM64) == [
        "ARM64: no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX",
        "ARM64: no Python C-API symbol imported: not the extension module?",
    ]
    fat = {"slices": [clean, dict(clean, cputype="X86_64")]}
    assert binaries.judge_macho(fat, ARM64)[0] == "architectures ARM64+X86_64, expected ARM64 alone"
    assert binaries.judge_macho({"slices": []}, ARM64) == [
        "architectures none, expected ARM64 alone"
    ]


def test_check_macho_reads_the_module_inside_the_wheel(tmp_path: Path) -> None:
    good = make_wheel(tmp_path, NAMES["macos-x86_64"], fixture("x86_64"))
    result = binaries.check_macho(good, X86_64)
    assert result["ok"], result
    assert result["summary"] == (
        "sky_rs/_native.abi3.so: X86_64 minos 10.12 (sdk 27.0), links "
        "/usr/lib/libSystem.B.dylib, 1 Python symbols by dynamic lookup"
    )
    assert result["modules"]["sky_rs/_native.abi3.so"]["slices"][0]["minos"] == "10.12"
    bad = make_wheel(tmp_path, NAMES["macos-arm64"], b"\x7fELF not mach-o")
    assert binaries.check_macho(bad, ARM64) == {
        "ok": False,
        "summary": "sky_rs/_native.abi3.so: not a Mach-O image",
        "modules": {},
    }
    empty = tmp_path / "empty.whl"
    zipfile.ZipFile(empty, "w").close()
    assert binaries.check_macho(empty, ARM64)["summary"] == "no compiled module in the wheel"


BUILT_MACOS = sorted((PROJECT_ROOT / "dist").glob("*-macosx_*.whl"))


@pytest.mark.skipif(not BUILT_MACOS, reason="no macOS wheel in dist/: nox -s release-check")
@pytest.mark.parametrize("wheel", BUILT_MACOS, ids=[w.name for w in BUILT_MACOS])
def test_the_built_macos_wheels_when_present(wheel: Path) -> None:
    platform = binaries.BY_NAME[wheels.classify(wheel.name)]
    assert binaries.check_tags(wheel.name, platform)["ok"]
    result = binaries.check_macho(wheel, platform)
    assert result["ok"], result["summary"]


# ----------------------------------------------------------------------------- ELF


def test_elf_judgement() -> None:
    aarch64 = binaries.BY_NAME["linux-aarch64"]
    facts = {"class": 64, "machine": "EM_AARCH64", "needed": ["libc.so.6"]}
    assert binaries.judge_elf(facts, aarch64) == []
    wrong = {"class": 64, "machine": "EM_X86_64", "needed": ["libpython3.12.so.1.0"]}
    assert binaries.judge_elf(wrong, aarch64) == [
        "ELF machine EM_X86_64, expected EM_AARCH64",
        "links libpython3.12.so.1.0: an extension must not",
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this Linux interpreter")
def test_elf_facts_of_an_interpreter(tmp_path: Path) -> None:
    pytest.importorskip("elftools")
    facts = binaries.elf_facts(Path(sys.executable).resolve().read_bytes())
    assert facts["class"] == 64 and facts["machine"].startswith("EM_")
    wheel = make_wheel(tmp_path, NAMES["linux-aarch64"], b"MZ not elf")
    assert binaries.check_elf(wheel, binaries.BY_NAME["linux-aarch64"])["summary"].startswith(
        "sky_rs/_native.abi3.so: not an ELF image"
    )


# ----------------------------------------------------------------------------- the report


def test_the_report_lists_what_is_missing_and_each_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = {"ok": True, "summary": "fine"}
    for name in ("check_twine", "check_abi3audit", "check_auditwheel"):
        monkeypatch.setattr(wheels, name, lambda path: dict(ok))
    dist = tmp_path / "dist"
    dist.mkdir()
    make_wheel(dist, NAMES["macos-x86_64"], fixture("x86_64"))
    make_wheel(dist, NAMES["macos-arm64"], fixture("x86_64"))  # the wrong architecture inside
    out = tmp_path / "wheels.json"
    assert wheels.main(["--dist", str(dist), "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["missing"] == ["sdist", "linux-x86_64", "linux-aarch64", "pure"]
    assert [a["platform"] for a in report["artifacts"]] == ["macos-arm64", "macos-x86_64"]
    arm, x86 = report["artifacts"]
    assert list(x86["checks"]) == list(binaries.WHEEL_CHECKS["macos-x86_64"])
    assert x86["runnable_here"].startswith(("not runnable on this host", "yes"))
    assert all(result["ok"] for result in x86["checks"].values())
    assert not arm["checks"]["macho"]["ok"]
    printed = capsys.readouterr().out
    assert "FAIL macho      sky_rs/_native.abi3.so: architectures X86_64, expected ARM64" in printed
    assert "FAIL missing    no linux-aarch64 artifact" in printed
    only = ["--platform", "macos-x86_64"]
    (dist / NAMES["macos-arm64"]).unlink()
    (dist / NAMES["sdist"]).write_bytes(b"")
    assert wheels.main(["--dist", str(dist), "--out", str(out), *only]) == 0


# ----------------------------------------------------------------------------- the sign-off item


def artifact(platform: str, ok: bool = True) -> Dict[str, Any]:
    return {
        "file": NAMES[platform],
        "platform": platform,
        "version": "0.1.0",
        "checks": {
            tool: {"ok": ok or tool != "macho", "summary": "fine" if ok else "links libiconv"}
            for tool in binaries.WHEEL_CHECKS[platform]
        },
    }


def cells(*runners: Dict[str, str], verdict: str = "pass") -> List[Dict[str, Any]]:
    return [
        {
            "id": f"host-py3.12-parity-default-{index}",
            "cell": {"python": "3.12", "platform": "host", "suite": "parity"},
            "verdict": verdict,
            "required": True,
            "runner": runner,
        }
        for index, runner in enumerate(runners)
    ]


LINUX_X64 = {"os": "Linux", "arch": "X64", "label": "ubuntu-24.04"}
LINUX_ARM = {"os": "Linux", "arch": "ARM64", "label": "qemu-aarch64"}
MAC_ARM = {"os": "macOS", "arch": "ARM64", "label": "macos-15"}
MAC_X64 = {"os": "macOS", "arch": "X64", "label": "macos-15-intel"}


def evidence(
    root: Path,
    artifacts: Optional[List[Dict[str, Any]]],
    records: Optional[List[Dict[str, Any]]] = None,
) -> Context:
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.1.0"\n')
    if artifacts is not None:
        (root / "release-report").mkdir(exist_ok=True)
        (root / "release-report/wheels.json").write_text(json.dumps({"artifacts": artifacts}))
    if records is not None:
        (root / "matrix-report").mkdir(exist_ok=True)
        (root / "matrix-report/report.json").write_text(json.dumps({"cells": records}))
    return Context(root=root, host_system="Linux")


ALL_WHEELS = ["sdist", "linux-x86_64", "linux-aarch64", "macos-arm64", "macos-x86_64"]


def test_platforms_item_without_wheels_evidence_fails(tmp_path: Path) -> None:
    outcome = checks_release.wheels_platforms(evidence(tmp_path, None))
    assert outcome.verdict == FAIL
    assert outcome.evidence == "release-report/wheels.json missing, run nox -s release-check"


def test_platforms_item_with_a_wheel_absent_or_failed_fails(tmp_path: Path) -> None:
    three = [artifact(p) for p in ALL_WHEELS if p != "macos-x86_64"]
    outcome = checks_release.wheels_platforms(evidence(tmp_path, three))
    assert outcome == checks_release.Outcome(
        FAIL,
        "no macos-x86_64 wheel in release-report/wheels.json: run nox -s release-check",
    )
    broken = [*three, artifact("macos-x86_64", ok=False)]
    outcome = checks_release.wheels_platforms(evidence(tmp_path, broken))
    assert outcome.verdict == FAIL
    assert outcome.evidence == f"{NAMES['macos-x86_64']}: macho failed: links libiconv"


def test_platforms_item_audited_wheels_but_no_cells_yet(tmp_path: Path) -> None:
    ctx = evidence(tmp_path, [artifact(p) for p in ALL_WHEELS])
    outcome = checks_release.wheels_platforms(ctx)
    assert outcome.verdict == INSUFFICIENT
    parts = outcome.evidence.split(" | ")
    assert [p.split(":")[0] for p in parts] == list(checks_release.PLATFORM_CELLS)
    assert parts[1] == (
        f"linux-aarch64: wheel built and audited here, {NAMES['linux-aarch64']} "
        "(twine+tag+elf+auditwheel+abi3audit); cells not run here yet "
        "(matrix-report/report.json missing, run nox -s matrix)"
    )
    assert parts[2].endswith(
        "(twine+tag+macho+abi3audit); cells not runnable on this host (Linux; GitHub's macOS "
        "runners run them, .github/workflows/matrix.yml)"
    )
    assert "passed" not in outcome.evidence


def test_platforms_item_host_cells_but_no_arm64_cells(tmp_path: Path) -> None:
    ctx = evidence(tmp_path, [artifact(p) for p in ALL_WHEELS], cells(LINUX_X64, LINUX_X64))
    outcome = checks_release.wheels_platforms(ctx)
    assert outcome.verdict == INSUFFICIENT
    parts = outcome.evidence.split(" | ")
    assert parts[0].endswith("; 2 cells passed")
    assert parts[1].endswith("cells not run here yet (no such cell in matrix-report/report.json)")
    assert "passed" not in " ".join(parts[2:])


def test_platforms_item_macos_alone_unverifiable_then_passed(tmp_path: Path) -> None:
    wheels_ok = [artifact(p) for p in ALL_WHEELS]
    linux = cells(LINUX_X64, LINUX_ARM)
    outcome = checks_release.wheels_platforms(evidence(tmp_path, wheels_ok, linux))
    assert outcome.verdict == NOT_VERIFIABLE
    assert outcome.evidence.count("cells not runnable on this host") == 2
    merged = linux + cells(MAC_ARM, MAC_X64)
    outcome = checks_release.wheels_platforms(evidence(tmp_path, wheels_ok, merged))
    assert outcome.verdict == PASS
    assert outcome.evidence.count("1 cells passed") == 4


def test_platforms_item_a_failed_macos_cell_fails(tmp_path: Path) -> None:
    records = cells(LINUX_X64, LINUX_ARM, MAC_ARM) + cells(MAC_X64, verdict="fail")
    outcome = checks_release.wheels_platforms(
        evidence(tmp_path, [artifact(p) for p in ALL_WHEELS], records)
    )
    assert outcome.verdict == FAIL
    assert "macos-x86_64: wheel built and audited here" in outcome.evidence
    assert "cells failed: cell macos-15-intel/host-py3.12-parity-default-0 fail" in (
        outcome.evidence
    )


def test_platforms_item_on_a_mac_host_without_mac_cells_is_insufficient(tmp_path: Path) -> None:
    ctx = evidence(tmp_path, [artifact(p) for p in ALL_WHEELS], cells(LINUX_X64, LINUX_ARM))
    ctx.host_system = "Darwin"
    outcome = checks_release.wheels_platforms(ctx)
    assert outcome.verdict == INSUFFICIENT
    assert "not runnable" not in outcome.evidence


def test_the_checklist_has_the_platforms_item() -> None:
    item = next(i for i in checklist.ITEMS if i.id == "wheels-platforms")
    assert item.check is checks_release.wheels_platforms
    assert "wheels-other" not in {i.id for i in checklist.ITEMS}


def test_the_pure_wheel_item_passes_on_its_checks_and_fails_without_them(tmp_path: Path) -> None:
    pure = artifact("pure")
    pure["checks"]["installer"]["summary"] = "PyPy 3.11 Linux x86_64 -> pure"
    outcome = checks_release.wheels_pure(evidence(tmp_path, [artifact("sdist"), pure]))
    assert outcome.verdict == PASS
    assert outcome.evidence.endswith("pip chose: PyPy 3.11 Linux x86_64 -> pure")
    assert checks_release.wheels_pure(evidence(tmp_path, [artifact("sdist")])) == (
        checks_release.Outcome(
            FAIL, "no pure-Python wheel in release-report/wheels.json: run nox -s release-check"
        )
    )
    del pure["checks"]["installer"]
    outcome = checks_release.wheels_pure(evidence(tmp_path, [pure]))
    assert outcome.verdict == FAIL
    assert outcome.evidence == f"{NAMES['pure']}: installer did not run"

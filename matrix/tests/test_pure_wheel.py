"""The pure-Python wheel: how it is built, what it holds, pip's choice of wheel, and that it works.

`test_the_pure_wheel_installed_in_a_fresh_venv_answers_in_python` builds the real wheel from
this checkout (hatchling, about a second) and installs it into a new venv, run from a temporary
directory; pip's choice is judged here from recorded reports, and made by the real pip in
`nox -s release-check`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import List

import pytest
from matrix_helpers import project_root

from sky_matrix.build import pure_wheel
from sky_matrix.signoff import binaries, installer, wheels

PROJECT_ROOT = project_root()  # the checkout, also when the tests run from a staged copy
PURE = "skypilot_rust-0.1.0-py3-none-any.whl"
LINUX = "skypilot_rust-0.1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
MACOS = "skypilot_rust-0.1.0-cp38-abi3-macosx_11_0_arm64.whl"
FREE_THREADED = "skypilot_rust-0.1.0-cp314-cp314t-manylinux_2_34_x86_64.whl"
PYPY = "skypilot_rust-0.1.0-pp311-pypy311_pp80-manylinux_2_34_x86_64.whl"
TARGETS = {t.name: t for t in installer.INSTALL_TARGETS}

# ----------------------------------------------------------------------------- building

PYPROJECT = """[build-system]
requires = ["maturin>=1.7,<2"]
build-backend = "maturin"

[project]
name = "skypilot-rust"
version = "0.1.0"
requires-python = ">=3.8"

[tool.maturin]
module-name = "sky_rs._native"
"""


def test_the_generated_pyproject_swaps_only_the_backend() -> None:
    generated = pure_wheel.pure_pyproject(PYPROJECT)
    assert 'build-backend = "hatchling.build"' in generated
    assert "maturin>=1.7" not in generated
    assert '[tool.hatch.build.targets.wheel]\npackages = ["python/sky_rs"]' in generated
    assert '[project]\nname = "skypilot-rust"\nversion = "0.1.0"' in generated


def test_a_pyproject_without_a_build_system_table_is_refused() -> None:
    with pytest.raises(pure_wheel.PureWheelError, match="no \\[build-system\\]"):
        pure_wheel.pure_pyproject('[project]\nname = "x"\n')


def test_the_project_pyproject_makes_a_pure_one() -> None:
    text = (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "hatchling.build" in pure_wheel.pure_pyproject(text)


@pytest.mark.parametrize(
    ("name", "native"),
    [
        ("_native.abi3.so", True),
        ("_native.cpython-314t-x86_64-linux-gnu.so", True),
        ("_native.pypy311-pp73-x86_64-linux-gnu.so", True),
        ("_native.pyd", True),
        ("_native.pyi", False),
        ("fallback.py", False),
    ],
)
def test_only_the_compiled_module_counts_as_native(name: str, native: bool) -> None:
    assert pure_wheel.is_native_file(name) is native


def test_the_build_dir_leaves_out_native_modules_and_byte_caches(tmp_path: Path) -> None:
    root = tmp_path / "project"
    package = root / "python" / "sky_rs"
    (package / "__pycache__").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "README.md").write_text("# readme\n")
    for name in ("__init__.py", "fallback.py", "_native.pyi", "py.typed", "_native.abi3.so"):
        (package / name).write_text("")
    (package / "__pycache__" / "fallback.cpython-311.pyc").write_text("")
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    pure_wheel.prepare_build_dir(root, build_dir)
    copied = sorted(p.name for p in (build_dir / "python" / "sky_rs").iterdir())
    assert copied == ["__init__.py", "_native.pyi", "fallback.py", "py.typed"]
    assert (build_dir / "README.md").read_text() == "# readme\n"


# ----------------------------------------------------------------------------- contents


def _metadata(name: str = "skypilot-rust", summary: str = "s") -> str:
    return (
        f"Metadata-Version: 2.4\nName: {name}\nVersion: 0.1.0\nSummary: {summary}\n"
        "License: Apache-2.0\nRequires-Python: >=3.8\nClassifier: A\nClassifier: B\n\nbody\n"
    )


BINARY_FILES = [
    "sky_rs/__init__.py",
    "sky_rs/_native.abi3.so",
    "sky_rs/_native.pyi",
    "skypilot_rust-0.1.0.dist-info/METADATA",
    "skypilot_rust-0.1.0.dist-info/RECORD",
    "skypilot_rust-0.1.0.dist-info/WHEEL",
    "skypilot_rust-0.1.0.dist-info/sboms/sky-rs-py.cyclonedx.json",
]
PURE_FILES = [n for n in BINARY_FILES if "_native.abi3" not in n and "sboms" not in n]
META = "skypilot_rust-0.1.0.dist-info/METADATA"


def test_the_pure_wheel_is_the_binary_one_without_native_and_its_sbom() -> None:
    result = installer.compare_contents(
        (PURE_FILES, {META: _metadata()}), (BINARY_FILES, {META: _metadata()}), LINUX
    )
    assert result["ok"], result["summary"]
    assert (
        "without sky_rs/_native.abi3.so, skypilot_rust-0.1.0.dist-info/sboms/"
        in (result["summary"])
    )


def test_a_file_missing_from_or_added_to_the_pure_wheel_fails() -> None:
    pure = [n for n in PURE_FILES if n != "sky_rs/_native.pyi"] + ["sky_rs/extra.py"]
    result = installer.compare_contents(
        (pure, {META: _metadata()}), (BINARY_FILES, {META: _metadata()}), LINUX
    )
    assert not result["ok"]
    assert "missing from the pure wheel: sky_rs/_native.pyi" in result["summary"]
    assert "only in the pure wheel: sky_rs/extra.py" in result["summary"]


def test_different_metadata_fails() -> None:
    result = installer.compare_contents(
        (PURE_FILES, {META: _metadata(summary="other")}), (BINARY_FILES, {META: _metadata()}), LINUX
    )
    assert not result["ok"]
    assert result["summary"] == f"METADATA Summary: pure ['other'], {LINUX} ['s']"


# ----------------------------------------------------------------------------- pip's choice


def test_platform_lists_are_what_such_a_system_accepts() -> None:
    glibc = installer.glibc_platforms((2, 17), "x86_64")
    assert glibc[:2] == ("manylinux_2_17_x86_64", "manylinux2014_x86_64")
    assert "manylinux2010_x86_64" in glibc and "manylinux1_x86_64" in glibc
    assert glibc[-3:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64", "linux_x86_64")
    assert "manylinux_2_18_x86_64" not in glibc
    assert installer.musl_platforms((1, 2), "x86_64") == (
        "musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64", "linux_x86_64",
    )  # fmt: skip
    mac = installer.macos_platforms((14, 0), "arm64")
    assert "macosx_11_0_arm64" in mac and "macosx_14_0_universal2" in mac


def test_the_pip_command_is_offline_and_names_the_target() -> None:
    target = TARGETS["PyPy 3.11 (8.0, as in Debian sid) Linux x86_64"]
    command = installer.pip_command(target, [Path("/d")], Path("/t"))
    assert command[1:6] == ["-m", "pip", "install", "--dry-run", "--report"]
    for option in ("--no-index", "--find-links=/d", "--only-binary=:all:"):
        assert option in command
    pairs = dict(zip(command, command[1:]))
    assert pairs["--implementation"] == "pp"
    assert pairs["--abi"] == "pypy311_pp80"
    assert pairs["--python-version"] == "3.11"
    assert pairs["--target"] == "/t"
    assert command[-1] == "skypilot-rust"


def _report(*files: str) -> str:
    install = [
        {
            "metadata": {"name": name},
            "download_info": {"url": f"file:///dist/{file}"},
        }
        for name, file in zip(["pip", "skypilot_rust"], ["pip-26.0-py3-none-any.whl", *files])
    ]
    return json.dumps({"version": "1", "install": install})


def test_the_chosen_file_is_read_from_pips_report() -> None:
    assert installer.chosen_file(_report(LINUX)) == LINUX
    assert installer.chosen_file(json.dumps({"install": []})) is None


@pytest.mark.parametrize(
    ("file", "kind"),
    [
        (PURE, "pure"),
        (LINUX, "linux-x86_64"),
        (MACOS, "macos-arm64"),
        (FREE_THREADED, "cp314"),
        (PYPY, "pp311"),
    ],
)
def test_each_wheel_has_a_kind(file: str, kind: str) -> None:
    assert installer.kind_of(file, wheels.classify) == kind


ALL_RELEASE: List[str] = ["pure", "linux-x86_64", "macos-arm64"]


@pytest.mark.parametrize(
    ("target", "available", "expected"),
    [
        ("CPython 3.8 Linux x86_64 (glibc)", ALL_RELEASE, "linux-x86_64"),
        ("CPython 3.13 Linux x86_64 (glibc)", ALL_RELEASE, "linux-x86_64"),
        ("CPython 3.14t (free-threaded) Linux x86_64", ALL_RELEASE, "pure"),
        ("CPython 3.13t (free-threaded) Linux x86_64", ALL_RELEASE, "pure"),
        ("CPython 3.14t (free-threaded) Linux x86_64", [*ALL_RELEASE, "cp314t"], "cp314t"),
        ("PyPy 3.11 (8.0, as in Debian sid) Linux x86_64", ALL_RELEASE, "pure"),
        ("PyPy 3.11 (8.0, as in Debian sid) Linux x86_64", [*ALL_RELEASE, "pp311"], "pp311"),
        ("CPython 3.13 Linux x86_64 (musl)", ALL_RELEASE, "pure"),
        ("CPython 3.13 Windows amd64", ALL_RELEASE, "pure"),
        ("CPython 3.13 macOS arm64", ALL_RELEASE, "macos-arm64"),
    ],
)
def test_what_each_target_must_get(target: str, available: List[str], expected: str) -> None:
    assert installer.expected_kind(TARGETS[target], available) == expected


def test_a_binary_target_given_the_pure_wheel_fails() -> None:
    target = TARGETS["CPython 3.13 Linux x86_64 (glibc)"]
    result = installer.judge_choice(target, PURE, "linux-x86_64", wheels.classify)
    assert not result["ok"]
    assert result["summary"].endswith(f"pip chose {PURE} (pure), expected linux-x86_64")
    assert installer.judge_choice(target, LINUX, "linux-x86_64", wheels.classify)["ok"]


def test_no_choice_fails_with_pips_words() -> None:
    target = TARGETS["CPython 3.13 Windows amd64"]
    result = installer.judge_choice(
        target, None, "pure", wheels.classify, "No matching distribution"
    )
    assert not result["ok"]
    assert result["summary"] == f"{target.name}: pip chose nothing: No matching distribution"


def test_the_pure_wheel_is_a_release_artifact_with_its_checks() -> None:
    assert binaries.RELEASE_ARTIFACTS[-1] == "pure"
    assert binaries.WHEEL_CHECKS["pure"] == ("twine", "tag", "contents", "installer")
    assert binaries.check_pure_tags(PURE)["ok"]
    wrong = binaries.check_pure_tags("skypilot_rust-0.1.0-py2.py3-none-any.whl")
    assert wrong["summary"] == "tags py2.py3-none-any, expected py3-none-any"


# ----------------------------------------------------------------------------- the real wheel


@pytest.fixture(scope="module")
def built_pure_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pure_wheel.build_pure_wheel(PROJECT_ROOT, tmp_path_factory.mktemp("dist"))


def test_the_built_wheel_is_py3_none_any_without_native(built_pure_wheel: Path) -> None:
    assert built_pure_wheel.name == PURE
    with zipfile.ZipFile(built_pure_wheel) as archive:
        names = archive.namelist()
        wheel_file = archive.read("skypilot_rust-0.1.0.dist-info/WHEEL").decode()
    assert sorted(n for n in names if n.startswith("sky_rs/")) == [
        "sky_rs/__init__.py", "sky_rs/_digest.py", "sky_rs/_native.pyi", "sky_rs/fallback.py",
        "sky_rs/py.typed",
    ]  # fmt: skip
    assert "Root-Is-Purelib: true" in wheel_file
    assert "Tag: py3-none-any" in wheel_file


PROBE = """
import json, sky_rs
t = "x" * 50
from sky_rs import fallback
info = sky_rs.backend_info()
answers = {
    "base36": sky_rs.base36_encode("deadbeef") == fallback.base36_encode("deadbeef"),
    "truncate": sky_rs.truncate_long_string(t, 9) == fallback.truncate_long_string(t, 9),
    "cpus": sky_rs.get_cpu_count() == fallback.get_cpu_count(),
}
print(json.dumps({"info": info, "answers": answers, "stats": sky_rs.stats(),
                  "file": sky_rs.__file__}))
"""


def test_the_pure_wheel_installed_in_a_fresh_venv_answers_in_python(
    built_pure_wheel: Path, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # This test's pip installs into the new venv's site-packages (the venv has no pip).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--target", site, str(built_pure_wheel)],
        check=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run(
        [str(python), "-I", "-c", PROBE], capture_output=True, text=True, cwd=work
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    info = result["info"]
    assert result["file"].startswith(site)
    assert info["backend"] == "python"
    assert info["reason"].startswith("the native module is not part of this installation")
    assert info["native_import_error"].startswith("ImportError: cannot import name '_native'")
    assert "native" not in info
    assert all(result["answers"].values()), result["answers"]
    base36 = result["stats"]["functions"]["base36_encode"]
    assert base36 == {"rust": 0, "python": 1, "fallbacks": {"import-error": 1}}
    assert result["stats"]["fallback_rate"] == 1.0

"""The pure wheel beside the binary ones: same contents but `_native`, and pip's choice per target.

Two checks of `nox -s release-check` (wheels.py runs them; they are the `contents` and
`installer` checks of the `pure` artifact):

- `contents`: the pure wheel's file list is a binary wheel's without what exists only because
  Rust was compiled (`sky_rs/_native.*.so|.pyd|.dylib` and maturin's CycloneDX SBOM of the Rust
  crates under `*.dist-info/sboms/`), and the metadata fields a user sees on PyPI are equal.
- `installer`: for each target of `INSTALL_TARGETS`, `pip install --dry-run --report -` with
  `--no-index --find-links <dist> --only-binary=:all: --platform/--implementation/
  --python-version/--abi --target <tmp>` answers offline which file an installer on that
  interpreter and platform would take; it must be the binary wheel where one fits and the pure
  one elsewhere. A wheel built for one interpreter (a `cp314t` or `pp311` wheel found beside
  the others) is expected on its interpreter instead of the pure one.

Parsing pip's report and judging it (`chosen_file`, `expected_kind`, `kind_of`, `judge_choice`,
`compare_contents`) need no pip run, so the unit tests cover every verdict.
"""

from __future__ import annotations

import dataclasses
import email.parser
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sky_matrix.build.manylinux_wheel import wheel_tags
from sky_matrix.build.pure_wheel import is_native_file

Result = Dict[str, Any]
DISTRIBUTION = "skypilot-rust"
# METADATA fields a user sees on PyPI and pip acts on; both wheels must say the same.
METADATA_FIELDS = ("Name", "Version", "Summary", "License", "Requires-Python", "Classifier")


@dataclasses.dataclass(frozen=True)
class InstallTarget:
    """One interpreter and platform an installer may run on, as pip's target options say it."""

    name: str
    platforms: Tuple[str, ...]  # --platform, every tag that system accepts (pip expands none)
    implementation: str  # --implementation: cp, pp
    python_version: str  # --python-version: "3.8"
    abi: str  # --abi: cp38, cp314t, pypy311_pp73
    binary: Optional[str]  # the release wheel that fits ("linux-x86_64"), None: none does
    interpreter_tag: Optional[str] = None  # a wheel with this python tag (cp314t, pp311) fits


# PEP 600's aliases of the legacy manylinux tags.
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def glibc_platforms(glibc: Tuple[int, int], arch: str) -> Tuple[str, ...]:
    """The platform tags an interpreter on a glibc system accepts, newest first (PEP 600):
    manylinux_2_Y for every Y down to 5, the legacy aliases, then linux_<arch>.

    pip takes `--platform` literally (no expansion), so a target lists them all; that is what
    `packaging.tags.sys_tags()` yields on such a system.
    """
    major, newest = glibc
    tags: List[str] = []
    for minor in range(newest, 4, -1):
        tags.append(f"manylinux_{major}_{minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((major, minor))
        if legacy:
            tags.append(f"{legacy}_{arch}")
    return (*tags, f"linux_{arch}")


def musl_platforms(musl: Tuple[int, int], arch: str) -> Tuple[str, ...]:
    """The platform tags on a musl system (PEP 656): musllinux_1_Y down to 0, linux_<arch>."""
    major, newest = musl
    return (*(f"musllinux_{major}_{m}_{arch}" for m in range(newest, -1, -1)), f"linux_{arch}")


def macos_platforms(version: Tuple[int, int], arch: str) -> Tuple[str, ...]:
    """The platform tags on macOS `version` (packaging's own list: older versions, universal2)."""
    from packaging.tags import mac_platforms

    return tuple(mac_platforms(version, arch))


_GLIBC_X86_64 = glibc_platforms((2, 39), "x86_64")  # Ubuntu 24.04's glibc
INSTALL_TARGETS: Tuple[InstallTarget, ...] = (
    InstallTarget(
        "CPython 3.8 Linux x86_64 (glibc)", glibc_platforms((2, 17), "x86_64"), "cp", "3.8",
        "cp38", "linux-x86_64",
    ),
    InstallTarget(
        "CPython 3.13 Linux x86_64 (glibc)", _GLIBC_X86_64, "cp", "3.13", "cp313", "linux-x86_64"
    ),
    InstallTarget(
        "CPython 3.14t (free-threaded) Linux x86_64", _GLIBC_X86_64, "cp", "3.14", "cp314t",
        None, "cp314t",
    ),
    # PyO3 0.29 builds no module for free-threaded 3.13: the pure wheel, always (the matrix's
    # docker:sid-3.13t cells test that installation).
    InstallTarget(
        "CPython 3.13t (free-threaded) Linux x86_64", _GLIBC_X86_64, "cp", "3.13", "cp313t", None
    ),
    InstallTarget(
        "PyPy 3.11 (8.0, as in Debian sid) Linux x86_64", _GLIBC_X86_64, "pp", "3.11",
        "pypy311_pp80", None, "pp311",
    ),
    InstallTarget(
        "CPython 3.13 Linux x86_64 (musl)", musl_platforms((1, 2), "x86_64"), "cp", "3.13",
        "cp313", None,
    ),
    InstallTarget("CPython 3.13 Windows amd64", ("win_amd64",), "cp", "3.13", "cp313", None),
    InstallTarget(
        "CPython 3.13 macOS arm64", macos_platforms((14, 0), "arm64"), "cp", "3.13", "cp313",
        "macos-arm64",
    ),
)  # fmt: skip


# ----------------------------------------------------------------------------- contents


def native_only(name: str) -> bool:
    """A wheel member that exists only because Rust was compiled into the wheel."""
    base = name.rsplit("/", 1)[-1]
    in_sboms = ".dist-info/sboms/" in name
    return (name.startswith("sky_rs/") and is_native_file(base)) or in_sboms


def _metadata(names_and_text: Dict[str, str]) -> Dict[str, List[str]]:
    text = next((t for n, t in names_and_text.items() if n.endswith(".dist-info/METADATA")), "")
    message = email.parser.Parser().parsestr(text, headersonly=True)
    return {field: sorted(message.get_all(field) or []) for field in METADATA_FIELDS}


def read_wheel(path: Path) -> Tuple[List[str], Dict[str, str]]:
    """(member names, {METADATA member: its text}) of a wheel."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata = {
            n: archive.read(n).decode("utf-8", "replace")
            for n in names
            if n.endswith(".dist-info/METADATA")
        }
    return names, metadata


def compare_contents(
    pure: Tuple[List[str], Dict[str, str]],
    binary: Tuple[List[str], Dict[str, str]],
    binary_name: str,
) -> Result:
    """The pure wheel holds exactly the binary wheel's files but the native-only ones, and the
    same metadata fields."""
    pure_names, pure_meta = pure
    binary_names, binary_meta = binary
    expected = sorted(n for n in binary_names if not native_only(n))
    problems: List[str] = []
    missing = sorted(set(expected) - set(pure_names))
    extra = sorted(set(pure_names) - set(expected))
    if missing:
        problems.append(f"missing from the pure wheel: {', '.join(missing)}")
    if extra:
        problems.append(f"only in the pure wheel: {', '.join(extra)}")
    pure_fields, binary_fields = _metadata(pure_meta), _metadata(binary_meta)
    for field in METADATA_FIELDS:
        if pure_fields[field] != binary_fields[field]:
            problems.append(
                f"METADATA {field}: pure {pure_fields[field]}, {binary_name} {binary_fields[field]}"
            )
    left_out = sorted(n for n in binary_names if native_only(n))
    return {
        "ok": not problems,
        "summary": (
            "; ".join(problems)
            if problems
            else f"{len(expected)} files = {binary_name} without {', '.join(left_out)};"
            f" {', '.join(METADATA_FIELDS)} equal"
        ),
        "compared_with": binary_name,
    }


# ----------------------------------------------------------------------------- pip's choice


def pip_command(target: InstallTarget, find_links: Sequence[Path], target_dir: Path) -> List[str]:
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--report", "-", "--quiet",
        "--no-index", *(f"--find-links={d}" for d in find_links), "--only-binary=:all:",
        "--implementation", target.implementation, "--python-version", target.python_version,
        "--abi", target.abi, "--target", str(target_dir),
    ]  # fmt: skip
    for platform_tag in target.platforms:
        command += ["--platform", platform_tag]
    return [*command, DISTRIBUTION]


def chosen_file(report_text: str) -> Optional[str]:
    """The file name pip's `--report` says it would install for our distribution, or None."""
    report = json.loads(report_text)
    for item in report.get("install", []):
        name = (item.get("metadata") or {}).get("name", "")
        if name.lower().replace("_", "-") != DISTRIBUTION:
            continue
        url = (item.get("download_info") or {}).get("url", "")
        return url.rsplit("/", 1)[-1] or None
    return None


def kind_of(file_name: str, classify: Any) -> str:
    """`pure`, `linux-x86_64`, ... (wheels.classify) or `<python tag>` for a wheel made for one
    interpreter only (`cp314t`, `pp311`), whatever its platform."""
    pythons, abis, _ = wheel_tags(file_name)
    if "abi3" not in abis and pythons != ["py3"]:
        return pythons[0]
    return str(classify(file_name))


def expected_kind(target: InstallTarget, available: Iterable[str]) -> str:
    """What pip must take: the target's own interpreter wheel when one is there, else its binary
    release wheel, else the pure one."""
    kinds = set(available)
    if target.interpreter_tag and target.interpreter_tag in kinds:
        return target.interpreter_tag
    if target.binary:
        return target.binary
    return "pure"


def judge_choice(
    target: InstallTarget, chosen: Optional[str], expected: str, classify: Any, pip_error: str = ""
) -> Result:
    facts = {"target": target.name, "expected": expected, "chosen": chosen}
    if chosen is None:
        why = f": {pip_error}" if pip_error else ""
        return {"ok": False, "summary": f"{target.name}: pip chose nothing{why}", **facts}
    kind = kind_of(chosen, classify)
    if kind != expected:
        return {
            "ok": False,
            "summary": f"{target.name}: pip chose {chosen} ({kind}), expected {expected}",
            **facts,
        }
    return {"ok": True, "summary": f"{target.name}: {chosen}", **facts}


def pip_version() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )
    return " ".join(done.stdout.split()[:2]) or "pip not found"


def check_installer_choice(
    find_links: Sequence[Path], wheel_names: Sequence[str], classify: Any
) -> Result:
    """Every target's choice by pip, offline; the result of the `installer` check.

    pip older than 24.1 (packaging < 24) still offers abi3 wheels to free-threaded CPython, so
    its version is part of the evidence.
    """
    available = [kind_of(name, classify) for name in wheel_names]
    choices: List[Result] = []
    for target in INSTALL_TARGETS:
        expected = expected_kind(target, available)
        with tempfile.TemporaryDirectory(prefix="sky-rs-pip-target-") as target_dir:
            command = pip_command(target, find_links, Path(target_dir))
            done = subprocess.run(command, capture_output=True, text=True, errors="replace")
        chosen: Optional[str] = None
        error = ""
        if done.returncode == 0:
            try:
                chosen = chosen_file(done.stdout)
            except ValueError as exc:
                error = f"unreadable report: {exc}"
        else:
            error = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
        choices.append(judge_choice(target, chosen, expected, classify, error))
    failed = [c for c in choices if not c["ok"]]
    summary = (
        "; ".join(c["summary"] for c in failed)
        if failed
        else "; ".join(f"{c['target']} -> {c['expected']}" for c in choices)
    )
    return {"ok": not failed, "summary": summary, "pip": pip_version(), "choices": choices}

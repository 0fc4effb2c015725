"""What the release wheels promise by name and what their extension modules are.

A wheel's tags promise where it installs; the `.so` inside decides where it loads. For each
release platform this module knows the tags maturin gives the wheel and checks them, and
reads the facts of the extension module with a maintained parser rather than by hand:

- ELF (`pyelftools`, which `auditwheel` depends on): class and machine (`EM_X86_64`,
  `EM_AARCH64`); the glibc symbol versions are `auditwheel show`'s business.
- Mach-O (`lief`): per slice the CPU type, the minimum macOS (`LC_BUILD_VERSION` minos, or
  `LC_VERSION_MIN_MACOSX` for older linkers), the SDK, every `LC_LOAD_*DYLIB`, and the
  bindings of the Python C-API symbols, which must be flat (dynamic) lookups resolved in
  the interpreter that imports the module, never bound to a libpython or Python.framework.

The facts are plain dicts (written to release-report/wheels.json); judging them
(`judge_macho`, `judge_elf`, `check_tags`) needs no parser, so the tests cover every verdict
without a macOS wheel.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sky_matrix.build.manylinux_wheel import wheel_tags

Result = Dict[str, Any]

LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
# Bind ordinals that mean "look the symbol up in every loaded image": -2 is
# BIND_SPECIAL_DYLIB_FLAT_LOOKUP as dyld info and lief report it; 0xfe/0xfffe the same as an
# unsigned chained-fixups ordinal.
FLAT_LOOKUP_ORDINALS = (-2, 0xFE, 0xFFFE)
_PYTHON_SYMBOL = re.compile(r"^__?Py")
_MACOS_TAG = re.compile(r"^macosx_(\d+)_(\d+)_(\w+)$")


@dataclasses.dataclass(frozen=True)
class ReleasePlatform:
    """One wheel of the release: how it is built and what it must turn out to be."""

    name: str  # the artifact's platform in wheels.json: "linux-x86_64", "macos-arm64"
    rust_target: str
    platform_tags: Tuple[str, ...]  # the wheel name's platform tags, exactly
    machine: str  # ELF e_machine or Mach-O cputype, as pyelftools / lief name it
    runnable_here: Tuple[str, ...]  # host machines (platform.machine()) that can run its cells
    maturin_args: Tuple[str, ...] = ()
    env: Tuple[Tuple[str, str], ...] = ()

    @property
    def is_macos(self) -> bool:
        return self.name.startswith("macos-")

    @property
    def minos(self) -> Optional[Tuple[int, int]]:
        """The macOS version the tag promises (None for Linux)."""
        for tag in self.platform_tags:
            match = _MACOS_TAG.match(tag)
            if match:
                return int(match.group(1)), int(match.group(2))
        return None


# maturin's defaults for the deployment target, which are rustc's minimums for each target
# (x86_64-apple-darwin 10.12 since Rust 1.74; aarch64-apple-darwin 11.0, the first macOS on
# Apple silicon). They are set explicitly so an inherited MACOSX_DEPLOYMENT_TARGET cannot move
# the tag, and the oldest macOS rustc supports is the widest audience the wheel can have.
MACOS_DEPLOYMENT = {"aarch64-apple-darwin": "11.0", "x86_64-apple-darwin": "10.12"}
_MANYLINUX = ("--compatibility", "manylinux2014")

RELEASE_PLATFORMS: Tuple[ReleasePlatform, ...] = (
    ReleasePlatform(
        "linux-x86_64",
        "x86_64-unknown-linux-gnu",
        ("manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        "EM_X86_64",
        ("x86_64", "amd64"),
        _MANYLINUX,
    ),
    ReleasePlatform(
        "linux-aarch64",
        "aarch64-unknown-linux-gnu",
        ("manylinux_2_17_aarch64", "manylinux2014_aarch64"),
        "EM_AARCH64",
        ("aarch64", "arm64"),
        _MANYLINUX,
    ),
    ReleasePlatform(
        "macos-arm64",
        "aarch64-apple-darwin",
        ("macosx_11_0_arm64",),
        "ARM64",
        (),
        env=(("MACOSX_DEPLOYMENT_TARGET", MACOS_DEPLOYMENT["aarch64-apple-darwin"]),),
    ),
    ReleasePlatform(
        "macos-x86_64",
        "x86_64-apple-darwin",
        ("macosx_10_12_x86_64",),
        "X86_64",
        (),
        env=(("MACOSX_DEPLOYMENT_TARGET", MACOS_DEPLOYMENT["x86_64-apple-darwin"]),),
    ),
)
BY_NAME = {p.name: p for p in RELEASE_PLATFORMS}
# The pure-Python wheel (py3-none-any, sky_rs without _native) is no maturin target: it is built by
# build/pure_wheel.py and checked against the binary wheels (signoff/installer.py).
PURE = "pure"
PURE_TAGS = "py3-none-any"
# What `nox -s release-check` must produce and audit, in report order.
RELEASE_ARTIFACTS: Tuple[str, ...] = ("sdist", *BY_NAME, PURE)
# The checks each artifact must have passed (wheels.py runs them; the sign-off requires them).
WHEEL_CHECKS: Dict[str, Tuple[str, ...]] = {
    "sdist": ("twine",),
    "linux-x86_64": ("twine", "tag", "elf", "auditwheel", "abi3audit"),
    "linux-aarch64": ("twine", "tag", "elf", "auditwheel", "abi3audit"),
    "macos-arm64": ("twine", "tag", "macho", "abi3audit"),
    "macos-x86_64": ("twine", "tag", "macho", "abi3audit"),
    # contents: the binary wheels' files but _native; installer: pip picks each where it fits
    PURE: ("twine", "tag", "contents", "installer"),
}


def _result(problems: Sequence[str], ok_summary: str, **facts: Any) -> Result:
    ok = not problems
    return {"ok": ok, "summary": ok_summary if ok else "; ".join(problems), **facts}


# ----------------------------------------------------------------------------- tags


def check_tags(file_name: str, platform: ReleasePlatform) -> Result:
    """cp38-abi3 and exactly the platform tags this platform's wheel must carry."""
    try:
        pythons, abis, tags = wheel_tags(file_name)
    except ValueError as exc:
        return {"ok": False, "summary": str(exc)}
    problems = []
    if pythons != ["cp38"] or abis != ["abi3"]:
        problems.append(f"python-abi tags {'.'.join(pythons)}-{'.'.join(abis)}, expected cp38-abi3")
    if sorted(tags) != sorted(platform.platform_tags):
        problems.append(
            f"platform tags {'.'.join(tags)}, expected {'.'.join(platform.platform_tags)}"
        )
    return _result(
        problems,
        f"cp38-abi3-{'.'.join(tags)}",
        tags=f"{'.'.join(pythons)}-{'.'.join(abis)}-{'.'.join(tags)}",
    )


def check_pure_tags(file_name: str) -> Result:
    """py3-none-any: any Python 3, no ABI, any platform."""
    try:
        pythons, abis, tags = wheel_tags(file_name)
    except ValueError as exc:
        return {"ok": False, "summary": str(exc)}
    found = f"{'.'.join(pythons)}-{'.'.join(abis)}-{'.'.join(tags)}"
    problems = [] if found == PURE_TAGS else [f"tags {found}, expected {PURE_TAGS}"]
    return _result(problems, PURE_TAGS, tags=found)


# ----------------------------------------------------------------------------- reading wheels


def extension_modules(wheel: Path) -> List[Tuple[str, bytes]]:
    """(path in the wheel, contents) of every compiled module (`*.so`, `*.dylib`, `*.pyd`)."""
    with zipfile.ZipFile(wheel) as archive:
        return [
            (name, archive.read(name))
            for name in archive.namelist()
            if name.endswith((".so", ".dylib", ".pyd"))
        ]


# ----------------------------------------------------------------------------- Mach-O


def macho_facts(data: bytes) -> Dict[str, Any]:
    """The facts of a Mach-O image (thin or fat), read with lief.

    {"slices": [{"cputype", "filetype", "minos", "sdk", "dylibs", "python_flat",
    "python_bound"}]}; raises ImportError without lief, ValueError for what is no Mach-O.
    """
    import lief

    lief.logging.disable()  # lief logs to stderr about optional sections it could not read
    with tempfile.NamedTemporaryFile(suffix=".so") as handle:
        handle.write(data)
        handle.flush()
        fat = lief.MachO.parse(handle.name)
    if fat is None or len(fat) == 0:
        raise ValueError("not a Mach-O image")
    load_kinds = {
        lief.MachO.LoadCommand.TYPE.LOAD_DYLIB,
        lief.MachO.LoadCommand.TYPE.LOAD_WEAK_DYLIB,
        lief.MachO.LoadCommand.TYPE.REEXPORT_DYLIB,
        lief.MachO.LoadCommand.TYPE.LAZY_LOAD_DYLIB,
        lief.MachO.LoadCommand.TYPE.LOAD_UPWARD_DYLIB,
    }
    slices = []
    for index in range(len(fat)):
        binary = fat.at(index)
        minos: Optional[List[int]] = None
        sdk: Optional[List[int]] = None
        if binary.has_build_version:
            minos, sdk = list(binary.build_version.minos), list(binary.build_version.sdk)
        elif binary.has_version_min:
            minos, sdk = list(binary.version_min.version), list(binary.version_min.sdk)
        dylibs = [lib.name for lib in binary.libraries if lib.command in load_kinds]
        flat: List[str] = []
        bound: List[str] = []
        for binding in binary.bindings:
            name = binding.symbol.name if binding.has_symbol else ""
            if not _PYTHON_SYMBOL.match(name):
                continue
            if binding.library_ordinal in FLAT_LOOKUP_ORDINALS:
                flat.append(name)
            else:
                library = binding.library.name if binding.has_library else "?"
                bound.append(f"{name} -> {library}")
        slices.append(
            {
                "cputype": str(binary.header.cpu_type).rsplit(".", 1)[-1],
                "filetype": str(binary.header.file_type).rsplit(".", 1)[-1],
                "minos": _version(minos),
                "sdk": _version(sdk),
                "dylibs": dylibs,
                "python_flat": len(set(flat)),
                "python_bound": sorted(set(bound)),
            }
        )
    return {"slices": slices}


def _version(parts: Optional[Sequence[int]]) -> Optional[str]:
    if not parts:
        return None
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


def _version_tuple(text: Optional[str]) -> Optional[Tuple[int, int]]:
    if not text:
        return None
    parts = [int(p) for p in text.split(".")]
    return parts[0], (parts[1] if len(parts) > 1 else 0)


def judge_macho(facts: Dict[str, Any], platform: ReleasePlatform) -> List[str]:
    """What is wrong with one module's Mach-O facts for this platform's wheel (nothing: [])."""
    problems: List[str] = []
    slices = facts.get("slices") or []
    arches = [s.get("cputype") for s in slices]
    if arches != [platform.machine]:
        problems.append(f"architectures {'+'.join(map(str, arches)) or 'none'}, "
                        f"expected {platform.machine} alone")  # fmt: skip
    promised = platform.minos
    for piece in slices:
        arch = piece.get("cputype")
        minos = _version_tuple(piece.get("minos"))
        if minos is None:
            problems.append(f"{arch}: no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX")
        elif promised is not None and minos != promised:
            problems.append(
                f"{arch}: minos {piece.get('minos')}, the tag promises {promised[0]}.{promised[1]}"
            )
        dylibs = piece.get("dylibs") or []
        if dylibs != [LIBSYSTEM]:
            others = [d for d in dylibs if d != LIBSYSTEM]
            problems.append(
                f"{arch}: links {', '.join(others)}"
                if LIBSYSTEM in dylibs
                else f"{arch}: links {', '.join(dylibs) or 'nothing'}, not {LIBSYSTEM}"
            )
        bound = piece.get("python_bound") or []
        if bound:
            shown = ", ".join(bound[:3]) + (f" and {len(bound) - 3} more" if len(bound) > 3 else "")
            problems.append(f"{arch}: Python symbols bound to a library, not looked up: {shown}")
        elif not piece.get("python_flat"):
            problems.append(f"{arch}: no Python C-API symbol imported: not the extension module?")
    return problems


def macho_summary(facts: Dict[str, Any]) -> str:
    parts = []
    for piece in facts.get("slices") or []:
        parts.append(
            f"{piece.get('cputype')} minos {piece.get('minos')} (sdk {piece.get('sdk')}), "
            f"links {' '.join(piece.get('dylibs') or []) or 'nothing'}, "
            f"{piece.get('python_flat')} Python symbols by dynamic lookup"
        )
    return "; ".join(parts)


def check_macho(wheel: Path, platform: ReleasePlatform) -> Result:
    """Every compiled module of a macOS wheel: architecture, minos, dylibs, Python lookups."""
    return _check_modules(wheel, platform, macho_facts, judge_macho, macho_summary, "lief")


# ----------------------------------------------------------------------------- ELF


def elf_facts(data: bytes) -> Dict[str, Any]:
    """{"class": 64, "machine": "EM_AARCH64", "needed": [...]}, read with pyelftools."""
    import io

    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        needed = [
            tag.needed
            for section in elf.iter_sections()
            if isinstance(section, DynamicSection)
            for tag in section.iter_tags()
            if tag.entry.d_tag == "DT_NEEDED"
        ]
    except ELFError as exc:
        raise ValueError(f"not an ELF image: {exc}") from exc
    return {"class": elf.elfclass, "machine": elf["e_machine"], "needed": needed}


def judge_elf(facts: Dict[str, Any], platform: ReleasePlatform) -> List[str]:
    problems = []
    if facts.get("machine") != platform.machine:
        problems.append(f"ELF machine {facts.get('machine')}, expected {platform.machine}")
    if facts.get("class") != 64:
        problems.append(f"ELF class {facts.get('class')}, expected 64")
    needed = facts.get("needed") or []
    python_libs = [n for n in needed if n.startswith("libpython")]
    if python_libs:
        problems.append(f"links {', '.join(python_libs)}: an extension must not")
    return problems


def check_elf(wheel: Path, platform: ReleasePlatform) -> Result:
    """Every compiled module of a Linux wheel: ELF class, machine, needed libraries."""
    return _check_modules(wheel, platform, elf_facts, judge_elf, _elf_summary, "pyelftools")


def _elf_summary(facts: Dict[str, Any]) -> str:
    return f"ELF{facts['class']} {facts['machine']}, needs {' '.join(facts['needed']) or 'nothing'}"


def _check_modules(
    wheel: Path,
    platform: ReleasePlatform,
    read_facts: Callable[[bytes], Dict[str, Any]],
    judge: Callable[[Dict[str, Any], ReleasePlatform], List[str]],
    describe: Callable[[Dict[str, Any]], str],
    reader: str,
) -> Result:
    """Read and judge each compiled module of `wheel` with one binary format's functions."""
    try:
        modules = extension_modules(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        return {"ok": False, "summary": f"unreadable wheel: {exc}"}
    if not modules:
        return {"ok": False, "summary": "no compiled module in the wheel"}
    problems: List[str] = []
    described: Dict[str, Any] = {}
    for name, data in modules:
        try:
            facts = read_facts(data)
        except ImportError:
            return {"ok": False, "summary": f"{reader} is not installed (pip install {reader})"}
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        described[name] = facts
        problems += [f"{name}: {p}" for p in judge(facts, platform)]
    summary = "; ".join(f"{n}: {describe(f)}" for n, f in described.items())
    return _result(problems, summary, modules=described)

"""Release evidence read from the tree: versions, CHANGELOG, user docs, the audited wheels."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sky_matrix.signoff import binaries, checks_matrix
from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import (
    FAIL,
    INSUFFICIENT,
    NOT_VERIFIABLE,
    PASS,
    Outcome,
    missing,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.9/3.10 only
    import tomli as tomllib

INIT_PY = Path("python/sky_rs/__init__.py")
# The user documentation the README must link to, and what each one is about.
USER_DOCS = {
    "docs/install.md": "installing, the kill switch, per-function rollback, canary and verify",
    "docs/upgrading.md": "upgrading from SkyPilot's utilities, the departures table",
    "docs/matrix-report.md": "reading the matrix report",
    "docs/soak.md": "running the soak",
    "docs/benchmarks.md": "the measured benchmark table",
}
LINUX_X86_64 = "linux-x86_64"
# The checks each artifact must have passed: one table, shared with wheels.py.
WHEEL_CHECKS = binaries.WHEEL_CHECKS
# Where each release wheel's cells run, as checks_matrix names systems and architectures.
PLATFORM_CELLS = {
    "linux-x86_64": ("Linux", "x86_64"),
    "linux-aarch64": ("Linux", "arm64"),
    "macos-arm64": ("Darwin", "arm64"),
    "macos-x86_64": ("Darwin", "x86_64"),
}
# Worst first: the item takes the worst of its platforms' verdicts.
_SEVERITY = (FAIL, INSUFFICIENT, NOT_VERIFIABLE, PASS)


def _toml(path: Path) -> Dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _init_version(path: Path) -> Optional[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return None


def collect_versions(ctx: Context) -> Tuple[List[Tuple[str, str]], List[str]]:
    """([(where, version)], [problems]) for every place that states the version."""
    found: List[Tuple[str, str]] = []
    problems: List[str] = []
    workspace_version: Optional[str] = None
    cargo = ctx.rust_dir / "Cargo.toml"
    try:
        data = _toml(cargo)
        workspace_version = data.get("workspace", {}).get("package", {}).get("version")
        if workspace_version:
            found.append((ctx.show(cargo), str(workspace_version)))
        for member in data.get("workspace", {}).get("members", []):
            member_toml = ctx.rust_dir / member / "Cargo.toml"
            version = _toml(member_toml).get("package", {}).get("version")
            if isinstance(version, str):
                found.append((ctx.show(member_toml), version))
            elif not (isinstance(version, dict) and version.get("workspace")):
                problems.append(f"{ctx.show(member_toml)} states no version")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{ctx.show(cargo)} unreadable: {exc}")
    pyproject = ctx.root / "pyproject.toml"
    try:
        project = _toml(pyproject).get("project", {})
        if "version" in project:
            found.append((ctx.show(pyproject), str(project["version"])))
        elif "version" in project.get("dynamic", []):
            pass  # maturin takes it from Cargo.toml, which is checked above
        else:
            problems.append("pyproject.toml states no version")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"pyproject.toml unreadable: {exc}")
    try:
        version = _init_version(ctx.root / INIT_PY)
        if version is None:
            problems.append(f"{INIT_PY} sets no __version__ string")
        else:
            found.append((f"sky_rs.__version__ ({INIT_PY})", version))
    except (OSError, SyntaxError) as exc:
        problems.append(f"{INIT_PY} unreadable: {exc}")
    return found, problems


def project_version(ctx: Context) -> Optional[str]:
    """The version pyproject.toml states (None if it cannot be read)."""
    try:
        version = _toml(ctx.root / "pyproject.toml").get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return str(version) if version is not None else None


def versions(ctx: Context) -> Outcome:
    found, problems = collect_versions(ctx)
    if problems:
        return Outcome(FAIL, "; ".join(problems))
    distinct = {version for _, version in found}
    listing = ", ".join(f"{where} {version}" for where, version in found)
    if len(distinct) != 1:
        return Outcome(FAIL, f"versions differ: {listing}")
    return Outcome(PASS, f"all {distinct.pop()}: {listing}")


def changelog(ctx: Context) -> Outcome:
    version = project_version(ctx)
    path = ctx.root / "CHANGELOG.md"
    if not path.is_file():
        return Outcome(FAIL, "CHANGELOG.md missing")
    if version is None:
        return Outcome(FAIL, "pyproject.toml states no version to look for in CHANGELOG.md")
    text = path.read_text(encoding="utf-8")
    heading = re.compile(rf"^##\s+\[?v?{re.escape(version)}\]?(?:\s|$)", re.MULTILINE)
    match = heading.search(text)
    if match is None:
        return Outcome(FAIL, f"CHANGELOG.md has no entry for {version}")
    line_end = text.find("\n", match.start())
    start = len(text) if line_end < 0 else line_end + 1  # the body begins below the heading
    following = re.search(r"^##\s", text[start:], re.MULTILINE)
    body = text[start : start + following.start()] if following else text[start:]
    entries = [line for line in body.splitlines() if line.strip().startswith(("-", "*"))]
    if not entries:
        return Outcome(FAIL, f"CHANGELOG.md's entry for {version} lists nothing")
    line = text[: match.start()].count("\n") + 1
    return Outcome(PASS, f"CHANGELOG.md:{line}: {version} with {len(entries)} items")


def user_docs(ctx: Context) -> Outcome:
    readme = ctx.root / "README.md"
    if not readme.is_file():
        return Outcome(FAIL, "README.md missing")
    readme_text = readme.read_text(encoding="utf-8")
    problems: List[str] = []
    for doc in USER_DOCS:
        path = ctx.root / doc
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            problems.append(f"{doc} missing")
        elif doc not in readme_text:
            problems.append(f"README.md does not link {doc}")
    benchmarks = ctx.root / "docs/benchmarks.md"
    if benchmarks.is_file() and not re.search(
        r"^\|.*speedup.*\|\s*$", benchmarks.read_text(encoding="utf-8"), re.MULTILINE
    ):
        problems.append("docs/benchmarks.md has no measured table")
    if problems:
        return Outcome(FAIL, "; ".join(problems))
    return Outcome(PASS, f"README.md links {len(USER_DOCS)} user docs: {', '.join(USER_DOCS)}")


def _load_wheels(ctx: Context) -> Tuple[Optional[Outcome], List[Dict[str, Any]]]:
    path = ctx.path(ctx.evidence.wheels)
    shown = ctx.show(ctx.evidence.wheels)
    if not path.is_file():
        return missing(shown, "release-check"), []
    try:
        data = read_json(path, shown)
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc)), []
    artifacts = data.get("artifacts") if isinstance(data, dict) else None
    if not isinstance(artifacts, list):
        return Outcome(FAIL, f"{shown} has no artifacts list"), []
    return None, artifacts


def _artifact_problems(artifact: Dict[str, Any], version: Optional[str]) -> List[str]:
    name = artifact.get("file", "?")
    problems = []
    if version is not None and artifact.get("version") != version:
        problems.append(f"{name} is version {artifact.get('version')}, the project {version}")
    checks = artifact.get("checks") or {}
    for tool in WHEEL_CHECKS.get(artifact.get("platform", ""), ()):
        result = checks.get(tool)
        if result is None:
            problems.append(f"{name}: {tool} did not run")
        elif not result.get("ok"):
            problems.append(f"{name}: {tool} failed: {result.get('summary', '')}")
    return problems


def _audited(
    artifacts: List[Dict[str, Any]], platforms: Tuple[str, ...], version: Optional[str]
) -> Tuple[List[str], List[str], Dict[str, str]]:
    """(problems, absent platforms, {platform: "file (twine+tag+...)"}) of the wheels evidence."""
    problems: List[str] = []
    absent: List[str] = []
    present: Dict[str, str] = {}
    for platform_name in platforms:
        chosen = [a for a in artifacts if a.get("platform") == platform_name]
        if not chosen:
            absent.append(platform_name)
            continue
        for artifact in chosen:
            problems += _artifact_problems(artifact, version)
            checks = "+".join(WHEEL_CHECKS.get(platform_name, ()))
            present[platform_name] = f"{artifact.get('file')} ({checks})"
    return problems, absent, present


def wheels_linux(ctx: Context) -> Outcome:
    problem, artifacts = _load_wheels(ctx)
    if problem:
        return problem
    problems, absent, present = _audited(artifacts, ("sdist", LINUX_X86_64), project_version(ctx))
    if problems:
        return Outcome(FAIL, "; ".join(problems))
    if absent:
        return Outcome(
            FAIL,
            f"no {', '.join(absent)} artifact in {ctx.show(ctx.evidence.wheels)}: "
            "run nox -s release-check",
        )
    return Outcome(PASS, "built and audited: " + ", ".join(present.values()))


def wheels_pure(ctx: Context) -> Outcome:
    """The py3-none-any wheel (contract: "Installing where no native wheel fits"): present, and
    its twine, tag, contents and installer checks passed."""
    problem, artifacts = _load_wheels(ctx)
    if problem:
        return problem
    problems, absent, present = _audited(artifacts, (binaries.PURE,), project_version(ctx))
    if problems:
        return Outcome(FAIL, "; ".join(problems))
    if absent:
        return Outcome(
            FAIL,
            f"no pure-Python wheel in {ctx.show(ctx.evidence.wheels)}: run nox -s release-check",
        )
    choices = [
        a.get("checks", {}).get("installer", {}).get("summary", "")
        for a in artifacts
        if a.get("platform") == binaries.PURE
    ]
    return Outcome(PASS, f"built and audited: {present[binaries.PURE]}; pip chose: {choices[0]}")


def _cells_of(
    ctx: Context, platform_name: str, records: List[checks_matrix.Record], no_cells: str
) -> Tuple[str, str]:
    """(verdict, words) for the matrix cells of one release platform."""
    system, arch = PLATFORM_CELLS[platform_name]
    cells = [r for r in records if r.system == system and r.arch == arch]
    failed = [r for r in cells if r.required and r.verdict in ("fail", "error")]
    passed = [r for r in cells if r.verdict == "pass"]
    if failed:
        return FAIL, f"cells failed: {checks_matrix._listing(failed)}"
    if passed:
        emulated = sum(1 for r in passed if r.data.get("extra", {}).get("emulation"))
        how = f" ({emulated} under emulation here)" if emulated else ""
        return PASS, f"{len(passed)} cells passed{how}"
    if cells:
        return INSUFFICIENT, f"{len(cells)} cells, none passed"
    if system != ctx.host_system:
        # Never "passed": these cells run on GitHub's macOS runners (matrix.yml) or nowhere.
        return NOT_VERIFIABLE, (
            f"cells not runnable on this host ({ctx.host_system}; GitHub's macOS runners run "
            "them, .github/workflows/matrix.yml)"
        )
    return INSUFFICIENT, f"cells not run here yet ({no_cells})"


def wheels_platforms(ctx: Context) -> Outcome:
    """Every release platform: its wheel built and audited, and where its cells stand.

    A wheel that failed a check, or is absent, fails the item. Then per platform the matrix
    evidence: passing cells pass (Linux aarch64's run here in the emulated images, their
    records carrying `architecture: aarch64`); none on a platform this host could run is
    insufficient; none on macOS from a Linux host is "not runnable on this host", never
    passed. The item is the worst of the four.
    """
    problem, artifacts = _load_wheels(ctx)
    if problem:
        return problem
    platforms = tuple(PLATFORM_CELLS)
    problems, absent, present = _audited(artifacts, platforms, project_version(ctx))
    if problems:
        return Outcome(FAIL, "; ".join(problems))
    if absent:
        return Outcome(
            FAIL,
            f"no {', '.join(absent)} wheel in {ctx.show(ctx.evidence.wheels)}: "
            "run nox -s release-check",
        )
    matrix_problem, records = checks_matrix.load_records(ctx)
    no_cells = (
        matrix_problem.evidence
        if matrix_problem
        else f"no such cell in {', '.join(ctx.show(p) for p in ctx.evidence.matrix_reports)}"
    )
    verdicts = []
    parts = []
    for platform_name in platforms:
        verdict, cells = _cells_of(ctx, platform_name, records, no_cells)
        verdicts.append(verdict)
        parts.append(
            f"{platform_name}: wheel built and audited here, {present[platform_name]}; {cells}"
        )
    worst = min(verdicts, key=_SEVERITY.index)
    return Outcome(worst, " | ".join(parts))


def code_review(ctx: Context) -> Outcome:
    return Outcome(
        NOT_VERIFIABLE,
        "a review is people reading the change on its pull request; no file in this tree "
        "can show it happened",
    )

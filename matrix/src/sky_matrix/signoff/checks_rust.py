"""Rust evidence: the cheap checks the sign-off runs itself, and the Rust coverage report.

`cargo fmt`, `cargo clippy -D warnings`, the release build's warnings and the
Rust tests take a minute or two on this machine, so the sign-off runs them
rather than trusting a file that may predate the sources.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from sky_matrix.core.text import last_lines
from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import FAIL, NOT_VERIFIABLE, PASS, Outcome, missing

_FMT_DIFF = re.compile(r"^Diff in (.+?)(?::\d+:| at line \d+:)\s*$")
_TEST_RESULT = re.compile(
    r"^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored", re.MULTILINE
)
_TEST_FAILED = re.compile(r"^test (\S+) \.\.\. FAILED$", re.MULTILINE)
_EMITTED = re.compile(r"^\d+ warnings? emitted$")


def _shown_list(items: List[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def cargo_fmt(ctx: Context) -> Outcome:
    result = ctx.run(["cargo", "fmt", "--all", "--check"], ctx.rust_dir, 300)
    if result.error:
        return Outcome(FAIL, f"cargo fmt could not run: {result.error}")
    if result.ok:
        return Outcome(PASS, "cargo fmt --all --check: every file formatted")
    files = sorted(
        {
            ctx.show(Path(m.group(1)))
            for line in result.stdout.splitlines()
            if (m := _FMT_DIFF.match(line))
        }
    )
    if not files:
        return Outcome(FAIL, f"cargo fmt --all --check failed: {last_lines(result.stderr, 3)}")
    return Outcome(
        FAIL, f"cargo fmt --all --check: {len(files)} file(s) need formatting: {_shown_list(files)}"
    )


def _diagnostics(ctx: Context, stdout: str, levels: Tuple[str, ...]) -> Iterator[str]:
    """`path:line: message` for each workspace diagnostic of the given levels in cargo's JSON."""
    rust_dir = str(ctx.rust_dir.resolve())
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            message: Dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") != "compiler-message":
            continue
        if not str(message.get("manifest_path", "")).startswith(rust_dir):
            continue  # a dependency's lints are capped by cargo and not ours to fix
        diagnostic = message.get("message") or {}
        if diagnostic.get("level") not in levels:
            continue
        text = str(diagnostic.get("message", ""))
        if _EMITTED.match(text):
            continue
        spans = diagnostic.get("spans") or []
        primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
        where = f"{primary['file_name']}:{primary['line_start']}: " if primary else ""
        yield f"{where}{text}"


def cargo_clippy(ctx: Context) -> Outcome:
    command = [
        "cargo", "clippy", "--workspace", "--all-targets", "--message-format=json",
        "--", "-D", "warnings",
    ]  # fmt: skip
    result = ctx.run(command, ctx.rust_dir, ctx.cargo_timeout_s)
    if result.error:
        return Outcome(FAIL, f"cargo clippy could not run: {result.error}")
    found = sorted(set(_diagnostics(ctx, result.stdout, ("error", "warning"))))
    if result.ok and not found:
        return Outcome(PASS, "cargo clippy --workspace --all-targets -- -D warnings: clean")
    if not found:
        return Outcome(FAIL, f"cargo clippy failed: {last_lines(result.stderr, 3)}")
    return Outcome(
        FAIL, f"cargo clippy -D warnings: {len(found)} finding(s): {_shown_list(found, 3)}"
    )


def release_warnings(ctx: Context) -> Outcome:
    command = ["cargo", "build", "--release", "--workspace", "--message-format=json"]
    result = ctx.run(command, ctx.rust_dir, ctx.cargo_timeout_s)
    if result.error:
        return Outcome(FAIL, f"cargo build --release could not run: {result.error}")
    errors = sorted(set(_diagnostics(ctx, result.stdout, ("error",))))
    if not result.ok:
        detail = _shown_list(errors, 2) if errors else last_lines(result.stderr, 3)
        return Outcome(FAIL, f"cargo build --release failed: {detail}")
    warnings = sorted(set(_diagnostics(ctx, result.stdout, ("warning",))))
    if warnings:
        return Outcome(
            FAIL, f"release build: {len(warnings)} warning(s): {_shown_list(warnings, 3)}"
        )
    return Outcome(PASS, "cargo build --release --workspace: 0 warnings")


def rust_tests(ctx: Context) -> Outcome:
    command = ["cargo", "test", "--workspace", "--no-fail-fast"]
    result = ctx.run(command, ctx.rust_dir, ctx.cargo_timeout_s)
    if result.error:
        return Outcome(FAIL, f"cargo test could not run: {result.error}")
    passed = failed = ignored = 0
    for match in _TEST_RESULT.finditer(result.stdout):
        passed += int(match.group(2))
        failed += int(match.group(3))
        ignored += int(match.group(4))
    names = _TEST_FAILED.findall(result.stdout)
    if failed or not result.ok:
        if not failed and not names:
            return Outcome(
                FAIL, f"cargo test failed to build or run: {last_lines(result.stderr, 3)}"
            )
        return Outcome(
            FAIL, f"cargo test: {failed} failed ({_shown_list(names, 3)}), {passed} passed"
        )
    if passed == 0:
        return Outcome(FAIL, "cargo test --workspace ran no test")
    return Outcome(PASS, f"cargo test --workspace: {passed} passed, 0 failed, {ignored} ignored")


def rust_coverage(ctx: Context) -> Outcome:
    directory = ctx.path(ctx.evidence.coverage_dir)
    report = directory / "rust.json"
    shown = ctx.show(report)
    not_measurable = directory / "rust-unavailable.txt"
    if not report.is_file():
        if not_measurable.is_file():
            why = not_measurable.read_text(encoding="utf-8", errors="replace").strip()
            return Outcome(NOT_VERIFIABLE, f"Rust coverage could not be measured here: {why}")
        return missing(shown, "coverage")
    try:
        data = read_json(report, shown)
        totals = data["data"][0]["totals"]["lines"]
        files = data["data"][0].get("files", [])
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc))
    except (KeyError, IndexError, TypeError):
        return Outcome(FAIL, f"{shown} is not a cargo llvm-cov JSON export")
    percent = float(totals["percent"])
    text = (
        f"lines {percent:.1f}% ({totals['covered']}/{totals['count']}) over {len(files)} "
        f"files (target {ctx.coverage_target:g}%)"
    )
    lowest = sorted(files, key=lambda f: f["summary"]["lines"]["percent"])[:3]
    if lowest:
        text += "; lowest: " + ", ".join(
            f"{ctx.show(Path(f['filename']))} {f['summary']['lines']['percent']:.0f}%"
            for f in lowest
        )
    return Outcome(PASS if percent >= ctx.coverage_target else FAIL, text)


def security_audit(ctx: Context) -> Outcome:
    version = ctx.run(["cargo", "audit", "--version"], ctx.rust_dir, 60)
    if not version.ok:
        return Outcome(
            NOT_VERIFIABLE,
            "cargo-audit is not installed, and the RustSec advisory database it needs is "
            "fetched from GitHub, which this host cannot reach (sky_rs's Python side has "
            "no dependencies to audit)",
        )
    result = ctx.run(["cargo", "audit", "--json"], ctx.rust_dir, 600)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        return Outcome(
            NOT_VERIFIABLE,
            f"cargo audit could not load the advisory database: {last_lines(result.stderr, 2)}",
        )
    found = data.get("vulnerabilities", {}).get("list", [])
    if found:
        ids = [f"{v['advisory']['id']} ({v['package']['name']})" for v in found]
        return Outcome(FAIL, f"cargo audit: {len(ids)} advisories: {_shown_list(ids)}")
    return Outcome(PASS, "cargo audit: no advisory matches Cargo.lock")

"""Sign-off checks on the source tree and the commands it runs: versions, CHANGELOG, docs, cargo.

The cargo tests run real `cargo fmt` and `cargo clippy` on a one-file crate so
that the parsers are tested against what cargo really prints; the other cargo
outputs are fed through a recorded runner.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import List, Sequence

import pytest

from sky_matrix.signoff import checks_release, checks_rust, merge, wheels
from sky_matrix.signoff.context import CommandResult, Context
from sky_matrix.signoff.verdict import FAIL, NOT_VERIFIABLE, PASS


def make_tree(
    root: Path, cargo: str = "0.1.0", pyproject: str = "0.1.0", init: str = "0.1.0"
) -> Path:
    (root / "rust/core").mkdir(parents=True)
    (root / "rust/python").mkdir(parents=True)
    (root / "python/sky_rs").mkdir(parents=True)
    (root / "rust/Cargo.toml").write_text(
        f'[workspace]\nmembers = ["core", "python"]\n[workspace.package]\nversion = "{cargo}"\n'
    )
    for member in ("core", "python"):
        (root / f"rust/{member}/Cargo.toml").write_text(
            f'[package]\nname = "{member}"\nversion.workspace = true\n'
        )
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "skypilot-rust"\nversion = "{pyproject}"\n'
    )
    (root / "python/sky_rs/__init__.py").write_text(f'"""doc"""\n\n__version__ = "{init}"\n')
    return root


def test_versions_in_sync(tmp_path: Path) -> None:
    outcome = checks_release.versions(Context(root=make_tree(tmp_path)))
    assert outcome.verdict == PASS
    assert outcome.evidence == (
        "all 0.1.0: rust/Cargo.toml 0.1.0, pyproject.toml 0.1.0, "
        "sky_rs.__version__ (python/sky_rs/__init__.py) 0.1.0"
    )


def test_one_version_differs(tmp_path: Path) -> None:
    outcome = checks_release.versions(Context(root=make_tree(tmp_path, pyproject="0.1.1")))
    assert outcome.verdict == FAIL
    assert outcome.evidence == (
        "versions differ: rust/Cargo.toml 0.1.0, pyproject.toml 0.1.1, "
        "sky_rs.__version__ (python/sky_rs/__init__.py) 0.1.0"
    )


def test_a_member_with_its_own_version_is_compared_too(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    (root / "rust/core/Cargo.toml").write_text('[package]\nname = "core"\nversion = "0.2.0"\n')
    outcome = checks_release.versions(Context(root=root))
    assert outcome.verdict == FAIL
    assert "rust/core/Cargo.toml 0.2.0" in outcome.evidence


def test_changelog(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    ctx = Context(root=root)
    assert checks_release.changelog(ctx).evidence == "CHANGELOG.md missing"
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## [0.0.9]\n\n- old\n")
    assert checks_release.changelog(ctx).evidence == "CHANGELOG.md has no entry for 0.1.0"
    (root / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [0.1.0] - 2026-11-30\n\nSoon.\n\n## [0.0.9]\n- x\n"
    )
    assert checks_release.changelog(ctx).evidence == "CHANGELOG.md's entry for 0.1.0 lists nothing"
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## [0.1.0] - 2026-11-30\n\n- a\n- b\n")
    assert checks_release.changelog(ctx) == checks_release.Outcome(
        PASS, "CHANGELOG.md:3: 0.1.0 with 2 items"
    )


def test_user_docs_must_exist_and_be_linked(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    ctx = Context(root=root)
    assert checks_release.user_docs(ctx).evidence == "README.md missing"
    (root / "README.md").write_text("# sky_rs\n")
    assert "docs/install.md missing" in checks_release.user_docs(ctx).evidence
    (root / "docs").mkdir()
    for doc in checks_release.USER_DOCS:
        (root / doc).write_text("# doc\n\n| function | speedup |\n| --- | ---: |\n")
    assert checks_release.user_docs(ctx).evidence.startswith(
        "README.md does not link docs/install.md"
    )
    (root / "README.md").write_text("\n".join(f"[x]({doc})" for doc in checks_release.USER_DOCS))
    assert checks_release.user_docs(ctx).verdict == PASS
    (root / "docs/benchmarks.md").write_text("# Benchmarks\n\nTBD\n")
    assert checks_release.user_docs(ctx).evidence == "docs/benchmarks.md has no measured table"


# ----------------------------------------------------------------------------- cargo


def tiny_crate(root: Path, body: str) -> Path:
    (root / "rust/src").mkdir(parents=True)
    (root / "rust/Cargo.toml").write_text(
        '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n'
        '[lib]\npath = "src/lib.rs"\n'
    )
    (root / "rust/src/lib.rs").write_text(body)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0.1.0"\n')
    return root


needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not on PATH")


@needs_cargo
def test_cargo_fmt_passes_and_names_the_unformatted_file(tmp_path: Path) -> None:
    root = tiny_crate(tmp_path, "pub fn one() -> u32 {\n    1\n}\n")
    ctx = Context(root=root)
    assert checks_rust.cargo_fmt(ctx).verdict == PASS
    (root / "rust/src/lib.rs").write_text("pub fn one()->u32{1}\n")
    outcome = checks_rust.cargo_fmt(ctx)
    assert outcome == checks_rust.Outcome(
        FAIL, "cargo fmt --all --check: 1 file(s) need formatting: rust/src/lib.rs"
    )


@needs_cargo
def test_cargo_clippy_reports_a_lint_with_its_place(tmp_path: Path) -> None:
    body = "pub fn f(v: &Vec<u32>) -> usize {\n    v.len()\n}\n"  # clippy::ptr_arg
    root = tiny_crate(tmp_path, body)
    ctx = Context(root=root)
    outcome = checks_rust.cargo_clippy(ctx)
    assert outcome.verdict == FAIL
    assert "src/lib.rs:1: writing `&Vec` instead of `&[_]`" in outcome.evidence
    (root / "rust/src/lib.rs").write_text("pub fn f(v: &[u32]) -> usize {\n    v.len()\n}\n")
    assert checks_rust.cargo_clippy(ctx).verdict == PASS


class Recorded:
    """A runner that answers each command with a recorded result."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        self.commands: List[List[str]] = []

    def __call__(self, args: Sequence[str], cwd: Path, timeout: float) -> CommandResult:
        self.commands.append(list(args))
        return self.result


def cargo_message(root: Path, level: str, text: str) -> str:
    return json.dumps(
        {
            "reason": "compiler-message",
            "manifest_path": str(root / "rust/core/Cargo.toml"),
            "message": {
                "level": level,
                "message": text,
                "spans": [{"file_name": "core/src/tail.rs", "line_start": 7, "is_primary": True}],
            },
        }
    )


def test_release_warnings_are_counted_from_cargo_json(tmp_path: Path) -> None:
    root = tmp_path
    emitted = json.dumps(
        {
            "reason": "compiler-message",
            "manifest_path": str(root / "rust/core/Cargo.toml"),
            "message": {"level": "warning", "message": "1 warning emitted", "spans": []},
        }
    )
    dependency = cargo_message(Path("/elsewhere"), "warning", "unused in a dependency")
    stdout = "\n".join(
        [cargo_message(root, "warning", "unused variable: `x`"), emitted, dependency]
    )
    ctx = Context(root=root, run=Recorded(CommandResult(0, stdout, "", 1.0)))
    assert checks_rust.release_warnings(ctx) == checks_rust.Outcome(
        FAIL, "release build: 1 warning(s): core/src/tail.rs:7: unused variable: `x`"
    )
    clean = Context(root=root, run=Recorded(CommandResult(0, emitted, "", 1.0)))
    assert checks_rust.release_warnings(clean).verdict == PASS
    broken = Context(
        root=root, run=Recorded(CommandResult(101, cargo_message(root, "error", "E0308"), "", 1))
    )
    assert checks_rust.release_warnings(broken).evidence == (
        "cargo build --release failed: core/src/tail.rs:7: E0308"
    )


def test_rust_tests_sum_every_binary(tmp_path: Path) -> None:
    stdout = (
        "running 3 tests\ntest a ... ok\n"
        "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n"
        "running 2 tests\ntest tail::b ... FAILED\n"
        "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
    )
    ctx = Context(root=tmp_path, run=Recorded(CommandResult(101, stdout, "", 1.0)))
    assert checks_rust.rust_tests(ctx).evidence == "cargo test: 1 failed (tail::b), 4 passed"
    none = Context(root=tmp_path, run=Recorded(CommandResult(0, "running 0 tests\n", "", 1.0)))
    assert checks_rust.rust_tests(none).evidence == "cargo test --workspace ran no test"
    missing = Context(
        root=tmp_path, run=Recorded(CommandResult(None, "", "", 0, "cargo not found"))
    )
    assert checks_rust.rust_tests(missing).evidence == "cargo test could not run: cargo not found"


def test_security_audit_without_cargo_audit_is_not_verifiable(tmp_path: Path) -> None:
    ctx = Context(root=tmp_path, run=Recorded(CommandResult(101, "", "no such command: audit", 0)))
    assert checks_rust.security_audit(ctx).verdict == NOT_VERIFIABLE


# ----------------------------------------------------------------------------- wheels, merge


@pytest.mark.parametrize(
    ("tags", "platform"),
    [
        ("cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "linux-x86_64"),
        ("cp38-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "linux-aarch64"),
        ("cp38-abi3-macosx_10_12_universal2.whl", "macos-universal2"),
    ],
)
def test_artifacts_are_classified_by_name(tags: str, platform: str) -> None:
    name = f"skypilot_rust-0.1.0-{tags}"
    assert wheels.classify(name) == platform
    assert wheels.version_of(name) == "0.1.0"
    assert wheels.classify("skypilot_rust-0.1.0.tar.gz") == "sdist"
    assert wheels.version_of("skypilot_rust-0.1.0.tar.gz") == "0.1.0"


def test_merge_tags_each_record_with_its_runner(tmp_path: Path) -> None:
    for label, os_name in (("macos-14", "macOS"), ("ubuntu-24.04", "Linux")):
        folder = tmp_path / f"cell-{label}" / "matrix-report"
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(
            json.dumps({"cells": [{"id": "host-py3.12-parity-default", "verdict": "pass"}]})
        )
        (tmp_path / f"cell-{label}" / "runner.json").write_text(
            json.dumps({"os": os_name, "arch": "ARM64", "label": label})
        )
    merged = merge.merge(tmp_path)
    assert [c["runner"]["label"] for c in merged["cells"]] == ["macos-14", "ubuntu-24.04"]
    assert merged["summary"] == {"pass": 2}

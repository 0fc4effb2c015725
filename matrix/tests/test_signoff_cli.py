"""`python -m sky_matrix.signoff` end to end over a fixture project whose evidence all passes.

Then, one at a time: delete an evidence file, make one version differ, fail
one cell. Each must turn the exit status non-zero with a line in SIGNOFF.md
that says exactly that. The cargo items are left out (`--only`): they are
tested on a real crate in test_signoff_tree.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from test_signoff_evidence import (
    FUNCTIONS,
    all_pythons,
    bench_report,
    cell,
    coverage_json,
    llvm_cov_json,
    soak_verdict,
    write_json,
    write_matrix,
)
from test_signoff_tree import make_tree

from sky_matrix.signoff import checklist, checks_release, cli

EVIDENCE_ITEMS = [
    "python-tests", "rust-coverage", "python-coverage", "matrix-cells", "matrix-pythons",
    "fallback-rate", "leaks", "soak", "bench-valid", "bench-speedup", "bench-p99",
    "bench-strings", "bench-tail", "docs", "changelog", "versions", "wheels-linux", "wheels-pure",
]  # fmt: skip


def passing_project(root: Path) -> Path:
    make_tree(root)
    write_matrix(root, all_pythons())
    write_json(root / "bench-report/bench.json", bench_report())
    clean = {name: {"rust": {"status": "pass"}, "python": {"status": "pass"}} for name in FUNCTIONS}
    write_json(root / "leaks-report/verdict.json", {"status": "pass", "functions": clean})
    write_json(root / "soak-report/verdict.json", soak_verdict("pass", 90000.0))
    write_json(root / "coverage-report/python.json", coverage_json(95, 100))
    write_json(root / "coverage-report/rust.json", llvm_cov_json(95, 100))
    (root / "coverage-report/python-junit.xml").write_text(
        '<testsuite name="p" tests="5" failures="0" errors="0" skipped="0"/>'
    )
    artifacts = [
        {
            "file": "s-0.1.0.tar.gz",
            "platform": "sdist",
            "version": "0.1.0",
            "checks": {"twine": {"ok": True}},
        },
        {
            "file": "s-0.1.0-cp38-abi3-manylinux_2_17_x86_64.whl",
            "platform": "linux-x86_64",
            "version": "0.1.0",
            "checks": {t: {"ok": True} for t in checks_release.WHEEL_CHECKS["linux-x86_64"]},
        },
        {
            "file": "s-0.1.0-py3-none-any.whl",
            "platform": "pure",
            "version": "0.1.0",
            "checks": {
                t: {"ok": True, "summary": "fine"} for t in checks_release.WHEEL_CHECKS["pure"]
            },
        },
    ]
    write_json(root / "release-report/wheels.json", {"artifacts": artifacts})
    (root / "docs").mkdir()
    for doc in ("install", "upgrading", "matrix-report", "soak", "benchmarks"):
        (root / f"docs/{doc}.md").write_text("# x\n\n| function | speedup |\n| --- | --- |\n")
    (root / "README.md").write_text(
        " ".join(
            f"[{d}](docs/{d}.md)"
            for d in ("install", "upgrading", "matrix-report", "soak", "benchmarks")
        )
    )
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## [0.1.0]\n\n- first release\n")
    return root


def run(root: Path, extra: List[str] = ()) -> int:  # type: ignore[assignment]
    argv = ["--project-root", str(root), "--out", str(root / "signoff-report")]
    for item in EVIDENCE_ITEMS:
        argv += ["--only", item]
    return cli.main([*argv, *extra])


def report(root: Path) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads((root / "signoff-report/signoff.json").read_text())
    return data


def markdown(root: Path) -> str:
    return (root / "signoff-report/SIGNOFF.md").read_text()


def test_all_evidence_passing_signs_off(tmp_path: Path) -> None:
    root = passing_project(tmp_path)
    assert run(root) == 0
    data = report(root)
    assert data["signed_off"] is True
    assert [i["id"] for i in data["items"]] == [
        i.id for i in checklist.ITEMS if i.id in EVIDENCE_ITEMS
    ]
    assert all(i["verdict"] == "pass" for i in data["items"])
    assert "**SIGNED OFF: 18 pass**" in markdown(root)


MISSING = [
    ("bench-report/bench.json", "bench-speedup", "Average speedup >= 5x", "bench"),
    ("matrix-report/report.json", "matrix-cells", "Every required matrix cell passed", "matrix"),
    ("leaks-report/verdict.json", "leaks", "Memory leak tests passed", "leak-canaries"),
    ("soak-report/verdict.json", "soak", "Long-running stability test (24h+) passed", "soak"),
    ("coverage-report/rust.json", "rust-coverage", "Rust line coverage >= 90%", "coverage"),
    ("release-report/wheels.json", "wheels-linux", checklist.ITEMS[-3].title, "release-check"),
]


@pytest.mark.parametrize(("relative", "item", "title", "session"), MISSING)
def test_deleting_an_evidence_file_fails_with_that_line(
    tmp_path: Path, relative: str, item: str, title: str, session: str
) -> None:
    line = f"| **fail** | `{item}`: {title} | {relative} missing, run nox -s {session} |"
    root = passing_project(tmp_path)
    (root / relative).unlink()
    assert run(root) == 1
    assert line in markdown(root).splitlines()
    assert report(root)["signed_off"] is False


def test_one_version_differing_fails_with_that_line(tmp_path: Path) -> None:
    root = passing_project(tmp_path)
    init = root / "python/sky_rs/__init__.py"
    init.write_text(init.read_text().replace('"0.1.0"', '"0.1.1"'))
    assert run(root) == 1
    assert (
        "| **fail** | `versions`: Version numbers synchronized | versions differ: rust/Cargo.toml "
        "0.1.0, pyproject.toml 0.1.0, sky_rs.__version__ (python/sky_rs/__init__.py) 0.1.1 |"
    ) in markdown(root).splitlines()


def test_one_failed_cell_fails_with_that_line(tmp_path: Path) -> None:
    root = passing_project(tmp_path)
    cells = all_pythons()
    cells[4] = cell("3.12", verdict="fail", reason="killed by SIGSEGV")
    write_matrix(root, cells)
    assert run(root) == 1
    assert (
        "| **fail** | `matrix-cells`: Every required matrix cell passed | cell "
        "host-py3.12-parity-default fail: killed by SIGSEGV; "
        "7/8 required cells passed (0 optional) |"
    ) in markdown(root).splitlines()


def test_insufficient_soak_blocks_unless_unverified_items_are_allowed(tmp_path: Path) -> None:
    root = passing_project(tmp_path)
    write_json(root / "soak-report/verdict.json", soak_verdict("pass", 120.0))
    assert run(root) == 1
    assert run(root, ["--allow-unverified"]) == 0
    assert "**NOT SIGNED OFF: 17 pass, 1 insufficient**" in markdown(root)
    assert run(root, ["--soak-required", "2m"]) == 0


def test_unknown_item_is_a_usage_error(tmp_path: Path) -> None:
    root = passing_project(tmp_path)
    assert cli.main(["--project-root", str(root), "--only", "nope"]) == 2

"""The release checklist of the seed (release-preparation.md), one item per decidable claim.

Every item is required for a release: an item this host cannot decide stays
"not verifiable here" and keeps the sign-off from passing, as it should, until
evidence from where it can be decided (GitHub's macOS runners, a 24 h soak) is
brought in.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Tuple

from sky_matrix.signoff import (
    checks_bench,
    checks_matrix,
    checks_python,
    checks_release,
    checks_runs,
    checks_rust,
)
from sky_matrix.signoff.context import Context
from sky_matrix.signoff.verdict import Outcome


@dataclasses.dataclass(frozen=True)
class Item:
    id: str
    section: str
    title: str
    check: Callable[[Context], Outcome]
    required: bool = True


CODE = "Code quality"
TESTING = "Testing"
PERFORMANCE = "Performance"
DOCS = "Documentation"
DISTRIBUTION = "Build & distribution"

ITEMS: Tuple[Item, ...] = (
    Item("cargo-fmt", CODE, "All Rust code passes cargo fmt", checks_rust.cargo_fmt),
    Item("cargo-clippy", CODE, "cargo clippy -D warnings is clean", checks_rust.cargo_clippy),
    Item(
        "release-warnings",
        CODE,
        "Zero compiler warnings in release mode",
        checks_rust.release_warnings,
    ),
    Item("code-review", CODE, "Code review completed", checks_release.code_review),
    Item(
        "security-audit",
        CODE,
        "Security audit (advisory database) clean",
        checks_rust.security_audit,
    ),
    Item("rust-tests", TESTING, "All Rust unit tests pass", checks_rust.rust_tests),
    Item("python-tests", TESTING, "All Python tests pass", checks_python.python_tests),
    Item("rust-coverage", TESTING, "Rust line coverage >= 90%", checks_rust.rust_coverage),
    Item(
        "python-coverage",
        TESTING,
        "Python coverage >= 90% (fallback + dispatcher)",
        checks_python.python_coverage,
    ),
    Item("matrix-cells", TESTING, "Every required matrix cell passed", checks_matrix.matrix_cells),
    Item(
        "matrix-pythons",
        TESTING,
        "CPython 3.8-3.15 compatibility verified (Linux)",
        checks_matrix.matrix_pythons,
    ),
    Item(
        "matrix-macos",
        TESTING,
        "Multi-platform: macOS arm64 and x86_64 cells passed",
        checks_matrix.matrix_macos,
    ),
    Item(
        "fallback-rate",
        TESTING,
        "Fallback rate < 1% across the matrix",
        checks_matrix.fallback_rate,
    ),
    Item("leaks", TESTING, "Memory leak tests passed", checks_runs.leaks),
    Item("soak", TESTING, "Long-running stability test (24h+) passed", checks_runs.soak),
    Item(
        "bench-valid",
        PERFORMANCE,
        "Benchmark measured the release build, full run",
        checks_bench.bench_valid,
    ),
    Item("bench-speedup", PERFORMANCE, "Average speedup >= 5x", checks_bench.average_speedup),
    Item("bench-p99", PERFORMANCE, "p99 latency < 100 ms", checks_bench.p99_latency),
    Item(
        "bench-strings",
        PERFORMANCE,
        "String functions >= 3x (design target)",
        checks_bench.string_speedup,
    ),
    Item(
        "bench-tail",
        PERFORMANCE,
        "read_last_n_lines cost independent of file size",
        checks_bench.tail_cost,
    ),
    Item(
        "bench-hardware",
        PERFORMANCE,
        "Benchmarks verified on production hardware",
        checks_bench.production_hardware,
    ),
    Item("docs", DOCS, "User docs reachable from the README", checks_release.user_docs),
    Item("changelog", DOCS, "CHANGELOG entry for the version", checks_release.changelog),
    Item("versions", DISTRIBUTION, "Version numbers synchronized", checks_release.versions),
    Item(
        "wheels-linux",
        DISTRIBUTION,
        "sdist + manylinux x86_64 wheel built and audited",
        checks_release.wheels_linux,
    ),
    Item(
        "wheels-pure",
        DISTRIBUTION,
        "Pure-Python wheel: the binary one without _native, chosen by pip where none fits",
        checks_release.wheels_pure,
    ),
    Item(
        "wheels-platforms",
        DISTRIBUTION,
        "Wheels for all platforms (Linux x86_64/aarch64, macOS arm64/x86_64) audited, cells run",
        checks_release.wheels_platforms,
    ),
)


def select(only: List[str]) -> List[Item]:
    """All items, or those whose id is in `only` (unknown ids raise ValueError)."""
    if not only:
        return list(ITEMS)
    known = {item.id for item in ITEMS}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(
            f"unknown item(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}"
        )
    return [item for item in ITEMS if item.id in only]

"""`python -m sky_matrix.bench` end to end on small inputs, and the memory probe child.

Uses whatever `sky_rs` this interpreter imports (the wheel when installed); when
it has none, the project's pure-Python source tree, with --allow-python-backend.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest
from matrix_helpers import project_root

from sky_matrix.bench import cli, inputs, memory
from sky_matrix.bench.cases import build_cases, comparable, contenders

PROJECT_ROOT = project_root()


@pytest.fixture(scope="module")
def sky_rs() -> ModuleType:
    try:
        return importlib.import_module("sky_rs")
    except ImportError:
        sys.path.insert(0, str(PROJECT_ROOT / "python"))
        return importlib.import_module("sky_rs")


def _native_active(sky_rs: ModuleType) -> bool:
    return bool(cli.native_info(sky_rs)["rust_active"])


def test_every_function_has_a_case_and_contenders_agree(tmp_path: Path, sky_rs: ModuleType) -> None:
    made = inputs.prepare(tmp_path, [1024, 1024**2], 128 * 1024**2, [100])
    cases = build_cases(made, hash_sparse=False)
    assert {c.function for c in cases} == set(sky_rs.FUNCTIONS)
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"
    for case in cases:
        values = [comparable(c.call()) for c in contenders(case, sky_rs)]
        assert all(v == values[0] for v in values), case.id
    # The sparse file is read only for its tail unless hashing it is asked for.
    assert not any(c.function == "hash_file" and "sparse" in c.id for c in cases)
    assert any(c.function == "hash_file" and "sparse" in c.id for c in build_cases(made, True))


def test_memory_probe_reports_peak_growth_in_a_child(tmp_path: Path, sky_rs: ModuleType) -> None:
    made = inputs.prepare(tmp_path, [1024**2], 0, [10])
    env = memory.child_env(cli._import_paths(sky_rs))
    result = memory.measure_peak(
        made.directory, "read_last_n_lines/1MiB/n=10000", "python", 20, False, env
    )
    assert "error" not in result, result
    assert result["calls"] == 20
    assert result["method"] == ("vmhwm" if sys.platform == "linux" else "ru_maxrss")
    assert result["peak_kib"] >= result["baseline_kib"] > 1000
    # 10,000 decoded lines of a 1 MiB file: well over half a MiB at once.
    assert result["growth_kib"] > 512
    failed = memory.measure_peak(made.directory, "no/such/case", "rust", 1, False, env)
    assert "unknown case" in failed["error"]


def test_quick_run_writes_json_markdown_and_chart(tmp_path: Path, sky_rs: ModuleType) -> None:
    out = tmp_path / "report"
    argv: List[str] = [
        "--quick", "--sizes", "1KiB,1MiB", "--sparse-size", "128MiB",
        "--inputs-dir", str(tmp_path / "inputs"), "--out", str(out),
        "--budget", "0.01", "--warmup", "0", "--min-rounds", "3",
        "--only", "read_last_n_lines/1MiB/n=100", "--only", "read_last_n_lines/128MiB",
        "--only", "format_float/3.14", "--only", "hash_file/1MiB/sha256",
        # The deterministic counts (strace, callgrind: a minute or more on a loaded
        # host) have their own check (`--check`); this test is about the timed report.
        "--no-counts",
    ]  # fmt: skip
    if not _native_active(sky_rs):
        argv.append("--allow-python-backend")
    status = cli.main(argv)
    bench: Dict[str, Any] = json.loads((out / "bench.json").read_text())
    assert status == (0 if _native_active(sky_rs) else 1)
    ids = [c["id"] for c in bench["cases"]]
    assert ids == [  # --only matches substrings: n=100 also picks n=10000
        "read_last_n_lines/1MiB/n=100",
        "read_last_n_lines/128MiB-sparse/n=100",
        "read_last_n_lines/1MiB/n=10000",
        "hash_file/1MiB/sha256",
        "format_float/3.14159,p1",
    ]
    hashed = bench["cases"][3]
    assert set(hashed["contenders"]) >= {"rust", "python", "sha256sum"}
    for case in bench["cases"]:
        assert case["results_equal"]
        assert case["contenders"]["rust"]["rounds"] >= 3
        assert set(case["memory"]) == {"rust", "python"}
        assert "growth_kib" in case["memory"]["rust"], case["memory"]
    assert {t["id"] for t in bench["targets"]} == {
        "bench-valid", "average-speedup", "p99-latency", "string-speedup", "tail-cost",
    }  # fmt: skip
    assert bench["mode"] == "quick"
    assert "Measured " in (out / "bench.md").read_text()
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_full_case_list_measures_tail_scaling_interleaved(
    tmp_path: Path, sky_rs: ModuleType
) -> None:
    out = tmp_path / "report"
    argv = [
        "--sizes", "1MiB", "--sparse-size", "64MiB", "--no-hash-sparse",
        "--inputs-dir", str(tmp_path / "inputs"), "--out", str(out), "--no-memory", "--no-chart",
        "--budget", "0", "--warmup", "0", "--min-rounds", "2", "--max-rounds", "2",
        "--no-counts",  # checked on their own (`--check`): minutes under callgrind on a busy host
    ]  # fmt: skip
    if not _native_active(sky_rs):
        argv.append("--allow-python-backend")
    cli.main(argv)
    bench = json.loads((out / "bench.json").read_text())
    assert {c["function"] for c in bench["cases"]} == set(sky_rs.FUNCTIONS)
    assert set(bench["tail_scaling"]["contenders"]) == {
        "rust@1MiB", "rust@64MiB-sparse", "python@1MiB", "python@64MiB-sparse",
    }  # fmt: skip
    tail = next(t for t in bench["targets"] if t["id"] == "tail-cost")
    assert tail["verdict"] in ("pass", "fail") and "same rounds" in tail["evidence"]


def test_refuses_without_rust_unless_allowed(
    tmp_path: Path, sky_rs: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYPILOT_USE_RUST", "0")
    sky_rs.reload_config()
    try:
        assert cli.main(["--quick", "--out", str(tmp_path)]) == 2
        assert not (tmp_path / "bench.json").exists()
    finally:
        monkeypatch.delenv("SKYPILOT_USE_RUST")
        sky_rs.reload_config()


def test_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    assert cli.main(["--sizes", "1 lightyear", "--out", str(tmp_path)]) == 2

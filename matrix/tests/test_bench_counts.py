"""The deterministic counts' comparison with the baseline (no strace or valgrind needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from sky_matrix.bench import counts


def figures(syscalls: float, instructions: int) -> Dict[str, Any]:
    return {"syscalls": syscalls, "instructions": instructions}


BASELINE = {
    "get_cpu_count": {"rust": figures(15, 20_000), "python": figures(41, 380_000)},
    "base36_encode/64 hex": {"rust": figures(0, 6_000)},
}


def test_the_same_counts_pass_and_python_is_not_judged() -> None:
    current = {
        "get_cpu_count": {"rust": figures(15, 20_999), "python": figures(99, 999_999)},
        "base36_encode/64 hex": {"rust": figures(0, 5_000)},
    }
    assert counts.compare(BASELINE, current) == []


def test_one_more_system_call_or_over_five_percent_fails() -> None:
    current = {
        "get_cpu_count": {"rust": figures(16, 20_000)},
        "base36_encode/64 hex": {"rust": figures(0, 6_301)},
    }
    assert counts.compare(BASELINE, current) == [
        "get_cpu_count [rust]: 16 system calls per call, baseline 15",
        "base36_encode/64 hex [rust]: 6,301 instructions per call, baseline 6,000 "
        "(+5.0%, limit +5 %)",
    ]


def test_a_case_missing_from_the_baseline_fails() -> None:
    current = {"format_float/3.14159,2": {"rust": figures(0, 1_900)}}
    assert counts.compare(BASELINE, current) == [
        "format_float/3.14159,2 [rust]: not in the baseline"
    ]


def test_a_skipped_case_is_neither_judged_nor_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skipped = {"rust": {"skipped": counts.NO_FLOOR_REASON}}
    measured = {"noop/_native._noop()": skipped, "get_cpu_count": BASELINE["get_cpu_count"]}
    assert counts.compare(BASELINE, measured) == []
    assert counts.NO_FLOOR_REASON in counts.table(measured)
    monkeypatch.setattr(counts, "baseline_python", lambda: "python3")
    monkeypatch.setattr(counts, "environment_key", lambda python: "KEY")
    monkeypatch.setattr(counts, "sky_rs_location", lambda: str(tmp_path))
    monkeypatch.setattr(counts, "measure", lambda *args, **kwargs: measured)
    path = tmp_path / "baseline.json"
    assert counts.main(["--record", "--baseline", str(path)]) == 0
    assert json.loads(path.read_text()) == {"KEY": {"get_cpu_count": BASELINE["get_cpu_count"]}}
    assert counts.main(["--check", "--baseline", str(path)]) == 0


def test_the_probe_is_left_as_it_is_where_it_cannot_isolate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(counts.os, "geteuid", lambda: 1000)
    assert counts.isolated(["python", "-c", "pass"]) == ["python", "-c", "pass"]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)
def test_the_probe_sees_no_container_engine_mounts(tmp_path: Path) -> None:
    """A container started beside the counts must not add mountinfo lines the probe reads."""
    # A stand-in for an engine's mount, made in a namespace of the test's own (the host's mounts
    # are untouched), under prefixes pointed at it.
    target = tmp_path / "run" / "docker" / "netns"
    target.mkdir(parents=True)
    prefixes = (str(tmp_path / "run" / "docker") + "/",)

    def mountinfo(cmd: List[str]) -> str:
        wrapped = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                   f'mount -t tmpfs none "{target}" && exec "$@"', "sh", *cmd]  # fmt: skip
        return subprocess.run(wrapped, capture_output=True, text=True, check=True).stdout

    plain = ["cat", "/proc/self/mountinfo"]
    assert str(target) in mountinfo(plain)  # the stand-in is a real mount
    assert str(target) not in mountinfo(counts.isolated(plain, prefixes=prefixes))

"""The bench's building blocks: statistics, inputs, interleaved timing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, List

import pytest

from sky_matrix.bench import inputs, stats, timing
from sky_matrix.bench.cases import Contender

# ----------------------------------------------------------------------------- stats


def test_median_odd_and_even() -> None:
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    assert stats.percentile(values, 0.99) == 99
    assert stats.percentile(values, 0.5) == 50
    # Fewer than 100 samples: p99 is the maximum, never an interpolated value.
    assert stats.percentile([5, 1, 9, 3], 0.99) == 9


def test_geometric_mean_of_ratios() -> None:
    assert stats.geometric_mean([2.0, 0.5]) == pytest.approx(1.0)
    assert stats.geometric_mean([4.0, 16.0]) == pytest.approx(8.0)
    with pytest.raises(ValueError):
        stats.geometric_mean([1.0, 0.0])
    with pytest.raises(ValueError):
        stats.median([])


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("text", "size"),
    [("1KiB", 1024), ("1MiB", 1024**2), ("10GiB", 10 * 1024**3), ("4096", 4096), ("2k", 2048)],
)
def test_parse_size(text: str, size: int) -> None:
    assert inputs.parse_size(text) == size


def test_parse_size_rejects_decimal_units_and_garbage() -> None:
    for text in ("1KB", "1.5MiB", "lots", ""):
        with pytest.raises(ValueError):
            inputs.parse_size(text)


def test_format_size_round_trips() -> None:
    for size in (1024, 1024**2, 1024**3, 10 * 1024**3, 1000):
        assert inputs.parse_size(inputs.format_size(size)) == size


def test_text_block_is_exact_deterministic_lines() -> None:
    block = inputs.text_block(5000)
    assert len(block) == 5000
    assert block.endswith(b"\n")
    assert block == inputs.text_block(5000)
    lines = block.split(b"\n")[:-1]
    assert all(1 <= len(line) <= 130 for line in lines)


def test_prepare_makes_sized_files_a_sparse_file_and_dirs(tmp_path: Path) -> None:
    sparse = 256 * 1024**2
    made = inputs.prepare(tmp_path, [1024, 1024**2], sparse, [3])
    by_label = {f.label: f for f in made.files}
    assert set(by_label) == {"1KiB", "1MiB", "256MiB-sparse"}
    for item in made.files:
        assert os.path.getsize(item.path) == item.size
    hole = by_label["256MiB-sparse"]
    assert hole.sparse
    assert hole.allocated < 8 * 1024**2, "the hole must not be written"
    with open(hole.path, "rb") as handle:
        handle.seek(hole.size - 1024**2)
        assert handle.read() == inputs.text_block(1024**2)
    assert len(os.listdir(made.dirs["3-entries"])) == 3
    assert made.dead_pid > 0
    assert inputs.load(tmp_path) == made


def test_prepare_reuses_existing_files(tmp_path: Path) -> None:
    first = inputs.prepare(tmp_path, [1024**2], 0, [2])
    before = os.stat(first.files[0].path).st_mtime_ns
    time.sleep(0.01)
    inputs.prepare(tmp_path, [1024**2], 0, [2])
    assert os.stat(first.files[0].path).st_mtime_ns == before


def test_prepare_refuses_when_the_disk_is_too_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 10

    monkeypatch.setattr(inputs.shutil, "disk_usage", lambda _path: Usage())
    with pytest.raises(OSError, match="need"):
        inputs.prepare(tmp_path, [1024**2], 0, [])


# ----------------------------------------------------------------------------- timing


def _settings(**overrides: Any) -> timing.TimingSettings:
    values = dict(
        batch_target_ns=200_000, budget_s=0.05, warmup_rounds=2, min_rounds=5, max_rounds=8
    )
    values.update(overrides)
    return timing.TimingSettings(**values)  # type: ignore[arg-type]


def test_calibrate_grows_the_batch_to_the_target() -> None:
    contender = Contender("noop", lambda: None, (), {})
    size, _first, last = timing.calibrate(contender, 200_000)
    assert size > 1
    assert last >= 200_000


def test_calibrate_times_a_slow_call_alone() -> None:
    contender = Contender("slow", time.sleep, (0.003,), {})
    size, first, _last = timing.calibrate(contender, 1_000_000)
    assert size == 1
    assert first >= 3_000_000


def test_measure_interleaves_in_rotating_order_and_discards_warmup() -> None:
    order: List[str] = []
    slow = [Contender(n, lambda n=n: (order.append(n), time.sleep(0.0003)), (), {}) for n in "AB"]
    results = timing.measure(slow, _settings(budget_s=0.0, min_rounds=4, warmup_rounds=2))
    # Every contender is slower than the batch target: batch size 1, one call per round.
    assert [r.batch_size for r in results] == [1, 1]
    assert [len(r.per_call_ns) for r in results] == [4, 4]  # warm-up rounds not kept
    rounds = order[2:]  # after the two calibration calls
    assert len(rounds) == 2 * (2 + 4)
    pairs = [rounds[i : i + 2] for i in range(0, len(rounds), 2)]
    assert pairs == [["A", "B"], ["B", "A"]] * 3


def test_measure_tells_a_slow_contender_from_a_fast_one() -> None:
    fast = Contender("fast", abs, (-1,), {})
    slow = Contender("slow", time.sleep, (0.001,), {})
    fast_timing, slow_timing = timing.measure([fast, slow], _settings())
    assert fast_timing.batch_size > 1
    assert slow_timing.median_ns > 100 * fast_timing.median_ns
    assert slow_timing.p99_ns >= slow_timing.median_ns
    data = slow_timing.to_json()
    assert data["rounds"] == len(data["per_call_ns"]) >= 5


def test_rounds_respect_budget_and_bounds() -> None:
    settings = _settings(budget_s=1.0, min_rounds=5, max_rounds=100)
    assert timing.rounds_for(1e6, settings, slow=False) == 100  # 1000 wanted, capped
    assert timing.rounds_for(5e8, settings, slow=False) == 5  # 2 wanted, floor
    assert timing.rounds_for(5e8, settings, slow=True) == settings.slow_min_rounds

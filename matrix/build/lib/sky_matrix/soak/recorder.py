"""Latency recording: one HdrHistogram per (function, backend) stream.

Coordinated omission: the driver calls each stream on a fixed schedule and
records ``end - intended start``, not ``end - actual start``. When a call (or
the process) stalls, the calls that should have started meanwhile start late
and carry the stall in their latency, exactly as callers arriving at a
constant rate would have seen it. This is the same correction as hdrh's
``record_corrected_value(value, expected_interval)``, but exact, because we
know every intended start instead of back-filling them.

Each sample swaps out the interval histograms (HdrHistogram's interval-log
model): the JSONL file holds every interval's histogram, encoded, so the whole
run's percentiles can be rebuilt from the file after a crash or a resume.
"""

from __future__ import annotations

import threading
from typing import Dict, Iterable, Optional, Tuple

from hdrh.histogram import HdrHistogram

# Values are microseconds, from 1 µs to one hour, at 3 significant digits
# (0.1 % resolution): enough for p99 against a 100 ms budget and for stalls.
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3

Stream = Tuple[str, str]  # (function, backend)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


def summary_ms(histogram: HdrHistogram) -> Dict[str, float]:
    """p50/p99/max in milliseconds, and the number of calls recorded."""
    if histogram.get_total_count() == 0:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "count": int(histogram.get_total_count()),
        "p50_ms": histogram.get_value_at_percentile(50.0) / 1000.0,
        "p99_ms": histogram.get_value_at_percentile(99.0) / 1000.0,
        "max_ms": histogram.get_max_value() / 1000.0,
    }


class LatencyRecorder:
    """Thread-safe interval histograms; the driver records, the sampler swaps.

    Two sets of histograms alternate (each is ~190 KB of counters), so that
    sampling does not churn the allocator whose heap the soak is measuring.
    """

    def __init__(self, streams: Iterable[Stream]) -> None:
        self._lock = threading.Lock()
        self._current: Dict[Stream, HdrHistogram] = {s: new_histogram() for s in streams}
        self._spare: Dict[Stream, HdrHistogram] = {s: new_histogram() for s in self._current}

    def record(self, stream: Stream, latency_s: float) -> None:
        micros = max(LOWEST_US, min(HIGHEST_US, round(latency_s * 1_000_000)))
        with self._lock:
            self._current[stream].record_value(micros)

    def swap(self) -> Dict[Stream, HdrHistogram]:
        """The histograms since the last swap; recording goes on into the spare set.

        Hand the returned set back with :meth:`release` once it has been read.
        """
        with self._lock:
            interval, self._current = self._current, self._spare
        return interval

    def release(self, interval: Dict[Stream, HdrHistogram]) -> None:
        for histogram in interval.values():
            histogram.reset()
        self._spare = interval


def encode(histogram: HdrHistogram) -> Optional[str]:
    """Base64 of the compressed histogram, or None when it is empty (saves space)."""
    if histogram.get_total_count() == 0:
        return None
    encoded: bytes = histogram.encode()
    return encoded.decode("ascii")

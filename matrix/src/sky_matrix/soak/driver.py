"""The soak driver: calls every stream on a constant-rate schedule and samples.

One worker thread per backend runs its twelve streams from a merged schedule
(a heap of intended start times); Rust and Python run side by side, and a
Rust call that releases the GIL lets the Python worker run meanwhile. The
main thread samples every ``interval_s`` and appends a record to the samples
file. Time in the series is *active* time: a resumed segment continues from
the last sample's ``t``, so the downtime between a kill and the resume is not
part of the run.
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import gc
import heapq
import os
import platform as platform_module
import queue
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from hdrh import codec as hdrh_codec

import sky_rs

from . import recorder as recorder_module, series as series_module, workload as workload_module
from .sampler import ProcessSampler, fd_soft_limit

# At most this many error records per stream and segment: enough to diagnose,
# bounded so that a function failing every call can't fill the disk.
MAX_ERROR_EXAMPLES = 5

SampleCallback = Callable[[Dict[str, Any], Dict[str, Any]], None]
WorkloadHook = Callable[[List[workload_module.Stream]], List[workload_module.Stream]]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A run's parameters; written to the header and taken from it on resume."""

    duration_s: float
    interval_s: float
    warmup_s: float
    rate: float = workload_module.DEFAULT_RATE
    backends: Tuple[str, ...] = workload_module.BACKENDS
    p99_budget_ms: float = 100.0
    platform: str = "host"
    profile: str = "default"

    def to_json(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["backends"] = list(self.backends)
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> RunConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["backends"] = tuple(values.get("backends", workload_module.BACKENDS))
        return cls(**values)


def default_interval(duration_s: float) -> float:
    """About 60 samples for short runs, one a minute for long ones."""
    return min(60.0, max(1.0, duration_s / 60.0))


def default_warmup(duration_s: float) -> float:
    """A fifth of the run, at most ten minutes: imports, caches and arenas settle."""
    return min(600.0, duration_s / 5.0)


def memory_limit_bytes() -> Optional[int]:
    """This process's cgroup memory limit, resolved as sky_rs itself resolves it."""
    try:
        physical: Optional[int] = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        physical = None
    limit = sky_rs.fallback._cgroup_memory_limit("/", physical)
    return int(limit) if limit is not None else None


class _Counters:
    """Per-stream cumulative counts; each written by one worker, read by the sampler."""

    def __init__(self, keys: List[Tuple[str, str]], base: Dict[str, Dict[str, Dict[str, int]]]):
        self.calls = {k: base.get("calls", {}).get(k[0], {}).get(k[1], 0) for k in keys}
        self.errors = {k: base.get("errors", {}).get(k[0], {}).get(k[1], 0) for k in keys}
        self.examples = dict.fromkeys(keys, 0)

    @staticmethod
    def nested(flat: Dict[Tuple[str, str], int]) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        for (function, backend), value in flat.items():
            out.setdefault(function, {})[backend] = value
        return out


class _Worker(threading.Thread):
    """Calls its streams at their rates until stopped."""

    def __init__(
        self,
        backend: str,
        streams: List[workload_module.Stream],
        latency: recorder_module.LatencyRecorder,
        counters: _Counters,
        errors: queue.Queue[Tuple[str, str, str]],
        stop: threading.Event,
        start: float,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(name=f"soak-{backend}", daemon=True)
        self._streams = streams
        self._latency = latency
        self._counters = counters
        self._errors = errors
        self._stop_event = stop
        self._start = start
        self._clock = clock
        self.crash: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a driver bug must stop the run, not vanish
            self.crash = exc
            self._stop_event.set()

    def _loop(self) -> None:
        # Stagger first calls across one period so the streams don't fire together.
        schedule = [
            (self._start + (index / max(1, len(self._streams))) / stream.rate, index, 0)
            for index, stream in enumerate(self._streams)
        ]
        heapq.heapify(schedule)
        while not self._stop_event.is_set():
            due, index, sequence = heapq.heappop(schedule)
            delay = due - self._clock()
            if delay > 0 and self._stop_event.wait(delay):
                return
            stream = self._streams[index]
            case = stream.cases[sequence % len(stream.cases)]
            try:
                ok, outcome = True, stream.call(*case.args, **case.kwargs)
            except Exception as exc:
                ok, outcome = False, exc
            # Against the intended start: the coordinated-omission correction.
            self._latency.record(stream.key, self._clock() - due)
            self._counters.calls[stream.key] += 1
            problem = workload_module.judge(case, ok, outcome)
            if problem is not None:
                self._counters.errors[stream.key] += 1
                if self._counters.examples[stream.key] < MAX_ERROR_EXAMPLES:
                    self._counters.examples[stream.key] += 1
                    self._errors.put((stream.function, stream.backend, problem))
            # Drop the outcome now: a caught exception's traceback refers to this
            # frame, and the cycle would otherwise wait for the GC (a sawtooth in
            # the heap that is ours, not the functions').
            outcome = None
            heapq.heappush(schedule, (due + 1.0 / stream.rate, index, sequence + 1))


def _encode_histogram(histogram: Any) -> Optional[str]:
    """``recorder.encode``, but over a length rounded up to whole hdr buckets.

    hdrh encodes the counts up to the highest one recorded, into a buffer of
    type ``c_byte * n``; ctypes caches one array type per length, and the
    interval's maximum latency picks the length. So every new maximum (and on
    a loaded host they keep coming) left its type in the heap we measure:
    19 KB over a clean 25-second soak, as much as a leak of 40 bytes per call
    of one stream. Rounded up to a multiple of half a bucket (1,024 counts),
    there are at most 23 lengths, one per doubling of the maximum latency, all
    seen in the first seconds; the trailing zeros are one zero run and decode
    to the same histogram.
    """
    if histogram.get_total_count() == 0:
        return None
    relevant = histogram.get_counts_array_index(histogram.get_max_value()) + 1
    step = histogram.sub_bucket_half_count
    length = min(histogram.counts_len, -(-relevant // step) * step)
    encoder = histogram.encoder
    payload = encoder.payload.compress(length)
    encoder.header.length = len(payload)
    header = ctypes.string_at(ctypes.addressof(encoder.header), hdrh_codec.ext_header_size)
    return base64.b64encode(header + payload).decode("ascii")


def _fallback_count() -> int:
    stats = sky_rs.stats()
    return sum(sum(f["fallbacks"].values()) for f in stats["functions"].values())


class Soak:
    """One segment of a soak run: a fresh run, or the continuation of a file."""

    def __init__(
        self,
        samples_path: Path,
        config: Optional[RunConfig] = None,
        *,
        resume: bool = False,
        segment_limit_s: Optional[float] = None,
        on_sample: Optional[SampleCallback] = None,
        workload_hook: Optional[WorkloadHook] = None,
    ) -> None:
        if resume == (config is not None):
            raise ValueError("give a RunConfig for a new run, or resume=True, not both")
        self.samples_path = samples_path
        self.segment_limit_s = segment_limit_s
        self.on_sample = on_sample
        self.workload_hook = workload_hook
        self.stop_requested = threading.Event()
        self._clock = time.perf_counter
        self.base_t = 0.0
        self.segment = 1
        self.base_counts: Dict[str, Any] = {}
        self.base_fallbacks = 0
        if resume:
            self.repaired = series_module.repair(samples_path)
            previous = series_module.load(samples_path)
            if previous.completed:
                raise series_module.SeriesError(f"{samples_path}: run already completed")
            self.header = previous.header
            self.config = RunConfig.from_json(previous.header["config"])
            self.base_t = previous.last_t
            self.segment = previous.segments + 1
            if previous.samples:
                last = previous.samples[-1]
                self.base_counts = {"calls": last["calls"], "errors": last["errors"]}
                self.base_fallbacks = int(last.get("fallbacks", 0))
        else:
            assert config is not None
            self.repaired = False
            self.config = config
            self.header = self._new_header(config)

    def _new_header(self, config: RunConfig) -> Dict[str, Any]:
        return {
            "type": "header",
            "version": series_module.FORMAT_VERSION,
            "run_id": uuid.uuid4().hex,
            "started_wall": time.time(),
            "config": config.to_json(),
            "functions": list(sky_rs.FUNCTIONS),
            **self._environment(),
        }

    def _environment(self) -> Dict[str, Any]:
        """Facts about the process running this segment (they may differ after a resume)."""
        sampler = ProcessSampler()
        return {
            "pid": os.getpid(),
            "hostname": platform_module.node(),
            "python": {"version": platform_module.python_version(), "executable": sys.executable},
            "sky_rs": sky_rs.backend_info(),
            "memory_limit_bytes": memory_limit_bytes(),
            "fd_soft_limit": fd_soft_limit(),
            "heap_source": sampler.heap_source,
        }

    def request_stop(self) -> None:
        self.stop_requested.set()

    def run(self) -> str:
        """Run this segment; returns why it ended: completed, interrupted, segment-limit."""
        config = self.config
        inputs = workload_module.Inputs()
        try:
            cases = workload_module.resolve_expected(workload_module.default_cases(inputs))
            streams = workload_module.build_streams(cases, config.backends, config.rate)
            if self.workload_hook is not None:
                streams = self.workload_hook(streams)
            return self._run_streams(streams)
        finally:
            inputs.close()

    def _run_streams(self, streams: List[workload_module.Stream]) -> str:
        writer = series_module.SeriesWriter(self.samples_path)
        try:
            if self.segment == 1:
                writer.write(self.header)
            else:
                writer.write(
                    {
                        "type": "resume",
                        "segment": self.segment,
                        "t": self.base_t,
                        "wall": time.time(),
                        "repaired_partial_line": self.repaired,
                        **self._environment(),
                    }
                )
            if self.config.duration_s - self.base_t <= 1e-6:
                # Killed after its last sample but before its end record: nothing to run.
                end = {"type": "end", "segment": self.segment, "t": self.base_t}
                writer.write({**end, "reason": "completed"})
                return "completed"
            return self._sample_loop(streams, writer)
        finally:
            writer.close()

    def _sample_loop(
        self, streams: List[workload_module.Stream], writer: series_module.SeriesWriter
    ) -> str:
        config = self.config
        keys = [s.key for s in streams]
        latency = recorder_module.LatencyRecorder(keys)
        counters = _Counters(keys, self.base_counts)
        errors: queue.Queue[Tuple[str, str, str]] = queue.Queue()
        stop_workers = threading.Event()
        sampler = ProcessSampler()
        # sky_rs.stats() is process-wide: count from here rather than reset it.
        fallbacks_before = _fallback_count()
        # Everything allocated so far (the interpreter, the host process's own
        # objects, the inputs, histograms, streams) is moved out of the
        # collector's reach: the full collection before each sample then only
        # walks what was allocated since, milliseconds even inside pytest.
        gc.collect()
        gc.freeze()
        start = self._clock()
        workers = [
            _Worker(
                backend,
                [s for s in streams if s.backend == backend],
                latency,
                counters,
                errors,
                stop_workers,
                start,
                self._clock,
            )
            for backend in config.backends
        ]
        for worker in workers:
            worker.start()
        remaining = config.duration_s - self.base_t
        sequence = 0
        reason = "completed"
        try:
            while True:
                sequence += 1
                due = start + min(sequence * config.interval_s, remaining)
                while not self.stop_requested.is_set() and not stop_workers.is_set():
                    delay = due - self._clock()
                    if delay <= 0:
                        break
                    self.stop_requested.wait(min(delay, 0.5))
                segment_t = self._clock() - start
                crashed = [w.crash for w in workers if w.crash is not None]
                if crashed:
                    raise RuntimeError(f"soak worker crashed: {crashed[0]!r}") from crashed[0]
                record = self._sample(
                    segment_t, sampler, latency, counters, sequence, fallbacks_before
                )
                writer.write(record)
                while not errors.empty():
                    function, backend, problem = errors.get_nowait()
                    writer.write(
                        {
                            "type": "error",
                            "t": record["t"],
                            "segment": self.segment,
                            "function": function,
                            "backend": backend,
                            "error": problem,
                        }
                    )
                if self.on_sample is not None:
                    self.on_sample(record, self.header)
                if self.stop_requested.is_set():
                    reason = "interrupted"
                    break
                if segment_t >= remaining - 1e-6:
                    break
                if self.segment_limit_s is not None and segment_t >= self.segment_limit_s:
                    reason = "segment-limit"
                    break
        finally:
            stop_workers.set()
            for worker in workers:
                worker.join(timeout=30)
            gc.unfreeze()
        writer.write(
            {"type": "end", "segment": self.segment, "t": self.base_t + segment_t, "reason": reason}
        )
        return reason

    def _sample(
        self,
        segment_t: float,
        sampler: ProcessSampler,
        latency: recorder_module.LatencyRecorder,
        counters: _Counters,
        sequence: int,
        fallbacks_before: int,
    ) -> Dict[str, Any]:
        interval = latency.swap()
        # Measure first, after a full collection: the driver's own garbage (hdrh's
        # encoder leaves a ctypes array type in a reference cycle per histogram,
        # a few KB each; JSON records; caught exceptions) is gone, whichever
        # generation it had been promoted to. A young-generation collection is
        # not enough: cycles that an automatic collection promoted to the old
        # generation while still in use stayed there until the next full
        # collection, which in a big process (pytest) came rarely, and the heap
        # climbed ~15 bytes per call, the size of a real leak. The collection is
        # cheap because the segment's start froze everything older (see
        # _sample_loop). Encoding comes after the measurement, so its garbage
        # is collected before the next one.
        gc.collect()
        process = sampler.sample()
        summaries: Dict[str, Dict[str, Any]] = {}
        histograms: Dict[str, Dict[str, str]] = {}
        for (function, backend), histogram in interval.items():
            summaries.setdefault(function, {})[backend] = recorder_module.summary_ms(histogram)
            encoded = _encode_histogram(histogram)
            if encoded is not None:
                histograms.setdefault(function, {})[backend] = encoded
        latency.release(interval)
        return {
            "type": "sample",
            "segment": self.segment,
            "seq": sequence,
            "t": round(self.base_t + segment_t, 6),
            "segment_t": round(segment_t, 6),
            "wall": time.time(),
            **process.to_json(),
            "calls": _Counters.nested(dict(counters.calls)),
            "errors": _Counters.nested(dict(counters.errors)),
            "fallbacks": self.base_fallbacks + _fallback_count() - fallbacks_before,
            "latency": summaries,
            "hist": histograms,
        }


def install_stop_signals(soak: Soak) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the segment cleanly (a last sample, an end record)."""
    previous = {}

    def handler(signum: int, _frame: Any) -> None:
        soak.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore

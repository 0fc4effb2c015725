"""PNG charts of a soak: memory, fds/threads, and p99 latency over time.

Time is the series' active time; resumes are marked with vertical lines and
the warm-up of each segment is shaded, so a reader sees what the verdict saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")  # no display: CI, containers

import matplotlib.pyplot as plt

from .series import Series

MIB = 1024 * 1024


def _time_axis(series: Series) -> Tuple[List[float], float, str]:
    times = [float(s["t"]) for s in series.samples]
    span = times[-1] if times else 0.0
    if span > 3 * 3600:
        return [t / 3600 for t in times], 3600.0, "hours"
    if span > 180:
        return [t / 60 for t in times], 60.0, "minutes"
    return times, 1.0, "seconds"


def _save(fig: Any, path: Path) -> Path:
    """Write the figure as PNG and free it (pyplot keeps every open figure alive)."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _decorate(ax: Any, series: Series, scale: float, unit: str) -> None:
    warmup = float(series.header["config"]["warmup_s"])
    starts = [0.0] + [float(r["t"]) for r in series.resumes]
    for index, start in enumerate(starts):
        ax.axvspan(
            start / scale,
            (start + warmup) / scale,
            color="0.9",
            zorder=0,
            label="warm-up" if index == 0 else None,
        )
        if index:
            ax.axvline(
                start / scale,
                color="tab:red",
                linestyle="--",
                linewidth=1,
                label="resumed" if index == 1 else None,
            )
    ax.set_xlabel(f"active time ({unit})")
    ax.grid(True, alpha=0.3)


def memory_chart(series: Series, path: Path) -> Path:
    times, scale, unit = _time_axis(series)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for metric, colour in (("rss", "tab:blue"), ("uss", "tab:green"), ("heap", "tab:orange")):
        points = [
            (t, s[metric]) for t, s in zip(times, series.samples) if s.get(metric) is not None
        ]
        if points:
            ax.plot(
                [p[0] for p in points],
                [p[1] / MIB for p in points],
                label=metric,
                color=colour,
                linewidth=1.2,
            )
    limit = series.header.get("memory_limit_bytes")
    if limit:
        ax.set_title(f"memory (cgroup limit {limit / MIB:,.0f} MiB)")
    else:
        ax.set_title("memory")
    ax.set_ylabel("MiB")
    _decorate(ax, series, scale, unit)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def fds_chart(series: Series, path: Path) -> Path:
    times, scale, unit = _time_axis(series)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.step(
        times,
        [s["fds"] for s in series.samples],
        where="post",
        label="open fds",
        color="tab:purple",
    )
    ax.step(
        times,
        [s["threads"] for s in series.samples],
        where="post",
        label="threads",
        color="tab:brown",
    )
    ax.set_title("file descriptors and threads")
    ax.set_ylabel("count")
    _decorate(ax, series, scale, unit)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def latency_chart(series: Series, path: Path) -> Path:
    times, scale, unit = _time_axis(series)
    backends: List[str] = list(series.header["config"]["backends"])
    fig, axes = plt.subplots(
        len(backends), 1, figsize=(12.5, 3.6 * len(backends)), sharex=True, squeeze=False
    )
    budget = float(series.header["config"]["p99_budget_ms"])
    for ax, backend in zip(axes[:, 0], backends):
        lines: Dict[str, List[Tuple[float, float]]] = {}
        for t, sample in zip(times, series.samples):
            for function, per_backend in sample.get("latency", {}).items():
                summary = per_backend.get(backend)
                if summary and summary["count"]:
                    lines.setdefault(function, []).append((t, summary["p99_ms"]))
        for function, points in sorted(lines.items()):
            ax.plot([p[0] for p in points], [p[1] for p in points], label=function, linewidth=0.9)
        ax.axhline(budget, color="tab:red", linewidth=1, label=f"budget {budget:g} ms")
        ax.set_yscale("log")
        ax.set_ylabel("p99 per interval (ms)")
        ax.set_title(f"{backend}: p99 latency (from intended start)")
        _decorate(ax, series, scale, unit)
        # Beside the plot: fourteen entries would hide the lines they name.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
    return _save(fig, path)


def write_all(series: Series, out_dir: Path) -> List[Path]:
    if not series.samples:
        return []
    return [
        memory_chart(series, out_dir / "memory.png"),
        fds_chart(series, out_dir / "fds_threads.png"),
        latency_chart(series, out_dir / "latency.png"),
    ]

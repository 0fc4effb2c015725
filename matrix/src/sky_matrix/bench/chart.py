"""bench.png: speedup per case, the cost of reading a tail by file size, hash throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from sky_matrix.bench.report import throughput_mib_s
from sky_matrix.bench.targets import (
    AVERAGE_SPEEDUP_TARGET,
    STRING_SPEEDUP_TARGET,
    case_ratio,
)

_COLOURS = {
    "rust": "#b7410e",
    "python": "#3572a5",
    "hashlib.file_digest": "#7a9a01",
    "sha256sum": "#777777",
}


def write_chart(bench: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    cases = bench["cases"]
    tail = [c for c in cases if c["function"] == "read_last_n_lines" and c["id"].endswith("/n=100")]
    hashes = [c for c in cases if len(c["contenders"]) > 2 and c.get("bytes_read")]
    panels = 1 + bool(tail) + bool(hashes)
    height = max(6.0, 0.28 * len(cases)) + 4.0 * (panels - 1)
    ratios = [1.0 * max(len(cases), 6)] + [4.0] * (panels - 1)
    figure, axes = plt.subplots(
        panels, 1, figsize=(11, height), gridspec_kw={"height_ratios": ratios}, squeeze=False
    )
    axis = axes[0][0]
    labels = [f"{c['function']}: {c['label']}" for c in cases]
    speedups = [case_ratio(c) for c in cases]
    colours = ["#b7410e" if s >= 1 else "#3572a5" for s in speedups]
    positions = list(range(len(cases)))[::-1]
    # Bars grow from 1x, right for faster, left for slower, on a log axis.
    lefts = [min(1.0, s) for s in speedups]
    widths = [abs(s - 1.0) for s in speedups]
    axis.barh(positions, widths, left=lefts, color=colours)
    axis.set_yticks(positions)
    axis.set_yticklabels(labels, fontsize=8)
    axis.set_xscale("log")
    axis.set_xlim(min(0.5, min(speedups) / 1.3), max(10.0, max(speedups) * 1.6))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}x"))
    for x, style, text in (
        (1.0, "-", "1x"),
        (STRING_SPEEDUP_TARGET, ":", f"{STRING_SPEEDUP_TARGET:g}x"),
        (AVERAGE_SPEEDUP_TARGET, "--", f"{AVERAGE_SPEEDUP_TARGET:g}x"),
    ):
        axis.axvline(x, color="black", linestyle=style, linewidth=0.8)
        axis.text(x, len(cases) - 0.3, text, fontsize=8, ha="left")
    for pos, value in zip(positions, speedups):
        axis.text(value, pos, f" {value:.1f}x", va="center", fontsize=7)
    axis.set_xlabel("speedup = Python p10 / Rust p10 per call, same rounds (log scale)")
    axis.set_title(
        f"sky_rs {bench['sky_rs']['version']}: Rust vs Python per call ({bench['created']})"
    )
    row = 1
    if tail:
        axis = axes[row][0]
        row += 1
        names = [c["label"].split(",")[0] for c in tail]
        width = 0.4
        for offset, backend in ((-width / 2, "rust"), (width / 2, "python")):
            values = [c["contenders"][backend]["p10_ns"] / 1e3 for c in tail]
            axis.bar(
                [i + offset for i in range(len(tail))],
                values,
                width,
                label=backend,
                color=_COLOURS[backend],
            )
        axis.set_xticks(range(len(tail)))
        axis.set_xticklabels(names)
        axis.set_ylabel("p10 µs per call")
        axis.set_title("read_last_n_lines(path, 100) by file size: the cost follows the tail")
        axis.legend()
    if hashes:
        axis = axes[row][0]
        contenders: List[str] = []
        for case in hashes:
            for name in case["contenders"]:
                if name not in contenders:
                    contenders.append(name)
        width = 0.8 / len(contenders)
        for index, name in enumerate(contenders):
            values = [throughput_mib_s(case).get(name, 0.0) for case in hashes]
            axis.bar(
                [i - 0.4 + width * (index + 0.5) for i in range(len(hashes))],
                values,
                width,
                label=name,
                color=_COLOURS.get(name, "#999999"),
            )
        axis.set_xticks(range(len(hashes)))
        axis.set_xticklabels([c["label"] for c in hashes])
        axis.set_ylabel("MiB/s (from the p10 time)")
        axis.set_title("hash throughput on the same file")
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)

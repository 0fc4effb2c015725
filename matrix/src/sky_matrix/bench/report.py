"""bench.json, the terminal tables and the Markdown tables of one bench run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rich.console import Console
from rich.table import Table

from sky_matrix.bench.cases import BACKENDS
from sky_matrix.bench.targets import (
    TargetResult,
    case_ratio,
    case_ratio_at_median,
    function_speedups,
)

SCHEMA = 1
_MIB = 1024**2


def format_ns(ns: float) -> str:
    """A duration with three significant figures in the unit that suits it."""
    for unit, factor in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= factor:
            return f"{ns / factor:.3g} {unit}"
    return f"{ns:.3g} ns"


def format_kib(kib: Optional[float]) -> str:
    if kib is None:
        return "-"
    if kib >= 1024:
        return f"{kib / 1024:.1f} MiB"
    return f"{kib:.0f} KiB"


def throughput_mib_s(case: Dict[str, Any]) -> Dict[str, float]:
    """MiB/s per contender, from each one's p10 time (as the speedups), for whole-file cases."""
    size = case.get("bytes_read")
    if not size:
        return {}
    return {
        name: size / _MIB / (timing["p10_ns"] / 1e9) for name, timing in case["contenders"].items()
    }


def _memory_cell(case: Dict[str, Any], backend: str) -> str:
    memory = case.get("memory", {}).get(backend)
    if not memory:
        return "-"
    if "error" in memory:
        return "error"
    return format_kib(memory["growth_kib"])


def write_json(bench: Dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(bench, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _case_rows(bench: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for case in bench["cases"]:
        rust = case["contenders"]["rust"]
        python = case["contenders"]["python"]
        rows.append(
            [
                case["function"],
                case["label"],
                format_ns(rust["p10_ns"]),
                format_ns(rust["median_ns"]),
                format_ns(rust["p99_ns"]),
                format_ns(python["p10_ns"]),
                format_ns(python["median_ns"]),
                format_ns(python["p99_ns"]),
                f"{case_ratio(case):.2f}x",
                f"{case_ratio_at_median(case):.2f}x",
                _memory_cell(case, "rust"),
                _memory_cell(case, "python"),
            ]
        )
    return rows


_CASE_HEADER = [
    "function",
    "input",
    "Rust p10",
    "Rust median",
    "Rust p99",
    "Python p10",
    "Python median",
    "Python p99",
    "speedup (p10)",
    "at median",
    "peak RSS +, Rust",
    "peak RSS +, Python",
]


def _throughput_rows(bench: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for case in bench["cases"]:
        rates = throughput_mib_s(case)
        if not rates or len(case["contenders"]) <= len(BACKENDS):
            continue
        for name, rate in rates.items():
            rows.append(
                [
                    case["label"],
                    name,
                    format_ns(case["contenders"][name]["p10_ns"]),
                    f"{rate:,.0f}",
                ]
            )
    return rows


_THROUGHPUT_HEADER = ["file", "contender", "p10 per file", "MiB/s"]


def _function_rows(bench: Dict[str, Any]) -> List[List[str]]:
    return [
        [name, f"{ratio:.2f}x"]
        for name, ratio in sorted(function_speedups(bench).items(), key=lambda kv: -kv[1])
    ]


def print_tables(bench: Dict[str, Any], targets: Sequence[TargetResult], console: Console) -> None:
    table = Table(title="sky_rs bench: Rust (sky_rs) vs Python (sky_rs.fallback), per call")
    for index, header in enumerate(_CASE_HEADER):
        table.add_column(header, justify="left" if index < 2 else "right")
    for row in _case_rows(bench):
        table.add_row(*row)
    console.print(table)
    throughput = _throughput_rows(bench)
    if throughput:
        hashes = Table(title="hash throughput on the same file (sha256)")
        for index, header in enumerate(_THROUGHPUT_HEADER):
            hashes.add_column(header, justify="left" if index < 2 else "right")
        for row in throughput:
            hashes.add_row(*row)
        console.print(hashes)
    functions = Table(title="speedup per function (geometric mean of its cases)")
    functions.add_column("function")
    functions.add_column("speedup", justify="right")
    for row in _function_rows(bench):
        functions.add_row(*row)
    console.print(functions)
    verdicts = Table(title="targets")
    verdicts.add_column("target")
    verdicts.add_column("verdict")
    verdicts.add_column("evidence")
    colours = {"pass": "green", "fail": "red", "insufficient": "yellow"}
    for target in targets:
        colour = colours.get(target.verdict, "white")
        verdicts.add_row(target.title, f"[{colour}]{target.verdict}[/{colour}]", target.evidence)
    console.print(verdicts)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    align = ["---" if index < left else "---:" for index in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(bench: Dict[str, Any], targets: Sequence[TargetResult]) -> str:
    """The tables as Markdown, with when, where and how they were measured."""
    machine = bench["machine"]
    native = bench["sky_rs"]
    lines = [
        f"Measured {bench['created']} on {machine['cpu']} ({machine['cpus']} CPUs, "
        f"{machine['memory_gib']:.0f} GiB, {machine['system']}), "
        f"CPython {bench['python']['version']}, "
        f"sky_rs {native['version']} ({native.get('profile')} build), mode `{bench['mode']}`.",
        "",
        f"Command: `{bench['command']}` (commit {bench.get('git_commit')}); load average "
        f"{machine['loadavg_start'][0]:.1f} at the start, {machine.get('loadavg_end', [0])[0]:.1f} "
        f"at the end; niceness {bench['settings'].get('niceness')}.",
        "",
        _markdown_table(_CASE_HEADER, _case_rows(bench), 2),
        "",
    ]
    throughput = _throughput_rows(bench)
    if throughput:
        lines += [
            "Hash throughput on the same file:",
            "",
            _markdown_table(_THROUGHPUT_HEADER, throughput, 2),
            "",
        ]
    lines += [
        "Speedup per function:",
        "",
        _markdown_table(["function", "speedup"], _function_rows(bench), 1),
        "",
    ]
    deterministic = bench.get("deterministic")
    if deterministic:
        from sky_matrix.bench.counts import table

        lines += [
            "System calls (strace) and CPU instructions (callgrind, user space) per call, "
            f"on {deterministic['environment']}:",
            "",
            table(deterministic["cases"]),
            "",
        ]
    target_rows = [[t.title, t.verdict, t.evidence] for t in targets]
    lines += [
        "Targets:",
        "",
        _markdown_table(["target", "verdict", "evidence"], target_rows, 3),
        "",
    ]
    return "\n".join(lines)

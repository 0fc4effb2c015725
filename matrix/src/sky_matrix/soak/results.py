"""A soak's output folder: room made for a new run, the verdict, charts, summary, exit status.

Shared by the host run (`soak.cli`) and the container run (`soak.container`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from . import series as series_module


def judge_and_report(
    samples: Path, out_dir: Path, *, charts: bool = True, quiet: bool = False
) -> Dict[str, Any]:
    """Verdict JSON, charts and the terminal summary for a samples file."""
    from . import verdict as verdict_module

    series = series_module.load(samples)
    result = verdict_module.build(series)
    out_dir.mkdir(parents=True, exist_ok=True)
    verdict_path = out_dir / "verdict.json"
    verdict_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    files = [str(samples), str(verdict_path)]
    if charts:
        from . import charts as charts_module

        files += [str(p) for p in charts_module.write_all(series, out_dir)]
    if not quiet:
        from . import report

        report.print_summary(result, files)
    return result


def exit_status(verdict: Dict[str, Any], reason: Optional[str]) -> int:
    if verdict["status"] == "pass":
        return 0
    if reason == "segment-limit":
        # Incomplete by design: fail only if something besides completeness failed.
        return 1 if any(not f.startswith("incomplete") for f in verdict["failures"]) else 0
    return 1


REPORT_FILES = ("samples.jsonl", "verdict.json", "memory.png", "fds_threads.png", "latency.png")


def make_room(out_dir: Path) -> Optional[str]:
    """Ready ``out_dir`` for a new run; None, or why it can't be used.

    A *completed* earlier run there is moved to ``out_dir/previous/<run id>/``
    so that ``nox -s soak`` can be run again; an unfinished one is left alone
    (it is probably meant to be resumed).
    """
    samples = out_dir / "samples.jsonl"
    if not samples.exists() or samples.stat().st_size == 0:
        return None
    try:
        previous = series_module.load(samples)
    except series_module.SeriesError as exc:
        return f"{samples} is not a soak series ({exc}): choose another --out"
    if not previous.completed:
        return f"{samples} holds an unfinished run: --resume it, or choose another --out"
    archive = out_dir / "previous" / str(previous.header.get("run_id", "unknown"))
    archive.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        if (out_dir / name).exists():
            (out_dir / name).replace(archive / name)
    print(f"soak: moved the previous, completed run to {archive}", file=sys.stderr)
    return None

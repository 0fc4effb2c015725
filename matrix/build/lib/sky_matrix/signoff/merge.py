"""One matrix report from the per-cell reports of many GitHub runners.

`python -m sky_matrix.signoff.merge DIR --out matrix-report/report.json`

DIR holds one folder per cell job (downloaded artifacts), each with the
runner's `matrix-report/report.json` (or `report.json`) and the `runner.json`
the workflow wrote beside it: {"os": "macOS", "arch": "ARM64", "label": "macos-14"}.
Every cell record gets that `runner` object, which is how the sign-off tells
macOS cells from Linux ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def _report_in(folder: Path) -> Optional[Path]:
    for candidate in (folder / "matrix-report" / "report.json", folder / "report.json"):
        if candidate.is_file():
            return candidate
    return None


def merge(root: Path) -> Dict[str, Any]:
    cells: List[Dict[str, Any]] = []
    sources: List[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        report = _report_in(folder)
        if report is None:
            continue
        runner_file = folder / "runner.json"
        runner = (
            json.loads(runner_file.read_text(encoding="utf-8")) if runner_file.is_file() else {}
        )
        data = json.loads(report.read_text(encoding="utf-8"))
        for record in data.get("cells", []):
            cells.append({**record, "runner": runner})
        sources.append(folder.name)
    summary: Dict[str, int] = {}
    for record in cells:
        summary[record.get("verdict", "?")] = summary.get(record.get("verdict", "?"), 0) + 1
    return {"schema": 1, "run": {"merged_from": sources}, "summary": summary, "cells": cells}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.signoff.merge")
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, default=Path("matrix-report/report.json"))
    args = parser.parse_args(argv)
    merged = merge(args.root)
    if not merged["cells"]:
        print(f"sky-rs-merge: no report.json under {args.root}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    print(
        f"merged {len(merged['cells'])} cells from {len(merged['run']['merged_from'])} "
        f"runners into {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

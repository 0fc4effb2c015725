"""matrix-report/report.html: one self-contained page (inline CSS, no scripts, no links out)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Dict, List

from sky_matrix.core.model import CellResult
from sky_matrix.report.store import fallback_counts, summarize, write_text_atomic
from sky_matrix.report.table import cell_text, grid, row_architectures, row_label

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.pass { background: #e3f6e3; } td.fail { background: #fbdcdc; }
td.error { background: #f4dcf6; } td.skipped { background: #fff6d6; }
td.interrupted { background: #ffe8c8; }
td a { color: inherit; text-decoration: none; }
.summary span { margin-right: 1.5em; font-weight: bold; }
details { margin: .5em 0; border: 1px solid #ddd; padding: .3em .6em; }
summary { cursor: pointer; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; max-height: 30em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; }
"""


def _dl(items: List[tuple]) -> str:
    rows = "".join(
        f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
        for k, v in items
        if v not in (None, "")
    )
    return f"<dl>{rows}</dl>"


def _cell_details(result: CellResult) -> str:
    interp = result.interpreter
    stats = result.stats or {}
    items = [
        ("verdict", result.verdict),
        ("reason", result.reason),
        ("required", "yes" if result.required else "no"),
        ("architecture", result.architecture),
        (
            "emulation",
            "{factor:g}x slower than native ({emulated_seconds:g} s against"
            " {native_seconds:g} s; {method})".format(**result.extra["emulation"])
            if isinstance(result.extra.get("emulation"), dict)
            else None,
        ),
        (
            "interpreter",
            f"{interp.path} ({interp.version}, {interp.abi}"
            f"{', debug' if interp.debug else ''}, {interp.source})"
            if interp
            else None,
        ),
        ("counts", ", ".join(f"{k} {v}" for k, v in result.counts.items())),
        ("durations", ", ".join(f"{k} {v:.1f} s" for k, v in result.durations.items())),
        ("return code", result.returncode),
        ("signal", result.signal),
        ("backend", json.dumps(stats.get("backend_info")) if stats.get("backend_info") else None),
        ("fallbacks", json.dumps(fallback_counts(stats.get("suite") or stats.get("fresh")))),
        ("log", result.log_path),
        ("junit", result.junit_path),
        ("run", result.run_id),
    ]
    body = _dl(items)
    if result.log_tail:
        body += f"<p>last lines of the log:</p><pre>{escape(result.log_tail)}</pre>"
    anchor = escape(result.cell.id)
    opened = " open" if result.verdict in ("fail", "error", "interrupted") else ""
    return (
        f'<details id="{anchor}"{opened}>'
        f"<summary>{escape(result.verdict.upper())} {anchor}</summary>{body}</details>"
    )


def _rows_table(rows: List[Dict[str, Any]]) -> str:
    """A table of a suite's report rows; columns are every key in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _suite_reports(results: List[CellResult]) -> str:
    """Suites' own tables (extra-<name>.json with "rows"), e.g. what each backend, os.cpu_count()
    and the affinity mask said under each cgroup profile."""
    parts = []
    for result in sorted(results, key=lambda r: r.cell.id):
        for name, extra in sorted(result.extra.items()):
            rows = extra.get("rows") if isinstance(extra, dict) else None
            if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
                title = f"{result.cell.id}: {name}"
                parts.append(f"<h3>{escape(title)}</h3>{_rows_table(rows)}")
    return "".join(parts) or "<p>no suite wrote a report table.</p>"


def render(results: List[CellResult], run: Dict[str, Any]) -> str:
    rows, suites, cells = grid(results)
    summary = summarize(results)
    head = "".join(f"<th>{escape(s)}</th>" for s in suites)
    arches = row_architectures(rows, cells)
    body_rows = []
    for row in rows:
        tds = [f"<th>{escape(row_label(row))}</th>", f"<td>{escape(arches[row])}</td>"]
        for suite in suites:
            result = cells.get((row, suite))
            if result is None:
                tds.append("<td>-</td>")
                continue
            tds.append(
                f'<td class="{escape(result.verdict)}">'
                f'<a href="#{escape(result.cell.id)}">{escape(cell_text(result, 80))}</a></td>'
            )
        body_rows.append("<tr>" + "".join(tds) + "</tr>")
    run_items = [
        (k, v if not isinstance(v, (dict, list)) else json.dumps(v)) for k, v in run.items()
    ]
    details = "".join(_cell_details(r) for r in sorted(results, key=lambda r: r.cell.id))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sky-rs matrix report</title><style>{CSS}</style></head>
<body>
<h1>sky-rs matrix report</h1>
<p class="summary">{"".join(f"<span>{escape(k)}: {v}</span>" for k, v in summary.items())}</p>
<table><thead><tr><th>platform / python</th><th>arch</th>{head}</tr></thead>
<tbody>{"".join(body_rows)}</tbody></table>
<h2>Run</h2>{_dl(run_items)}
<h2>Suite reports</h2>{_suite_reports(results)}
<h2>Cells</h2>{details}
</body></html>
"""


def write(path: Path, results: List[CellResult], run: Dict[str, Any]) -> Path:
    write_text_atomic(path, render(results, run))
    return path

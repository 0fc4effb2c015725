"""SIGNOFF.md and signoff.json: one line per item, with its verdict and evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence

from sky_matrix.signoff.verdict import PASS, VERDICTS, ItemResult


def signed_off(results: Sequence[ItemResult]) -> bool:
    return all(r.verdict == PASS for r in results if r.required)


def counts(results: Sequence[ItemResult]) -> Dict[str, int]:
    tally = dict.fromkeys(VERDICTS, 0)
    for result in results:
        tally[result.verdict] += 1
    return tally


def headline(results: Sequence[ItemResult]) -> str:
    tally = counts(results)
    parts = ", ".join(f"{n} {verdict}" for verdict, n in tally.items() if n)
    state = "SIGNED OFF" if signed_off(results) else "NOT SIGNED OFF"
    return f"{state}: {parts}"


def to_json(results: Sequence[ItemResult], meta: Dict[str, Any]) -> Dict[str, Any]:
    return {
        **meta,
        "signed_off": signed_off(results),
        "counts": counts(results),
        "items": [r.to_json() for r in results],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: Sequence[ItemResult], meta: Dict[str, Any]) -> str:
    lines: List[str] = [
        f"# Release sign-off: skypilot-rust {meta.get('version')}",
        "",
        f"Decided {meta['created']} on {meta['host']}, commit {meta.get('commit') or 'unknown'}, "
        f"by `{meta['command']}`.",
        "",
        f"**{headline(results)}**",
        "",
        "Verdicts: `pass` (the evidence shows it), `fail` (it shows the opposite, or the evidence "
        "is missing), `insufficient` (real evidence, too little), `not verifiable here` (this host "
        "cannot produce the evidence; never counted as passed). Every item is required.",
        "",
    ]
    section = None
    for result in results:
        if result.section != section:
            section = result.section
            lines += [
                "",
                f"## {section}",
                "",
                "| verdict | item | evidence |",
                "| --- | --- | --- |",
            ]
        verdict = f"**{result.verdict}**" if result.verdict != PASS else result.verdict
        lines.append(
            f"| {verdict} | `{result.id}`: {_cell(result.title)} | {_cell(result.evidence)} |"
        )
    return "\n".join(lines) + "\n"


def write(out_dir: Path, results: Sequence[ItemResult], meta: Dict[str, Any]) -> List[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "signoff.json"
    md_path = out_dir / "SIGNOFF.md"
    json_path.write_text(json.dumps(to_json(results, meta), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(results, meta), encoding="utf-8")
    return [md_path, json_path]

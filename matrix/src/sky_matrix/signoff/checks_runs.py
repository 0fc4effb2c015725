"""Evidence of the long runs: the leak suite's verdict and the latest soak verdict.

leaks-report/verdict.json (written by the leak suite; this is the shape read here):
    {"status": "pass" | "fail",
     "functions": {"<function>": {"rust": {"status": ...}, "python": {"status": ...}}},
     "canaries": {"<detector>": {"caught": true, "function": "<function>"}}}   # optional
A function entry may also be a flat {"status": ...}.

soak-report/**/verdict.json (written by `nox -s soak`): the newest one counts.
    {"status": "pass" | "fail", "failures": [...], "duration_s": ..., "requested_duration_s": ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from sky_matrix.core.functions import SKY_RS_FUNCTIONS
from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import FAIL, INSUFFICIENT, PASS, Outcome, missing


def _failing_parts(name: str, entry: Any) -> List[str]:
    if not isinstance(entry, dict):
        return [f"{name} (unreadable entry)"]
    if "status" in entry:
        return [] if entry["status"] == "pass" else [name]
    out = []
    for backend, result in sorted(entry.items()):
        status = result.get("status") if isinstance(result, dict) else None
        if status != "pass":
            out.append(f"{name}/{backend}")
    return out


def leaks(ctx: Context) -> Outcome:
    path = ctx.path(ctx.evidence.leaks)
    shown = ctx.show(ctx.evidence.leaks)
    if not path.is_file():
        return missing(shown, "leak-canaries")
    try:
        data = read_json(path, shown)
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc))
    if not isinstance(data, dict) or data.get("status") not in ("pass", "fail"):
        return Outcome(FAIL, f"{shown} has no status pass/fail: not a leak verdict")
    functions: Dict[str, Any] = data.get("functions") or {}
    failing = [
        part for name, entry in sorted(functions.items()) for part in _failing_parts(name, entry)
    ]
    canaries: Dict[str, Any] = data.get("canaries") or {}
    missed = [name for name, canary in sorted(canaries.items()) if not canary.get("caught")]
    if data["status"] == "fail" or failing or missed:
        parts = []
        if failing:
            parts.append("leaks in " + ", ".join(failing))
        if missed:
            parts.append("detector(s) missed their canary: " + ", ".join(missed))
        return Outcome(FAIL, f"{shown}: " + ("; ".join(parts) or "status fail"))
    absent = [name for name in SKY_RS_FUNCTIONS if name not in functions]
    if absent:
        return Outcome(INSUFFICIENT, f"{shown} has no verdict for {', '.join(absent)}")
    canary_text = f", {len(canaries)} canaries caught" if canaries else ""
    return Outcome(PASS, f"{shown}: all {len(SKY_RS_FUNCTIONS)} functions clean{canary_text}")


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def latest_soak_verdict(ctx: Context) -> Path:
    directory = ctx.path(ctx.evidence.soak_dir)
    found = (
        sorted(directory.rglob("verdict.json"), key=lambda p: p.stat().st_mtime)
        if directory.is_dir()
        else []
    )
    if not found:
        raise FileNotFoundError(directory / "verdict.json")
    return found[-1]


def soak(ctx: Context) -> Outcome:
    try:
        path = latest_soak_verdict(ctx)
    except FileNotFoundError as exc:
        return missing(ctx.show(Path(str(exc.args[0]))), "soak")
    shown = ctx.show(path)
    try:
        data = read_json(path, shown)
        status = data["status"]
        duration = float(data["duration_s"])
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc))
    except (KeyError, TypeError, ValueError):
        return Outcome(FAIL, f"{shown} lacks status/duration_s: not a soak verdict")
    required = _duration(ctx.soak_required_s)
    if status != "pass":
        failures = "; ".join(str(f) for f in (data.get("failures") or [])[:2]) or "status fail"
        return Outcome(FAIL, f"{shown}: soak failed after {_duration(duration)}: {failures}")
    if duration < ctx.soak_required_s:
        return Outcome(
            INSUFFICIENT,
            f"{shown}: passed, but ran {_duration(duration)}; a release needs {required} "
            f"(nox -s soak -- --duration 24h)",
        )
    return Outcome(PASS, f"{shown}: passed after {_duration(duration)} (>= {required})")

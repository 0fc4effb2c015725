"""Benchmark evidence: bench-report/bench.json, judged by `sky_matrix.bench.targets`."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from sky_matrix.bench import targets
from sky_matrix.signoff import checks_release
from sky_matrix.signoff.context import Context, EvidenceError, read_json
from sky_matrix.signoff.verdict import FAIL, INSUFFICIENT, NOT_VERIFIABLE, PASS, Outcome, missing


def _load(ctx: Context) -> Tuple[Optional[Outcome], Dict[str, Any]]:
    path = ctx.path(ctx.evidence.bench)
    shown = ctx.show(ctx.evidence.bench)
    if not path.is_file():
        return missing(shown, "bench"), {}
    try:
        data = read_json(path, shown)
    except EvidenceError as exc:
        return Outcome(FAIL, str(exc)), {}
    if not isinstance(data, dict) or not data.get("cases"):
        return Outcome(FAIL, f"{shown} has no cases: not a bench report"), {}
    return None, data


def _target(ctx: Context, target_id: str) -> Outcome:
    problem, bench = _load(ctx)
    if problem:
        return problem
    shown = ctx.show(ctx.evidence.bench)
    try:
        results = {t.id: t for t in targets.evaluate(bench)}
    except KeyError as exc:
        return Outcome(
            FAIL,
            f"{shown} lacks {exc}: written by another version of the bench, rerun nox -s bench",
        )
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        return Outcome(FAIL, f"{shown} is malformed: {exc!r}")
    result = results[target_id]
    return Outcome(result.verdict, result.evidence)


def bench_valid(ctx: Context) -> Outcome:
    outcome = _target(ctx, "bench-valid")
    if outcome.verdict != PASS:
        return outcome
    _, bench = _load(ctx)
    version = checks_release.project_version(ctx)
    measured = bench.get("sky_rs", {}).get("version")
    if version is not None and measured != version:
        return Outcome(
            FAIL,
            f"the bench measured sky_rs {measured}, the project is {version}: rerun nox -s bench",
        )
    if bench.get("mode") != "full":
        return Outcome(
            INSUFFICIENT,
            f"a --{bench.get('mode')} bench; a release needs the full run (nox -s bench)",
        )
    return Outcome(PASS, outcome.evidence + f", at commit {bench.get('git_commit') or 'unknown'}")


def _target_check(target_id: str) -> Callable[[Context], Outcome]:
    def check(ctx: Context) -> Outcome:
        return _target(ctx, target_id)

    check.__name__ = f"bench_{target_id.replace('-', '_')}"
    return check


average_speedup = _target_check("average-speedup")
p99_latency = _target_check("p99-latency")
string_speedup = _target_check("string-speedup")
tail_cost = _target_check("tail-cost")


def production_hardware(ctx: Context) -> Outcome:
    problem, bench = _load(ctx)
    if problem:
        return problem
    machine = bench.get("machine", {})
    return Outcome(
        NOT_VERIFIABLE,
        f"the bench ran on this host ({machine.get('cpu')}, {machine.get('cpus')} CPUs); "
        "production hardware is not available here: run nox -s bench there and sign off "
        "with its report",
    )

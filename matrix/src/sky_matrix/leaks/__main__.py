"""`python -m sky_matrix.leaks`: prove the leak detectors on the canary wheel, then the release.

Exit status 0 when, on every selected interpreter, each canary was caught by
its detector and named, nothing else failed, and the release wheel came out
clean; 1 otherwise; 2 when something could not even be set up.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

from sky_matrix.build import host_wheel
from sky_matrix.core.errors import EXIT_USAGE, UsageError
from sky_matrix.core.model import Interpreter
from sky_matrix.leaks import canary_wheel, expectations, proof
from sky_matrix.plan.discovery import discover, label_sort_key


def _log(message: str) -> None:
    print(f"leaks: {message}", file=sys.stderr, flush=True)


def select_interpreters(found: Sequence[Interpreter], labels: Sequence[str]) -> List[Interpreter]:
    """The labelled ones; by default the oldest and newest release builds and every debug one."""
    by_label = {interp.short: interp for interp in found}
    if labels:
        missing = [label for label in labels if label not in by_label]
        if missing:
            raise UsageError(
                f"no interpreter {', '.join(missing)} found (have {', '.join(sorted(by_label))})"
            )
        return [by_label[label] for label in labels]
    release = sorted((i for i in found if not i.debug), key=lambda i: label_sort_key(i.short))
    chosen = [release[0], release[-1]] if release else []
    chosen += [i for i in found if i.debug]
    return list({interp.short: interp for interp in chosen}.values())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sky_matrix.leaks", description=__doc__)
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="LABEL|PATH",
        help="an interpreter label (3.13, 3.14d) or path (repeatable); default: oldest, "
        "newest and debug ones found",
    )
    parser.add_argument("--canary-wheel", type=Path, help="use this canary wheel, build none")
    parser.add_argument("--canary-out", type=Path, help="where to build the canary wheel")
    parser.add_argument("--release-wheel", type=Path, help="default: the cached host wheel")
    parser.add_argument("--no-release", action="store_true", help="prove the canaries only")
    parser.add_argument("--env-cache", type=Path, help="default: <project>/.build-cache/envs")
    parser.add_argument("--work-dir", type=Path, help="default: <project>/.build-cache/leaks")
    return parser


def _print_verdicts(verdicts: List[proof.Verdict]) -> None:
    for verdict in verdicts:
        run = verdict.run
        state = "ok" if verdict.ok else "FAILED"
        print(f"{run.interpreter.label:>6} {verdict.kind:<7} {state} ({run.seconds:.0f} s)")
        if verdict.kind == "canary":
            for line in expectations.caught(run.results, run.interpreter):
                print(f"         caught {line}")
        for problem in verdict.problems:
            print(f"         problem: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.project_root.resolve()
    try:
        paths = [p for p in args.python if "/" in p]
        labels = [p for p in args.python if "/" not in p]
        found = discover(explicit=paths)
        labels += [interp.short for interp in found.interpreters.values() if interp.path in paths]
        interpreters = select_interpreters(list(found.interpreters.values()), labels)
        if not interpreters:
            raise UsageError("no CPython >= 3.8 found to run the leaks suite on")
        wheel = args.canary_wheel or canary_wheel.build_canary_wheel(
            root, args.canary_out, log=_log
        )
        release = None
        if not args.no_release:
            release = args.release_wheel or host_wheel.build_wheel(root, log=_log)[0]
        cache = host_wheel.cache_root(root)
        work_dir = (args.work_dir or cache / "leaks").resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        verdicts = proof.prove(
            root,
            interpreters,
            canary_wheel=wheel,
            release_wheel=release,
            env_cache=(args.env_cache or cache / "envs").resolve(),
            work_dir=work_dir,
            log=_log,
        )
    except (UsageError, canary_wheel.CanaryBuildError, host_wheel.BuildError) as exc:
        print(f"sky-rs-matrix leaks: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _print_verdicts(verdicts)
    write_verdict(verdicts, root / "leaks-report" / "verdict.json")
    return 0 if all(verdict.ok for verdict in verdicts) else 1


CASE_ID = re.compile(r"\[(?P<function>[a-z0-9_]+)-(?P<backend>rust|python)\]$")


def verdict_json(verdicts: Sequence[proof.Verdict]) -> Dict[str, Any]:
    """The sign-off's leak evidence: per function and backend on the release build, and
    per canary whether its detector caught it (on every interpreter that ran it)."""
    functions: Dict[str, Dict[str, Dict[str, str]]] = {}
    canaries: Dict[str, Dict[str, Any]] = {}
    for verdict in verdicts:
        run = verdict.run
        if verdict.kind == "release":
            for key, outcome in run.results.items():
                match = CASE_ID.search(key)
                if not match:
                    continue
                entry = functions.setdefault(match["function"], {}).setdefault(
                    match["backend"], {"status": "pass"}
                )
                if outcome.outcome in ("failed", "error"):
                    entry["status"] = "fail"
                    entry.setdefault("failed", f"{key}: {outcome.message[:160]}")
        else:
            for canary in expectations.canaries_for(run.interpreter):
                outcome = run.results.get(canary.case_id())
                name = f"{canary.test} ({run.interpreter.label})"
                canaries[name] = {
                    "caught": outcome is not None and outcome.outcome == "failed",
                    "function": canary.function,
                }
    return {
        "status": "pass" if verdicts and all(v.ok for v in verdicts) else "fail",
        "interpreters": sorted({v.run.interpreter.label for v in verdicts}),
        "functions": functions,
        "canaries": canaries,
    }


def write_verdict(verdicts: Sequence[proof.Verdict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict_json(verdicts), indent=2) + "\n", encoding="utf-8")
    print(f"leak verdict: {path}")


if __name__ == "__main__":
    sys.exit(main())

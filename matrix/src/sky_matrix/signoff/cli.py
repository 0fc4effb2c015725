"""`python -m sky_matrix.signoff`: decide every checklist item, write SIGNOFF.md and signoff.json.

Exit status: 0 when every required item passed; 1 otherwise (with
`--allow-unverified`: 0 when no item *failed*, for a pre-release dry run; the
report still says NOT SIGNED OFF); 2 on bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rich.console import Console
from rich.markup import escape

from sky_matrix.core.text import parse_duration
from sky_matrix.signoff import checklist, render
from sky_matrix.signoff.checks_release import project_version
from sky_matrix.signoff.context import SOAK_REQUIRED_S, Context, EvidencePaths
from sky_matrix.signoff.verdict import FAIL, ItemResult, Outcome

_COLOURS = {"pass": "green", "fail": "red", "insufficient": "yellow", "not verifiable here": "cyan"}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    defaults = EvidencePaths()
    parser = argparse.ArgumentParser(
        prog="python -m sky_matrix.signoff",
        description="Decide the release checklist from evidence files.",
    )
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument("--out", type=Path, default=Path("signoff-report"))
    parser.add_argument(
        "--only", action="append", default=[], metavar="ITEM", help="decide only this item"
    )
    parser.add_argument(
        "--matrix-report",
        action="append",
        type=Path,
        metavar="FILE",
        help=f"matrix report(s) to read (default {defaults.matrix_reports[0]}); repeatable",
    )
    parser.add_argument("--bench", type=Path, default=defaults.bench)
    parser.add_argument("--leaks", type=Path, default=defaults.leaks)
    parser.add_argument("--soak-dir", type=Path, default=defaults.soak_dir)
    parser.add_argument("--coverage-dir", type=Path, default=defaults.coverage_dir)
    parser.add_argument("--wheels", type=Path, default=defaults.wheels)
    parser.add_argument(
        "--soak-required",
        type=parse_duration,
        default=SOAK_REQUIRED_S,
        help="soak duration a release needs (default 24h)",
    )
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="exit 0 unless an item failed (insufficient / not verifiable items do not count)",
    )
    return parser.parse_args(argv)


def _commit(root: Path) -> Optional[str]:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=str(root),
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def decide(items: Sequence[checklist.Item], ctx: Context, console: Console) -> List[ItemResult]:
    results: List[ItemResult] = []
    for item in items:
        started = time.monotonic()
        try:
            outcome = item.check(ctx)
        except Exception as exc:  # a check that breaks must not hide the other items
            outcome = Outcome(FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")
        result = ItemResult(
            item.id,
            item.title,
            item.section,
            item.required,
            outcome.verdict,
            outcome.evidence,
            round(time.monotonic() - started, 2),
        )
        results.append(result)
        colour = _COLOURS[result.verdict]
        console.print(
            f"[{colour}]{result.verdict:>19}[/{colour}]  {result.id:<17} {escape(result.evidence)}",
            soft_wrap=True,
        )
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    console = Console()
    root = args.project_root.resolve()
    if not (root / "pyproject.toml").is_file():
        print(
            f"sky-rs-signoff: {root} has no pyproject.toml: run from the project root",
            file=sys.stderr,
        )
        return 2
    try:
        items = checklist.select(args.only)
    except ValueError as exc:
        print(f"sky-rs-signoff: {exc}", file=sys.stderr)
        return 2
    evidence = EvidencePaths(
        matrix_reports=tuple(args.matrix_report or EvidencePaths().matrix_reports),
        bench=args.bench,
        leaks=args.leaks,
        soak_dir=args.soak_dir,
        coverage_dir=args.coverage_dir,
        wheels=args.wheels,
    )
    ctx = Context(root=root, evidence=evidence, soak_required_s=args.soak_required)
    results = decide(items, ctx, console)
    meta: Dict[str, Any] = {
        "version": project_version(ctx),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({platform.system()} {platform.machine()})",
        "commit": _commit(root),
        "command": "python -m sky_matrix.signoff "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "partial": bool(args.only),
    }
    out = args.out if args.out.is_absolute() else root / args.out
    written = render.write(out, results, meta)
    console.print(f"\n{render.headline(results)}")
    console.print("wrote " + ", ".join(str(p) for p in written))
    if render.signed_off(results):
        return 0
    if args.allow_unverified and not any(r.verdict == FAIL for r in results):
        return 0
    return 1

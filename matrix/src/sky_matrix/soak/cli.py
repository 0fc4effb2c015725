"""``python -m sky_matrix.soak``: run, resume or judge a soak.

Exit status: 0 the soak passed (or a ``--segment-limit`` segment ended with
nothing failed so far); 1 it failed; 2 it could not run (bad arguments, no
Rust backend, an existing samples file, no docker).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from sky_matrix.core.text import parse_duration

from . import driver as driver_module, results, series as series_module, workload as workload_module


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sky_matrix.soak",
        description="Drive all twelve sky_rs functions at a constant rate, Rust and Python "
        "side by side, sample the process, and judge trends.",
    )
    parser.add_argument(
        "--duration",
        type=parse_duration,
        default=120.0,
        help="active run time: 90s, 2m, 24h (default 2m)",
    )
    parser.add_argument(
        "--interval",
        type=parse_duration,
        default=None,
        help="sampling interval (default: duration/60, between 1 s and 60 s)",
    )
    parser.add_argument(
        "--warmup",
        type=parse_duration,
        default=None,
        help="left out of the verdict at the start of each segment "
        "(default: a fifth of the duration, at most 10 min)",
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        default=workload_module.DEFAULT_RATE,
        help="calls/s per function and backend (find_free_port: 1/s)",
    )
    parser.add_argument(
        "--p99-budget-ms",
        type=_positive,
        default=100.0,
        help="p99 latency budget per function and backend (default 100)",
    )
    parser.add_argument(
        "--backends", default="rust,python", help="comma-separated: rust, python (default both)"
    )
    parser.add_argument(
        "--allow-python-only",
        action="store_true",
        help="if the native module doesn't import, soak Python alone instead of refusing",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("soak-report"),
        help="directory for samples.jsonl, verdict.json and charts",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="FILE",
        help="continue the run in this samples file (its parameters apply)",
    )
    parser.add_argument(
        "--segment-limit",
        type=parse_duration,
        default=None,
        help="stop this segment after so long, leaving the run resumable",
    )
    parser.add_argument("--platform", default="host", help="host or docker:<image>")
    parser.add_argument(
        "--profile", default="default", help="container profile, e.g. memory-512m (docker only)"
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help="the wheel to install in the container (default $SKY_RS_WHEEL)",
    )
    # Set by the container side: where the driver really runs, for the header.
    parser.add_argument("--recorded-platform", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="no progress output")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument(
        "--driver-only",
        action="store_true",
        help="run and write samples only, no verdict (the container side)",
    )
    parser.add_argument(
        "--verdict-only",
        type=Path,
        default=None,
        metavar="FILE",
        help="judge an existing samples file and write the report",
    )
    return parser


def _samples_path(args: argparse.Namespace) -> Path:
    if args.resume is not None:
        return args.resume
    return args.out / "samples.jsonl"


def _out_dir(args: argparse.Namespace) -> Path:
    source = args.verdict_only or args.resume
    if source is not None and args.out == Path("soak-report"):
        return source.parent  # beside the samples unless --out says otherwise
    return args.out


def _new_config(args: argparse.Namespace, backends: Sequence[str]) -> driver_module.RunConfig:
    interval = args.interval or driver_module.default_interval(args.duration)
    warmup = args.warmup if args.warmup is not None else driver_module.default_warmup(args.duration)
    return driver_module.RunConfig(
        duration_s=args.duration,
        interval_s=interval,
        warmup_s=warmup,
        rate=args.rate,
        backends=tuple(backends),
        p99_budget_ms=args.p99_budget_ms,
        platform=args.recorded_platform or args.platform,
        profile=args.profile,
    )


def _backends(args: argparse.Namespace) -> List[str]:
    from . import workload

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in workload.BACKENDS]
    if unknown or not backends:
        raise SystemExit(f"soak: unknown backend(s) {unknown or args.backends!r}")
    problem = workload.native_import_error()
    if "rust" in backends and problem is not None:
        if not args.allow_python_only:
            print(
                f"soak: the Rust backend is not available: {problem}\n"
                "      (--allow-python-only soaks the Python backend alone)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        print(f"soak: soaking Python only: {problem}", file=sys.stderr)
        backends = [b for b in backends if b != "rust"] or ["python"]
    return backends


def run_host(
    args: argparse.Namespace, workload_hook: Optional[driver_module.WorkloadHook] = None
) -> int:
    samples = _samples_path(args)
    if args.resume is None:
        problem = results.make_room(args.out)
        if problem is not None:
            print(f"soak: {problem}", file=sys.stderr)
            return 2
        soak = driver_module.Soak(
            samples,
            _new_config(args, _backends(args)),
            segment_limit_s=args.segment_limit,
            workload_hook=workload_hook,
        )
    else:
        try:
            soak = driver_module.Soak(
                samples,
                resume=True,
                segment_limit_s=args.segment_limit,
                workload_hook=workload_hook,
            )
        except series_module.SeriesError as exc:
            print(f"soak: cannot resume: {exc}", file=sys.stderr)
            return 2
        print(
            f"soak: resuming {samples} at t={soak.base_t:.1f} s as segment {soak.segment}"
            + (" (cut a partial last line)" if soak.repaired else ""),
            file=sys.stderr,
        )
    progress = None
    if not args.no_progress and not args.driver_only:
        from .report import LiveProgress

        progress = LiveProgress(soak.config.duration_s, soak.base_t)
        soak.on_sample = progress.on_sample
    restore = driver_module.install_stop_signals(soak)
    try:
        reason = soak.run()
    except workload_module.WorkloadError as exc:
        print(f"soak: cannot run: {exc}", file=sys.stderr)
        return 2
    finally:
        restore()
        if progress is not None:
            progress.close()
    if args.driver_only:
        print(f"soak: segment ended: {reason}", file=sys.stderr)
        return 0
    verdict = results.judge_and_report(samples, _out_dir(args), charts=not args.no_charts)
    return results.exit_status(verdict, reason)


def main(
    argv: Optional[Sequence[str]] = None, workload_hook: Optional[driver_module.WorkloadHook] = None
) -> int:
    args = build_parser().parse_args(argv)
    if args.verdict_only is not None:
        verdict = results.judge_and_report(
            args.verdict_only, _out_dir(args), charts=not args.no_charts
        )
        return 0 if verdict["status"] == "pass" else 1
    if args.platform.startswith("docker:"):
        from . import container

        return container.run(args)
    if args.platform != "host":
        print(f"soak: unknown platform {args.platform!r} (host or docker:<image>)", file=sys.stderr)
        return 2
    return run_host(args, workload_hook)

"""Detector 4a (any build): references kept on the objects a function sees.

The witnesses and the rule (a witness that gains in every run): leak_references.py.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import leak_cases
import leak_references


def test_references(
    workload: leak_cases.Workload, record_leak_metrics: Callable[[Dict[str, Any]], None]
) -> None:
    runs = leak_references.witness_runs(workload)
    leaked = runs.leaked()
    record_leak_metrics(
        {
            "calls_per_run": runs.calls_per_run,
            "largest_gain": runs.largest_gain(),
            "leaked": leaked,
        }
    )
    assert not leaked, f"{workload.label} keeps references to " + "; ".join(
        f"{label}: {', '.join(f'+{gain}' for gain in gains)} over runs of "
        f"{runs.calls_per_run} calls"
        for label, gains in leaked.items()
    )

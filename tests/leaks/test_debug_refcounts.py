"""Detector 4b (debug builds): sys.gettotalrefcount() and sys.getallocatedblocks().

CPython's own ``-R`` rule: warm-up runs are not judged, and a leak is a total
that grew in *every* tracked run. Method and thresholds: leak_references.py,
run in a child process with pymalloc (getallocatedblocks counts its blocks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import leak_cases
import leak_child
import leak_measure
import leak_references
import pytest

SCRIPT = Path(leak_references.__file__)
RELEASE_BUILD_REASON = (
    "sys.gettotalrefcount() exists only in debug builds of CPython and this is a "
    "release build; the debug interpreter's cell (python3.14-dbg in the sid image) "
    "runs this detector, every interpreter runs test_references"
)


def test_debug_refcounts(
    case: Tuple[str, str],
    workspace: leak_cases.Workspace,
    record_leak_metrics: Callable[[Dict[str, Any]], None],
) -> None:
    if not leak_measure.is_debug_build():
        pytest.skip(RELEASE_BUILD_REASON)
    function, backend = case
    line = leak_child.run_detector(
        SCRIPT, [function, backend, str(workspace.root)], {"PYTHONMALLOC": None}
    )
    totals = leak_references.DebugTotals.from_json(line)
    record_leak_metrics(
        {
            "calls_per_run": totals.calls_per_run,
            "refcount_deltas": totals.refcount_deltas,
            "block_deltas": totals.block_deltas,
        }
    )
    problems = []
    if totals.grows(totals.refcount_deltas):
        problems.append(f"total references grew in every run: {totals.refcount_deltas}")
    if totals.grows(totals.block_deltas):
        problems.append(f"allocated blocks grew in every run: {totals.block_deltas}")
    assert not problems, (
        f"{function}[{backend}] leaks over {len(totals.refcount_deltas)} tracked runs of "
        f"{totals.calls_per_run} calls: " + "; ".join(problems)
    )

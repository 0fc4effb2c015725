"""Detector 2: psleak-style growth of the C heap, USS and RSS, under PYTHONMALLOC=malloc.

The method and its thresholds: leak_growth.py, run in a child process because
PYTHONMALLOC only takes effect when an interpreter starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import leak_cases
import leak_child
import leak_growth

SCRIPT = Path(leak_growth.__file__)


def test_growth(
    case: Tuple[str, str],
    workspace: leak_cases.Workspace,
    record_leak_metrics: Callable[[Dict[str, Any]], None],
) -> None:
    function, backend = case
    line = leak_child.run_detector(
        SCRIPT, [function, backend, str(workspace.root)], {"PYTHONMALLOC": "malloc"}
    )
    result = leak_growth.GrowthResult.from_json(line)
    record_leak_metrics(
        {
            "verdict": result.verdict,
            "growth_per_call": result.growth_per_call,
            "batches": [[batch.calls, batch.growth] for batch in result.batches],
            "warmup_calls": result.warmup_calls,
            "descriptors": result.descriptors,
            "os_threads": result.os_threads,
        }
    )
    assert result.verdict != "leak", (
        f"{function}[{backend}] keeps growing under PYTHONMALLOC=malloc after "
        f"{result.warmup_calls} warm-up calls: {result.detail}"
    )

"""Detector 6: a slow leak over 100,000 calls of each native function (leak_long_run.py).

Native code only: a leak there is memory no Python object accounts for, which
the short detectors cannot tell from noise when it is one block every few
thousand calls. The Python backend's memory is Python objects, which the
growth, memray and reference detectors see directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import leak_cases
import leak_child
import leak_long_run
import leak_measure
import pytest

SCRIPT = Path(leak_long_run.__file__)
# glibc's per-thread cache keeps freed chunks that mallinfo2 counts as in use,
# a few KB that come and go as size classes fill: with it off the heap reading
# is exact.
NO_THREAD_CACHE = "glibc.malloc.tcache_count=0"


def test_long_run(
    case: Tuple[str, str],
    workspace: leak_cases.Workspace,
    record_leak_metrics: Callable[[Dict[str, Any]], None],
) -> None:
    function, backend = case
    if backend != "rust":
        pytest.skip("the long run is for native code (see the module docstring)")
    if not leak_measure.heap_available():
        pytest.skip("no mallinfo2 here (not glibc): the C heap cannot be read")
    line = leak_child.run_detector(
        SCRIPT,
        [function, backend, str(workspace.root)],
        {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": NO_THREAD_CACHE},
    )
    result = json.loads(line)
    record_leak_metrics(
        {key: result[key] for key in ("calls", "bytes_per_call", "growth_judged", "points")}
    )
    assert result["verdict"] == "clean", (
        f"{function}[{backend}] grows {result['bytes_per_call']:.4f} B/call over the last "
        f"{result['judged_calls']} of {result['calls']} calls (limit "
        f"{result['limit_bytes_per_call']} B/call): heap readings {result['points']}"
    )

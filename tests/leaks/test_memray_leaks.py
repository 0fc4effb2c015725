"""Detector 1: memray, through pytest-memray's limit_leaks, grouped by call stack.

Thresholds and the interpreters memray cannot run on: leak_memray.py.
"""

from __future__ import annotations

import leak_cases
import leak_measure
import leak_memray
import pytest


@pytest.fixture
def memray_ready(request: pytest.FixtureRequest) -> None:
    """Skip where memray cannot exist (with the reason); fail where it should but does not."""
    unsupported = leak_memray.unsupported_reason()
    if unsupported is not None:
        pytest.skip(unsupported)
    missing = leak_memray.missing_reason(request.config)
    if missing is not None:
        pytest.fail(missing, pytrace=False)


@pytest.mark.limit_leaks(leak_memray.LOCATION_LIMIT, filter_fn=leak_memray.from_workload)
def test_memray_limit_leaks(memray_ready: None, workload: leak_cases.Workload) -> None:
    leak_cases.run_rounds(workload, leak_cases.rounds_for(workload, leak_memray.CALLS))
    # While still tracked: free the calls' cyclic garbage (exception tracebacks)
    # and empty the interpreter's caches, which hold on to objects the calls
    # made (the type-attribute cache keeps the attribute-name strings PyO3
    # creates per lookup) for as long as they are not evicted.
    leak_measure.settle()

"""Exit, fork and Ctrl-C with native calls in flight, each repeated until a rare crash shows.

`exit_stress` runs the children; the number of exits per scenario comes from
``--exit-stress-exits`` (or ``$SKY_RS_EXIT_STRESS_EXITS``), by default enough
to see a fault that hits 0.5 % of exits with 99 % probability. Each
scenario's count, rate and first failure go to the cell's report as
``extra-exit-stress-<scenario>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import exit_stress
import pytest

CASES = [("exit", "mixed"), ("fork", "mixed"), ("sigint", "mixed")]


@pytest.mark.parametrize(
    ("scenario", "workload"), CASES, ids=[f"{s}-{w}" if s == "exit" else s for s, w in CASES]
)
def test_no_abnormal_end(
    native: ModuleType, exit_stress_exits: int, scenario: str, workload: str, tmp_path: Path
) -> None:
    result = exit_stress.run(scenario, exit_stress_exits, workload=workload)
    name = scenario if scenario != "exit" else f"exit-{workload}"
    report_dir = Path(os.environ.get("SKY_RS_MATRIX_CELL_DIR") or tmp_path)
    row = {
        key: value
        for key, value in result.to_json().items()
        if key not in ("python", "first_failure")
    }
    (report_dir / f"extra-exit-stress-{name}.json").write_text(
        json.dumps({"rows": [row], "first_failure": result.first_failure}, indent=2) + "\n"
    )
    assert result.abnormal == 0, f"{result.summary()}\nfirst:\n{result.first_failure}"


def test_default_sees_a_half_percent_fault() -> None:
    n = exit_stress.exits_for(0.005, 0.99)
    assert (1 - 0.005) ** n <= 0.01 < (1 - 0.005) ** (n - 1)

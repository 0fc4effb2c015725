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
import signal
import sys
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
    # Abnormal ends: is it sky_rs, or the interpreter on its own? The same
    # children with no sky_rs, twice as many, say what the interpreter does.
    control = (
        exit_stress.run(scenario, 2 * exit_stress_exits, workload=workload, control=True)
        if result.abnormal
        else None
    )
    name = scenario if scenario != "exit" else f"exit-{workload}"
    report_dir = Path(os.environ.get("SKY_RS_MATRIX_CELL_DIR") or tmp_path)
    rows = [
        {
            "run": run_name,
            **{k: v for k, v in run.to_json().items() if k not in ("python", "first_failure")},
        }
        for run_name, run in (("sky_rs", result), ("control", control))
        if run is not None
    ]
    problem = exit_stress.verdict(result, control)
    (report_dir / f"extra-exit-stress-{name}.json").write_text(
        json.dumps(
            {"rows": rows, "first_failure": result.first_failure, "verdict": problem or "pass"},
            indent=2,
        )
        + "\n"
    )
    assert problem is None, problem


def test_the_control_judges_only_what_the_interpreter_does_alone() -> None:
    def run(abnormal: int, exits: int) -> exit_stress.StressResult:
        codes = {"0": exits - abnormal, "-11": abnormal}
        return exit_stress.StressResult("exit", "tail", "py", exits, abnormal, 1.0, codes, "x")

    assert exit_stress.verdict(run(0, 920), None) is None
    assert exit_stress.verdict(run(1, 920), None)  # no control: any abnormal end is red
    assert exit_stress.verdict(run(1, 920), run(0, 1840))  # the interpreter alone is clean
    assert exit_stress.verdict(run(4, 920), run(7, 1840)) is None  # as often as alone
    assert exit_stress.verdict(run(9, 920), run(1, 1840))  # far more often than alone
    assert exit_stress.excess_p_value(9, 920, 1, 1840) < exit_stress.EXCESS_P


def test_the_control_child_loads_no_sky_rs() -> None:
    for scenario in exit_stress.SCENARIOS:
        script = exit_stress.child_script(scenario, "mixed", 1, control=True)
        assert "sky_rs" not in script
        compile(script, scenario, "exec")


def test_default_sees_a_half_percent_fault() -> None:
    n = exit_stress.exits_for(0.005, 0.99)
    assert (1 - 0.005) ** n <= 0.01 < (1 - 0.005) ** (n - 1)


def test_a_sigint_child_takes_several_signals_and_the_power_stays() -> None:
    per_child = exit_stress.trials_per_child("sigint")
    assert per_child > 1
    assert exit_stress.trials_per_child("exit") == exit_stress.trials_per_child("fork") == 1
    script = exit_stress.child_script("sigint", "mixed", 3)
    assert script.count("for delay in [") == 1
    assert script.split("for delay in ")[1].split("]")[0].count(",") == per_child - 1
    # A fault hitting p of signals is missed only if it misses all N trials,
    # however the trials are spread over children.
    n, p = exit_stress.exits_for(0.005, 0.99), 0.005
    children = -(-n // per_child)
    miss_per_child = (1 - p) ** per_child
    assert miss_per_child**children <= 0.01


def test_a_zygote_child_runs_its_script_as_python_c_and_ends_as_it_would(tmp_path: Path) -> None:
    preload = exit_stress.preloaded_modules(sys.executable)
    assert "threading" in preload and not any(m.split(".")[0] == "sky_rs" for m in preload)
    zygote = exit_stress.Zygote(sys.executable, preload, tmp_path, 0)
    try:
        # A fresh __main__, the given argv, sky_rs not yet loaded, and a full exit (atexit runs).
        fresh = zygote.run(
            "import atexit, sys\n"
            "assert __name__ == '__main__' and 'serve' not in globals()\n"
            "print(sys.argv[1:], 'sky_rs' in sys.modules, 'threading' in sys.modules)\n"
            "atexit.register(print, 'atexit ran')\n"
            "sys.exit(3)",
            ["a", "b"],
            60,
        )
        assert fresh == (3, "['a', 'b'] False True\natexit ran\n", "", False)
        crashed = zygote.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", [], 60)
        assert crashed[0] == -signal.SIGSEGV and not crashed[3]
        raised = zygote.run("raise ValueError('boom')", [], 60)
        assert raised[0] == 1 and "ValueError: boom" in raised[2]
        hung = zygote.run("import time\nprint('waiting', flush=True)\ntime.sleep(600)", [], 2)
        assert hung[3] and hung[0] == -signal.SIGKILL and hung[1] == "waiting\n"
        # The zygote goes on after each of them.
        assert zygote.run("pass", [], 60) == (0, "", "", False)
    finally:
        zygote.close()

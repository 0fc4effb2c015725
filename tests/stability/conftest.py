"""The stability suite: run in every matrix cell against the installed sky_rs wheel.

The soak test drives the functions through the same driver as `nox -s soak`
(`sky_matrix.soak`). The suite finds it installed, else in the checkout or
staged copy beside `tests/` (`matrix/src`), else through `$SKY_RS_SOAK_SRC`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterator, Optional

import pytest
from installation import pure_wheel_cell

if TYPE_CHECKING:
    from sky_matrix.soak.workload import Inputs

SOAK_SRC_ENV = "SKY_RS_SOAK_SRC"


def _soak_source() -> Optional[str]:
    if importlib.util.find_spec("sky_matrix") is not None:
        return None  # installed
    candidates = [
        os.environ.get(SOAK_SRC_ENV, ""),
        str(Path(__file__).resolve().parents[2] / "matrix" / "src"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "sky_matrix" / "soak" / "driver.py").is_file():
            return candidate
    return None


_source = _soak_source()
if _source is not None:
    sys.path.insert(0, _source)


@pytest.fixture(scope="session")
def native() -> ModuleType:
    """The native module; the suite is about the built extension, so its absence fails, except
    in a cell that installed the pure-Python wheel on purpose (then what needs it skips)."""
    import sky_rs

    if sky_rs._native is None:
        reason = sky_rs.backend_info()["reason"]
        if pure_wheel_cell() and not sky_rs._native_shipped():
            pytest.skip(f"pure-Python wheel installed, no native module: {reason}")
        pytest.fail(f"sky_rs._native does not import: {reason}")
    return sky_rs._native


@pytest.fixture
def soak_inputs() -> Iterator[Inputs]:
    """The soak's own input files and directories, removed afterwards."""
    from sky_matrix.soak.workload import Inputs

    inputs = Inputs()
    try:
        yield inputs
    finally:
        inputs.close()


EXIT_STRESS_ENV = "SKY_RS_EXIT_STRESS_EXITS"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--exit-stress-exits",
        type=int,
        default=None,
        help="trials per exit-stress scenario: exits, forks or signals (default: "
        f"${EXIT_STRESS_ENV}, else enough to see a 0.5 %% per-trial fault with 99 %% probability)",
    )


@pytest.fixture(scope="session")
def exit_stress_exits(request: pytest.FixtureRequest) -> int:
    import exit_stress

    given = request.config.getoption("--exit-stress-exits") or os.environ.get(EXIT_STRESS_ENV)
    return int(given) if given else exit_stress.exits_for(0.005, 0.99)

"""What a cell's tests are told about where they run: one set of variables for host and
container cells alike (the host cell adds them to its scrubbed environment, the container cell
passes them as `docker run --env`)."""

from __future__ import annotations

import getpass
import os
from typing import Dict, Optional

from sky_matrix.core.model import Cell


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid
        return str(os.getuid())


def cell_environment(
    cell: Cell,
    *,
    user: Optional[str] = None,
    cell_dir: Optional[str] = None,
    canary: Optional[str] = None,
    wheel: Optional[str] = None,
) -> Dict[str, str]:
    """The variables every cell's tests see (`user`: the current user when None)."""
    env = {
        # Which cell this is: suites skip or adapt by profile (eperm, cgroup limits) and
        # platform (host or docker:<image>), and name the cell in what they write.
        "SKY_RS_MATRIX_PROFILE": cell.profile,
        "SKY_RS_MATRIX_PLATFORM": cell.platform,
        "SKY_RS_MATRIX_PYTHON": cell.python,
        "SKY_RS_MATRIX_SUITE": cell.suite,
        "SKY_RS_MATRIX_CELL": cell.id,
        # Who the tests run as: root-only checks (eperm, hidepid) know whether they can run.
        "SKY_RS_MATRIX_USER": user or current_user(),
        # A crash prints its Python traceback into the cell's log.
        "PYTHONFAULTHANDLER": "1",
    }
    if cell_dir is not None:
        # Where the suite leaves its stats and reports for the runner. (In a container the
        # cell driver sets it to the copy the dropped user can write.)
        env["SKY_RS_MATRIX_CELL_DIR"] = cell_dir
    if wheel:
        # The wheel file the cell installed: a `py3-none-any` one has no native module, and the
        # suites skip what needs it (saying so) instead of failing; any other wheel must have it.
        env["SKY_RS_MATRIX_WHEEL"] = wheel
    if canary:
        # A deliberate fault for the runner's self-tests (the cell plugin reads it).
        env["SKY_RS_MATRIX_CANARY"] = canary
    return env

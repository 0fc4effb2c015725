"""What the matrix installed in this cell, as the runner tells the tests (`SKY_RS_MATRIX_WHEEL`)."""

from __future__ import annotations

import os


def pure_wheel_cell() -> bool:
    """Whether the matrix installed the pure-Python wheel in this cell (no native module in it,
    by design: the interpreter has no binary wheel)."""
    return os.environ.get("SKY_RS_MATRIX_WHEEL", "").endswith("-none-any.whl")

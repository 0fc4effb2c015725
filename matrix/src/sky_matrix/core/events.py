"""What the scheduler tells the outside while it runs (the live progress display listens)."""

from __future__ import annotations

from sky_matrix.core.model import Cell, CellResult


class Observer:
    """Called from the cell threads: a cell started, a cell's result is recorded."""

    def cell_started(self, cell: Cell) -> None:
        pass

    def cell_finished(self, result: CellResult) -> None:
        pass

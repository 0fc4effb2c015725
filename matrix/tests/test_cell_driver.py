"""The cell driver's own helpers (`docker/cell_driver.py` runs inside the containers; it is
loaded here from its file, as the container's interpreter runs it)."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path
from types import ModuleType

import pytest
from matrix_helpers import project_root

DRIVER = project_root() / "docker" / "cell_driver.py"


@pytest.fixture(scope="module")
def driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cell_driver", DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_root_loses_only_its_group_bits_once(driver: ModuleType, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    root.chmod(0o755)
    assert driver.relax_root_lookup(str(root)) == "0755 -> 0705"
    assert stat.S_IMODE(root.stat().st_mode) == 0o705  # "other" keeps r-x
    assert driver.relax_root_lookup(str(root)) is None  # nothing left to clear
    root.chmod(0o1777)
    assert driver.relax_root_lookup(str(root)) == "1777 -> 1707"

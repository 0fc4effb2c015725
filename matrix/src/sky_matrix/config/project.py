"""The `[tool.sky-rs-matrix]` table of the project's pyproject.toml."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

from sky_matrix.core.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    pythons: Tuple[str, ...] = ()  # extra interpreters, absolute or relative to the project root


def load_project_config(project_root: Path) -> ProjectConfig:
    pyproject = project_root / "pyproject.toml"
    try:
        data: Dict[str, Any] = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no pyproject.toml in {project_root}: run from the project root or pass --project-root"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {pyproject}: {exc}: fix the file") from None
    table = data.get("tool", {}).get("sky-rs-matrix", {})
    if not isinstance(table, dict):
        raise UsageError(f"{pyproject}: [tool.sky-rs-matrix] must be a table")
    unknown = sorted(set(table) - {"pythons"})
    if unknown:
        raise UsageError(
            f"{pyproject}: unknown key(s) in [tool.sky-rs-matrix]: {', '.join(unknown)}"
            " (known: pythons)"
        )
    pythons = table.get("pythons", [])
    if not isinstance(pythons, list) or not all(isinstance(p, str) for p in pythons):
        raise UsageError(
            f"{pyproject}: [tool.sky-rs-matrix] pythons must be a list of interpreter paths"
        )
    resolved = tuple(str(Path(p) if Path(p).is_absolute() else project_root / p) for p in pythons)
    return ProjectConfig(pythons=resolved)

"""The full plan on a fixed host (CPython 3.8 to 3.13) and the Debian images (with their layers:
sid-pypy3, sid-3.13t, and the emulated bookworm-arm64, whose cells `run --list --json` leaves out
unless `--platform docker:bookworm-arm64` names it), one JSON line a
cell: what `run --list --json` prints there. `test_plan.py` compares it with plan_snapshot.txt;
after a deliberate change of suites, profiles or images, rewrite that file with
`PYTHONPATH=matrix/src python matrix/tests/plan_snapshot.py > matrix/tests/plan_snapshot.txt`.
"""

from __future__ import annotations

import json
from typing import List

from sky_matrix.core.model import Interpreter
from sky_matrix.docker import images
from sky_matrix.execute.platforms import DockerPlatform, HostPlatform
from sky_matrix.plan.discovery import Discovery
from sky_matrix.plan.planner import full_plan, github_matrix

HOST_VERSIONS = ("3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0")


def _interp(version: str) -> Interpreter:
    major, minor = version.split(".")[:2]
    return Interpreter(
        f"/opt/python{major}.{minor}", version, "cpython", f"cp{major}{minor}", False, "pyenv"
    )


def snapshot_lines() -> List[str]:
    found = {i.short: i for i in map(_interp, HOST_VERSIONS)}
    saved = images.IMAGES
    images.IMAGES = images.select_images("debian")
    try:
        platforms = [HostPlatform(Discovery(found, [], ()))]
        platforms += [DockerPlatform(name, None) for name in images.IMAGES]
        cells = full_plan(platforms, strict=False)
    finally:
        images.IMAGES = saved
    return [json.dumps(entry, sort_keys=True) for entry in github_matrix(cells)["include"]]


if __name__ == "__main__":
    print("\n".join(snapshot_lines()))

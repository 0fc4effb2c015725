"""The prepared test environments of container cells (build/container_envs.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from sky_matrix.build import container_envs
from sky_matrix.build.container_envs import (
    CONTAINER_ENV_PATH,
    ContainerEnvError,
    ensure_container_env,
    env_dir,
    parse_site_dirs,
)
from sky_matrix.core.model import Interpreter

PY311 = Interpreter("/usr/bin/python3.11", "3.11.2", "cpython", "cp311", False, "image:bookworm")
PY314D = Interpreter("/usr/bin/python3.14d", "3.14.0", "cpython", "cp314d", True, "image:sid")
SITE = f"{CONTAINER_ENV_PATH}/lib/python3.11/site-packages"


class FakeImage:
    """Stands in for `docker run`: records each build and writes what the script would."""

    def __init__(self, code: int = 0, report: bool = True) -> None:
        self.builds: List[Tuple[Path, List[str]]] = []
        self.code, self.report = code, report

    def __call__(self, env: Path, argv: Sequence[str]) -> Tuple[int, str]:
        self.builds.append((env, list(argv)))
        (env / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
        lines = ["Successfully installed pytest"]
        if self.report:
            lines.append("site-dirs: " + json.dumps([SITE, "/usr/lib/python3/dist-packages"]))
        return self.code, "\n".join(lines)


def test_built_once_then_reused_across_cells_and_runs(tmp_path: Path) -> None:
    dest = env_dir(tmp_path, "bookworm", "sky-rs-matrix/bookworm:abc", PY311, tmp_path / "cp311-x")
    image = FakeImage()
    first = ensure_container_env(dest, PY311, "/wh", "pip-24.whl", image, log=lambda _m: None)
    second = ensure_container_env(dest, PY311, "/wh", "pip-24.whl", image, log=lambda _m: None)
    assert first[:2] == ([SITE], False)  # only the environment's own site-packages
    assert second[:2] == ([SITE], True)
    assert len(image.builds) == 1
    argv = image.builds[0][1]
    assert argv[:2] == ["/bin/sh", "-c"] and argv[-4:] == [
        PY311.path,
        "/wh",
        CONTAINER_ENV_PATH,
        "pip-24.whl",
    ]


def test_key_changes_with_image_interpreter_and_wheelhouse(tmp_path: Path) -> None:
    house = tmp_path / "cp311-aaa"
    base = env_dir(tmp_path, "bookworm", "img:1", PY311, house)
    assert env_dir(tmp_path, "bookworm", "img:1", PY311, house) == base
    assert env_dir(tmp_path, "bookworm", "img:2", PY311, house) != base  # image rebuilt
    assert env_dir(tmp_path, "bookworm", "img:1", PY311, tmp_path / "cp311-bbb") != base
    assert env_dir(tmp_path, "sid", "img:1", PY314D, house).name.startswith("sid-py3.14d-")


def test_a_failed_build_is_an_error_and_is_tried_again(tmp_path: Path) -> None:
    dest = tmp_path / "env"
    with pytest.raises(ContainerEnvError, match="exit 1"):
        ensure_container_env(dest, PY311, "/wh", "pip.whl", FakeImage(code=1), log=print)
    image = FakeImage()
    assert ensure_container_env(dest, PY311, "/wh", "pip.whl", image, log=print)[1] is False
    assert len(image.builds) == 1


def test_a_build_that_reports_no_site_packages_is_not_kept(tmp_path: Path) -> None:
    dest = tmp_path / "env"
    with pytest.raises(ContainerEnvError, match="site-packages"):
        ensure_container_env(dest, PY311, "/wh", "pip.whl", FakeImage(report=False), log=print)
    assert not (dest / container_envs.MARKER).exists()


def test_parse_site_dirs_keeps_the_last_report_and_the_environment_only() -> None:
    output = "\n".join(
        [
            'site-dirs: ["/old"]',
            "noise",
            "site-dirs: " + json.dumps([SITE, "/usr/local/lib/python3.11/dist-packages"]),
        ]
    )
    assert parse_site_dirs(output) == [SITE]

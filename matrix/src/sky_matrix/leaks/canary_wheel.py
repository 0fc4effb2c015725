"""Building test-only wheels: the release build plus one Cargo feature.

`leak-canary` (deliberate leaks, for the leak suite's proof) and
`fault-injection` (`_native._inject_fault`, for the native-fallback path).
Never the release wheel: each goes to its own directory (by default
`.build-cache/<feature>/<source key>/`), keyed like the host wheel so that
unchanged sources reuse it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, List

from sky_matrix.build import host_wheel

FEATURE = "leak-canary"


class CanaryBuildError(Exception):
    """The canary wheel could not be built; the message says why and where the log is."""


def default_out_dir(project_root: Path, feature: str = FEATURE) -> Path:
    key = host_wheel.source_key(project_root)
    return host_wheel.cache_root(project_root) / feature / key


def build_command(maturin: List[str], out_dir: Path, feature: str = FEATURE) -> List[str]:
    return [*maturin, "build", "--release", "--features", feature, "--out", str(out_dir)]


def build_canary_wheel(
    project_root: Path,
    out_dir: Path | None = None,
    *,
    log: Callable[[str], None] = print,
    maturin: List[str] | None = None,
    force: bool = False,
    feature: str = FEATURE,
) -> Path:
    """The wheel with `feature` for the current sources, built unless already there."""
    out_dir = out_dir or default_out_dir(project_root, feature)
    found = sorted(out_dir.glob(f"{host_wheel.WHEEL_DIST}-*.whl"))
    if found and not force:
        log(f"{feature} wheel: reusing {found[-1]}")
        return found[-1]
    try:
        command = list(maturin or host_wheel.maturin_command())
    except host_wheel.BuildError as exc:
        raise CanaryBuildError(str(exc)) from None
    scratch = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    build_log = out_dir.with_name(out_dir.name + ".log")
    argv = build_command(command, scratch, feature)
    log(f"{feature} wheel: `{' '.join(argv)}` (log: {build_log})")
    started = time.monotonic()
    try:
        code = host_wheel.run_logged(argv, project_root, build_log)
    except OSError as exc:
        raise CanaryBuildError(f"cannot run {argv[0]}: {exc}") from None
    wheels = sorted(scratch.glob(f"{host_wheel.WHEEL_DIST}-*.whl"))
    if code != 0 or not wheels:
        shutil.rmtree(scratch, ignore_errors=True)
        raise CanaryBuildError(
            f"maturin exited with status {code} building the {feature} wheel; see {build_log}"
        )
    shutil.rmtree(out_dir, ignore_errors=True)
    scratch.rename(out_dir)
    wheel = out_dir / wheels[-1].name
    log(f"{feature} wheel: built {wheel} in {time.monotonic() - started:.0f} s")
    return wheel

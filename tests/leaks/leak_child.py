"""Running a detector in a child process of the same interpreter and environment.

Some detectors need the interpreter started differently (``PYTHONMALLOC``
takes effect only at start-up) or a process with nothing else in it; they run
as `sys.executable SCRIPT ARGS...` and print their result as JSON on the last
line of their output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

# Generous: a detector child takes well under a minute on a debug build; this
# only stops a hung one before pytest-timeout kills the whole test.
CHILD_TIMEOUT = 600.0


class ChildFailed(AssertionError):
    """The detector itself did not run to the end (not a leak verdict)."""


def run_detector(script: Path, args: List[str], env_changes: Dict[str, str | None]) -> str:
    """The last line the child printed; `env_changes` sets (str) or removes (None)."""
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    argv = [sys.executable, "-X", "faulthandler", str(script), *args]
    try:
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
            stdin=subprocess.DEVNULL, cwd=str(script.parent),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ChildFailed(f"{' '.join(argv)} ran past {CHILD_TIMEOUT:g} s") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ChildFailed(
            f"{' '.join(argv)} exited with status {proc.returncode}:\n{proc.stderr.strip()[-3000:]}"
        )
    return lines[-1]

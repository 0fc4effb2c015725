"""What the planner needs of a platform: interpreter slots, profiles, and whether it can run.

Running cells is the business of `sky_matrix.execute.platforms`, whose platforms extend this
one; the planner never imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from sky_matrix.core.model import Interpreter

HOST = "host"  # the platform that runs cells on this machine, outside any container


@dataclasses.dataclass(frozen=True)
class Slot:
    """An interpreter label on a platform: the interpreter, or why there is none."""

    label: str
    interpreter: Optional[Interpreter]
    missing: Optional[str] = None  # "not found", "broken: ...", "not in image"


class Platform:
    name: str = ""
    # A missing interpreter is the user's to install (an error under --strict), not the image's.
    interpreters_are_installed_by_user: bool = False
    # Why this platform's cells are not required yet (they run and report, and a failure is
    # shown as one, but does not fail the run), or None: required like every other.
    optional_because: Optional[str] = None
    # `uname -m` of what the cells run on (an image may be another architecture than the host).
    architecture: str = ""
    # Why this platform's cells run only when asked for by name (`--platform NAME` or their
    # cell ids), or None: the planner records them as skipped with this reason otherwise.
    opt_in_because: Optional[str] = None

    def slots(self) -> Dict[str, Slot]:
        raise NotImplementedError

    def profiles(self, suite: str) -> List[str]:
        raise NotImplementedError

    def unusable(self) -> Optional[str]:
        """Why no cell of this platform can run (known before preparing), else None."""
        return None

    def suite_skip(self, suite: str) -> Optional[str]:
        """Why `suite` cannot run on this platform at all (its cells are planned and recorded
        as skipped with this reason), else None."""
        return None


def host_first_key(platform_name: str) -> tuple:
    """Sort key that puts the host before the images (they can build while host cells run)."""
    return (platform_name != HOST, platform_name)

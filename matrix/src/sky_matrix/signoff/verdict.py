"""The sign-off's vocabulary: verdicts, what a check returns, what an item records."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

PASS = "pass"
FAIL = "fail"
INSUFFICIENT = "insufficient"
NOT_VERIFIABLE = "not verifiable here"
VERDICTS = (PASS, FAIL, INSUFFICIENT, NOT_VERIFIABLE)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a check decided, and the evidence in one line."""

    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


def missing(path: str, session: str) -> Outcome:
    """The one wording for absent evidence, so every such line reads alike."""
    return Outcome(FAIL, f"{path} missing, run nox -s {session}")


@dataclasses.dataclass(frozen=True)
class ItemResult:
    id: str
    title: str
    section: str
    required: bool
    verdict: str
    evidence: str
    seconds: float

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

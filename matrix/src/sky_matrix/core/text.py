"""Small readings of text that every layer needs once: a command's last lines, a duration, a
version's sort key. One copy each, so two tools never read the same input two ways."""

from __future__ import annotations

import argparse
import re
from typing import Iterable, Optional, Pattern, Tuple

NO_OUTPUT = "(no output)"

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def last_lines(text: str, count: int = 1, *, empty: str = NO_OUTPUT) -> str:
    """The last `count` non-blank lines of a command's output, stripped, joined by ` | `."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) if lines else empty


def telling_line(lines: Iterable[str], pattern: Pattern[str], *, limit: int = 300) -> str:
    """The last line matching `pattern` (the error that says what went wrong), else the last
    non-blank line; at most `limit` characters."""
    kept = [line.strip() for line in lines if line.strip()]
    for line in reversed(kept):
        if pattern.search(line):
            return line[:limit]
    return (kept[-1] if kept else NO_OUTPUT)[:limit]


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1.5h`, `1h30m`, `1d` -> seconds (> 0); else ArgumentTypeError."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        if not cleaned or _DURATION.sub("", cleaned):
            raise argparse.ArgumentTypeError(
                f"not a duration: {text!r} (e.g. 90s, 2m, 24h, 1h30m)"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(cleaned))
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"duration must be positive: {text!r}")
    return seconds


def version_key(version: str) -> Tuple[int, ...]:
    """`3.14d` -> (3, 14), `3.13.0rc1` -> (3, 13, 0): the leading number of each of the first
    three dotted parts, so a debug or pre-release label sorts with its release."""
    key = []
    for part in version.split(".")[:3]:
        match: Optional[re.Match] = re.match(r"\d+", part)
        if match is None:
            break
        key.append(int(match.group()))
    return tuple(key)

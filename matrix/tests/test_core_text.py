"""core.text: the one reading of a duration, a version and a command's last lines, with the
inputs of both former copies (soak and sign-off durations; discovery and sign-off versions)."""

from __future__ import annotations

import argparse
import re

import pytest

from sky_matrix.core.text import last_lines, parse_duration, telling_line, version_key


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # the soak's inputs
        ("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1.5h", 5400.0), ("1h30m", 5400.0),
        ("1d", 86400.0), ("0.5s", 0.5), (" 2M ", 120.0),
        # the sign-off's inputs
        ("24h", 86400.0), ("90m", 5400.0), ("3600", 3600.0),
    ],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "h", "1x", "1h 30m", "0", "-5", "0s", "nan", "1h-30m", "2x", "m5"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("version", "key"),
    [
        ("3.13.1", (3, 13, 1)), ("3.9.18", (3, 9, 18)), ("3.14d", (3, 14)),
        ("3.13.0rc1", (3, 13, 0)), ("3.8", (3, 8)), ("3.15.0a2", (3, 15, 0)),
    ],
)  # fmt: skip
def test_version_key(version: str, key: tuple) -> None:
    assert version_key(version) == key


def test_version_key_sorts_debug_builds_with_their_release() -> None:
    labels = ["3.14d", "3.9", "3.13", "3.10", "3.14"]
    assert sorted(labels, key=version_key) == ["3.9", "3.10", "3.13", "3.14d", "3.14"]


def test_last_lines() -> None:
    assert last_lines("a\n\n  b  \n\n") == "b"
    assert last_lines("a\nb\nc\n", 2) == "b | c"
    assert last_lines("  \n") == "(no output)"
    assert last_lines("", empty="") == ""


def test_telling_line() -> None:
    error = re.compile("error", re.IGNORECASE)
    assert telling_line(["ok", "Error: one", "done", ""], error) == "Error: one"
    assert telling_line(["ok", "done"], error) == "done"
    assert telling_line([], error) == "(no output)"
    assert telling_line(["error " + "x" * 400], error, limit=10) == "error xxxx"

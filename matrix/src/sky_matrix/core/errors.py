"""The one exception that ends a run with a single clear line and exit status 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input or an unusable environment: the message names the problem and the fix.

    The CLI prints `sky-rs-matrix: <message>` and exits 2; it never shows a traceback.
    """


EXIT_USAGE = 2

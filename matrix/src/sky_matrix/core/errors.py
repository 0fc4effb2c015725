"""The exceptions that end a run: a usage problem (exit 2), a signal (exit 128 + N)."""

from __future__ import annotations

import signal


class UsageError(Exception):
    """Bad input or an unusable environment: the message names the problem and the fix.

    The CLI prints `sky-rs-matrix: <message>` and exits 2; it never shows a traceback.
    """


EXIT_USAGE = 2


class RunInterrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP reached the runner: stop the cells, keep what finished.

    A KeyboardInterrupt, so that code which already stops on Ctrl-C stops on it too.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process killed by it


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"

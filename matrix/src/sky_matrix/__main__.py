"""`python -m sky_matrix ...`."""

from __future__ import annotations

import faulthandler
import signal
import sys

from sky_matrix.cli import main

if __name__ == "__main__":
    # `kill -USR1 <runner>` prints every thread's stack to stderr: where a stuck run waits.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.exit(main())

"""`python -m sky_matrix.bench`."""

from __future__ import annotations

import sys

from sky_matrix.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())

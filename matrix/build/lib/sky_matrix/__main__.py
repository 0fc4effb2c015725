"""`python -m sky_matrix ...`."""

from __future__ import annotations

import sys

from sky_matrix.cli import main

if __name__ == "__main__":
    sys.exit(main())

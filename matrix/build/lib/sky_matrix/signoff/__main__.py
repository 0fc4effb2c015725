"""`python -m sky_matrix.signoff`."""

from __future__ import annotations

import sys

from sky_matrix.signoff.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m sky_matrix.soak``."""

import sys

from .cli import main

sys.exit(main())

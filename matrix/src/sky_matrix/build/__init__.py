"""Building what the cells test: wheels (host, manylinux, test-only), venvs, wheelhouses."""

"""Build products of a run: the host and manylinux wheels, cached venvs, wheelhouses."""

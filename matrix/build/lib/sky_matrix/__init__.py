"""sky_matrix: runs skypilot-rust's suites on every interpreter, platform and profile.

The runner is a development tool of the project, never shipped in the wheel.
`python -m sky_matrix run` is the entry point; `noxfile.py` only declares sessions.
"""

__version__ = "0.1.0"

"""The twelve functions of sky_rs, named once for the runner.

The runner's tools (sign-off, leaks proof) run where sky_rs may not be installed, so they read
this tuple rather than `sky_rs.FUNCTIONS`; a test keeps it equal to the dispatcher's."""

from __future__ import annotations

from typing import Tuple

SKY_RS_FUNCTIONS: Tuple[str, ...] = (
    "read_last_n_lines",
    "hash_file",
    "find_free_port",
    "base36_encode",
    "format_float",
    "truncate_long_string",
    "get_cpu_count",
    "get_mem_size_gb",
    "get_parallel_threads",
    "is_process_alive",
    "get_max_workers_for_file_mounts",
    "estimate_fd_for_directory",
)

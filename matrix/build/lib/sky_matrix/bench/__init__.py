"""`nox -s bench`: every sky_rs function, Rust against the Python fallback, in one process.

Modules, one concept each:

- `inputs`: the files and directories the cases read (1 KiB ... 1 GiB, a sparse 10 GiB file).
- `cases`: what is called with which arguments, and the contenders of each case.
- `timing`: interleaved, warmed-up batch timing with `perf_counter_ns`.
- `stats`: median, p99, geometric mean.
- `memory`: peak RSS per backend, measured in a child process per (case, backend).
- `targets`: the performance targets, evaluated from a bench report (the sign-off uses it too).
- `report`: bench.json, the terminal table and the Markdown table.
- `chart`: bench.png.
- `cli`: `python -m sky_matrix.bench`.
"""

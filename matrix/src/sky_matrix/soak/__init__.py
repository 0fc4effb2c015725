"""The stability soak: all twelve sky_rs functions at a constant rate, for minutes or days.

Modules, one concept each: :mod:`.workload` (inputs and what the contract
predicts), :mod:`.recorder` (latency histograms), :mod:`.sampler` (process
metrics), :mod:`.series` (the JSONL samples file), :mod:`.driver` (the run),
:mod:`.statistics` (Theil–Sen, Mann–Kendall), :mod:`.verdict` (thresholds and
the JSON verdict), :mod:`.charts`, :mod:`.report` (terminal), :mod:`.container`
(``--platform docker:<image>``) and :mod:`.cli`.

Importing this package imports nothing heavy; the container side needs only
psutil, hdrhistogram and sky_rs.
"""

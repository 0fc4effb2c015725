"""Running cells: the scheduler, the platforms, host and container cells, outcomes."""

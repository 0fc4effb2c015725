"""Which cells exist: interpreters found, platforms' slots, the planner."""

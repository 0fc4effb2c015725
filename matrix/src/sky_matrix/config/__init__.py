"""What the project declares: its pyproject table, the suites, the profiles."""

"""Evaluating chat models on tasks: backends, the runner, the journal and the results."""

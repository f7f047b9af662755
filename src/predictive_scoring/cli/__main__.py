"""``python -m predictive_scoring.cli``: the same commands as ``predictive-scoring``."""

from predictive_scoring.cli import app

app()

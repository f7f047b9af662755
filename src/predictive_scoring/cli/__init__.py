"""The ``predictive-scoring`` command line: thin commands that parse options and call the
package. Errors print one clear paragraph and exit non-zero, never a traceback.

Each module registers its commands on the one Typer app of :mod:`.common`; importing
this package registers them all.
"""

from predictive_scoring.cli import (
    data,
    monitor,
    quickstart,
    registry,
    report,
    retrain,
    score,
    serve,
    train,
)
from predictive_scoring.cli.common import app

__all__ = ["app", "data", "monitor", "quickstart", "registry", "report", "retrain", "score",
           "serve", "train"]

"""The catalog of model kinds: each kind's name and where its implementation lives.

This module imports nothing, so the model config validates kind names and the command
line offers them as choices without loading any model library or any other module of the
package; :func:`predictive_scoring.models.kinds.get` imports a kind's module the first
time the kind is asked for.
"""

KINDS: dict[str, str] = {
    "lightgbm": "predictive_scoring.models.kinds.lightgbm:LightGBMKind",
    "logreg": "predictive_scoring.models.kinds.logreg:LogisticRegressionKind",
}
"""Kind name -> ``module:class`` of its implementation, in the order they are offered."""
DEFAULT = next(iter(KINDS))
"""The kind ``train`` uses unless told otherwise."""


def names() -> tuple[str, ...]:
    """The registered kinds' names."""
    return tuple(KINDS)

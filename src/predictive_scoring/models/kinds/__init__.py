"""Model kinds: each kind of estimator lives in one module behind one small protocol
(:class:`~predictive_scoring.models.kinds.base.ModelKind`); this package finds them by name.

Callers never branch on a kind's name or class: they ask the kind. A model config names
its kind (``kind: lightgbm`` in ``configs/models/lightgbm.yaml``), :func:`get` gives that
kind, and :func:`of` the kind of a fitted pipeline (a bundle's), so explanations, one-lead
scoring and Dask training work for every registered kind.

The names live in :mod:`.catalog`, which imports nothing (the config and the command
line read them); a kind's module is imported the first time the kind is asked for.

To add a kind, write a module here with a :class:`~.base.ModelKind` subclass and add its
name and class path to :data:`~.catalog.KINDS` (see ARCHITECTURE.md, "Adding a model
kind").
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from predictive_scoring.models.kinds.catalog import DEFAULT, KINDS, names

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from predictive_scoring.models.kinds.base import ModelKind

__all__ = ["DEFAULT", "KINDS", "get", "names", "of", "on_dask"]


@functools.cache
def get(name: str) -> ModelKind:
    """The kind called ``name``.

    Raises:
        ValueError: No kind of that name is registered.
    """
    if name not in KINDS:
        raise ValueError(f"'{name}' is not a model kind; the registered kinds are "
                         f"{', '.join(KINDS)}")
    module, _, cls = KINDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def of(pipeline: Pipeline) -> ModelKind:
    """The kind that built a fitted pipeline (the first registered kind that owns it).

    Raises:
        TypeError: No registered kind owns the pipeline's classifier.
    """
    for name in KINDS:
        kind = get(name)
        if kind.owns(pipeline):
            return kind
    raise TypeError(f"no registered model kind ({', '.join(KINDS)}) owns a pipeline whose "
                    f"classifier is {type(pipeline[-1]).__name__}")


def on_dask() -> tuple[str, ...]:
    """The kinds that train on a Dask cluster."""
    return tuple(name for name in KINDS if get(name).trains_on_dask)

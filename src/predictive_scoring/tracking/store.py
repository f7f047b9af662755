"""The MLflow tracking store and run logging: where runs go and what a run records.

:mod:`.bundle` logs the model itself and :mod:`.registry` moves its aliases.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import numpy as np
from mlflow import MlflowClient

from predictive_scoring.config import BaseConfig

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


# ------------------------------------------------------------------ the store
def tracking_uri(base: BaseConfig) -> str:
    """The tracking store: ``MLFLOW_TRACKING_URI`` if set, else the config's.

    A local SQLite store's folder is created, so the first run needs no setup.
    """
    uri = os.environ.get(TRACKING_URI_ENV) or base.tracking_uri
    database = _sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def artifact_location(base: BaseConfig) -> str | None:
    """Where new experiments keep their artifacts.

    Returns:
        An absolute ``file://`` URI (the folder is created) when the store is a local
        SQLite file: the config's ``artifact_location`` for the config's own store, and
        an ``artifacts`` folder beside the database when ``MLFLOW_TRACKING_URI`` names
        another SQLite file (a run's files stay with its store, not in the working
        folder); None for a server, which keeps its own artifact root.
    """
    uri = tracking_uri(base)
    database = _sqlite_path(uri)
    if database is None:
        return None
    folder = Path(base.artifact_location) if uri == base.tracking_uri \
        else database.parent / "artifacts"
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def use_tracking(base: BaseConfig) -> str:
    """Point MLflow at the project's store.

    The model registry follows it unless ``MLFLOW_REGISTRY_URI`` names another.

    Returns:
        The tracking URI, with any password masked (safe to print).
    """
    quiet_mlflow()
    uri = tracking_uri(base)
    mlflow.set_tracking_uri(uri)
    return redact(uri)


def redact(uri: str) -> str:
    """The URI with its password and query string masked, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None and not parts.query:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc, query="***" if parts.query else ""))


class _DropPickleAdvice(logging.Filter):
    """Bundles are pickled on purpose (see the module docstring): drop the advice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Passing a Python object as `python_model`" not in record.getMessage()


_PICKLE_ADVICE_FILTER = _DropPickleAdvice()


def quiet_mlflow() -> None:
    # MLflow logs every table migration and validation at INFO and draws a progress bar
    # per download, which floods the CLI, and prints run links holding the full tracking
    # URI (credentials included); the MLFLOW_* variables still let a user ask for them.
    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_PICKLE_ADVICE_FILTER)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")



# ------------------------------------------------------------------ runs
@contextmanager
def start_run(experiment: str, run_name: str, nested: bool = False,
              artifact_location: str | None = None) -> Iterator[str]:
    """Run the block inside an MLflow run, creating the experiment if needed.

    Args:
        experiment: Experiment name.
        run_name: Name shown for the run.
        nested: Start the run inside the active one.
        artifact_location: Artifact root of a new experiment (see
            :func:`artifact_location`); None keeps the store's default.

    Yields:
        The run id.
    """
    quiet_mlflow()
    experiment_id = _experiment_id(experiment, artifact_location)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                          nested=nested) as run:
        yield run.info.run_id


def _experiment_id(name: str, location: str | None) -> str:
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=location)
    if found.lifecycle_stage == "deleted":
        raise ValueError(f"experiment '{name}' was deleted; restore it with `mlflow "
                         f"experiments restore --experiment-id {found.experiment_id}` or "
                         "train under another name")
    return found.experiment_id


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (``{"a": {"b": 1}}`` -> ``a.b``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat |= flatten(value, name)
        else:
            flat[name] = value
    return flat


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters of the active run; nested mappings become dotted names."""
    mlflow.log_params({name: _text(value) for name, value in flatten(params).items()})


def log_metrics(metrics: Mapping[str, Any], prefix: str = "") -> None:
    """Log numeric metrics of the active run under ``prefix.name``.

    Nested mappings become dotted names; None and NaN are skipped (a metric that could
    not be computed is absent, not zero).

    Raises:
        TypeError: A value is not a number, naming its key.
    """
    numbers = {}
    for name, value in flatten(metrics, prefix).items():
        if value is None:
            continue
        if not isinstance(value, int | float | np.number):
            raise TypeError(f"metric '{name}' is {value!r:.80} ({type(value).__name__}), "
                            "not a number; log text with set_tags or log_dict")
        if not math.isnan(value):
            numbers[name] = float(value)
    mlflow.log_metrics(numbers)


def log_files(paths: Iterable[str | Path], artifact_dir: str | None = None) -> None:
    """Copy files or folders into the active run's artifacts under ``artifact_dir``.

    Raises:
        FileNotFoundError: A path does not exist (nothing is logged then).
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"cannot log missing file(s): {missing}")
    for path in paths:
        if path.is_dir():
            inside = f"{artifact_dir}/{path.name}" if artifact_dir else path.name
            mlflow.log_artifacts(str(path), artifact_path=inside)
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_dir)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tag the active run (values are stored as text)."""
    mlflow.set_tags({name: _text(value) for name, value in tags.items()})


def log_dict(obj: Any, name: str) -> None:
    """Store a mapping or list as a JSON (or ``.yaml``) artifact of the active run.

    numpy numbers, paths and enums are written as plain values.
    """
    mlflow.log_dict(json.loads(json.dumps(obj, default=_plain)), name)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=_plain)



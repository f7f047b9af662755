"""MLflow in one place: the tracking store, run logging, the model bundle and the registry.

This is the only module that imports mlflow. A trained :class:`LeadScorer` is logged as
one pyfunc bundle (:class:`LeadScoringModel`) that scores raw leads; the registry moves
the aliases ``champion`` and ``challenger`` between versions (never the deprecated
stages), and every consumer loads the scorer back with :func:`load_scorer`, from a
registry URI or from a folder written by :func:`export_bundle`.

Bundles are serialised with cloudpickle by reference to this package, so they load
wherever ``predictive-scoring`` is installed; like any pickle, load them only from a
registry or folder you trust.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from predictive_scoring.config import BaseConfig
from predictive_scoring.explain import score_explained
from predictive_scoring.models import LeadScorer

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
BUNDLE_PATH = "model"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"
EVENTS_COLUMN = "events"
DISTRIBUTION = "predictive-scoring"
# Not declared by the project, but a bundle unpickles with the cloudpickle that pickled it.
SERIALISATION_REQUIREMENTS = ("cloudpickle",)
IDENTITY_FILE = "registered_model.json"
"""Written by :func:`export_bundle`: the registered name, version and alias exported."""


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
        The config's ``artifact_location`` as an absolute ``file://`` URI (the folder is
        created) when the store is a local SQLite file; None for a server, which keeps
        its own artifact root.
    """
    if _sqlite_path(tracking_uri(base)) is None:
        return None
    folder = Path(base.artifact_location).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def use_tracking(base: BaseConfig) -> str:
    """Point MLflow at the project's store.

    The model registry follows it unless ``MLFLOW_REGISTRY_URI`` names another.

    Returns:
        The tracking URI, with any password masked (safe to print).
    """
    _quiet_mlflow()
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


def _quiet_mlflow() -> None:
    # MLflow logs every table migration and validation at INFO and draws a progress bar
    # per download, which floods the CLI, and prints run links holding the full tracking
    # URI (credentials included); the MLFLOW_* variables still let a user ask for them.
    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_PICKLE_ADVICE_FILTER)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


# ------------------------------------------------------------------ the bundle
class LeadScoringModel(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a :class:`LeadScorer`: raw leads in, scores out.

    Attributes:
        scorer: The scorer; ``loaded.unwrap_python_model().scorer`` skips the pyfunc
            input checks on a hot path.
    """

    def __init__(self, scorer: LeadScorer) -> None:
        self.scorer = scorer

    def load_context(self, context: Any) -> None:
        """Refuse a bundle trained on another version's features (see
        :meth:`LeadScorer.check_layout`) when it is loaded, not when it scores."""
        self.scorer.check_layout()

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score raw leads.

        Args:
            context: Unused (the scorer carries everything).
            model_input: One row per lead: ``lead_id`` and attribute columns; events
                shape also ``created_at``, ``as_of`` (ISO text or timestamps, read as
                UTC) and ``events``, a list of ``{"timestamp", "event_type",
                "detail"}`` dicts per lead (empty or None when it has none).
            params: ``{"as_of": ...}`` gives the moment for rows without their own;
                ``{"reasons": k}`` adds fit vs engagement (grade, level, quadrant) and,
                for k > 0, the top k reasons up and down as sentences (0: fit vs
                engagement only; absent: scores only).

        Returns:
            The scorer's output, one row per input row in the same order.

        Raises:
            ValueError: ``reasons`` is not a whole number >= 0.
        """
        params = params or {}
        leads, events = raw_leads(model_input, self.scorer.shape, params.get("as_of") or None)
        reasons = _reasons_param(params.get("reasons"))
        scores = (self.scorer.score(leads, events) if reasons is None
                  else score_explained(self.scorer, leads, events, reasons))
        return scores.assign(lead_id=model_input["lead_id"].to_numpy())


def _reasons_param(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer() or number < 0:
        raise ValueError(f"params['reasons'] must be a whole number >= 0 (reasons per lead "
                         f"each way), not {value!r}")
    return int(number)


def raw_leads(model_input: pd.DataFrame, shape: str,
              as_of: str | pd.Timestamp | None = None) -> tuple[pd.DataFrame,
                                                                pd.DataFrame | None]:
    """Split a bundle's input into the scorer's leads and events frames.

    Rows are keyed by position, not ``lead_id``, so a lead sent twice (say at two
    moments) keeps its own events in each row.

    Args:
        model_input: See :meth:`LeadScoringModel.predict`.
        shape: ``table`` or ``events``.
        as_of: Scoring moment for rows whose ``as_of`` is missing.

    Returns:
        Leads (``lead_id`` replaced by the row position; events shape: tz-aware UTC
        ``created_at`` and ``as_of``) and the events frame (None for the table shape).

    Raises:
        ValueError: A required column or timestamp is missing or unreadable, naming the
            column and the rows.
    """
    _require(model_input, ["lead_id"] if shape == "table" else ["lead_id", "created_at"])
    leads = model_input.drop(columns=[EVENTS_COLUMN], errors="ignore").assign(
        lead_id=np.arange(len(model_input)))
    if shape == "table":
        return leads, None
    moments = (model_input["as_of"].astype(object) if "as_of" in model_input
               else pd.Series(None, index=model_input.index, dtype=object))
    if as_of is not None:
        moments = moments.where(moments.notna(), as_of)
    leads = leads.assign(created_at=_utc(model_input["created_at"], "created_at"),
                         as_of=_utc(moments, "as_of"))
    return leads, _events_frame(model_input.get(EVENTS_COLUMN, []))


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"model input lacks column(s) {missing}; it has {list(frame.columns)}")


def _utc(values: pd.Series | list[Any], column: str,
         rows: tuple[int, ...] | None = None) -> pd.Series:
    """Timestamps read as UTC; the message names the input rows missing or unreadable ones."""
    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        shown = [f"row {rows[i] if rows else i}: {series.iloc[i]!r}" for i in bad[:5]]
        hint = " (or pass params={'as_of': ...})" if column == "as_of" else ""
        raise ValueError(f"{column} is missing or not an ISO 8601 timestamp in "
                         f"{len(bad)} place(s), e.g. {'; '.join(shown)}{hint}")
    return parsed


def _events_frame(cells: Iterable[Any]) -> pd.DataFrame:
    """The contract events frame from per-row lists of event dicts (row position as lead)."""
    rows = [(position, event.get("timestamp"), event.get("event_type"), event.get("detail"))
            for position, cell in enumerate(cells) if _has_events(cell)
            for event in cell]
    positions, timestamps, event_types, details = zip(*rows, strict=True) if rows else ([],) * 4
    missing_type = [row for row, kind in zip(positions, event_types, strict=True) if not kind]
    if missing_type:
        raise ValueError(f"events without an event_type in row(s) {missing_type[:10]}")
    return pd.DataFrame({
        "lead_id": np.asarray(positions, dtype=np.int64),
        "timestamp": _utc(list(timestamps), "events.timestamp", positions),
        "event_type": pd.Series(event_types, dtype=object),
        "detail": pd.Series(details, dtype=object),
    })


def _has_events(cell: Any) -> bool:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return False
    if not all(isinstance(event, Mapping) for event in cell):
        raise ValueError(f"each events cell must be a list of dicts with timestamp, "
                         f"event_type and detail; got {cell!r:.200}")
    return True


def raw_input_columns(scorer: LeadScorer) -> list[str]:
    """The raw columns the bundle reads: ids, times, events, attributes and rule fields."""
    times = ["created_at", "as_of", EVENTS_COLUMN] if scorer.shape == "events" else []
    return list(dict.fromkeys(["lead_id", *times, *scorer.raw_attributes()]))


def bundle_signature(scorer: LeadScorer, input_example: pd.DataFrame) -> ModelSignature:
    """The bundle's signature: raw-lead columns in, the scorer's output out.

    Input columns are typed ``any`` and only the ids (and ``created_at`` for events)
    are required: an inferred strict schema would refuse valid raw leads (a float where
    the example had ints, timestamps where it had text, None for no events), while the
    scorer already reads each column the one way it needs.
    """
    output = LeadScoringModel(scorer).predict(None, input_example)
    required = {"lead_id", "created_at"} if scorer.shape == "events" else {"lead_id"}
    event = Object([Property("timestamp", AnyType()), Property("event_type", DataType.string),
                    Property("detail", AnyType(), required=False)])
    inputs = Schema([ColSpec(Array(event) if name == EVENTS_COLUMN else AnyType(), name,
                             required=name in required)
                     for name in raw_input_columns(scorer)])
    reasons = ParamSpec("reasons", DataType.long, None)
    params = ParamSchema([ParamSpec("as_of", DataType.string, ""), reasons]
                         if scorer.shape == "events" else [reasons])
    with warnings.catch_warnings():
        # The integer score column never holds missing values; MLflow's hint says it might.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        outputs = infer_signature(model_output=output).outputs
    return ModelSignature(inputs, outputs, params)


def bundle_requirements() -> list[str]:
    """This distribution and its runtime requirements, pinned to the installed versions.

    Raises:
        RuntimeError: The project is not installed (a bundle could not load elsewhere).
    """
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
        names = [_requirement_name(r) for r in declared if "extra ==" not in r]
        names = [DISTRIBUTION, *names, *SERIALISATION_REQUIREMENTS]
        return [f"{name}=={importlib.metadata.version(name)}" for name in names]
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"{exc.name} is not installed; run `pip install -e .` in the "
                           "project so the bundle can name its requirements") from None


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[;( ]", requirement, maxsplit=1)[0]


def log_bundle(scorer: LeadScorer, input_example: pd.DataFrame,
               registered_name: str | None) -> ModelInfo:
    """Log the scorer as one pyfunc bundle in the active run, and register it if asked.

    Args:
        scorer: The trained scorer.
        input_example: A few raw leads as :meth:`LeadScoringModel.predict` takes them.
        registered_name: Registered model to add a version to, or None.

    Returns:
        MLflow's model info (``model_uri``; ``registered_model_version`` if registered).

    Raises:
        RuntimeError: No run is active (wrap the call in :func:`start_run`).
    """
    _quiet_mlflow()
    if mlflow.active_run() is None:
        raise RuntimeError("log_bundle needs an active run: call it inside "
                           "`with start_run(experiment, run_name):`")
    return mlflow.pyfunc.log_model(
        name=BUNDLE_PATH, python_model=LeadScoringModel(scorer), input_example=input_example,
        signature=bundle_signature(scorer, input_example),
        pip_requirements=bundle_requirements(), registered_model_name=registered_name)


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
    _quiet_mlflow()
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


# ------------------------------------------------------------------ the registry
def _client() -> MlflowClient:
    _quiet_mlflow()
    return MlflowClient()


def register(model_uri: str, name: str) -> str:
    """Add a logged bundle to the registered model ``name`` (created if new).

    Returns:
        The new version number.
    """
    _quiet_mlflow()
    return str(mlflow.register_model(model_uri, name).version)


def versions(name: str) -> list[str]:
    """The versions of a registered model, oldest first (empty when it does not exist)."""
    found = _client().search_model_versions(f"name = '{name}'")
    return sorted((str(v.version) for v in found), key=int)


def _require_version(name: str, version: str | int) -> str:
    existing = versions(name)
    if str(version) not in existing:
        have = (f"its versions are {', '.join(existing)}" if existing
                else "no such registered model exists")
        raise ValueError(f"'{name}' has no version {version}; {have}")
    return str(version)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``name@alias`` at a version.

    Raises:
        ValueError: The version does not exist, naming those that do.
    """
    _client().set_registered_model_alias(name, alias, _require_version(name, version))


def alias_version(name: str, alias: str) -> str | None:
    """The version ``name@alias`` points at, or None (no such alias or model)."""
    return aliases(name).get(alias)


def aliases(name: str) -> dict[str, str]:
    """Alias -> version of a registered model (empty when it does not exist)."""
    try:
        found = _client().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    return {alias: str(version) for alias, version in found.aliases.items()}


def promote_if_better(name: str, version: str | int, metric: str, higher_is_better: bool,
                      value: float) -> bool:
    """Make a new version the challenger, and the champion if it beats the current one.

    Args:
        name: Registered model.
        version: The new version.
        metric: Run metric both versions are compared on.
        higher_is_better: Direction of the metric.
        value: The new version's value (as logged in its run under ``metric``).

    Returns:
        Whether ``champion`` moved to the new version (always when there was none; a
        tie keeps the champion).

    Raises:
        ValueError: The value is not a finite number, the version does not exist, or the
            champion's run has no such metric.
    """
    if not math.isfinite(value):
        raise ValueError(f"{metric} of '{name}' version {version} is {value}; only a finite "
                         "value can be compared with the champion")
    version = _require_version(name, version)
    _client().set_registered_model_alias(name, CHALLENGER, version)
    champion = alias_version(name, CHAMPION)
    if champion is not None:
        best = run_metric(name, champion, metric)
        if not (value > best if higher_is_better else value < best):
            return False
    _move_champion(name, version, champion)
    return True


def run_metric(name: str, version: str | int, metric: str) -> float:
    """A metric of the run that logged a model version.

    Raises:
        ValueError: The version has no run or its run lacks the metric, naming those
            it has.
    """
    client = _client()
    run_id = client.get_model_version(name, str(version)).run_id
    if not run_id:
        raise ValueError(f"'{name}' version {version} was not logged from a run, so it has "
                         f"no {metric} to compare; move the champion by hand "
                         "(`predictive-scoring promote`)")
    metrics = client.get_run(run_id).data.metrics
    if metric not in metrics:
        raise ValueError(f"run {run_id} of '{name}' version {version} has no metric "
                         f"'{metric}' (it has {sorted(metrics)}); compare the versions "
                         "yourself and move the champion by hand (`predictive-scoring promote`)")
    return metrics[metric]


def promote(name: str, version: str | int) -> None:
    """Make a version the champion by hand (the old one is kept for :func:`rollback`).

    Raises:
        ValueError: The version does not exist, naming those that do.
    """
    version = _require_version(name, version)
    _move_champion(name, version, alias_version(name, CHAMPION))


def _move_champion(name: str, version: str, current: str | None) -> None:
    if current == version:
        return
    client = _client()
    if current is None:
        if PREVIOUS_CHAMPION_TAG in client.get_model_version(name, version).tags:
            client.delete_model_version_tag(name, version, PREVIOUS_CHAMPION_TAG)
    else:
        client.set_model_version_tag(name, version, PREVIOUS_CHAMPION_TAG, current)
    client.set_registered_model_alias(name, CHAMPION, version)


def rollback(name: str) -> str:
    """Move ``champion`` back to the version it replaced; repeat to go further back.

    Returns:
        The version that is champion again.

    Raises:
        ValueError: There is no champion, or it replaced none (nothing to roll back to).
    """
    current = alias_version(name, CHAMPION)
    if current is None:
        raise ValueError(f"'{name}' has no champion to roll back (versions: "
                         f"{', '.join(versions(name)) or 'none'})")
    previous = _client().get_model_version(name, current).tags.get(PREVIOUS_CHAMPION_TAG)
    if not previous:
        raise ValueError(f"nothing to roll back to: champion version {current} of '{name}' "
                         "replaced no earlier champion; pick one by hand "
                         "(`predictive-scoring promote`)")
    _client().set_registered_model_alias(name, CHAMPION, _require_version(name, previous))
    return previous


# ------------------------------------------------------------------ loading
def load_scorer(uri: str | Path) -> LeadScorer:
    """The scorer inside a bundle.

    Args:
        uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model``
            or a local folder (for example one written by :func:`export_bundle`).

    Raises:
        TypeError: The bundle is not a lead-scoring bundle.
    """
    _quiet_mlflow()
    python_model = mlflow.pyfunc.load_model(str(uri)).unwrap_python_model()
    if not isinstance(python_model, LeadScoringModel):
        raise TypeError(f"{redact(str(uri))} holds a {type(python_model).__name__}, not a "
                        "lead-scoring bundle logged by log_bundle()")
    return python_model.scorer


def export_bundle(name: str, alias: str, out_dir: str | Path) -> Path:
    """Copy the bundle ``name@alias`` points at into a folder that loads without a server.

    The folder is replaced whole, so no file of an older bundle stays behind.

    Returns:
        The folder, loadable with ``mlflow.pyfunc.load_model`` or :func:`load_scorer`.

    Raises:
        ValueError: The alias is not set (naming those that are), or ``out_dir`` holds
            files that are not a model bundle.
    """
    version = alias_version(name, alias)
    if version is None:
        raise ValueError(f"'{name}' has no alias '{alias}'; set aliases: "
                         f"{aliases(name) or 'none'}")
    target = Path(out_dir)
    if (target.exists() and not (target / "MLmodel").is_file()
            and (not target.is_dir() or any(target.iterdir()))):
        raise ValueError(f"{target} holds files that are not a model bundle; export into an "
                         "empty or new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(staging))
        (staging / IDENTITY_FILE).write_text(json.dumps(
            {"name": name, "version": version, "alias": alias}), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class BundleRef:
    """Which bundle a model URI names, pinned so that loading it twice gives the same one.

    Attributes:
        uri: What to load: a registry alias resolved to its version
            (``models:/NAME/VERSION``), else the URI as given.
        name: Registered model name (a folder's exported name, else the folder's name).
        version: Registered version (a folder's exported version, else its bundle id).
        alias: The alias asked for (or exported), if any.
    """

    uri: str
    name: str
    version: str
    alias: str | None = None


_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def resolve_bundle(uri: str | Path) -> BundleRef:
    """Pin a model URI: an alias becomes the version it points at now.

    Args:
        uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model``
            or a local bundle folder.

    Raises:
        ValueError: The alias is not set, or the folder holds no bundle.
    """
    text = str(uri)
    match = _REGISTRY_URI.match(text)
    if match and match["alias"]:
        version = alias_version(match["name"], match["alias"])
        if version is None:
            raise ValueError(f"'{match['name']}' has no alias '{match['alias']}'; set "
                             f"aliases: {aliases(match['name']) or 'none'}")
        return BundleRef(f"models:/{match['name']}/{version}", match["name"], version,
                         match["alias"])
    if match:
        return BundleRef(text, match["name"], match["version"])
    if text.startswith("runs:/"):
        return BundleRef(text, text, text.split("/")[1])
    return _folder_ref(Path(text))


def _folder_ref(folder: Path) -> BundleRef:
    if not (folder / "MLmodel").is_file():
        raise ValueError(f"{folder} is not a model bundle folder (no MLmodel file); export "
                         "one with `predictive-scoring export` or give a models:/ URI")
    identity_file = folder / IDENTITY_FILE
    if identity_file.is_file():
        identity = json.loads(identity_file.read_text(encoding="utf-8"))
        return BundleRef(str(folder), identity["name"], str(identity["version"]),
                         identity.get("alias"))
    bundle = mlflow.models.Model.load(str(folder))
    return BundleRef(str(folder), folder.name, bundle.model_uuid or "unknown")

"""The model registry: versions, the ``champion`` and ``challenger`` aliases (never the
deprecated stages), moving the champion (by hand, or by ``workflow.promotion`` after a
paired comparison) and rollback, and loading a scorer back from a registry URI
or from a folder written by :func:`export_bundle`.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from predictive_scoring.errors import ModelNotFound, StoreUnreachable
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.tracking.bundle import LeadScoringModel
from predictive_scoring.tracking.store import quiet_mlflow, redact

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"
IDENTITY_FILE = "registered_model.json"
"""Written by :func:`export_bundle`: the registered name, version and alias exported."""


# ------------------------------------------------------------------ the registry
def _client() -> MlflowClient:
    quiet_mlflow()
    return MlflowClient()


def register(model_uri: str, name: str) -> str:
    """Add a logged bundle to the registered model ``name`` (created if new).

    Returns:
        The new version number.
    """
    quiet_mlflow()
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
    """Alias -> version of a registered model (empty when it does not exist).

    Raises:
        StoreUnreachable: The tracking store cannot be reached.
    """
    try:
        found = _client().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise StoreUnreachable(f"cannot reach the tracking store {_store()} to read the "
                            f"aliases of '{name}': {_first_line(exc)}") from None
    return {alias: str(version) for alias, version in found.aliases.items()}


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


PROMOTION_FILE = "promotion.json"
"""The run artifact holding a version's promotion decision and preview."""


def logged_promotion(uri: str | Path) -> dict | None:
    """The promotion decision and preview logged with the run of a registered version
    (``{"promotion": ..., "promotion_preview": ...}``), or None (a folder, a version
    logged without one, or a store that does not answer)."""
    match = _REGISTRY_URI.match(str(uri))
    if not match:
        return None
    try:
        ref = resolve_bundle(uri)
        run_id = _client().get_model_version(ref.name, ref.version).run_id
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{PROMOTION_FILE}") if run_id \
            else None
    except (MlflowException, ModelNotFound, OSError):
        return None


# ------------------------------------------------------------------ loading
def load_scorer(uri: str | Path) -> LeadScorer:
    """The scorer inside a bundle.

    Args:
        uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/model``
            or a local folder (for example one written by :func:`export_bundle`).

    Raises:
        ModelNotFound: The URI names nothing (the message says what the store has), the
            bundle cannot be read, or it is not a lead-scoring bundle.
    """
    quiet_mlflow()
    check_model_uri(uri)
    shown = redact(str(uri))
    try:
        python_model = mlflow.pyfunc.load_model(str(uri)).unwrap_python_model()
    except MlflowException as exc:
        raise ModelNotFound(f"cannot load {shown} (tracking store {_store()}): "
                            f"{_first_line(exc)}") from None
    except ImportError as exc:
        raise ModelNotFound(f"cannot load {shown}: reading it needs the package "
                            f"'{exc.name}', which is not installed") from None
    except OSError as exc:
        raise ModelNotFound(f"cannot load {shown}: {exc}") from None
    if not isinstance(python_model, LeadScoringModel):
        raise ModelNotFound(f"{shown} holds a {type(python_model).__name__}, not a "
                            "lead-scoring bundle logged by `predictive-scoring train`")
    return python_model.scorer


def check_model_uri(uri: str | Path) -> None:
    """Fail before any download when a model URI names nothing, saying what there is.

    Registry URIs are checked against the registered models, their aliases and
    versions; ``runs:/`` URIs against the runs; local paths against the file system.
    Other URIs (``s3://``...) are left to MLflow.

    Raises:
        ModelNotFound: With the nearest registered name or alias, and the ones that exist.
    """
    text = str(uri)
    match = _REGISTRY_URI.match(text)
    if match:
        _check_registered(match["name"], match["alias"], match["version"])
    elif text.startswith("models:/"):
        name = text.removeprefix("models:/").strip("/")
        raise ModelNotFound(f"{text} names no alias or version: write models:/{name}@champion"
                            f" or models:/{name}/<version>")
    elif text.startswith("runs:/"):
        _check_run(text)
    elif "://" not in text or text.startswith("file://"):
        _check_folder(Path(text.removeprefix("file://")))


def _store() -> str:
    return redact(mlflow.get_tracking_uri())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _nearest(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _check_registered(name: str, alias: str | None, version: str | None) -> None:
    client = _client()
    try:
        found = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise StoreUnreachable(f"cannot reach the tracking store {_store()} to find "
                                f"'{name}': {_first_line(exc)}") from None
        names = sorted(m.name for m in client.search_registered_models())
        raise ModelNotFound(f"no registered model '{name}' in the tracking store "
                            f"{_store()}{_nearest(name, names)}; registered models: "
                            f"{', '.join(names) or 'none (train one first)'}") from None
    if alias is not None and alias not in found.aliases:
        have = ", ".join(f"{a} (version {v})" for a, v in sorted(found.aliases.items()))
        raise ModelNotFound(f"'{name}' has no alias '{alias}'{_nearest(alias, list(found.aliases))}"
                            f"; its aliases: {have or 'none (promote a version first)'}")
    if version is not None and version not in (existing := versions(name)):
        raise ModelNotFound(f"'{name}' has no version {version}; its versions: "
                            f"{', '.join(existing) or 'none'}")


def _check_run(uri: str) -> None:
    run_id = uri.removeprefix("runs:/").split("/", 1)[0]
    try:
        _client().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise StoreUnreachable(f"cannot reach the tracking store {_store()} to find run "
                                f"'{run_id}': {_first_line(exc)}") from None
        raise ModelNotFound(f"no run '{run_id}' in the tracking store {_store()} (`mlflow "
                            "ui` lists the runs and their ids)") from None


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise ModelNotFound(f"no such folder: {folder} (give a folder written by "
                            "`predictive-scoring export`, or a models:/NAME@alias URI)")
    if not (folder / "MLmodel").is_file():
        raise ModelNotFound(f"{folder} is not a model bundle folder (no MLmodel file); "
                            "export one with `predictive-scoring export` or give a models:/ "
                            "URI")


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
        ModelNotFound: The URI names nothing (see :func:`check_model_uri`).
    """
    text = str(uri)
    check_model_uri(text)
    match = _REGISTRY_URI.match(text)
    if match and match["alias"]:
        version = alias_version(match["name"], match["alias"])
        if version is None:  # moved away since the check
            raise ModelNotFound(f"'{match['name']}' has no alias '{match['alias']}'; set "
                                f"aliases: {aliases(match['name']) or 'none'}")
        return BundleRef(f"models:/{match['name']}/{version}", match["name"], version,
                         match["alias"])
    if match:
        return BundleRef(text, match["name"], match["version"])
    if text.startswith("runs:/"):
        return BundleRef(text, text, text.split("/")[1])
    return _folder_ref(Path(text))


def _folder_ref(folder: Path) -> BundleRef:
    _check_folder(folder)
    identity_file = folder / IDENTITY_FILE
    if identity_file.is_file():
        identity = json.loads(identity_file.read_text(encoding="utf-8"))
        return BundleRef(str(folder), identity["name"], str(identity["version"]),
                         identity.get("alias"))
    bundle = mlflow.models.Model.load(str(folder))
    return BundleRef(str(folder), folder.name, bundle.model_uuid or "unknown")


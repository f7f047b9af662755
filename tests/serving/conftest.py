"""A small real model in a real registry, and API clients for it.

Two LightGBM scorers are trained on 4,000 simulated leads each (different seeds) and
logged as versions 1 and 2 of one registered model in a SQLite MLflow store; ``champion``
points at version 1. The leads sent to the API are held-out simulated leads with their
events, written the way a CRM sends them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from predictive_scoring.accounts.training import add_accounts
from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import EventsDataset, load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.tracking import bundle, store
from predictive_scoring.tracking import registry as model_registry
from predictive_scoring.train import TrainingPlan, TrainingRun, bundle_example
from predictive_scoring.workflow.training import run_training
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import REPO

MODEL_NAME = "lead-scoring-servingtest"
API_KEY = "test-api-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
N_LEADS = 4000
READY_SECONDS = 60
FAST_FIT = {"n_jobs": 1, "learning_rate": 0.1, "min_child_samples": 50,
            "path_smooth": 50 * 1000 / 300}
"""A quick small model: a sixth of the shipped leaf minimum, and its leaf smoothing in the
shipped ratio to it (path_smooth 1000 for 300 rows)."""

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@dataclass(frozen=True)
class Trained:
    """A training run, its dataset and the leads held out for the API."""

    run: TrainingRun
    dataset: EventsDataset
    leads: pd.DataFrame
    """Test leads: lead_id, created_at, as_of and attributes."""
    config: DatasetConfig | None = None
    """The dataset's config (pointing at the simulated files)."""

    @property
    def scorer(self) -> LeadScorer:
        return self.run.trained.scorer


def _train(root: Path, seed: int) -> Trained:
    config = simulate_into(load_config(REPO / "configs/datasets/simulated.yaml",
                                       DatasetConfig), N_LEADS, seed, root)
    dataset = load_events_dataset(config, Path("."))
    model = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
    # One thread and a faster learning rate: a shared 2-core machine stalls 2-thread fits.
    model = model.model_copy(update={"params": model.params | FAST_FIT})
    plan = TrainingPlan(config, model, load_config(REPO / config.rules, RulesConfig),
                        load_config(REPO / "configs/base.yaml", BaseConfig))
    run = run_training(dataset, plan)
    # The account model rides in the same bundle; this small dataset has few converted
    # accounts to learn from, so the step's minimum is lowered for the tests.
    base = plan.base.model_copy(update={"training": plan.base.training.model_copy(
        update={"min_class_examples": 5})})
    add_accounts(run, dataset, replace(plan, base=base))
    assert run.trained.scorer.accounts is not None
    test = run.examples.frame.iloc[run.trained.rows["test"]]
    columns = ["lead_id", "created_at", "as_of", *config.attributes.categorical,
               *config.attributes.numeric]
    return Trained(run, dataset, test[columns].reset_index(drop=True), config)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The champion's training run (seed 3)."""
    return _train(tmp_path_factory.mktemp("train_v1"), 3)


@pytest.fixture(scope="session")
def challenger(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Another model of the same dataset (seed 4): version 2."""
    return _train(tmp_path_factory.mktemp("train_v2"), 4)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, trained: Trained,
             challenger: Trained) -> Iterator[str]:
    """A SQLite MLflow store with versions 1 and 2; champion -> 1. Yields its URI."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    saved = {k: os.environ.get(k) for k in (store.TRACKING_URI_ENV,
                                            "MLFLOW_DISABLE_TELEMETRY")}
    os.environ[store.TRACKING_URI_ENV] = uri
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    store.use_tracking(load_config(REPO / "configs/base.yaml", BaseConfig))
    for version in (trained, challenger):
        with store.start_run("serving-tests", "train",
                                artifact_location=(folder / "artifacts").as_uri()):
            bundle.log_bundle(version.scorer,
                                bundle_example(version.run, version.dataset.events, 3),
                                MODEL_NAME)
    model_registry.set_alias(MODEL_NAME, model_registry.CHAMPION, "1")
    try:
        yield uri
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lead_request(lead: pd.Series, events: pd.DataFrame) -> dict[str, Any]:
    """A lead as a CRM sends it: ISO times with offsets, attributes, its events."""
    own = events.loc[events["lead_id"] == lead["lead_id"]]
    attributes = {name: (None if pd.isna(value) else value)
                  for name, value in lead.drop(["lead_id", "created_at", "as_of"]).items()}
    return {
        "lead_id": lead["lead_id"],
        "created_at": lead["created_at"].tz_convert("America/New_York").isoformat(),
        "as_of": lead["as_of"].isoformat(),
        "attributes": attributes,
        "events": [{"timestamp": t.isoformat(), "event_type": kind,
                    "detail": None if pd.isna(detail) else detail}
                   for t, kind, detail in zip(own["timestamp"], own["event_type"],
                                              own["detail"], strict=True)],
    }


@pytest.fixture(scope="session")
def requests_json(trained: Trained) -> list[dict[str, Any]]:
    """The first 200 held-out leads as API requests (events after as_of included)."""
    leads = trained.leads.head(200)
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(leads["lead_id"])]
    return [lead_request(row, events) for _, row in leads.iterrows()]


@dataclass(frozen=True)
class PostgresDatabase:
    """A database name on the local PostgreSQL server, created when a test says so."""

    url: str
    create: Callable[[], None]


@pytest.fixture
def postgres_database() -> Iterator[PostgresDatabase]:
    """A new database's URL on the PostgreSQL server at 127.0.0.1, not created yet (a
    test may start a service against it before it exists); dropped at the end. Skipped,
    with the reason, where PostgreSQL is not usable."""
    from tests.integration.conftest import PG_HOST, PG_PORT, _admin_user, _run_sql

    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg[binary]")
    user = _admin_user(psycopg)
    name = f"predictions_test_{uuid.uuid4().hex[:12]}"
    try:
        yield PostgresDatabase(f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}",
                               lambda: _run_sql(psycopg, user, f"CREATE DATABASE {name}"))
    finally:
        _run_sql(psycopg, user, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_database: PostgresDatabase) -> str:
    """A new, empty database on the local PostgreSQL server (dropped at the end)."""
    postgres_database.create()
    return postgres_database.url


def settings_for(registry: str, **overrides: Any) -> Settings:
    """Service settings for the test registry's champion."""
    values = {"model_uri": f"models:/{MODEL_NAME}@champion", "api_keys": (API_KEY,),
              "admin_keys": (ADMIN_KEY,), "base_config": REPO / "configs/base.yaml"}
    return Settings(**(values | overrides))


def wait_ready(client: TestClient) -> None:
    """Until /ready says the model is in (fails after READY_SECONDS)."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        answer = client.get("/ready")
        if answer.status_code == 200:
            return
        if answer.json()["status"] == "failed":
            pytest.fail(f"the model did not load: {answer.json()['reason']}")
        time.sleep(0.05)
    pytest.fail(f"no model after {READY_SECONDS} s")


@pytest.fixture(scope="module")
def client(registry: str) -> Iterator[TestClient]:
    """A TestClient of the service with the champion loaded."""
    with TestClient(create_app(settings_for(registry))) as test_client:
        wait_ready(test_client)
        yield test_client


AUTH = {"X-API-Key": API_KEY}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

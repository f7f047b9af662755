"""tracking.py against real stores: a SQLite file and an ``mlflow server`` on PostgreSQL.

The scorers are small but real: logistic regressions fitted on synthetic leads, so every
comparison below is between a bundle's output and the in-memory scorer's, not a mock.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from predictive_scoring import explain
from predictive_scoring.config import (
    AttributeRule,
    Attributes,
    BaseConfig,
    EventRule,
    FeatureConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.errors import ModelNotFound
from predictive_scoring.features import FeatureSpec, behaviour_features, fit_feature_spec
from predictive_scoring.models import scorer as models
from predictive_scoring.models.columns import FeatureColumns, feature_columns, model_frame
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.stages import Stage
from predictive_scoring.tracking import bundle as pyfunc_bundle
from predictive_scoring.tracking import registry
from predictive_scoring.tracking import store as tracking_store
from tests.conftest import REPO
from tests.helpers import message_of

LOGREG = ModelConfig(kind="logreg", params={"max_iter": 200})
THRESHOLDS = {Stage.LEAD: 0.0, Stage.MQL: 0.3}
PLAN_RULES = RulesConfig(
    name="tiny_points", stage_thresholds={Stage.LEAD: 0, Stage.MQL: 10},
    attribute_rules=[AttributeRule(name="pro_plan", field="plan", op="eq", value="pro",
                                   points=10)])
EVENT_RULES = RulesConfig(
    name="tiny_event_points", stage_thresholds={Stage.LEAD: 0, Stage.MQL: 15},
    event_rules=[EventRule(name="pricing", event_type="page_view", detail="pricing",
                           points=15)],
    attribute_rules=[AttributeRule(name="software", field="industry", op="eq",
                                   value="software", points=5)])
FEATURES = FeatureConfig(windows_days=[7, 30], min_key_count=1)
T0 = pd.Timestamp("2025-01-01", tz="UTC")

# MLflow 3.17's own calls trip deprecations of pandas 3.1 and SQLAlchemy 2.1: not ours to fix.
pytestmark = [
    pytest.mark.heavy,
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]


# ------------------------------------------------------------------ tiny real scorers
def fit_scorer(shape: str, frame: pd.DataFrame, converted: np.ndarray, columns: FeatureColumns,
               spec: FeatureSpec | None, rules: RulesConfig) -> LeadScorer:
    """Fit pipeline and calibrator on the first two thirds / last third of the rows."""
    x = model_frame(frame, columns)
    cut = len(x) * 2 // 3
    pipeline = models.fit_pipeline(models.build_pipeline(LOGREG, columns), LOGREG,
                                   (x[:cut], converted[:cut]), (x[cut:], converted[cut:]))
    calibrator, _ = models.choose_calibrator(pipeline.predict_proba(x[cut:])[:, 1],
                                             converted[cut:], seed=0)
    scorer = LeadScorer("tiny", shape, columns, spec, pipeline, calibrator, THRESHOLDS, rules)
    scorer.metadata[explain.METADATA_KEY] = explain.explanation_metadata(scorer, x[:cut])
    return scorer


def plan_leads(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """Table-shaped leads whose conversion depends on plan and seats."""
    rng = np.random.default_rng(seed)
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)],
                          "plan": rng.choice(["free", "pro", "team"], n),
                          "seats": rng.integers(1, 50, n)})
    logit = -1.0 + 1.5 * (leads["plan"] == "pro") + leads["seats"] / 25
    return leads, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


def table_scorer(seed: int) -> LeadScorer:
    """A table-shaped scorer; each seed gives different coefficients."""
    leads, converted = plan_leads(seed)
    return fit_scorer("table", leads, converted, FeatureColumns(("plan",), ("seats",)), None,
                      PLAN_RULES)


SAMPLE = plan_leads(seed=99)[0].head(20)


def event_leads(seed: int, n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Events-shaped leads (some events fall after as_of) and their outcomes."""
    rng = np.random.default_rng(seed)
    created = T0 + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    leads = pd.DataFrame({"lead_id": [f"E{i}" for i in range(n)], "created_at": created,
                          "as_of": created + pd.Timedelta(days=30),
                          "industry": rng.choice(["software", "retail"], n)})
    owner = np.repeat(np.arange(n), rng.poisson(3, n))
    kind = rng.choice(["page_view", "email_open"], len(owner))
    events = pd.DataFrame({
        "lead_id": leads["lead_id"].to_numpy()[owner],
        "timestamp": created[owner] + pd.to_timedelta(rng.uniform(0, 40, len(owner)), unit="D"),
        "event_type": kind,
        "detail": np.where(kind == "page_view", rng.choice(["pricing", "blog"], len(owner)),
                           None),
    })
    converted = rng.random(n) < np.where(leads["industry"] == "software", 0.5, 0.2)
    return leads, events, converted.astype(int)


def events_scorer() -> LeadScorer:
    leads, events, converted = event_leads(seed=5)
    spec = fit_feature_spec(list(events["event_type"]), list(events["detail"]), FEATURES)
    frame = pd.concat([leads, behaviour_features(spec, leads, events)], axis=1)
    return fit_scorer("events", frame, converted,
                      feature_columns(Attributes(categorical=["industry"]), spec),
                      spec, EVENT_RULES)


def with_event_lists(leads: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The bundle's raw input: an ``events`` column of event dicts per lead."""
    per_lead = {lead: rows[["timestamp", "event_type", "detail"]].to_dict("records")
                for lead, rows in events.groupby("lead_id")}
    return leads.assign(events=[per_lead.get(lead, []) for lead in leads["lead_id"]])


# ------------------------------------------------------------------ helpers
@pytest.fixture(params=["sqlite", "server"])
def store(request: pytest.FixtureRequest, use_store: Callable[[str], str],
          tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Use a SQLite file, then a real server on PostgreSQL.

    Returns:
        The artifact location new experiments get (None: the server's own root).
    """
    use_store(request.getfixturevalue(f"{request.param}_uri"))
    return tmp_path_factory.mktemp("artifacts").as_uri() if request.param == "sqlite" else None


def log_version(store: str | None, name: str, scorer: LeadScorer, roc_auc: float) -> str:
    with tracking_store.start_run("tiny", f"roc_auc={roc_auc}", artifact_location=store):
        tracking_store.log_metrics({"roc_auc": roc_auc}, prefix="test")
        info = pyfunc_bundle.log_bundle(scorer, SAMPLE.head(5), name)
    return str(info.registered_model_version)


def probabilities(scorer: LeadScorer) -> np.ndarray:
    return scorer.score(SAMPLE)["probability"].to_numpy()


def predict_in_fresh_python(bundle: Path, leads: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``mlflow.pyfunc.load_model(bundle).predict(leads)`` in a new interpreter, no store."""
    leads.to_pickle(folder / "leads.pkl")
    code = ("import sys, pandas as pd, mlflow; model = mlflow.pyfunc.load_model(sys.argv[1]); "
            "model.predict(pd.read_pickle(sys.argv[2])).to_pickle(sys.argv[3])")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", code, str(bundle), "leads.pkl", "scores.pkl"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_pickle(folder / "scores.pkl")


# ------------------------------------------------------------------ the store
def test_tracking_uri_env_wins_and_local_folders_are_made(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking_store.TRACKING_URI_ENV, raising=False)
    base = load_config(REPO / "configs" / "base.yaml", BaseConfig).model_copy(update={
        "tracking_uri": "sqlite:///store/db/mlflow.db", "artifact_location": "store/art"})
    assert tracking_store.tracking_uri(base) == "sqlite:///store/db/mlflow.db"
    assert (tmp_path / "store" / "db").is_dir()
    assert tracking_store.artifact_location(base) == (tmp_path / "store" / "art").as_uri()
    assert (tmp_path / "store" / "art").is_dir()

    # another SQLite store named by the environment keeps its runs' files beside it
    monkeypatch.setenv(tracking_store.TRACKING_URI_ENV, "sqlite:///elsewhere/mlflow.db")
    assert tracking_store.artifact_location(base) == (
        tmp_path / "elsewhere" / "artifacts").as_uri()
    assert (tmp_path / "elsewhere" / "artifacts").is_dir()

    server = "http://scorer:s3cret@127.0.0.1:5000"
    monkeypatch.setenv(tracking_store.TRACKING_URI_ENV, server)
    assert tracking_store.tracking_uri(base) == server
    assert tracking_store.artifact_location(base) is None  # the server keeps its own root
    assert tracking_store.redact(server) == "http://scorer:***@127.0.0.1:5000"
    assert "k3y" not in tracking_store.redact("postgresql://u:p@db/mlflow?password=k3y")
    assert tracking_store.redact("sqlite:////abs/mlflow.db") == "sqlite:////abs/mlflow.db"


def test_run_helpers_log_flat_names_and_skip_missing_metrics(
        sqlite_uri: str, use_store: Callable[[str], str], tmp_path: Path) -> None:
    use_store(sqlite_uri)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("<p>rules vs model</p>")
    (tmp_path / "thresholds.csv").write_text("stage,probability\nmql,0.3\n")
    assert "start_run" in message_of(RuntimeError, pyfunc_bundle.log_bundle, table_scorer(1),
                                     SAMPLE, None)
    with tracking_store.start_run("helpers", "outer", artifact_location=tmp_path.as_uri()), \
            tracking_store.start_run("helpers", "inner", nested=True) as run_id:
        tracking_store.log_params({"model": {"kind": "logreg", "params": {"C": 1.0}}, "seed": 3})
        tracking_store.log_metrics({"roc_auc": np.float64(0.71), "lift": {"at_10": 2},
                              "pr_auc": float("nan"), "brier": None}, prefix="test")
        tracking_store.set_tags({"dataset": "tiny", "rows": 600})
        tracking_store.log_dict({"stages": {Stage.MQL: np.float32(0.25)}}, "thresholds.json")
        tracking_store.log_files([tmp_path / "thresholds.csv", tmp_path / "report"], "report")
        assert "'test.shape'" in message_of(TypeError, tracking_store.log_metrics,
                                            {"shape": "table"}, "test")
        assert "nowhere.csv" in message_of(FileNotFoundError, tracking_store.log_files,
                                           [tmp_path / "nowhere.csv"])
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.params == {"model.kind": "logreg", "model.params.C": "1.0", "seed": "3"}
    assert run.data.metrics == {"test.roc_auc": 0.71, "test.lift.at_10": 2.0}
    assert run.data.tags["dataset"] == "tiny" and run.data.tags["rows"] == "600"
    assert run.data.tags["mlflow.parentRunId"]
    stored = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/thresholds.json")
    assert stored == {"stages": {"mql": 0.25}}
    listed = {a.path for a in client.list_artifacts(run_id, "report")}
    assert listed == {"report/thresholds.csv", "report/report"}


# ------------------------------------------------------------------ the bundle
def test_raw_leads_keeps_each_rows_events_and_reads_times_as_utc() -> None:
    raw = pd.DataFrame({
        "lead_id": ["a", "a", "b"],
        "created_at": ["2025-01-01T00:00:00Z", "2025-01-01", pd.Timestamp("2025-01-02")],
        "as_of": ["2025-02-01T00:00:00+01:00", None, None],
        "industry": ["software", "software", None],
        "events": [[{"timestamp": "2025-01-05T10:00:00Z", "event_type": "page_view",
                     "detail": "pricing"}],
                   [{"timestamp": pd.Timestamp("2025-01-06", tz="UTC"),
                     "event_type": "email_open"}],
                   None],
    })
    leads, events = pyfunc_bundle.raw_leads(raw, "events", as_of="2025-03-01")
    assert leads["lead_id"].tolist() == [0, 1, 2]  # rows, so the repeated lead keeps apart
    assert leads["as_of"].tolist() == [pd.Timestamp("2025-01-31T23:00:00Z"),
                                       pd.Timestamp("2025-03-01", tz="UTC"),
                                       pd.Timestamp("2025-03-01", tz="UTC")]
    assert str(leads["created_at"].dtype).endswith("UTC]")
    assert events["lead_id"].tolist() == [0, 1]
    assert events["detail"].tolist() == ["pricing", None]
    assert str(events["timestamp"].dtype).endswith("UTC]")
    assert raw["lead_id"].tolist() == ["a", "a", "b"]  # the caller's frame is untouched

    assert "row 1" in message_of(ValueError, pyfunc_bundle.raw_leads, raw, "events")
    broken = raw.assign(created_at=["2025-01-01", "soon", None])
    assert "row 1: 'soon'" in message_of(ValueError, pyfunc_bundle.raw_leads, broken, "events",
                                         "2025-03-01")
    assert "['created_at']" in message_of(ValueError, pyfunc_bundle.raw_leads,
                                          raw.drop(columns="created_at"), "events")
    table, no_events = pyfunc_bundle.raw_leads(raw, "table")
    assert no_events is None and "events" not in table


def test_events_bundle_scores_raw_leads_like_the_scorer(
        sqlite_uri: str, use_store: Callable[[str], str], tmp_path: Path) -> None:
    use_store(sqlite_uri)
    scorer = events_scorer()
    leads, events, _ = event_leads(seed=8, n=40)
    raw = with_event_lists(leads, events)
    as_text = raw.assign(created_at=leads["created_at"].map(pd.Timestamp.isoformat),
                         as_of=leads["as_of"].map(pd.Timestamp.isoformat))
    example = as_text.head(4).assign(events=[*as_text["events"].head(3), None])
    with tracking_store.start_run("tiny-events", "bundle",
                            artifact_location=tmp_path.as_uri()) as run_id:
        info = pyfunc_bundle.log_bundle(scorer, example, None)
    bundle = mlflow.pyfunc.load_model(info.model_uri)
    expected = scorer.score(leads, events)
    pd.testing.assert_frame_equal(bundle.predict(raw), expected)
    pd.testing.assert_frame_equal(bundle.predict(as_text), expected)

    one_moment = "2025-03-15T00:00:00Z"
    at_moment = leads.assign(as_of=pd.Timestamp(one_moment))
    pd.testing.assert_frame_equal(
        bundle.predict(raw.drop(columns="as_of"), params={"as_of": one_moment}),
        scorer.score(at_moment, events))
    by_run = registry.load_scorer(f"runs:/{run_id}/{pyfunc_bundle.BUNDLE_PATH}")
    pd.testing.assert_frame_equal(by_run.score(leads, events), expected)

    explained = bundle.predict(raw, params={"reasons": 2})
    pd.testing.assert_frame_equal(explained, explain.score_explained(scorer, leads, events, 2))
    assert {"quadrant", "reason_up_2", "reason_down_2"} <= set(explained.columns)
    grades_only = bundle.predict(raw, params={"reasons": 0})
    assert "quadrant" in grades_only and "reason_up_1" not in grades_only
    model = pyfunc_bundle.LeadScoringModel(scorer)
    assert "whole number" in message_of(ValueError, model.predict, None, raw, {"reasons": -1})


# ------------------------------------------------------------------ the registry
def test_registry_round_trip(store: str | None, tmp_path: Path) -> None:
    name = f"lead-scoring-{uuid.uuid4().hex[:8]}"
    scorers = {"1": table_scorer(1), "2": table_scorer(2), "3": table_scorer(3)}
    roc_auc = {"1": 0.70, "2": 0.65, "3": 0.80}
    aliases_after = {}
    for version, scorer in scorers.items():
        assert log_version(store, name, scorer, roc_auc[version]) == version
        registry.set_alias(name, registry.CHALLENGER, version)
        if version in ("1", "3"):  # the first, and one better than the champion
            registry.promote(name, version)
        aliases_after[version] = registry.aliases(name)
    assert aliases_after == {"1": {"challenger": "1", "champion": "1"},
                             "2": {"challenger": "2", "champion": "1"},
                             "3": {"challenger": "3", "champion": "3"}}
    champion = registry.load_scorer(f"models:/{name}@champion")
    np.testing.assert_array_equal(probabilities(champion), probabilities(scorers["3"]))
    assert not np.array_equal(probabilities(scorers["1"]), probabilities(scorers["3"]))

    assert registry.rollback(name) == "1"
    assert registry.alias_version(name, "champion") == "1"
    np.testing.assert_array_equal(probabilities(registry.load_scorer(f"models:/{name}/1")),
                                  probabilities(scorers["1"]))
    assert "nothing to roll back to" in message_of(ValueError, registry.rollback, name)
    registry.promote(name, 2)
    assert registry.alias_version(name, "champion") == "2"
    assert "versions are 1, 2, 3" in message_of(ValueError, registry.promote, name, 7)
    assert registry.rollback(name) == "1"
    assert registry.alias_version(name, "staging") is None
    assert registry.register(f"models:/{name}/3", f"{name}-copy") == "1"

    exported = registry.export_bundle(name, "champion", tmp_path / "models" / "champion")
    assert (exported / "MLmodel").is_file()
    fresh = predict_in_fresh_python(exported, SAMPLE, tmp_path)
    pd.testing.assert_frame_equal(fresh, scorers["1"].score(SAMPLE))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    assert "not a model bundle" in message_of(ValueError, registry.export_bundle, name,
                                              "champion", tmp_path / "notes")
    assert "set aliases" in message_of(ValueError, registry.export_bundle, name, "staging",
                                       tmp_path / "other")


def test_a_bundle_of_another_feature_layout_is_refused_on_load(tmp_path: Path) -> None:
    scorer = events_scorer()
    # An earlier version also made totals of all activity, such as "active_days".
    behaviour = ("active_days", *scorer.columns.behaviour)
    old = dataclasses.replace(scorer, columns=dataclasses.replace(
        scorer.columns, numeric=behaviour, behaviour=behaviour))
    for name, kept in {"current": scorer, "old": old}.items():
        mlflow.pyfunc.save_model(tmp_path / name,
                                 python_model=pyfunc_bundle.LeadScoringModel(kept),
                                 pip_requirements=[])
    assert registry.load_scorer(tmp_path / "current").columns == scorer.columns
    message = message_of(ValueError, registry.load_scorer, tmp_path / "old")
    assert "active_days" in message and "retrain" in message


def test_load_scorer_refuses_other_models(tmp_path: Path) -> None:
    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context: object, model_input: pd.DataFrame,
                    params: dict | None = None) -> pd.DataFrame:
            return model_input

    mlflow.pyfunc.save_model(tmp_path / "echo", python_model=Echo(), pip_requirements=[])
    assert "not a lead-scoring bundle" in message_of(ModelNotFound, registry.load_scorer,
                                                     tmp_path / "echo")

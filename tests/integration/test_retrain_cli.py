"""``retrain`` end to end on a hand-made CRM export: promoted, kept, and each failure with
its documented exit code; the service reload against a stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app
from predictive_scoring.tracking import registry
from tests.crm_table import crm_leads, write_crm_dataset
from tests.helpers import free_port

runner = CliRunner()
ADMIN_KEY = "retrain-admin-key-0123456789"

pytestmark = [
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]


class StandIn(BaseHTTPRequestHandler):
    """Answers ``POST /v1/admin/reload`` as the service does, with the status it is given."""

    status = 200
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        type(self).seen.append((self.path, self.headers.get("X-API-Key")))
        body = ({"status": "reloaded", "changed": True, "previous": None,
                 "current": {"name": "lead-scoring-crm", "version": "1", "alias": None}}
                if self.status == 200 else {"detail": "this key may not reload the model"})
        raw = json.dumps(body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def service() -> Iterator[tuple[str, type[StandIn]]]:
    handler = type("Handler", (StandIn,), {"seen": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("retrain")
    return {"root": root, "env": {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
                                  "COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true"}}


def retrain(store: dict, config: Path, out: str, *options: object,
            env: dict[str, str] | None = None) -> object:
    args = ["retrain", "--config", config, "--output", store["root"] / out, *options]
    result = runner.invoke(app, [str(a) for a in args], env={**store["env"], **(env or {})})
    assert "Traceback" not in result.output
    return result


def promotion(store: dict, out: str) -> dict:
    return json.loads((store["root"] / out / "metrics.json").read_text())["promotion"]


def aliases(store: dict, name: str) -> dict[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store["env"]["MLFLOW_TRACKING_URI"])
        return registry.aliases(name)


@pytest.fixture(scope="module")
def crm(store: dict) -> Path:
    return write_crm_dataset(store["root"] / "crm", "crm", crm_leads(3000, 1))


def test_first_retrain_promotes_and_reloads_the_service(
        store: dict, crm: Path, service: tuple[str, type[StandIn]]) -> None:
    url, handler = service
    result = retrain(store, crm, "first", "--reload-url", url,
                     env={"PREDICTIVE_SCORING_ADMIN_KEYS": f"{ADMIN_KEY},another-key-456789"})
    assert result.exit_code == 0, result.output
    block = promotion(store, "first")
    assert block["decision"] == "first" and block["challenger"] > block["rules"]
    assert "version 1: it is the new champion" in result.output
    assert handler.seen == [("/v1/admin/reload", ADMIN_KEY)]
    assert "now serves 'lead-scoring-crm' version 1" in result.output
    assert aliases(store, "lead-scoring-crm") == {"champion": "1", "challenger": "1"}


def test_retrain_on_the_same_data_keeps_the_champion_and_does_not_reload(
        store: dict, crm: Path, service: tuple[str, type[StandIn]]) -> None:
    url, handler = service
    result = retrain(store, crm, "same", "--reload-url", url,
                     env={"PREDICTIVE_SCORING_ADMIN_KEYS": ADMIN_KEY})
    assert result.exit_code == 0, result.output
    block = promotion(store, "same")
    assert block["decision"] == "kept" and block["champion_version"] == "1"
    assert block["challenger"] == pytest.approx(block["champion"])  # the same model
    assert block["difference_interval"][0] <= 0
    assert "the champion stays" in result.output and handler.seen == []
    assert aliases(store, "lead-scoring-crm") == {"champion": "1", "challenger": "2"}


def test_a_champion_of_an_older_layout_is_reported_and_not_replaced(
        store: dict, crm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def older_layout(uri: str) -> object:
        raise ValueError("this bundle was trained on another version's behaviour features "
                         "(for example ['n_page_view_7d']); retrain it with this version")

    monkeypatch.setattr(registry, "load_scorer", older_layout)
    result = retrain(store, crm, "older")
    assert result.exit_code == 3, result.output
    block = promotion(store, "older")
    assert block["decision"] == "not_promoted" and block["champion_version"] == "1"
    assert "another version's behaviour features" in block["reason"]
    assert "predictive-scoring promote --dataset crm" in result.output
    assert aliases(store, "lead-scoring-crm")["champion"] == "1"


def test_a_champion_reading_a_field_the_data_lost_is_reported(store: dict) -> None:
    """The export no longer carries the plan: the champion cannot score the new leads."""
    config = write_crm_dataset(store["root"] / "no_plan", "crm", crm_leads(3000, 1),
                               categorical=("industry",))
    result = retrain(store, config, "no_plan")
    assert result.exit_code == 3, result.output
    block = promotion(store, "no_plan")
    assert block["decision"] == "not_promoted" and block["champion"] is None
    assert "reads fields the new data no longer has: plan" in block["reason"]
    assert aliases(store, "lead-scoring-crm")["champion"] == "1"


def test_an_unreachable_registry_stops_before_training(store: dict, crm: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    result = retrain(store, crm, "unreachable", env=env)
    assert result.exit_code == 3, result.output
    assert "cannot reach the tracking store" in result.output
    assert not (store["root"] / "unreachable" / "metrics.json").exists()


def test_test_leads_without_converters_promote_nothing(store: dict) -> None:
    leads = crm_leads(3000, 2)
    leads.loc[leads.index[-700:], "converted"] = "no"  # the latest leads: the test slice
    config = write_crm_dataset(store["root"] / "quiet", "crm_quiet", leads)
    result = retrain(store, config, "quiet")
    assert result.exit_code == 1, result.output
    block = promotion(store, "quiet")
    assert block["decision"] == "not_promoted" and "no converters" in block["reason"]
    assert "champion" not in aliases(store, "lead-scoring-crm_quiet")


def test_a_first_model_below_the_points_is_not_champion(store: dict) -> None:
    config = write_crm_dataset(store["root"] / "drift", "crm_drift",
                               crm_leads(3000, 3, "drift"))
    result = retrain(store, config, "drift")
    assert result.exit_code == 5, result.output
    block = promotion(store, "drift")
    assert block["decision"] == "not_promoted" and block["challenger"] <= block["rules"]
    assert "does not beat the points" in result.output
    assert aliases(store, "lead-scoring-crm_drift") == {"challenger": "1"}


def test_a_refused_reload_is_its_own_exit_code(
        store: dict, service: tuple[str, type[StandIn]]) -> None:
    url, handler = service
    handler.status = 403
    config = write_crm_dataset(store["root"] / "reload", "crm_reload", crm_leads(3000, 4))
    result = retrain(store, config, "reload", "--reload-url", url,
                     env={"PREDICTIVE_SCORING_ADMIN_KEYS": ADMIN_KEY})
    assert result.exit_code == 6, result.output
    assert "answered 403: this key may not reload the model" in result.output
    assert aliases(store, "lead-scoring-crm_reload")["champion"] == "1"


def test_reload_without_an_admin_key_is_refused_before_training(
        store: dict, crm: Path, service: tuple[str, type[StandIn]]) -> None:
    result = retrain(store, crm, "nokey", "--reload-url", service[0],
                     env={"PREDICTIVE_SCORING_ADMIN_KEYS": ""})
    assert result.exit_code == 2, result.output
    assert "PREDICTIVE_SCORING_ADMIN_KEYS" in result.output
    assert not (store["root"] / "nokey").exists()

"""The API docs work offline: headless Chromium opens ``/docs`` of a running service, with
every host but 127.0.0.1 unresolvable, and finds Swagger UI's operations rendered (its
scripts and styles come from the service itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.helpers import free_port, stop_server
from tests.serving.conftest import API_KEY, MODEL_NAME

START_SECONDS = 90
RENDER_MS = 15_000
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary, installed from Debian's packages when missing (as root), else
    the test is skipped with the reason."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    for step in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                 ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(step, capture_output=True, text=True, timeout=900,
                                check=False, env=os.environ | {"DEBIAN_FRONTEND":
                                                               "noninteractive"})
        if step[1] == "install" and result.returncode == 0:
            break
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"headless Chromium could not be installed: {result.stderr[-300:]}")
    return found


@pytest.fixture
def service(registry: str, tmp_path: Path) -> Iterator[str]:
    """The service on 127.0.0.1 (stopped at the end); yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTIVE_SCORING_")}
    env |= {"MLFLOW_TRACKING_URI": registry, "MLFLOW_DISABLE_TELEMETRY": "true",
            "PREDICTIVE_SCORING_API_KEYS": API_KEY,
            "PREDICTIVE_SCORING_MODEL_URI": f"models:/{MODEL_NAME}@champion",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                                   "serving.app:create_app", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, cwd=REPO, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(server, url, tmp_path / "server.log")
        yield url
    finally:
        stop_server(server, 30)


def _wait_ready(server: subprocess.Popen, url: str, log: Path) -> None:
    for _ in range(START_SECONDS * 5):
        if server.poll() is not None:
            pytest.fail(f"the service exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the service was not ready after {START_SECONDS} s")


def test_docs_render_the_operations_offline(chromium: str, service: str,
                                            tmp_path: Path) -> None:
    page = httpx.get(f"{service}/docs").text
    assert "cdn" not in page.lower()  # every asset is the service's own
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          f"--virtual-time-budget={RENDER_MS}", "--dump-dom",
                          f"{service}/docs"], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'class="swagger-ui"' in dom
    for path in ("/v1/score", "/v1/score/batch", "/v1/model", "/v1/admin/reload"):
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "Authorize" in dom  # the key schemes, from the routes' declarations

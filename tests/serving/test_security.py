"""Security is declared with each route: every route of the app is walked, and all but
health, readiness, metrics and the docs refuse a request without a key; the OpenAPI
document lists the key schemes on exactly those routes."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from serving.app import create_app, docs_paths
from serving.security import (
    ADMIN,
    SCORING,
    Access,
    RequestRoute,
    app_routes,
    check_declared,
    declared_access,
    is_public,
)
from tests.serving.conftest import AUTH, settings_for

OPEN = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/redoc",
        "/docs/oauth2-redirect"}


@pytest.fixture(scope="module")
def app(registry: str) -> FastAPI:
    return create_app(settings_for(registry))


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app; a mount is asked for a file inside."""
    calls = []
    for route in app_routes(app):
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        path = route.path if getattr(route, "methods", None) else f"{route.path}/favicon.png"
        calls += [(method, path) for method in methods if method != "HEAD"]
    return calls


def test_every_route_but_health_readiness_metrics_and_docs_needs_a_key(app: FastAPI) -> None:
    calls = _requests(app)
    paths = {path for _, path in calls}
    assert {"/v1/score", "/v1/score/batch", "/v1/model", "/v1/admin/reload"} <= paths
    assert paths >= OPEN
    with TestClient(app) as client:  # no model is needed to be refused
        for method, path in calls:
            answer = client.request(method, path)
            if is_public(path, docs_paths(app)):
                assert answer.status_code == 200 or path in ("/ready",), (method, path)
                assert path in OPEN or path.startswith("/docs-assets/"), path
            else:
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/admin/reload", headers=AUTH).status_code == 403


def test_the_docs_list_the_key_schemes_on_exactly_the_secured_routes(app: FastAPI) -> None:
    schema = app.openapi()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            secured = operation.get("security")
            if path in OPEN:
                assert secured is None, (method, path)
            else:
                assert secured == [{"ApiKey": []}, {"Bearer": []}], (method, path)


def test_declared_access_is_read_from_the_route() -> None:
    levels = {route.path: declared_access(route.dependant) for route in
              app_routes(create_app(settings_for("unused")))
              if getattr(route, "dependant", None) is not None}
    assert levels["/v1/score"] == levels["/v1/model"] == Access.SCORE
    assert levels["/v1/admin/reload"] == Access.ADMIN
    assert levels["/health"] is None


def test_an_app_with_an_undeclared_route_does_not_build() -> None:
    app = FastAPI()
    secured = APIRouter(dependencies=[SCORING])

    @secured.get("/fine")
    def fine() -> dict[str, str]:
        return {}

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(secured)
    with pytest.raises(RuntimeError, match="forgotten"):
        check_declared(app, ())


def test_a_request_route_refuses_dependencies_it_would_skip() -> None:
    router = APIRouter(route_class=RequestRoute, dependencies=[ADMIN])

    async def fine(request: Request) -> None:
        return None

    router.add_api_route("/fine", fine, methods=["POST"])
    with pytest.raises(TypeError, match="runs no dependencies"):
        router.add_api_route("/skipped", fine, methods=["POST"],
                             dependencies=[Depends(lambda: None)])

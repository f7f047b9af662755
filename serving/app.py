"""The FastAPI app factory: ``uvicorn --factory serving.app:create_app`` or
``predictive-scoring serve``.

The lifespan loads the model on a background thread onto ``app.state.slot`` (``/health``
answers at once, ``/ready`` once the model is in), points MLflow at the project's store
and opens the prediction log when it is on. Errors answer with ``{"detail", "request_id"}``
and never carry a stack trace or internals; the trace goes to the service's log.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.loading import ModelLoadError, ModelSlot
from serving.observability import Metrics, RequestMiddleware, configure_logging
from serving.requests import openapi_components
from serving.routes import accounts, change, health, model, scores
from serving.security import KeyChecker, check_declared
from serving.settings import ENV_PREFIX, Settings

if TYPE_CHECKING:
    from serving.scoring import LoadedModel

log = logging.getLogger(__name__)

DESCRIPTION = """Lead scores for CRM integrations: the learned model's calibrated
probability, 0-100 score and suggested stage, next to the hand-set rules' points and
stage, with the reasons. Send an API key as `X-API-Key` or `Authorization: Bearer`."""


DOCS_ASSETS = "/docs-assets"


class SettingsError(RuntimeError):
    """The environment does not configure a usable service (message names the variables)."""


def read_settings() -> Settings:
    """Settings from the environment, with a message naming the variables at fault.

    Raises:
        SettingsError: A variable is missing or invalid.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors(include_url=False))
        raise SettingsError(f"the scoring service is not configured: {problems}") from None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The scoring service.

    Args:
        settings: Defaults to the environment (``PREDICTIVE_SCORING_*``).

    Returns:
        The app; the model loads when it starts (its lifespan).
    """
    settings = settings or read_settings()
    metrics = Metrics()
    # Swagger UI and ReDoc served from the package's own copies: the docs work offline.
    app = FastAPIOffline(title="predictive-scoring", version="1", description=DESCRIPTION,
                         lifespan=_lifespan, static_url=DOCS_ASSETS)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = KeyChecker(settings.api_keys, settings.admin_keys)
    app.state.slot = ModelSlot()
    app.state.prediction_log = None
    app.include_router(scores.router)
    app.include_router(change.router)
    app.include_router(accounts.router)
    app.include_router(model.router)
    app.include_router(health.router)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(RequestMiddleware, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    check_declared(app, docs_paths(app))
    return app


def docs_paths(app: FastAPI) -> tuple[str, ...]:
    """The paths of the API's documentation: the OpenAPI document, the two pages and their
    assets (open without a key)."""
    return (app.openapi_url, "/docs", "/redoc", app.swagger_ui_oauth2_redirect_url,
            DOCS_ASSETS)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's OpenAPI document plus the request bodies the hot routes read themselves
    (:mod:`serving.requests`), as the model in service and the limits accept them (built
    again after each model swap)."""
    if app.openapi_schema is None:
        from predictive_scoring.config import MAX_ACCOUNT_CONTACTS

        settings: Settings = app.state.settings
        serving = app.state.slot.current
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(openapi_components(
            serving.inputs() if serving is not None else None,
            settings.max_events_per_lead, settings.max_batch_leads,
            serving.accounts.scorer.max_contacts if serving is not None
            and serving.accounts is not None else MAX_ACCOUNT_CONTACTS))
        app.openapi_schema = schema
    return app.openapi_schema


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    if settings.prediction_log:
        from serving.prediction_log import PredictionLog

        app.state.prediction_log = PredictionLog(settings.prediction_log_url,
                                                 settings.prediction_log_spool,
                                                 app.state.metrics,
                                                 settings.prediction_log_bins_days)
    stop = threading.Event()
    threading.Thread(target=_load_and_follow, args=(app, stop), name="model-load",
                     daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        if app.state.prediction_log is not None:
            app.state.prediction_log.close()


def _load_and_follow(app: FastAPI, stop: threading.Event) -> None:
    """Point MLflow at the project's store, load the model, then (if configured) follow
    the URI to new versions. Runs on its own thread: the libraries the model needs are
    imported here, while the worker already answers its supervisor and ``/health``."""
    from predictive_scoring.config import BaseConfig, ConfigError, load_config
    from predictive_scoring.tracking import store

    settings: Settings = app.state.settings
    slot: ModelSlot = app.state.slot
    try:
        store.use_tracking(load_config(settings.base_config, BaseConfig))
    except ConfigError as exc:
        slot.error = f"the project settings cannot be read: {exc}"
        log.error("no model can load; /ready answers 503: %s", slot.error)
        return
    try:
        _, current = slot.load(settings.model_uri)
    except ModelLoadError as exc:
        log.error("the model did not load; /ready answers 503 until a reload succeeds: %s",
                  exc)
    else:
        _swapped_in(app, current)
    if settings.reload_check_seconds > 0:
        slot.follow(settings.model_uri, settings.reload_check_seconds, stop,
                    lambda model: _swapped_in(app, model))


def _swapped_in(app: FastAPI, model: LoadedModel) -> None:
    started = time.perf_counter()
    settle_heap()
    timings = (model.timings or {}) | {"settle": round(time.perf_counter() - started, 3)}
    app.state.metrics.serving(model.ref.name, model.ref.version)
    app.openapi_schema = None  # the request schema documents the model in service
    log.info("model loaded", extra={"fields": {"name": model.ref.name,
                                               "version": model.ref.version,
                                               "fast_path": model.online.fast,
                                               **{f"{step}_seconds": seconds
                                                  for step, seconds in timings.items()}}})


def settle_heap() -> None:
    """Take the loaded model and the imported libraries out of the collector's scans.

    A request allocates thousands of short-lived objects (a 1000-lead batch about a
    hundred thousand), and each full collection would walk the whole heap: several
    hundred thousand objects of the model, pandas, scikit-learn and MLflow, which never
    die. Freezing them after a load cut parsing a 1000-lead batch from ~140 ms to ~40 ms
    and removes the full-collection pauses from the latency tail. Unfreezing first lets
    the collection free a replaced model's reference cycles.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _metrics(request: Request) -> Response:
    serving = request.app.state.slot.current
    if serving is not None and serving.drift is not None:
        request.app.state.metrics.drift(serving.drift.values())
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [{"loc": list(error.get("loc", ())), "msg": error.get("msg", "invalid"),
               "type": error.get("type", "invalid")} for error in exc.errors()]
    return JSONResponse({"detail": detail, "request_id": _request_id(request)},
                        status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, "request_id": _request_id(request)},
                        status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc,
              extra={"fields": {"request_id": _request_id(request)}})
    # Answered by the outermost middleware, outside RequestMiddleware: add the id here.
    request_id = _request_id(request)
    return JSONResponse({"detail": "internal error; the service log has the details under "
                         "this request id", "request_id": request_id},
                        status_code=500, headers={"X-Request-ID": request_id or ""})

"""Request ids, the body-size limit, one structured log line per request, and Prometheus.

:class:`RequestMiddleware` is plain ASGI (no per-request task or body copy, unlike
Starlette's ``BaseHTTPMiddleware``): it gives each request an id (the caller's
``X-Request-ID`` when it is a short token, else a new one) and returns it as a header,
refuses bodies over the limit with 413, then logs one JSON line and updates the metrics.
The log line holds method, route, status, duration, the model version and the lead ids
scored: no other lead data, no headers, never a key.

Metrics (``/metrics``): requests by route and status, a latency histogram per route, the
distribution of scores given, leads scored or refused, reloads, the model in service,
and the online drift gauges (:mod:`serving.drift`: the last leads' scores against the
training reference, their unknown categories, the model's age in days).
Under several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder and
``/metrics`` adds up every worker's values.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(range(10, 101, 10))
ACCESS_LOGGER = "serving.access"
LOGGED_LEAD_IDS = 50
"""A batch logs at most this many lead ids (and their count)."""


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter("scoring_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("scoring_http_request_duration_seconds",
                                 "Time to answer a request", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.scores = Histogram("scoring_lead_score", "Scores given (0-100)",
                                ["model_version"], buckets=SCORE_BUCKETS, registry=r)
        self.leads = Counter("scoring_leads", "Leads scored or refused", ["outcome"],
                             registry=r)
        self.reloads = Counter("scoring_model_reloads", "Model reloads", ["outcome"],
                               registry=r)
        self.model_info = Gauge("scoring_model_info", "The model in service (value 1)",
                                ["name", "version"], registry=r, multiprocess_mode="liveall")
        self.prediction_log = Counter("scoring_prediction_log_rows",
                                      "Prediction log rows: spooled (before answering), "
                                      "written, replayed (from a stopped worker's spool) "
                                      "or rejected by the database", ["outcome"], registry=r)
        self.prediction_log_pending = Gauge("scoring_prediction_log_pending_rows",
                                            "Rows spooled and not yet in the database",
                                            registry=r, multiprocess_mode="livesum")
        self.score_psi = Gauge("scoring_score_psi", "Population stability index of the "
                               "last scored leads' probabilities against the training "
                               "leads' (0.1: watch, 0.25: shifted)", registry=r,
                               multiprocess_mode="liveall")
        self.unknown_categories = Gauge("scoring_unknown_category_share",
                                        "Share of the last scored leads' categorical values "
                                        "that training never saw", registry=r,
                                        multiprocess_mode="liveall")
        self.drift_window = Gauge("scoring_drift_window_leads", "Leads in the window the "
                                  "drift gauges read", registry=r, multiprocess_mode="liveall")
        self.model_age = Gauge("scoring_model_age_days", "Days since the model in service "
                               "was trained", registry=r, multiprocess_mode="liveall")

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: ``labels`` takes a lock and checks its
        arguments on every call, which the per-request counting would pay each time."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def serving(self, name: str, version: str) -> None:
        """Mark which model is in service (the previous one's series is removed)."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)

    def drift(self, values: dict[str, float | None]) -> None:
        """Set the drift gauges (:meth:`serving.drift.OnlineDrift.values`); an unknown
        value reads NaN."""
        for gauge, key in ((self.score_psi, "psi"), (self.unknown_categories, "unknown_share"),
                           (self.drift_window, "leads"), (self.model_age, "age_days")):
            value = values.get(key)
            gauge.set(float("nan") if value is None else value)

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type (all workers' under multiprocess)."""
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class JsonLines(logging.Formatter):
    """Each record as one JSON object; ``record.fields`` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "worker": os.getpid(),  # several workers share one log
                "message": record.getMessage()}
        line |= getattr(record, "fields", {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the service's loggers (uvicorn's own stay as they are).

    Records skip what the lines never show: the caller's file and line (a walk up the
    stack), thread, process and multiprocessing names; the logging HOWTO's
    "Optimization" settings, a noticeable share of a one-lead request otherwise.
    """
    logging._srcfile = None  # type: ignore[attr-defined]  # documented in that HOWTO
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name in ("serving", "predictive_scoring"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (answered with 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_detail(None, limit))


def _too_large_detail(size: int | None, limit: int) -> str:
    shown = f"{size:,} bytes" if size is not None else "over the limit"
    return (f"request body is {shown}; the limit is {limit:,} bytes "
            "(PREDICTIVE_SCORING_MAX_BODY_BYTES): send fewer leads per request")


class RequestMiddleware:
    """Request id, body limit, access log line and metrics for every HTTP request.

    Args:
        app: The inner ASGI app.
        metrics: Where to count.
        max_body_bytes: Larger bodies are refused with 413 before they are read whole.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.log = logging.getLogger(ACCESS_LOGGER)
        self._routes: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, declared = _id_and_length(scope)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        response = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if declared is not None and declared > self.max_body_bytes:
                await self._too_large(send_with_id, request_id, declared)
            else:
                await self.app(scope, self._limited(receive), send_with_id)
        except BodyTooLarge:
            if response["started"]:
                raise
            await self._too_large(send_with_id, request_id, None)
        finally:
            self._record(scope, state, response["status"], time.perf_counter() - started)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return receive_limited

    def _template(self, scope: Scope) -> str:
        """The route a request the app did not reach (a 413 refused here) was meant for."""
        if self._routes is None:
            from serving.security import app_routes

            app = scope.get("app")
            self._routes = [(route.path_regex, route.path) for route in
                            (app_routes(app) if app is not None else ())
                            if getattr(route, "path_regex", None) is not None]
        path = scope.get("path", "")
        return next((template for regex, template in self._routes if regex.match(path)),
                    "unmatched")

    async def _too_large(self, send: Send, request_id: str, declared: int | None) -> None:
        body = json.dumps({"detail": _too_large_detail(declared, self.max_body_bytes),
                           "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        template = getattr(scope.get("route"), "path", None) or self._template(scope)
        self.metrics.child(self.metrics.requests, scope["method"], template, str(status)).inc()
        self.metrics.child(self.metrics.latency, template).observe(seconds)
        fields = {"request_id": state.get("request_id"), "method": scope["method"],
                  "route": template, "status": status,
                  "duration_ms": round(seconds * 1000, 3)}
        if "model_version" in state:
            fields["model_version"] = state["model_version"]
        if "lead_ids" in state:
            lead_ids = state["lead_ids"]
            fields["leads"] = len(lead_ids)
            fields["lead_ids"] = lead_ids[:LOGGED_LEAD_IDS]
        self.log.info("request", extra={"fields": fields})


def _id_and_length(scope: Scope) -> tuple[str, int | None]:
    """The request id (the caller's ``X-Request-ID`` when it is a short token, else a new
    random one) and the declared ``Content-Length`` (None when absent or not a number)."""
    request_id, length = None, None
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _CLIENT_REQUEST_ID.match(value):
            request_id = value.decode()
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return request_id or os.urandom(16).hex(), length

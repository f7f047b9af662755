"""The ``serve`` command: the HTTP scoring service under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    SERVICE_ENV,
    BaseOption,
    app,
    console,
    friendly,
)

NOT_SET = {f"{SERVICE_ENV}API_KEYS": "not set: give one or more comma-separated keys of at "
           "least 16 characters (e.g. `openssl rand -hex 24`); the service never runs "
           "without authentication"}


@app.command()
@friendly
def serve(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "or an exported folder (e.g. models/champion).")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say so).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    prediction_log: Annotated[str | None, typer.Option(
        help="Log every score to this database URL (e.g. sqlite:///out/predictions.db or "
        "postgresql+psycopg://user@host/db).")] = None,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Serve scores over HTTP. API keys come from the environment:
    PREDICTIVE_SCORING_API_KEYS (and PREDICTIVE_SCORING_ADMIN_KEYS for reload),
    comma-separated; every other PREDICTIVE_SCORING_* setting is read there too.

    The settings and the model URI are checked before the server starts: a bad one is
    one paragraph and exit code 2 (settings) or 3 (model)."""
    import uvicorn

    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.tracking import registry, store

    # The service reads its settings from the environment, in every worker process.
    os.environ[f"{SERVICE_ENV}MODEL_URI"] = model
    os.environ[f"{SERVICE_ENV}BASE_CONFIG"] = str(base_config)
    if prediction_log:
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG"] = "true"
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG_URL"] = prediction_log
    check_service_settings()
    store.use_tracking(load_config(base_config, BaseConfig))
    with console.status(f"Checking {store.redact(model)}..."):
        registry.check_model_uri(model)
    console.print(f"Serving {store.redact(model)} on http://{host}:{port} "
                  f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs")
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level="info")


def check_service_settings() -> None:
    """Validate the service's settings from the environment, as its workers will.

    Raises:
        ConfigError: Every setting at fault, by its environment variable, with the reason
            (never a key's value).
    """
    from pydantic import ValidationError

    from predictive_scoring.config import ConfigError
    from serving.settings import Settings

    try:
        Settings()
    except ValidationError as exc:
        lines = [f"the service's settings ({exc.error_count()} problem(s)):"]
        for error in exc.errors():
            variable = f"{SERVICE_ENV}{'_'.join(map(str, error['loc'])).upper()}"
            reason = (NOT_SET.get(variable, "not set") if error["type"] == "missing"
                      else error["msg"].removeprefix("Value error, "))
            lines.append(f"  {variable}: {reason}" if error["loc"] else f"  {reason}")
        raise ConfigError("\n".join(lines)) from None

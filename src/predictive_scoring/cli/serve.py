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
    comma-separated; every other PREDICTIVE_SCORING_* setting is read there too."""
    import uvicorn

    from predictive_scoring.tracking.store import redact

    if not os.environ.get(f"{SERVICE_ENV}API_KEYS"):
        raise ValueError(f"set {SERVICE_ENV}API_KEYS to one or more comma-separated keys "
                         "(at least 16 characters each): the service never runs without "
                         "authentication")
    # The service reads its settings from the environment, in every worker process.
    os.environ[f"{SERVICE_ENV}MODEL_URI"] = model
    os.environ[f"{SERVICE_ENV}BASE_CONFIG"] = str(base_config)
    if prediction_log:
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG"] = "true"
        os.environ[f"{SERVICE_ENV}PREDICTION_LOG_URL"] = prediction_log
    console.print(f"Serving {redact(model)} on http://{host}:{port} "
                  f"({workers} worker{'s' if workers > 1 else ''}); docs at /docs")
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port,
                workers=workers, access_log=False, log_level="info")

"""A bare FastAPI app whose POST endpoint does nothing: the framework's own cost, and the
floor a service's start-up is compared with (it imports FastAPI and nothing else)."""

from __future__ import annotations

from fastapi import FastAPI


def noop_app() -> FastAPI:
    """The app (``uvicorn --factory benchmarks._noop:noop_app``)."""
    app = FastAPI()

    @app.post("/noop")
    async def noop() -> dict[str, bool]:
        return {"ok": True}

    return app

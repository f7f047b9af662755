"""Liveness and readiness (no key needed: load balancers and orchestrators call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.loading import ModelSlot
from serving.schemas import ModelRef, StatusOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=StatusOut)
def health(request: Request) -> StatusOut:
    """The process is alive and answering (with the model in service, once loaded)."""
    return StatusOut(status="ok", model=_serving(request.app.state.slot))


def _serving(slot: ModelSlot) -> ModelRef | None:
    model = slot.current
    return ModelRef(name=model.ref.name, version=model.ref.version) if model else None


@router.get("/ready", response_model=StatusOut,
            responses={503: {"model": StatusOut, "description": "No model loaded (yet)"}})
def ready(request: Request) -> StatusOut | JSONResponse:
    """A model is loaded and the service can score (503 while loading or after a failed
    first load, with the reason)."""
    slot: ModelSlot = request.app.state.slot
    serving = _serving(slot)
    prediction_log = request.app.state.prediction_log
    logged = prediction_log.status() if prediction_log is not None else None
    if serving is not None:
        return StatusOut(status="ready", model=serving, prediction_log=logged)
    status = StatusOut(status="failed" if slot.error else "loading", reason=slot.error,
                       prediction_log=logged)
    return JSONResponse(status.model_dump(), status_code=503)

"""``GET /v1/model`` (what is serving) and ``POST /v1/admin/reload`` (swap in the champion)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from serving.loading import ModelLoadError, ModelSlot
from serving.routes.scores import ERRORS, serving_model
from serving.schemas import (
    AccountModelOut,
    ErrorOut,
    FeatureOut,
    ModelOut,
    ModelRef,
    ReloadOut,
)
from serving.security import ADMIN, SCORING

if TYPE_CHECKING:
    from serving.scoring import LoadedModel

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[SCORING])
log = logging.getLogger(__name__)


def describe(model: LoadedModel) -> ModelOut:
    """Identity, quality, inputs, thresholds and rules of a loaded model."""
    scorer, meta = model.scorer, model.scorer.metadata
    columns = scorer.columns
    features = [FeatureOut(name=name, kind="categorical" if name in columns.categorical
                           else "numeric", group=columns.groups.get(name, "fit"))
                for name in columns.all]
    return ModelOut(
        name=model.ref.name, version=model.ref.version, alias=model.ref.alias,
        uri=model.ref.uri, dataset=scorer.dataset, shape=scorer.shape,
        model_kind=meta.get("model_kind"), calibration=meta.get("calibration"),
        trained_at=meta.get("trained_at"), trained_ages_days=scorer.trained_ages,
        loaded_at=model.loaded_at,
        fast_path=model.online.fast,
        test_metrics={k: _finite(v) for k, v in (meta.get("test_metrics") or {}).items()},
        features=features, raw_fields=scorer.raw_attributes(),
        stage_thresholds={str(stage): float(bar) for stage, bar
                          in scorer.stage_thresholds.items()},
        rules=scorer.rules.model_dump(mode="json"), accounts=_accounts(model))


def _accounts(model: LoadedModel) -> AccountModelOut | None:
    if model.accounts is None:
        return None
    accounts = model.accounts.scorer
    return AccountModelOut(
        max_contacts=accounts.max_contacts, roles=list(accounts.roles),
        buying_roles=sorted(accounts.role_lift, key=lambda r: -accounts.role_lift[r]),
        attributes=[*accounts.numeric, *accounts.categorical],
        stage_thresholds={str(stage): float(bar) for stage, bar
                          in accounts.stage_thresholds.items()},
        test_metrics={k: _finite(v) for k, v in (accounts.metadata.get("test_metrics") or {})
                      .items() if isinstance(v, int | float)})


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


@router.get("/model", response_model=ModelOut, responses=ERRORS)
def model_metadata(request: Request) -> ModelOut:
    """The model in service: name, version, alias, trained at, test metrics, features,
    stage thresholds and the rules in use."""
    return describe(serving_model(request))


@router.post("/admin/reload", response_model=ReloadOut, dependencies=[ADMIN],
             responses={401: ERRORS[401], 403: {"model": ErrorOut, "description":
                                                "Not an admin key"},
                        409: {"model": ErrorOut, "description": "A reload is running"},
                        502: {"model": ErrorOut, "description": "The new model failed to "
                              "load or failed its smoke test; the old one keeps serving"}})
async def reload_model(request: Request) -> ReloadOut:
    """Load the current champion (or the configured URI) without downtime; on failure
    the old model keeps serving and the answer says why."""
    slot: ModelSlot = request.app.state.slot
    if not slot.reloading.acquire(blocking=False):
        raise HTTPException(status.HTTP_409_CONFLICT, "a reload is already running")
    try:
        previous, current = await run_in_threadpool(slot.load,
                                                    request.app.state.settings.model_uri)
    except ModelLoadError as exc:
        metrics = request.app.state.metrics
        metrics.child(metrics.reloads, "failed").inc()
        log.error("reload failed, the old model keeps serving: %s", exc)
        serving = slot.current
        keeps = (f"; still serving {serving.ref.name} version {serving.ref.version}"
                 if serving else "")
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"{exc}{keeps}") from None
    finally:
        slot.reloading.release()
    metrics = request.app.state.metrics
    metrics.child(metrics.reloads, "succeeded").inc()
    metrics.serving(current.ref.name, current.ref.version)
    request.state.model_version = current.ref.version
    log.info("model reloaded", extra={"fields": {"name": current.ref.name,
                                                 "version": current.ref.version}})
    return ReloadOut(changed=previous is None or previous.ref != current.ref,
                     previous=_ref(previous), current=_ref(current))


def _ref(model: LoadedModel | None) -> ModelRef | None:
    return ModelRef(name=model.ref.name, version=model.ref.version) if model else None

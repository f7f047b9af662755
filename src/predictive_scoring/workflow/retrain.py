"""The scheduled retrain: train on the latest data, compare with the champion on the same
leads, promote under the paired rule, and tell a running service to reload when the
champion moved. ``retrain`` runs it from cron; nothing here prints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum

from predictive_scoring.data.dataset import EventsDataset, TableDataset
from predictive_scoring.train import TrainingPlan
from predictive_scoring.workflow.runs import RunOutcome, RunSettings, train_and_register
from predictive_scoring.workflow.training import InMemorySource, Progress, silent

ADMIN_KEY_ENV = "PREDICTIVE_SCORING_ADMIN_KEYS"
"""The service's admin keys (comma-separated); ``retrain --reload-url`` sends the first."""

RELOAD_PATH = "/v1/admin/reload"
RELOAD_TIMEOUT_SECONDS = 120.0


class Verdict(StrEnum):
    """How a retrain ended (each has its exit code in the command line)."""

    PROMOTED = "promoted"
    """The new version is the champion (the first, or better on the same leads)."""
    KEPT = "kept"
    """The champion stays: the new version is not better on the same leads."""
    NOT_PROMOTED = "not_promoted"
    """No champion and the new version does not beat the points: nothing to serve."""
    NO_CONVERTERS = "no_converters"
    """The test leads hold one outcome only: nothing could be compared."""
    CHAMPION_UNUSABLE = "champion_unusable"
    """The champion cannot be loaded or cannot score the new data."""
    RELOAD_FAILED = "reload_failed"
    """Promoted, but the running service did not reload."""


class ReloadFailed(RuntimeError):
    """The service did not reload the champion (unreachable, refused, or failed)."""


@dataclass(frozen=True)
class RetrainOutcome:
    """What a scheduled retrain did.

    Attributes:
        run: The training run and its promotion.
        verdict: How it ended.
        reloaded: The service's answer to the reload, or the reason it failed (None
            when no reload was asked or the champion did not move).
    """

    run: RunOutcome
    verdict: Verdict
    reloaded: str | None = None


def reload_url(url: str) -> str:
    """The reload endpoint of a service given by its base URL or the endpoint itself."""
    url = url.rstrip("/")
    return url if url.endswith(RELOAD_PATH) else url + RELOAD_PATH


def reload_service(url: str, admin_key: str,
                   timeout: float = RELOAD_TIMEOUT_SECONDS) -> str:
    """Ask a running service to load the current champion.

    Returns:
        The version the service serves now, in words.

    Raises:
        ReloadFailed: The service cannot be reached, refuses the key, or its reload
            failed (its answer's detail is quoted).
    """
    target = reload_url(url)
    request = urllib.request.Request(target, data=b"", method="POST",
                                     headers={"X-API-Key": admin_key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = _detail(exc.read())
        raise ReloadFailed(f"the service at {target} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReloadFailed(f"cannot reach the service at {target}: {reason}") from None
    current = body.get("current") or {}
    return (f"the service at {target} now serves '{current.get('name')}' version "
            f"{current.get('version')}")


def _detail(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("detail"))
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace")[:200] or "no detail"


def verdict_of(run: RunOutcome) -> Verdict:
    """How a run ended, before any reload."""
    promotion = run.promotion
    if promotion.failure is not None:
        return Verdict(promotion.failure.value)
    if promotion.moves_champion:
        return Verdict.PROMOTED
    return Verdict.KEPT if promotion.decision == "kept" else Verdict.NOT_PROMOTED


def retrain(dataset: EventsDataset | TableDataset, plan: TrainingPlan, settings: RunSettings,
            reload: tuple[str, str] | None = None, report: Progress = silent
            ) -> RetrainOutcome:
    """Train on the dataset, promote under the paired rule, and reload the service when
    the champion moved.

    Args:
        dataset: The latest data, validated.
        plan: The configs.
        settings: Where the run writes and what it logs (it registers).
        reload: The service's URL and an admin key, or None.
        report: Called with each step's name.

    Raises:
        TrainingError: Too little data, or leakage warnings when ``plan.strict``.
        StoreUnreachable: The tracking store cannot be reached.
    """
    run = train_and_register(InMemorySource(dataset), plan, settings, None, report)
    verdict = verdict_of(run)
    if verdict is not Verdict.PROMOTED or reload is None:
        return RetrainOutcome(run, verdict)
    report("Asking the service to reload the champion")
    try:
        return RetrainOutcome(run, verdict, reload_service(*reload))
    except ReloadFailed as exc:
        return RetrainOutcome(run, Verdict.RELOAD_FAILED, str(exc))

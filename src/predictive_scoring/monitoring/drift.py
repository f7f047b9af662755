"""Drift and staleness: the logged leads against the training reference, and alerts.

**Population stability index.** For one input (or the score), over the bins of the
training reference (:mod:`.reference`: the training deciles of a number, the training
categories of a category, each with a *missing* bin, and an *unknown* bin for categories
training never saw), with ``a_i`` the share of logged leads and ``e_i`` the share of
training leads in bin ``i``::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

Shares are floored at :data:`FLOOR` (0.0001), so an empty bin adds a large but finite
amount. Read it as the usual rule of thumb: under 0.1 stable, 0.1 to 0.25 worth watching,
over 0.25 shifted (the thresholds are ``monitoring.psi_watch`` and ``psi_alert`` in
``configs/base.yaml``). The unknown share of a categorical input is the share of its
known values (not missing) that training never saw.

**Staleness**: days since the model was trained and since the latest moment its training
examples describe, against ``max_model_age_days`` and ``max_data_age_days``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.config import MonitoringConfig
from predictive_scoring.monitoring.reference import codes_of

FLOOR = 1e-4


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    """The population stability index of observed counts (or shares) against expected
    shares over the same bins (see the module docstring)."""
    observed = np.asarray(observed, dtype=np.float64)
    total = observed.sum()
    if total <= 0:
        return float("nan")
    a = np.maximum(observed / total, FLOOR)
    e = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def field_drift(field: Mapping[str, Any], byte_counts: np.ndarray) -> dict[str, Any]:
    """One input's drift from the logged leads' byte counts at its position.

    Args:
        field: The field's entry of the reference.
        byte_counts: How often each byte (0-255) stands at the field's position.

    Returns:
        ``field``, ``kind``, ``psi``, ``leads``, ``missing`` (logged share) and
        ``missing_reference``, and for a category ``unknown_share``; ``unreadable`` bins
        (a symbol outside the field's bins) are counted and left out.
    """
    codes = codes_of(np.arange(256, dtype=np.uint8))
    n_bins = len(field["shares"])
    binned = np.zeros(n_bins + 2)  # the bins, missing, unknown
    unreadable = 0
    for byte in np.flatnonzero(byte_counts):
        code, count = int(codes[byte]), int(byte_counts[byte])
        if 0 <= code < n_bins:
            binned[code] += count
        elif code == -1:
            binned[n_bins] += count
        elif code == -2 and field["kind"] == "categorical":
            binned[n_bins + 1] += count
        else:
            unreadable += count
    expected = np.array([*field["shares"], field["missing"], 0.0])
    leads = int(binned.sum())
    out = {"field": field["name"], "kind": field["kind"],
           "psi": _rounded(psi(binned, expected)) if leads else None, "leads": leads,
           "missing": _rounded(binned[n_bins] / leads) if leads else None,
           "missing_reference": _rounded(field["missing"]), "unreadable": unreadable}
    if field["kind"] == "categorical":
        known = leads - binned[n_bins]
        out["unknown_share"] = _rounded(binned[n_bins + 1] / known) if known else None
    return out


def score_drift(reference: Mapping[str, Any], probability: np.ndarray) -> dict[str, Any]:
    """The score's drift: logged probabilities against the training deciles."""
    score = reference["score"]
    bins = np.searchsorted(np.asarray(score["edges"], dtype=np.float64),
                           np.asarray(probability, dtype=np.float64), side="right")
    counts = np.bincount(bins, minlength=len(score["shares"]))
    return {"psi": _rounded(psi(counts, score["shares"])) if len(probability) else None,
            "leads": len(probability),
            "shares": [_rounded(c / max(len(probability), 1)) for c in counts],
            "shares_reference": [_rounded(s) for s in score["shares"]]}


def staleness(reference: Mapping[str, Any], now: pd.Timestamp) -> dict[str, Any]:
    """Days since training and since the training data's latest moment (None unknown)."""
    def days(text: str | None) -> float | None:
        if not text:
            return None
        moment = pd.Timestamp(text)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
        return round((now - moment).total_seconds() / 86400, 1)

    return {"trained_at": reference.get("trained_at"),
            "days_since_training": days(reference.get("trained_at")),
            "training_data_end": reference.get("data_end"),
            "days_since_training_data": days(reference.get("data_end"))}


def version_drift(reference: Mapping[str, Any] | None, counts: Mapping[int, np.ndarray],
                  probability: np.ndarray, without_bins: int,
                  now: pd.Timestamp) -> dict[str, Any]:
    """A model version's drift: per input, of the score, and its staleness.

    Args:
        reference: The version's training reference (None: drift unavailable).
        counts: Bin-string length -> byte counts ``(length, 256)`` of its logged rows.
        probability: Its logged probabilities.
        without_bins: Its logged rows with no input bins.
        now: The moment ages are counted to.
    """
    if reference is None:
        return {"available": False, "reason": "the model's bundle holds no training "
                "reference (trained before monitoring existed, or not found): retrain "
                "to monitor its drift"}
    fields = reference["fields"]
    matching = counts.get(len(fields))
    other_lengths = {length: int(c[0].sum()) for length, c in counts.items()
                     if length != len(fields)}
    inputs = ([field_drift(f, matching[i]) for i, f in enumerate(fields)]
              if matching is not None else [])
    inputs.sort(key=lambda d: -(d["psi"] or 0))
    return {"available": True, "score": score_drift(reference, probability),
            "inputs": inputs, "rows_with_bins": int(matching[0].sum()) if matching is not None
            else 0, "rows_without_bins": without_bins,
            "rows_with_unreadable_bins": sum(other_lengths.values()),
            **staleness(reference, now)}


def alerts(drift: Mapping[str, Mapping[str, Any]], accuracy: Mapping[str, Mapping[str, Any]],
           settings: MonitoringConfig) -> list[dict[str, Any]]:
    """Alerts of every model version: shifted inputs or score, unknown categories, an old
    model or old training data, and a model beaten by the points on matured leads.

    Args:
        drift: ``name/version`` -> :func:`version_drift`.
        accuracy: ``name/version`` -> its accuracy block
            (:func:`predictive_scoring.monitoring.metrics.scored_block`).
        settings: The thresholds.

    Returns:
        ``{kind, model_version, field, value, threshold, message}`` each.
    """
    out = []
    for version, found in drift.items():
        if not found.get("available"):
            continue
        score = found["score"]["psi"]
        if score is not None and score > settings.psi_alert:
            out.append(_alert("score_drift", version, None, score, settings.psi_alert,
                              f"the scores' distribution has shifted from training "
                              f"(PSI {score:.2f} > {settings.psi_alert:g})"))
        for field in found["inputs"]:
            if field["psi"] is not None and field["psi"] > settings.psi_alert:
                out.append(_alert("input_drift", version, field["field"], field["psi"],
                                  settings.psi_alert, f"{field['field']} is distributed "
                                  f"unlike in training (PSI {field['psi']:.2f} > "
                                  f"{settings.psi_alert:g})"))
            unknown = field.get("unknown_share")
            if unknown is not None and unknown > settings.unknown_category_share:
                out.append(_alert("unknown_categories", version, field["field"], unknown,
                                  settings.unknown_category_share,
                                  f"{unknown:.1%} of {field['field']} values are "
                                  "categories training never saw"))
        for key, limit, what in (("days_since_training", settings.max_model_age_days,
                                  "the model was trained"),
                                 ("days_since_training_data", settings.max_data_age_days,
                                  "the model's training data ended")):
            days = found.get(key)
            if days is not None and days > limit:
                out.append(_alert(key, version, None, days, limit,
                                  f"{what} {days:.0f} days ago (limit {limit:g}): retrain"))
    for version, block in accuracy.items():
        model, rules = block["model"]["roc_auc"], block["rules"]["roc_auc"]
        if (block["n_matured"] >= settings.min_matured and model is not None
                and rules is not None and model < rules - settings.auc_margin):
            out.append(_alert("beaten_by_points", version, None, model, rules,
                              f"on {block['n_matured']:,} matured scores the model's "
                              f"ROC-AUC {model:.3f} is below the points' {rules:.3f}"))
    return out


def _alert(kind: str, version: str, field: str | None, value: float, threshold: float,
           message: str) -> dict[str, Any]:
    return {"kind": kind, "model_version": version, "field": field,
            "value": _rounded(value), "threshold": threshold, "message": message}


def _rounded(value: float) -> float | None:
    number = float(value)
    return round(number, 6) if np.isfinite(number) else None

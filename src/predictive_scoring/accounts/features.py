"""Account-level features from contacts: their scores combined, the buying group's
engagement (engaged contacts, roles covered, recency of the last engagement) and the
company's own attributes.

Every function takes contact rows keyed by their account snapshot (``account_id``,
``as_of``) and returns one row per snapshot, in key order; the same functions serve
training, batch scoring and the API.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from predictive_scoring.accounts.contract import ACCOUNT_ID, ACCOUNT_ROLE
from predictive_scoring.accounts.snapshots import KEY

ENGAGED_DAYS = 30
"""A contact is engaged when it did something (not a passive event) in this many days."""
NEVER_DAYS = 365.0
"""Days since the last engagement of an account nobody engaged with (a cap)."""
PROBABILITY_FLOOR = 1e-6

NUMERIC = ["combined_logit", "best_logit", "log_contacts", "engaged_contacts",
           "log_days_since_engagement"]
"""The account features every account model reads (then one flag per role)."""


def contact_engagement(contacts: pd.DataFrame, events: pd.DataFrame | None,
                       passive: Sequence[str]) -> pd.DataFrame:
    """Per contact row (``lead_id``, ``as_of``): days since its last engagement before
    ``as_of`` (NaN: none) and its engagements in the last :data:`ENGAGED_DAYS` days.

    Returns:
        ``days_since_engaged`` and ``engaged_recent``, on ``contacts``' index.
    """
    result = pd.DataFrame({"days_since_engaged": np.nan, "engaged_recent": 0.0},
                          index=contacts.index)
    if events is None or not len(events) or not len(contacts):
        return result
    active = events.loc[~events["event_type"].astype(str).isin(list(passive)),
                        ["lead_id", "timestamp"]]
    active = pd.DataFrame({"lead_id": active["lead_id"].astype(str).to_numpy(),
                           "timestamp": _ns(active["timestamp"])}).sort_values(
        ["timestamp"], kind="stable")
    active["done"] = active.groupby("lead_id").cumcount() + 1
    as_of = _ns(contacts["as_of"])
    left = pd.DataFrame({"lead_id": contacts["lead_id"].astype(str).to_numpy(),
                         "as_of": as_of, "since": as_of - pd.Timedelta(days=ENGAGED_DAYS),
                         "row": np.arange(len(contacts))})
    now = pd.merge_asof(left.sort_values("as_of", kind="stable"), active, left_on="as_of",
                        right_on="timestamp", by="lead_id", allow_exact_matches=False)
    then = pd.merge_asof(left.sort_values("since", kind="stable"), active, left_on="since",
                         right_on="timestamp", by="lead_id", allow_exact_matches=False)
    now = now.set_index("row").sort_index()
    then = then.set_index("row").sort_index()
    days = (now["as_of"] - now["timestamp"]) / pd.Timedelta(days=1)
    recent = now["done"].fillna(0) - then["done"].fillna(0)
    result["days_since_engaged"] = days.to_numpy(float)
    result["engaged_recent"] = recent.to_numpy(float)
    return result


def _ns(times: pd.Series) -> pd.Series:
    """UTC nanosecond timestamps (merge_asof needs one resolution on both sides)."""
    return pd.Series(pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")
                     .to_numpy(), dtype="datetime64[ns, UTC]")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(p / (1 - p))


def empty_features(index: pd.MultiIndex, roles: Sequence[str]) -> pd.DataFrame:
    """The features of an account with no contact (what a contact's absence leaves)."""
    nobody = float(_logit(np.array([0.0]))[0])
    values = {"combined_logit": nobody, "best_logit": nobody, "log_contacts": 0.0,
              "engaged_contacts": 0.0, "log_days_since_engagement": float(np.log1p(NEVER_DAYS)),
              **{f"engaged_{name}": 0.0 for name in roles}}
    return pd.DataFrame(values, index=index)


def account_features(contacts: pd.DataFrame, roles: Sequence[str],
                     by: Sequence[str] = tuple(KEY)) -> pd.DataFrame:
    """One row per account snapshot from its contacts' rows.

    Args:
        contacts: ``account_id``, ``as_of``, ``probability`` (the contact's calibrated
            score), ``days_since_engaged``, ``engaged_recent`` and (when the dataset
            names roles) ``account_role``.
        roles: The roles with a flag of their own (the training vocabulary).
        by: The columns naming an account snapshot (explanations add the contact left
            out).

    Returns:
        Indexed by ``by`` (``account_id``, ``as_of``), sorted: :data:`NUMERIC` then
        ``engaged_<role>`` for each role (1 when an engaged contact holds it).
    """
    engaged = contacts["engaged_recent"].to_numpy(float) > 0
    work = pd.DataFrame({
        **{column: contacts[column].to_numpy() for column in by},
        "log_miss": np.log1p(-np.clip(contacts["probability"].to_numpy(float), 0,
                                      1 - PROBABILITY_FLOOR)),
        "best": contacts["probability"].to_numpy(float), "engaged": engaged,
        "days": contacts["days_since_engaged"].to_numpy(float)})
    role = (contacts[ACCOUNT_ROLE].astype(object).to_numpy() if ACCOUNT_ROLE in contacts
            else np.full(len(contacts), None, dtype=object))
    for name in roles:
        work[f"engaged_{name}"] = engaged & (role == name)
    flags = {f"engaged_{name}": (f"engaged_{name}", "max") for name in roles}
    grouped = work.groupby(list(by), sort=True).agg(
        log_miss=("log_miss", "sum"), best=("best", "max"), n=("best", "size"),
        engaged_contacts=("engaged", "sum"), days=("days", "min"), **flags)
    combined = -np.expm1(grouped["log_miss"].to_numpy(float))
    features = pd.DataFrame({
        "combined_logit": _logit(combined),
        "best_logit": _logit(grouped["best"].to_numpy(float)),
        "log_contacts": np.log1p(grouped["n"].to_numpy(float)),
        "engaged_contacts": grouped["engaged_contacts"].to_numpy(float),
        "log_days_since_engagement": np.log1p(np.minimum(
            grouped["days"].fillna(NEVER_DAYS).to_numpy(float), NEVER_DAYS))},
        index=grouped.index)
    for name in roles:
        features[f"engaged_{name}"] = grouped[f"engaged_{name}"].to_numpy(float)
    return features


def account_attributes(index: pd.MultiIndex, contacts: pd.DataFrame,
                       table: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """The company's own attributes per account snapshot: from the accounts file when
    there is one, else from its contacts (the first non-missing value)."""
    if not columns:
        return pd.DataFrame(index=index)
    accounts = index.get_level_values(ACCOUNT_ID).astype(str)
    if table is not None:
        source = table.assign(**{ACCOUNT_ID: table[ACCOUNT_ID].astype(str)}).set_index(
            ACCOUNT_ID)
    else:
        present = [c for c in columns if c in contacts]
        source = contacts.assign(**{ACCOUNT_ID: contacts[ACCOUNT_ID].astype(str)}).groupby(
            ACCOUNT_ID)[present].first()
    values = source.reindex(accounts)
    return pd.DataFrame({c: (values[c].to_numpy() if c in values else np.nan)
                         for c in columns}, index=index)

"""The account points baseline CRMs use: the sum and the maximum of the contacts' points."""

from __future__ import annotations

import pandas as pd

from predictive_scoring.accounts.snapshots import KEY


def account_points(contacts: pd.DataFrame) -> pd.DataFrame:
    """``points_sum`` and ``points_max`` of each account snapshot's contacts.

    Args:
        contacts: ``account_id``, ``as_of`` and ``rule_points`` per contact row.

    Returns:
        Indexed by (``account_id``, ``as_of``), sorted (as :func:`.features.account_features`).
    """
    grouped = contacts.groupby(KEY, sort=True)["rule_points"]
    return pd.DataFrame({"points_sum": grouped.sum(), "points_max": grouped.max()})

"""Account snapshots: each account as it looked ``d`` days after its first contact (or on
the calendar dates the snapshot settings name), labelled by whether one of the contacts it
saw then reached the target stage within the horizon, with no look-ahead.

A snapshot sees the contacts created before it; a contact created later is a new lead
(scored as one) and joins the account's later snapshots. Accounts where a contact had
already reached the target stage are left out, as leads are, and so are snapshots whose
horizon runs past the end of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictive_scoring.accounts.contract import ACCOUNT_ID
from predictive_scoring.config import SnapshotConfig
from predictive_scoring.data.problems import ROW
from predictive_scoring.data.snapshots import candidate_as_of, first_reach

KEY = [ACCOUNT_ID, "as_of"]
"""An account snapshot's key (also on each of its contact rows)."""


@dataclass(frozen=True)
class AccountSnapshots:
    """Account examples with labels, the contacts each one sees, and what was left out.

    Attributes:
        frame: ``account_id``, ``first_created``, ``as_of``, ``label`` (0/1),
            ``n_contacts``; one row per account snapshot.
        contacts: ``account_id``, ``as_of``, then the lead's columns (``lead_id``,
            ``created_at``, attributes, ``account_role``): one row per contact a kept
            snapshot sees.
        n_candidates: Account snapshots with at least one contact, before exclusions.
        n_past_target: Left out: a contact had already reached the target stage.
        n_censored: Left out: the horizon runs past the end of the data.
    """

    frame: pd.DataFrame
    contacts: pd.DataFrame
    n_candidates: int
    n_past_target: int
    n_censored: int

    def note(self) -> str:
        """What was left out, and why (for the training notes)."""
        return (f"accounts: {len(self.frame):,} account snapshots; {self.n_past_target:,} "
                f"left out: a contact already past the target stage; {self.n_censored:,} "
                "left out: horizon runs past the end of the data")


def account_snapshots(leads: pd.DataFrame, stage_changes: pd.DataFrame,
                      config: SnapshotConfig, data_end: pd.Timestamp) -> AccountSnapshots:
    """Account examples of an events-shaped dataset's leads (those with an account id).

    Args:
        leads: The validated leads (``lead_id``, ``created_at``, ``account_id``, ...).
        stage_changes: Their stage changes (funnel stages).
        config: The dataset's snapshot settings (the same days and horizon as leads').
        data_end: The last moment the data covers.
    """
    members = leads.loc[leads[ACCOUNT_ID].notna()].drop(columns=[ROW], errors="ignore")
    first = members.groupby(ACCOUNT_ID, sort=True)["created_at"].min()
    accounts = pd.DataFrame({"lead_id": first.index.astype("string"),
                             "created_at": first.to_numpy()})
    candidates = candidate_as_of(accounts, config, data_end).rename(
        columns={"lead_id": ACCOUNT_ID, "created_at": "first_created"})
    contacts = candidates.merge(members, on=ACCOUNT_ID, how="inner")
    contacts = contacts.loc[contacts["created_at"] < contacts["as_of"]]
    reached = pd.Series(first_reach(stage_changes, config.target_stage)
                        .reindex(contacts["lead_id"]).to_numpy(),
                        index=contacts.index, dtype="datetime64[ns, UTC]")
    horizon_end = contacts["as_of"] + pd.Timedelta(days=config.horizon_days)
    per_contact = pd.DataFrame({
        ACCOUNT_ID: contacts[ACCOUNT_ID], "as_of": contacts["as_of"],
        "past": (reached < contacts["as_of"]).fillna(False).astype(bool),
        "won": ((reached >= contacts["as_of"]) & (reached < horizon_end))
        .fillna(False).astype(bool)})
    grouped = per_contact.groupby(KEY, sort=True).agg(
        past=("past", "any"), label=("won", "any"), n_contacts=("won", "size")).reset_index()
    censored = (grouped["as_of"] + pd.Timedelta(days=config.horizon_days) > data_end) \
        & ~grouped["past"]
    keep = ~(grouped["past"] | censored)
    frame = grouped.loc[keep, [*KEY, "label", "n_contacts"]]
    frame = frame.merge(candidates[[ACCOUNT_ID, "as_of", "first_created"]].drop_duplicates(KEY),
                        on=KEY, how="left")
    frame = frame[[ACCOUNT_ID, "first_created", "as_of", "label", "n_contacts"]].assign(
        label=frame["label"].astype(np.int8)).reset_index(drop=True)
    kept = contacts.merge(frame[KEY], on=KEY, how="inner").drop(columns=["first_created"])
    return AccountSnapshots(frame, kept.reset_index(drop=True), len(grouped),
                            int(grouped["past"].sum()), int(censored.sum()))

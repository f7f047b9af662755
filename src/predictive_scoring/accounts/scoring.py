"""Accounts scored from their contacts' scores: one row per account with its score,
suggested stage, points sum and maximum, the contacts that drive it (with their own top
reasons) and the missing roles. Batch files (``score --accounts``) and the API share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from predictive_scoring.accounts.baseline import account_points
from predictive_scoring.accounts.contract import ACCOUNT_ID, ACCOUNT_ROLE
from predictive_scoring.accounts.explain import (
    contact_effects,
    effect_text,
    missing_roles_text,
    top_contacts,
)
from predictive_scoring.accounts.model import AccountScorer
from predictive_scoring.accounts.snapshots import KEY
from predictive_scoring.config import ReadOptions

TOP_CONTACTS = 3
"""Contacts listed per account in a batch file."""


def score_accounts(scorer: AccountScorer, contacts: pd.DataFrame,
                   events: pd.DataFrame | None, table: pd.DataFrame | None = None,
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the accounts of already-scored contacts.

    Args:
        scorer: The account model.
        contacts: One row per contact: ``account_id``, ``as_of``, ``lead_id``,
            ``probability``, ``rule_points``, optionally ``account_role`` and the
            contact's reason columns.
        events: The contacts' events (for engagement), or None.
        table: The accounts file's rows (company attributes), or None.

    Returns:
        The accounts (one row per ``account_id`` and ``as_of``: ``n_contacts``,
        ``probability``, ``score``, ``suggested_stage``, ``points_sum``, ``points_max``,
        ``missing_roles`` as a list) and the explained contacts with their ``effect``.
    """
    from predictive_scoring.models.scorer import score_0_100

    contacts = scorer.engagement(contacts.reset_index(drop=True), events)
    frame = scorer.frame(contacts, table)
    probability = pd.Series(scorer.probability(frame), index=frame.index)
    points = account_points(contacts)
    counts = contacts.groupby(KEY, sort=True).size()
    accounts = frame.index.to_frame(index=False).assign(
        n_contacts=counts.to_numpy(np.int64), probability=probability.to_numpy(),
        score=score_0_100(probability.to_numpy()),
        suggested_stage=scorer.stage(probability.to_numpy()),
        points_sum=points["points_sum"].to_numpy(), points_max=points["points_max"].to_numpy(),
        missing_roles=scorer.missing_roles(frame))
    effects = contact_effects(scorer, contacts, table, probability)
    return accounts, contacts.loc[effects.index].assign(effect=effects.to_numpy())


def flat_accounts(accounts: pd.DataFrame, explained: pd.DataFrame, k: int = TOP_CONTACTS,
                  reasons: int = 2) -> pd.DataFrame:
    """The account rows as a flat file: ``top_contact_i``, its effect (``+12 pts``) and
    its own top reasons up, for i in 1..k, and the missing roles as a sentence."""
    top = top_contacts(explained, explained["effect"], k)
    reason_columns = [f"reason_up_{i}" for i in range(1, reasons + 1) if
                      f"reason_up_{i}" in top]
    keyed = accounts.assign(**{ACCOUNT_ID: accounts[ACCOUNT_ID].astype(str)}).set_index(KEY)
    flat = keyed.drop(columns=["missing_roles"])
    for rank in range(1, k + 1):
        rows = top.loc[top["rank"] == rank]
        rows = rows.assign(**{ACCOUNT_ID: rows[ACCOUNT_ID].astype(str)}).set_index(KEY)
        flat[f"top_contact_{rank}"] = rows["lead_id"].astype(str).reindex(flat.index)
        flat[f"top_contact_{rank}_effect"] = rows["effect"].map(effect_text).reindex(flat.index)
        text = rows[reason_columns].astype(object).apply(
            lambda row: "; ".join(str(v) for v in row if isinstance(v, str) and v), axis=1) \
            if reason_columns and len(rows) else pd.Series(dtype=object)
        flat[f"top_contact_{rank}_reasons"] = text.reindex(flat.index)
    flat["missing_roles"] = [missing_roles_text(r) for r in accounts["missing_roles"]]
    return flat.reset_index()


def contacts_for_accounts(scores: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """Scored leads joined to their account id and role (leads without one left out).

    Args:
        scores: The scores file's rows (``lead_id``, ``as_of``, ``probability``, ...).
        leads: ``lead_id``, ``account_id`` and optionally ``account_role``.
    """
    own = leads.assign(lead_id=leads["lead_id"].astype(str))
    keep = [c for c in ("lead_id", ACCOUNT_ID, ACCOUNT_ROLE) if c in own]
    scored = scores.assign(lead_id=scores["lead_id"].astype(str))
    joined = scored.merge(own[keep].drop_duplicates("lead_id"), on="lead_id", how="left")
    return joined.loc[joined[ACCOUNT_ID].notna()].reset_index(drop=True)


def write_accounts(frame: pd.DataFrame, path: Path) -> Path:
    """Write the accounts file (.csv or .parquet by its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class AccountsSummary:
    """What ``score --accounts`` wrote and what it reported.

    Attributes:
        path: The accounts file.
        accounts: Account rows written.
        leads_scored: Leads scored (rows of the scores file without an error).
        leads_without_account: Those without an account id (scored as leads alone).
        note: The report of leads without an account id (None: every lead has one).
    """

    path: Path
    accounts: int
    leads_scored: int
    leads_without_account: int
    note: str | None


def account_columns(path: Path, read: ReadOptions, scorer: AccountScorer) -> pd.DataFrame:
    """``lead_id``, ``account_id`` and ``account_role`` of a leads file, read by the
    dataset's column names (or the contract's)."""
    from predictive_scoring.data.problems import file_error
    from predictive_scoring.data.read import column_names, read_table

    names = [n.strip() for n in column_names(path, read)]
    wanted = {ACCOUNT_ID: [scorer.id_column, ACCOUNT_ID],
              ACCOUNT_ROLE: [c for c in (scorer.role_column, ACCOUNT_ROLE) if c]}
    found = {contract: next((n for n in options if n in names), None)
             for contract, options in wanted.items()}
    if found[ACCOUNT_ID] is None:
        raise file_error(path, f"--accounts needs the leads' account id column "
                         f"'{scorer.id_column}'; the file has {names}",
                         column=scorer.id_column)
    columns = ["lead_id", *(n for n in found.values() if n)]
    frame = read_table(path, read, columns=columns).to_pandas()
    renamed = frame.rename(columns={n: c for c, n in found.items() if n})
    for column in (ACCOUNT_ID, ACCOUNT_ROLE):
        if column in renamed:
            text = renamed[column].astype("string").str.strip()
            renamed[column] = text.mask(text == "")
    return renamed


def score_accounts_file(scorer: AccountScorer, leads_path: Path, scores_path: Path,
                        events: pd.DataFrame | None, output: Path,
                        read: ReadOptions) -> AccountsSummary:
    """Score the accounts of a scored leads file into ``output`` (one row per account
    and as_of; see :func:`flat_accounts`).

    Args:
        scorer: The account model.
        leads_path: The leads file that was scored (its account id and role columns).
        scores_path: The scores ``score_file`` wrote for it.
        events: The leads' events, or None.
        output: The accounts file (.csv or .parquet).
        read: How the leads file is read.
    """
    from predictive_scoring.accounts.contract import coverage
    from predictive_scoring.data.read import read_table

    scores = read_table(scores_path, ReadOptions()).to_pandas()
    scores = scores.loc[scores["error"].fillna("").astype(str) == ""]
    scores = scores.assign(as_of=pd.to_datetime(scores["as_of"], utc=True, format="ISO8601"),
                           probability=pd.to_numeric(scores["probability"]),
                           rule_points=pd.to_numeric(scores["rule_points"]))
    leads = account_columns(leads_path, read, scorer)
    scored_leads = leads.loc[leads["lead_id"].astype(str).isin(scores["lead_id"].astype(str))]
    covered = coverage(scored_leads.drop_duplicates("lead_id"))
    contacts = contacts_for_accounts(scores, leads)
    if len(contacts):
        accounts, explained = score_accounts(scorer, contacts, events)
        flat = flat_accounts(accounts, explained)
    else:
        flat = pd.DataFrame(columns=[*KEY, "n_contacts", "probability", "score",
                                     "suggested_stage", "points_sum", "points_max",
                                     "missing_roles"])
    write_accounts(flat, output)
    return AccountsSummary(output, len(flat), len(scores),
                           covered.n_leads - covered.n_with_account,
                           covered.note(str(leads_path)))

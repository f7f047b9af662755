"""Accounts (companies) and their buying groups, and the exact account-level truth.

The account law (see :mod:`.law` for the contact-level law, unchanged):

- Leads are contacts of companies. Each company has ``1 + Poisson(CONTACTS_MEAN - 1)``
  contacts (at most ``MAX_CONTACTS``); its firmographics (industry, employees, company
  size, country) are drawn once, as :mod:`.law` draws a lead's, and every contact carries
  them. The company's first contact is created at a uniform second of the year (up to
  ``SPREAD_DAYS`` before its end); each other contact ``k`` whole days later, ``k``
  uniform on ``0 .. SPREAD_DAYS - 1`` (so contacts' ages differ by whole days).
- Each contact has a buying-group role (:data:`ROLES`, shares :data:`ROLE_SHARE`); its
  seniority is drawn given the role (:data:`SENIORITY_GIVEN_ROLE`), and job seekers are
  exactly the contacts with the ``job_seeker`` role (their seniority is the other roles'
  mix, so the job-seeker flag stays independent of everything else, as in :mod:`.law`).
  The lead source is drawn per contact.
- Given the company, contacts follow the contact-level law independently: company fit
  is shared (every contact's ``phi`` holds it) and each contact's engagement raises the
  company's chance that one of them buys.

An account snapshot is taken ``D`` days after the company's first contact, for each ``D``
of the snapshot days; it sees the contacts created before it. The account converts when
one of those contacts becomes a customer within the horizon. Given what is observable
before the snapshot, the contacts' histories are independent, so the exact probability is
``1 - prod_i (1 - p_i)`` with ``p_i`` the contact-level oracle at the contact's own age
``D - k_i`` (no sampling, no approximation). Accounts where a known contact is already a
customer are left out, as leads are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa

from predictive_scoring.data.synthetic.activity import History, Latent, draw_firmographics
from predictive_scoring.data.synthetic.law import (
    CENSOR_DAYS,
    COMPANY_SIZES,
    COUNTRIES,
    CREATION_DAYS,
    DAY,
    INDUSTRIES,
    NU_WEIGHTS,
    SENIORITIES,
    START,
    STREAM_CREATION,
    Firms,
    Window,
    transition,
)
from predictive_scoring.data.synthetic.oracle import (  # the forward algorithm's steps
    _censored,
    _day_evidence,
    _Evidence,
    _prior,
    _reweight,
    gather_evidence,
)

CONTACTS_MEAN = 3.5
MAX_CONTACTS = 15
SPREAD_DAYS = 30
ROLES = ("decision_maker", "champion", "user", "gatekeeper", "job_seeker")
ROLE_SHARE = np.array([0.20, 0.20, 0.35, 0.20, 0.05])
SENIORITY_GIVEN_ROLE = np.array([
    # student, individual_contributor, manager, director, vp, c_level
    [0.00, 0.00, 0.10, 0.35, 0.30, 0.25],   # decision maker
    [0.00, 0.25, 0.45, 0.25, 0.05, 0.00],   # champion
    [0.04, 0.66, 0.25, 0.05, 0.00, 0.00],   # user
    [0.00, 0.50, 0.40, 0.10, 0.00, 0.00],   # gatekeeper
])
JOB_SEEKER = ROLES.index("job_seeker")
# Job seekers come at every seniority as the buying group's contacts do (the mix of the
# other roles): the flag stays independent of the firmographics, so careers pages carry
# no signal about buying, given the firmographics or not.
SENIORITY_GIVEN_ROLE = np.vstack([SENIORITY_GIVEN_ROLE,
                                  ROLE_SHARE[:JOB_SEEKER] @ SENIORITY_GIVEN_ROLE
                                  / ROLE_SHARE[:JOB_SEEKER].sum()])
SENIORITY_GIVEN_ROLE.setflags(write=False)
ROLE_SHARE.setflags(write=False)


@dataclass(frozen=True)
class Accounts:
    """Every lead's company and role, in lead (creation) order, and the companies.

    Attributes:
        created: Lead creation, seconds after START (sorted).
        account: Lead -> company index.
        offset_days: Days between the company's first contact and the lead.
        role: Lead -> index into :data:`ROLES`.
        seniority: Lead -> index into SENIORITIES (drawn given the role).
        firms: The companies' firmographics (only the company fields are used).
        start: Company -> its first contact's creation (seconds after START).
    """

    created: np.ndarray
    account: np.ndarray
    offset_days: np.ndarray
    role: np.ndarray
    seniority: np.ndarray
    firms: Firms
    start: np.ndarray

    def contact_firms(self, drawn: Firms, leads: slice) -> Firms:
        """A block's firmographics: the company's fields, the role's seniority, and the
        lead source as drawn for the block."""
        company = self.account[leads]
        return Firms(self.firms.industry[company], self.firms.size[company],
                     self.firms.employees[company], self.firms.country[company],
                     self.seniority[leads], drawn.source)


def draw_accounts(n_leads: int, seed: int) -> Accounts:
    """Companies, their contacts' creation times, roles and seniorities."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_CREATION,)))
    sizes = np.minimum(1 + rng.poisson(CONTACTS_MEAN - 1, size=n_leads), MAX_CONTACTS)
    total = np.cumsum(sizes)
    n_accounts = int(np.searchsorted(total, n_leads)) + 1
    sizes = sizes[:n_accounts].copy()
    sizes[-1] -= int(total[n_accounts - 1]) - n_leads
    account = np.repeat(np.arange(n_accounts), sizes)
    start = rng.integers(0, (CREATION_DAYS - SPREAD_DAYS) * DAY, n_accounts)
    offset = rng.integers(0, SPREAD_DAYS, n_leads)
    offset[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = 0
    role = rng.choice(len(ROLES), size=n_leads, p=ROLE_SHARE)
    cdf = np.cumsum(SENIORITY_GIVEN_ROLE[role], axis=1)
    seniority = np.minimum((rng.random(n_leads)[:, None] >= cdf).sum(axis=1),
                           len(SENIORITIES) - 1)
    firms = draw_firmographics(rng, n_accounts)
    created = start[account] + offset * DAY
    order = np.argsort(created, kind="stable")
    return Accounts(created[order], account[order], offset[order], role[order],
                    seniority[order], firms, start)


def requested_ages(offset_days: np.ndarray, snapshot_days: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lead, account snapshot day, the lead's age that day) for every contact an account
    snapshot sees (created before it)."""
    parts = [(np.flatnonzero(offset_days < day), day) for day in snapshot_days if day > 0]
    if not parts:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    lead = np.concatenate([p for p, _ in parts])
    day = np.concatenate([np.full(len(p), d) for p, d in parts])
    return lead, day, day - offset_days[lead]


def contact_rows(history: History, latent: Latent, window: Window, lead: np.ndarray,
                 age: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per requested (lead, age): the contact oracle at that age, whether the contact
    converts within the horizon from it, and whether it was a customer before it."""
    probability = (posteriors_at(history, window, lead, age) if len(lead)
                   else np.zeros(0))
    as_of = age * DAY
    decided = latent.decision_second[lead]
    won = latent.won[lead]
    converted = won & (decided >= as_of) & (decided < as_of + window.horizon_days * DAY)
    return probability, converted, won & (decided < as_of)


def posteriors_at(history: History, window: Window, lead: np.ndarray,
                  age: np.ndarray) -> np.ndarray:
    """The oracle's probability of each ``lead`` at its own ``age`` (days), exactly as
    :func:`.oracle.posterior` computes it for a whole block at one day.

    One forward pass over the block keeps the (uncensored) state before every day; each
    age then restarts from ``CENSOR_DAYS`` before it, the only days whose evidence a
    snapshot censors, for its own leads only.
    """
    days = max(window.snapshot_days)
    ages = Window.of(tuple(range(1, days + 1)), window.horizon_days)
    evidence = gather_evidence(history, ages)
    law = history.law
    beta = NU_WEIGHTS[None, :, None] * _prior(law)[:, None, :]
    before = [beta]
    for step in range(days):
        beta = _reweight(beta, _day_evidence(evidence, evidence.loglik, step))
        beta = transition(beta, ages.onset[step + 1], law.close[:, None])
        before.append(beta)
    probability = np.zeros(len(lead))
    for day in np.unique(age):
        at = np.flatnonzero(age == day)
        rows = lead[at]
        first = max(0, int(day) - CENSOR_DAYS)
        own = _Evidence(*(getattr(evidence, f.name)[rows] for f in fields(_Evidence)))
        loglik = _censored(history, evidence.loglik, int(day))[rows]
        beta = before[first][rows]
        for step in range(first, int(day)):
            beta = _reweight(beta, _day_evidence(own, loglik, step))
            beta = transition(beta, ages.onset[step + 1], law.close[rows, None])
        weights = beta.sum(axis=1)
        probability[at] = (law.close[rows] * (weights @ ages.decides_within[int(day)])
                           / weights.sum(axis=1))
    return probability


ACCOUNT_COLUMNS = ("account_id", "industry", "company_size", "employees", "country")
TRUTH_COLUMNS = ("account_id", "as_of", "days_after_first_contact", "n_contacts",
                 "true_probability", "converted")


def account_ids(n: int) -> pa.Array:
    return pa.array([f"A{i:07d}" for i in range(1, n + 1)], type=pa.string())


def accounts_frame(accounts: Accounts, rows: slice) -> pd.DataFrame:
    """The companies' attributes (the optional accounts file)."""
    firms = accounts.firms
    index = np.arange(len(accounts.start))[rows]
    return pd.DataFrame({
        "account_id": _text(index, account_ids(len(accounts.start))),
        "industry": _text(firms.industry[index], INDUSTRIES),
        "company_size": _text(firms.size[index], COMPANY_SIZES),
        "employees": firms.employees[index],
        "country": _text(firms.country[index], COUNTRIES)}, copy=False)


def account_truth(accounts: Accounts, lead: np.ndarray, day: np.ndarray,
                  probability: np.ndarray, converted: np.ndarray,
                  won_before: np.ndarray) -> pd.DataFrame:
    """One row per account snapshot: the exact probability that a contact it sees
    becomes a customer within the horizon, and whether one did."""
    company = accounts.account[lead]
    frame = pd.DataFrame({"account": company, "day": day,
                          "log_miss": np.log1p(-np.minimum(probability, 1.0)),
                          "converted": converted, "won_before": won_before})
    grouped = frame.groupby(["account", "day"], sort=True).agg(
        n_contacts=("converted", "size"), log_miss=("log_miss", "sum"),
        converted=("converted", "any"), won_before=("won_before", "any"))
    grouped = grouped.loc[~grouped["won_before"]].reset_index()
    account = grouped["account"].to_numpy(np.int64)
    days = grouped["day"].to_numpy(np.int64)
    return pd.DataFrame({
        "account_id": _text(account, account_ids(len(accounts.start))),
        "as_of": _times(accounts.start[account] + days * DAY),
        "days_after_first_contact": days,
        "n_contacts": grouped["n_contacts"].to_numpy(np.int64),
        "true_probability": -np.expm1(grouped["log_miss"].to_numpy(float)),
        "converted": grouped["converted"].to_numpy(np.int64)}, copy=False)


def _text(codes: np.ndarray, names: Sequence[str] | pa.Array) -> pd.Series:
    dictionary = names if isinstance(names, pa.Array) else pa.array(list(names), pa.string())
    indices = pa.array(np.asarray(codes).astype(np.int32, copy=False))
    return pd.Series(pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode(),
                     dtype="str")


def _times(seconds: np.ndarray) -> pd.Series:
    nanoseconds = np.asarray(seconds).astype(np.int64) * 10**9 + START.value
    return pd.Series(nanoseconds.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC")

"""The simulated funnel as the data contract's tables: leads are drawn in blocks, each with
its own generator, and the blocks are assembled into DataFrames one column at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from predictive_scoring.data.synthetic.accounts import (
    JOB_SEEKER,
    ROLES,
    Accounts,
    account_ids,
    account_truth,
    accounts_frame,
    contact_rows,
    draw_accounts,
    requested_ages,
)
from predictive_scoring.data.synthetic.activity import (
    Campaigns,
    History,
    all_events,
    draw_campaigns,
    draw_firmographics,
    draw_latent,
    draw_sends,
    draw_stage_changes,
    draw_webinars,
    poisson_events,
)
from predictive_scoring.data.synthetic.law import (
    COMPANY_SIZES,
    COUNTRIES,
    DAY,
    EVENT_KEYS,
    INDUSTRIES,
    LEAD_SOURCES,
    SENIORITIES,
    STAGES,
    START,
    STREAM_BLOCKS,
    VISIT_PROCESSES,
    Firms,
    Window,
    lead_law,
)
from predictive_scoring.data.synthetic.oracle import truth_rows

BLOCK = 20_000
"""Leads per block; each block has its own generator, derived from (seed, block)."""


@dataclass(frozen=True)
class SimulatedFunnel:
    """A simulated funnel in the data contract, with the oracle's probabilities.

    Attributes:
        leads: ``lead_id``, ``created_at``, ``industry``, ``company_size``, ``employees``,
            ``country``, ``seniority``, ``lead_source``, ``account_id``, ``buying_role``.
        events: ``lead_id``, ``timestamp``, ``event_type``, ``detail`` (NA where none),
            sorted by lead then time.
        stage_changes: ``lead_id``, ``stage`` (HubSpot lifecycle names), ``timestamp``.
        truth: ``lead_id``, ``as_of``, ``days_after_creation``, ``true_probability``,
            ``converted`` (0/1), one row per lead and snapshot day, except snapshots of
            leads already customers before ``as_of``.
        accounts: ``account_id`` and the company's attributes (the accounts file).
        account_truth: ``account_id``, ``as_of``, ``days_after_first_contact``,
            ``n_contacts``, ``true_probability``, ``converted``: one row per account
            snapshot (see :mod:`.accounts`). In parts, the last part holds both tables.
    """

    leads: pd.DataFrame
    events: pd.DataFrame
    stage_changes: pd.DataFrame
    truth: pd.DataFrame
    accounts: pd.DataFrame
    account_truth: pd.DataFrame


def simulate_funnel(n_leads: int, seed: int, snapshot_days: Sequence[int],
                    horizon_days: int,
                    progress: Callable[[int], None] | None = None) -> SimulatedFunnel:
    """Simulate leads, events, stage changes and the exact conversion probabilities.

    Args:
        n_leads: Number of leads (at least 1).
        seed: Non-negative random seed; the same seed gives the same funnel.
        snapshot_days: Days after creation of each lead's snapshots (the dataset
            config's ``snapshots.days_after_creation``).
        horizon_days: Label horizon in days (the dataset config's ``horizon_days``).
        progress: Called with the number of leads finished after each block.

    Returns:
        The four tables, timestamps tz-aware UTC.

    Raises:
        ValueError: A count, seed or day that cannot be used.
    """
    return next(simulate_funnel_parts(n_leads, seed, snapshot_days, horizon_days, n_leads,
                                      progress))


def simulate_funnel_parts(n_leads: int, seed: int, snapshot_days: Sequence[int],
                          horizon_days: int, leads_per_part: int,
                          progress: Callable[[int], None] | None = None,
                          with_account_truth: bool = True) -> Iterator[SimulatedFunnel]:
    """:func:`simulate_funnel`'s funnel, a run of whole leads at a time.

    Only one part is in memory at once, so funnels larger than memory can be written part
    by part. The parts put together (in order) are exactly ``simulate_funnel(n_leads,
    seed, ...)``: same lead ids, rows and values.

    Args:
        n_leads: Number of leads in all parts (at least 1).
        seed: Non-negative random seed.
        snapshot_days: Days after creation of each lead's snapshots.
        horizon_days: Label horizon in days.
        leads_per_part: Leads per part, rounded down to whole blocks of ``BLOCK`` leads
            (at least one block); the last part holds the rest, and ``n_leads`` or more
            makes one part.
        progress: Called with the number of leads finished after each block.
        with_account_truth: False leaves the accounts' truth empty (its contact probabilities
            are most of the simulation's time; the lead tables, their truth and the
            accounts are the same either way).

    Yields:
        The parts, in lead order.

    Raises:
        ValueError: A count, seed or day that cannot be used.
    """
    window = Window.of(_checked_days(n_leads, seed, snapshot_days, horizon_days),
                        horizon_days)
    if leads_per_part < 1:
        raise ValueError(f"leads_per_part must be at least 1, got {leads_per_part}")
    accounts = draw_accounts(n_leads, seed)
    created = accounts.created
    requests = requested_ages(accounts.offset_days,
                              window.snapshot_days if with_account_truth else ())
    campaigns = draw_campaigns(seed, window)
    rows: list[tuple[np.ndarray, ...]] = []
    step = (n_leads if leads_per_part >= n_leads
            else max(BLOCK, leads_per_part // BLOCK * BLOCK))
    for part_first in range(0, n_leads, step):
        part_stop = min(part_first + step, n_leads)
        blocks = []
        for first in range(part_first, part_stop, BLOCK):
            stop = min(first + BLOCK, part_stop)
            rng = np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(STREAM_BLOCKS, first // BLOCK)))
            block = _simulate_block(rng, slice(first, stop), accounts, campaigns, window,
                                    requests)
            rows.append(block.contacts)
            blocks.append(block.shifted(first - part_first))
            if progress is not None:
                progress(stop)
        last = part_stop == n_leads
        yield replace(_assemble(blocks, created[part_first:part_stop], accounts, part_first),
                      accounts=accounts_frame(accounts, slice(None) if last else slice(0)),
                      account_truth=account_truth(accounts, *(
                          np.concatenate(c) for c in zip(*rows, strict=True)) if last
                          else (np.zeros(0, np.int64),) * 5))



def _checked_days(n_leads: int, seed: int, snapshot_days: Sequence[int] | None,
                  horizon_days: int) -> tuple[int, ...]:
    """Sorted distinct snapshot days, after checking every argument."""
    if n_leads < 1:
        raise ValueError(f"n_leads must be at least 1, not {n_leads}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed}")
    if not snapshot_days:
        raise ValueError("snapshot_days must list at least one day after creation (the "
                         "dataset config's snapshots.days_after_creation)")
    if any(int(d) != d or d < 0 for d in snapshot_days):
        raise ValueError(f"snapshot_days must be whole days >= 0, not {list(snapshot_days)}")
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days must be a whole number >= 1, not {horizon_days}")
    return tuple(sorted({int(d) for d in snapshot_days}))



@dataclass(frozen=True)
class _Block:
    """One block's tables as arrays (times in seconds after START, leads global)."""

    firms: Firms
    events: tuple[np.ndarray, np.ndarray, np.ndarray]
    stages: tuple[np.ndarray, np.ndarray, np.ndarray]
    truth: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    role: np.ndarray
    contacts: tuple[np.ndarray, ...]
    """Account truth inputs: global lead, account day, probability, converted, won before."""

    def shifted(self, first_lead: int) -> _Block:
        """The block with lead indexes offset by ``first_lead``, in compact dtypes."""
        lead, second, key = self.events
        s_lead, stage, s_second = self.stages
        t_lead, day, probability, converted = self.truth
        return _Block(self.firms, (_index(lead, first_lead), second, key.astype(np.int8)),
                      (_index(s_lead, first_lead), stage.astype(np.int8), s_second),
                      (_index(t_lead, first_lead), day, probability, converted),
                      self.role, self.contacts)


def _index(lead: np.ndarray, first_lead: int) -> np.ndarray:
    """Global lead indexes (int32 holds any simulable number of leads)."""
    return (lead + first_lead).astype(np.int32)


def _simulate_block(rng: np.random.Generator, leads: slice, accounts: Accounts,
                    campaigns: Campaigns, window: Window,
                    requests: tuple[np.ndarray, np.ndarray, np.ndarray]) -> _Block:
    """Simulate one block of leads (``leads`` of all), contacts of their companies."""
    created = accounts.created[leads]
    firms = accounts.contact_firms(draw_firmographics(rng, len(created)), leads)
    law = lead_law(firms)
    latent = draw_latent(rng, law, window)
    role = accounts.role[leads]
    latent = replace(latent, job_seeker=role == JOB_SEEKER)
    processes = poisson_events(rng, law, latent, window)
    webinars = draw_webinars(rng, processes, firms, latent)
    sends = draw_sends(rng, created, latent, campaigns, window)
    history = History(law, processes.where(np.isin(processes.process, VISIT_PROCESSES)),
                      sends, webinars)
    events = all_events(rng, processes, sends, webinars, firms, window)
    stages = draw_stage_changes(rng, events, firms, latent, window)
    lead, second, key = events
    asked = (requests[0] >= leads.start) & (requests[0] < leads.stop)
    local = requests[0][asked] - leads.start
    contacts = contact_rows(history, latent, window, local, requests[2][asked])
    return _Block(firms, (lead, second + created[lead], key),
                  (stages[0], stages[1], stages[2] + created[stages[0]]),
                  truth_rows(history, latent, window), role,
                  (requests[0][asked], requests[1][asked], *contacts))



def _assemble(blocks: list[_Block], created: np.ndarray, accounts: Accounts,
              first_lead: int = 0) -> SimulatedFunnel:
    """The four DataFrames, built one column at a time to bound memory.

    ``created`` and the blocks' lead indexes are those of leads ``first_lead``, ... (the
    ids count on from there)."""
    ids = pa.array([f"L{i:07d}" for i in range(first_lead + 1, first_lead + len(created) + 1)],
                   type=pa.string())
    company = accounts.account[first_lead:first_lead + len(created)]
    return SimulatedFunnel(_leads_frame(ids, created, blocks, company, accounts),
                           _events_frame(ids, blocks), _stages_frame(ids, blocks),
                           _truth_frame(ids, created, blocks), pd.DataFrame(), pd.DataFrame())


def _column(blocks: list[_Block], table: str, index: int) -> np.ndarray:
    """Column ``index`` of one of the blocks' array tables, all blocks together."""
    return np.concatenate([getattr(block, table)[index] for block in blocks])


def _firm(blocks: list[_Block], name: str) -> np.ndarray:
    return np.concatenate([getattr(block.firms, name) for block in blocks])


def _text(codes: np.ndarray, names: Sequence[str | None] | pa.Array) -> pd.Series:
    """A ``str`` Series of ``names[codes]`` (None names become NA)."""
    dictionary = names if isinstance(names, pa.Array) else pa.array(list(names), pa.string())
    indices = pa.array(codes.astype(np.int32, copy=False))
    return pd.Series(pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode(),
                     dtype="str")


def _times(seconds: np.ndarray) -> pd.Series:
    """UTC timestamps of seconds after START."""
    nanoseconds = seconds.astype(np.int64) * 10**9
    nanoseconds += START.value
    return pd.Series(nanoseconds.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC")


def _leads_frame(ids: pa.Array, created: np.ndarray, blocks: list[_Block],
                 company: np.ndarray, accounts: Accounts) -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": _text(np.arange(len(created)), ids),
        "created_at": _times(created),
        "industry": _text(_firm(blocks, "industry"), INDUSTRIES),
        "company_size": _text(_firm(blocks, "size"), COMPANY_SIZES),
        "employees": _firm(blocks, "employees"),
        "country": _text(_firm(blocks, "country"), COUNTRIES),
        "seniority": _text(_firm(blocks, "seniority"), SENIORITIES),
        "lead_source": _text(_firm(blocks, "source"), LEAD_SOURCES),
        "account_id": _text(company, account_ids(len(accounts.start))),
        "buying_role": _text(np.concatenate([block.role for block in blocks]), ROLES)},
        copy=False)


def _events_frame(ids: pa.Array, blocks: list[_Block]) -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": _text(_column(blocks, "events", 0), ids),
        "timestamp": _times(_column(blocks, "events", 1)),
        "event_type": _text(_column(blocks, "events", 2), [t for t, _ in EVENT_KEYS]),
        "detail": _text(_column(blocks, "events", 2), [d for _, d in EVENT_KEYS])},
        copy=False)


def _stages_frame(ids: pa.Array, blocks: list[_Block]) -> pd.DataFrame:
    return pd.DataFrame({"lead_id": _text(_column(blocks, "stages", 0), ids),
                         "stage": _text(_column(blocks, "stages", 1), STAGES),
                         "timestamp": _times(_column(blocks, "stages", 2))}, copy=False)


def _truth_frame(ids: pa.Array, created: np.ndarray, blocks: list[_Block]) -> pd.DataFrame:
    lead = _column(blocks, "truth", 0)
    day = _column(blocks, "truth", 1).astype(np.int64)
    return pd.DataFrame({
        "lead_id": _text(lead, ids),
        "as_of": _times(created[lead] + day * DAY),
        "days_after_creation": day,
        "true_probability": _column(blocks, "truth", 2),
        "converted": _column(blocks, "truth", 3).astype(np.int64)}, copy=False)



"""A B2B funnel simulator whose true conversion probabilities are known exactly.

:func:`simulate_funnel` draws leads (firmographics), their marketing activity (events),
their CRM lifecycle (stage changes) and, for every lead and snapshot day ``d``, the
*exact* probability that the lead becomes a customer within ``horizon_days`` of
``as_of = created_at + d days`` given what is observable before ``as_of``: its
firmographics and its events with ``timestamp < as_of``. A model trained on the files
can be compared with this oracle; nothing can beat it in expectation.

The generative law
------------------
Time is measured per lead in seconds since its creation; day ``j`` of a lead is
``[j, j + 1)`` days after creation, so every snapshot ``as_of`` is a day boundary. The
activity window is ``W = max(snapshot_days) + horizon_days + 30`` days, so the label of
every snapshot is fully observed.

*Fit.* Industry, employees (lognormal per industry, bucketed into ``company_size``),
country, seniority and lead source are drawn independently. The ideal-customer-profile
fit is ``phi = INDUSTRY_FIT + SIZE_FIT + INDUSTRY_SIZE_FIT (the interaction) +
COUNTRY_FIT + SENIORITY_FIT``.

*Buying intent.* A latent ``K ~ Bernoulli(sigmoid(INTENT_BASE + INTENT_FIT * phi +
SOURCE_INTENT))``. Each lead's daily state ``Z_j`` is a Markov chain on ``none`` (K=0),
``waiting`` (K=1, not in market yet), ``research`` and ``evaluation`` (the two phases of
the buying episode), ``decided``. Day 0 is ``research`` with probability
``SOURCE_ONSET_NOW`` given K=1, else ``waiting``. At the boundary into day ``j``:
waiting -> research with hazard ``q(j) = ONSET_PEAK * exp(-j / ONSET_DECAY_DAYS) +
ONSET_FLOOR``; research -> evaluation with probability ``RESEARCH_EXIT``; evaluation ->
decided with probability ``EVALUATION_EXIT``. Episode length is a sum of two geometrics
(mean ``1/RESEARCH_EXIT + 1/EVALUATION_EXIT`` days). The decision time ``T`` is a uniform
second within the last evaluation day; the buyer closes (``customer`` at ``T``) with
probability ``c = sigmoid(CLOSE_BASE + CLOSE_FIT * phi)``, else ``closedlost`` at ``T``.
Engagement reveals the episode, fit decides the close.

*Activity* (given the state path, everything below is independent):

- Engagement processes (:data:`PROCESSES` with driver ``engagement``: home, product,
  pricing, contact and case-study page views, content downloads, demo and contact
  requests, webinar registration) are Poisson with a rate constant within each day:
  ``nu * a(x) * rate * (exp(-j / decay_days) + floor) * boost[Z_j]``, where
  ``boost`` is 1 outside the episode and ``research`` / ``evaluation`` inside it,
  ``a(x) = exp(SOURCE_ACTIVITY + SENIORITY_ACTIVITY)`` and ``nu`` is a per-lead
  chattiness drawn from ``NU_VALUES`` with ``NU_WEIGHTS`` (mean 1). Each day's events get
  uniform seconds within the day. Webinar registration happens at most once: on the first
  day its Poisson count is positive (a uniform second of that day), or at creation for
  leads from webinars; the registered lead then attends ``k + u`` days later
  (``k`` uniform on 1..7, ``u`` uniform on a day) with probability
  ``WEBINAR_ATTEND[state of the registration day]``.
- Job-seeker processes: blog and careers page views at ``rate * (exp(-j / decay) +
  floor)``, multiplied by ``job_seeker_boost`` for the ``JOB_SEEKER_SHARE`` of leads who
  look for a job (independent of everything else). Newsletter sign-up happens at most
  once at a rate that depends on age only. These carry no information about buying.
- Email: the marketing calendar holds one campaign a week (Tue-Thu, office hours, kind
  newsletter / nurture / product_update); each lead receives each campaign inside its
  window with probability ``SEND_INCLUSION``, independently of everything. A
  ``BAD_ADDRESS`` share of leads bounce at the first send (same second) and get no more
  mail. For the other sends, with ``s`` the state of the send day: open with probability
  ``OPEN[s, kind]`` after a truncated-exponential delay (under 18 h); given an open, click
  with ``CLICK[s, kind]`` or unsubscribe with ``UNSUBSCRIBE[s]`` after up to 2 h (leads
  without intent unsubscribe most); no mail after an unsubscribe. Sends, opens, clicks
  and unsubscribes carry the campaign kind as detail. Sends are exogenous, so they
  cancel from the posterior.
- Creation events that depend only on the lead source (a landing page view for search
  and social leads, the sign-up of newsletter leads, the registration of webinar leads).

*Stage changes* (HubSpot lifecycle names) are a function of the events and the
decision: entry ``subscriber`` (newsletter and content-syndication sources) or ``lead``;
subscriber -> lead at the first form fill; ``marketingqualifiedlead`` at the first demo
or contact request (for deciders without one: early in the episode); deciders then pass
``salesacceptedlead`` -> ``salesqualifiedlead`` -> ``opportunity`` at sorted uniform times
before ``T`` and end as ``customer`` or ``closedlost`` at ``T``; a share of the other MQLs
are accepted (and some qualified) by sales and later lost.

The oracle (``truth``)
----------------------
For a snapshot at day ``a``, the hidden variables are ``(nu, Z_a)``; the chain is a
hidden Markov model whose emission for day ``j`` factorises over what happened that day,
so the forward algorithm gives ``P(nu, Z_a, history before a, not yet a customer)``
exactly (the won mass is dropped at each decision). Per day and state the log-evidence is
``n_j * log(nu) + sum(log boost over that day's engagement events) - nu * a(x) *
(integrated engagement rate)`` plus, for each email sent that day, the log-probability of
its observed outcome (open, click, unsubscribe: ``OPEN``, ``CLICK``, ``UNSUBSCRIBE`` of the
state) and, on the day of a webinar registration, ``log(1 - exp(-registration rate))``
(the webinar process stops afterwards) and the log-probability of its attendance outcome.
Outcomes that might still happen after ``as_of`` (opens of mail sent in the last day,
attendances of the last 8 days' registrations) enter censored: e.g. an unseen open has
probability ``1 - p_open * F_delay(as_of - send)``. Job-seeker events, newsletter
sign-ups, creation events, sends and bounces do not depend on the hidden state, so they
cancel. Then
``true_probability = c(phi) * sum_z P(Z_a = z | history) * G_z(a)`` where ``G_z(a)`` is
the probability that the chain started in ``z`` at day ``a`` decides within
``horizon_days`` days. No sampling, no approximation.

What the law implies (and the points baseline misses):

- Interest fades with inactivity: silence after a burst makes "the episode ended"
  (closedlost) more likely, so the probability falls while fixed points stay.
- Repeated visits saturate: once the episode is certain, more visits add nothing, and a
  chatty lead (large ``nu``) explains many visits without intent.
- Fit x engagement: the probability is about ``c(phi) * P(episode | events)``, a product,
  so engagement matters more for well-fitting leads.
- Careers pages (and the blog) earn points but are exactly uninformative: they depend
  only on the job-seeker flag.

Randomness and scale: leads are simulated in blocks of :data:`BLOCK`, each with its own
generator from ``SeedSequence(seed, spawn_key=(stream, block))`` (creation times and the
campaign calendar have their own streams), so the same seed gives the same funnel and
memory stays bounded by a block plus the result. Everything is vectorised over the
leads of a block; Python loops run over processes, days and snapshot days only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from predictive_scoring.config import DatasetConfig


def _constant(values: object) -> np.ndarray:
    """A read-only array: the law's tables must not change under a caller's hands."""
    array = np.array(values)
    array.setflags(write=False)
    return array


# ----------------------------------------------------------------------- the calendar
START = pd.Timestamp("2025-01-06", tz="UTC")
"""The first lead's earliest creation time (a Monday)."""
CREATION_DAYS = 365
"""Leads are created uniformly over this many days from :data:`START`."""
EXTRA_DAYS = 30
"""Activity runs this many days past the last snapshot's horizon."""
DAY = 86_400
NEVER = np.iinfo(np.int64).max // 4
"""A time (seconds) or day past any window: "did not happen"."""
BLOCK = 20_000
"""Leads per block; each block has its own generator, derived from (seed, block)."""
_STREAM_CREATION, _STREAM_CAMPAIGNS, _STREAM_BLOCKS = 0, 1, 2

# --------------------------------------------------------------------- firmographics
INDUSTRIES = ("software", "financial_services", "manufacturing", "healthcare", "retail",
              "education", "government", "professional_services")
INDUSTRY_SHARE = _constant([0.22, 0.12, 0.14, 0.11, 0.10, 0.09, 0.06, 0.16])
INDUSTRY_FIT = _constant([0.6, 0.4, 0.0, 0.1, -0.3, -0.6, -0.4, 0.2])
INDUSTRY_LOG_EMPLOYEES = _constant([4.6, 5.6, 5.8, 5.6, 5.4, 5.2, 6.2, 4.2])
EMPLOYEES_SIGMA = 1.7
MAX_EMPLOYEES = 400_000

COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
SIZE_UPPER = _constant([10, 50, 200, 1000, 5000])
SIZE_FIT = _constant([-1.0, -0.3, 0.3, 0.5, 0.3, 0.0])
INDUSTRY_SIZE_FIT = np.zeros((len(INDUSTRIES), len(COMPANY_SIZES)))
INDUSTRY_SIZE_FIT[INDUSTRIES.index("manufacturing"), 4:] = (0.5, 0.8)
INDUSTRY_SIZE_FIT[INDUSTRIES.index("software"), 0] = -0.5
INDUSTRY_SIZE_FIT[INDUSTRIES.index("healthcare"), 3] = 0.3
INDUSTRY_SIZE_FIT[INDUSTRIES.index("government"), 5] = 0.5
INDUSTRY_SIZE_FIT.setflags(write=False)

COUNTRIES = ("us", "gb", "de", "fr", "nl", "br", "in", "au", "ca", "es", "se", "sg")
COUNTRY_SHARE = _constant([0.38, 0.10, 0.08, 0.06, 0.03, 0.06, 0.09, 0.04, 0.05, 0.04,
                          0.03, 0.04])
COUNTRY_FIT = _constant([0.25, 0.15, 0.15, 0.0, 0.1, -0.35, -0.45, 0.1, 0.2, -0.1, 0.1, 0.05])

SENIORITIES = ("student", "individual_contributor", "manager", "director", "vp", "c_level")
SENIORITY_SHARE = _constant([0.06, 0.36, 0.26, 0.16, 0.09, 0.07])
SENIORITY_FIT = _constant([-1.6, -0.3, 0.1, 0.45, 0.55, 0.35])
SENIORITY_ACTIVITY = _constant([0.3, 0.1, 0.0, -0.1, -0.25, -0.4])

LEAD_SOURCES = ("organic_search", "paid_search", "social", "referral", "newsletter",
                "webinar", "event", "partner", "content_syndication")
SOURCE_SHARE = _constant([0.22, 0.14, 0.10, 0.06, 0.12, 0.09, 0.08, 0.05, 0.14])
SOURCE_INTENT = _constant([0.0, 0.2, -0.4, 0.9, -0.6, 0.2, 0.3, 0.7, -0.5])
SOURCE_ONSET_NOW = _constant([0.3, 0.4, 0.2, 0.45, 0.15, 0.3, 0.35, 0.4, 0.2])
SOURCE_ACTIVITY = _constant([0.1, 0.0, -0.1, 0.0, -0.2, 0.1, -0.1, -0.1, -0.3])
SUBSCRIBER_SOURCES = ("newsletter", "content_syndication")

# ------------------------------------------------------------------------ the latent law
INTENT_BASE, INTENT_FIT = -2.6, 1.0
CLOSE_BASE, CLOSE_FIT = -1.4, 1.2
ONSET_PEAK, ONSET_DECAY_DAYS, ONSET_FLOOR = 0.012, 45.0, 0.002
RESEARCH_EXIT = 1 / 14
EVALUATION_EXIT = 1 / 21
JOB_SEEKER_SHARE = 0.05
_NU_RAW = _constant([0.4, 0.75, 1.2, 2.2])
NU_WEIGHTS = _constant([0.22, 0.35, 0.30, 0.13])
NU_VALUES = _constant(_NU_RAW / float(_NU_RAW @ NU_WEIGHTS))
"""Per-lead chattiness values (their weighted mean is exactly 1)."""

# Hidden states and the emission classes they share (waiting and decided emit alike).
NONE, WAITING, RESEARCH, EVALUATION, DECIDED = range(5)
EMISSION_CLASS = _constant([0, 1, 2, 3, 1])
"""State -> emission class: 0 no intent, 1 intent but quiet, 2 research, 3 evaluation."""


@dataclass(frozen=True)
class _Process:
    """A Poisson activity process with a rate constant within each day of a lead's age.

    Attributes:
        event_type: Event type of its events.
        detail: Their detail, or None.
        rate: Events per day at creation (chattiness and activity 1, outside an episode).
        decay_days: The rate fades as ``exp(-age / decay_days) + floor``.
        floor: See ``decay_days``.
        research: Rate multiplier in the research phase of a buying episode.
        evaluation: Rate multiplier in the evaluation phase.
        driver: ``engagement`` (scaled by chattiness and activity, boosted in episodes),
            ``job_seeker`` (scaled by ``job_seeker_boost`` for job seekers) or ``age``.
        job_seeker_boost: See ``driver``.
        once: At most one event per lead (the first day with a positive count).
    """

    event_type: str
    detail: str | None
    rate: float
    decay_days: float
    floor: float
    research: float = 1.0
    evaluation: float = 1.0
    driver: Literal["engagement", "job_seeker", "age"] = "engagement"
    job_seeker_boost: float = 1.0
    once: bool = False

    @property
    def boost(self) -> np.ndarray:
        """Rate multiplier per emission class."""
        return np.array([1.0, 1.0, self.research, self.evaluation])


PROCESSES: tuple[_Process, ...] = (
    _Process("page_view", "home", 0.05, 21, 0.3),
    _Process("page_view", "product", 0.04, 21, 0.3, research=2.0, evaluation=1.5),
    _Process("page_view", "pricing", 0.008, 21, 0.3, research=3.0, evaluation=8.0),
    _Process("page_view", "contact", 0.004, 21, 0.3, research=1.5, evaluation=6.0),
    _Process("page_view", "case_study", 0.005, 21, 0.3, research=5.0, evaluation=3.0),
    _Process("content_download", "ebook", 0.004, 30, 0.25),
    _Process("content_download", "whitepaper", 0.003, 30, 0.25, research=2.5),
    _Process("content_download", "datasheet", 0.0015, 30, 0.25, research=3.0, evaluation=6.0),
    _Process("demo_request", None, 0.0022, 30, 0.3, research=2.0, evaluation=25.0),
    _Process("contact_request", None, 0.0014, 30, 0.3, research=2.0, evaluation=15.0),
    _Process("webinar_registration", None, 0.002, 30, 0.25, research=4.0, evaluation=2.0,
             once=True),
    _Process("page_view", "blog", 0.03, 60, 0.4, driver="job_seeker", job_seeker_boost=3.0),
    _Process("page_view", "careers", 0.002, np.inf, 0.0, driver="job_seeker",
             job_seeker_boost=30.0),
    _Process("newsletter_signup", None, 0.001, 30, 0.2, driver="age", once=True),
)
WEBINAR_PROCESS = next(i for i, p in enumerate(PROCESSES)
                       if p.event_type == "webinar_registration")
VISIT_PROCESSES = tuple(i for i, p in enumerate(PROCESSES)
                        if p.driver == "engagement" and not p.once)
"""Repeatable engagement processes: the events the oracle counts day by day."""

# ----------------------------------------------------------------------------- email
CAMPAIGN_KINDS = ("newsletter", "nurture", "product_update")
CAMPAIGN_SHARE = _constant([0.45, 0.35, 0.20])
SEND_INCLUSION = 0.8
BAD_ADDRESS = 0.03
OPEN = _constant([[0.17, 0.15, 0.19], [0.21, 0.18, 0.24], [0.30, 0.26, 0.34],
                 [0.36, 0.30, 0.42]])
"""P(open) by emission class (rows) and campaign kind (columns)."""
CLICK = _constant([[0.07, 0.08, 0.09], [0.09, 0.10, 0.12], [0.20, 0.22, 0.28],
                  [0.26, 0.28, 0.36]])
"""P(click | open) by emission class and campaign kind."""
UNSUBSCRIBE = _constant([0.05, 0.02, 0.01, 0.008])
"""P(unsubscribe | open) by emission class."""
OPEN_DELAY_MEAN, OPEN_DELAY_MAX = 3 / 24, 18 / 24
FOLLOW_DELAY_MAX_SECONDS = 2 * 3600
WEBINAR_ATTEND = _constant([0.35, 0.40, 0.62, 0.55])
"""P(attend | registered) by emission class of the registration day."""
WEBINAR_DELAY_DAYS = 7
CENSOR_DAYS = WEBINAR_DELAY_DAYS + 1
"""Outcomes of causes older than this many days are always seen before ``as_of``."""

# ------------------------------------------------------------------------- the CRM
STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesacceptedlead",
          "salesqualifiedlead", "opportunity", "customer", "closedlost")
(SUBSCRIBER, LEAD, MQL, SAL, SQL, OPPORTUNITY, CUSTOMER, CLOSED_LOST) = range(len(STAGES))
MQL_EARLY_SHARE = 0.3
"""Deciders without a request become MQL within this share of the episode's start."""
NON_BUYER_SAL, NON_BUYER_SQL = 0.4, 0.28
NON_BUYER_DELAYS_DAYS = (3.0, 8.0, 20.0)
"""Mean exponential delays: MQL -> SAL, SAL -> SQL, last stage -> closedlost."""

FORM_FILLS = ("content_download", "webinar_registration", "demo_request", "contact_request")
REQUESTS = ("demo_request", "contact_request")
CREATION_PAGES = {
    "organic_search": {"blog": 0.5, "home": 0.3, "product": 0.2},
    "paid_search": {"home": 0.4, "product": 0.3, "pricing": 0.3},
    "social": {"blog": 1.0},
}
"""Landing page viewed at creation, by lead source."""

TABLES = ("leads", "events", "stage_changes", "truth")
PARQUET_FILES = {name: f"{name}.parquet" for name in TABLES}
"""The files :func:`write_funnel` writes as Parquet: ``DatasetConfig.pointed_at``'s files."""


def _event_keys() -> tuple[tuple[str, str | None], ...]:
    email = [(t, k) for t in ("email_send", "email_open", "email_click", "email_unsubscribe")
             for k in CAMPAIGN_KINDS]
    pages = [("page_view", d) for d in ("pricing", "contact", "case_study", "blog",
                                        "careers", "product", "home")]
    downloads = [("content_download", d) for d in ("ebook", "whitepaper", "datasheet")]
    singles = [(t, None) for t in ("email_bounce", "webinar_registration",
                                   "webinar_attendance", "newsletter_signup", "demo_request",
                                   "contact_request")]
    return (*email, *pages, *downloads, *singles)


EVENT_KEYS = _event_keys()
"""Every ``(event_type, detail)`` the simulator writes; events carry an index into it."""
_KEY = {key: index for index, key in enumerate(EVENT_KEYS)}
_PROCESS_KEY = np.array([_KEY[(p.event_type, p.detail)] for p in PROCESSES])


def _email_keys(event_type: str) -> np.ndarray:
    return np.array([_KEY[(event_type, kind)] for kind in CAMPAIGN_KINDS])


# ======================================================================== public API
@dataclass(frozen=True)
class SimulatedFunnel:
    """A simulated funnel in the data contract, with the oracle's probabilities.

    Attributes:
        leads: ``lead_id``, ``created_at``, ``industry``, ``company_size``, ``employees``,
            ``country``, ``seniority``, ``lead_source``.
        events: ``lead_id``, ``timestamp``, ``event_type``, ``detail`` (NA where none),
            sorted by lead then time.
        stage_changes: ``lead_id``, ``stage`` (HubSpot lifecycle names), ``timestamp``.
        truth: ``lead_id``, ``as_of``, ``days_after_creation``, ``true_probability``,
            ``converted`` (0/1), one row per lead and snapshot day, except snapshots of
            leads already customers before ``as_of``.
    """

    leads: pd.DataFrame
    events: pd.DataFrame
    stage_changes: pd.DataFrame
    truth: pd.DataFrame


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
                          progress: Callable[[int], None] | None = None
                          ) -> Iterator[SimulatedFunnel]:
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

    Yields:
        The parts, in lead order.

    Raises:
        ValueError: A count, seed or day that cannot be used.
    """
    window = _Window.of(_checked_days(n_leads, seed, snapshot_days, horizon_days),
                        horizon_days)
    if leads_per_part < 1:
        raise ValueError(f"leads_per_part must be at least 1, got {leads_per_part}")
    created = _creation_seconds(n_leads, seed)
    campaigns = _campaigns(seed, window)
    step = (n_leads if leads_per_part >= n_leads
            else max(BLOCK, leads_per_part // BLOCK * BLOCK))
    for part_first in range(0, n_leads, step):
        part_stop = min(part_first + step, n_leads)
        blocks = []
        for first in range(part_first, part_stop, BLOCK):
            stop = min(first + BLOCK, part_stop)
            rng = np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(_STREAM_BLOCKS, first // BLOCK)))
            blocks.append(_simulate_block(rng, created[first:stop], campaigns, window)
                          .shifted(first - part_first))
            if progress is not None:
                progress(stop)
        yield _assemble(blocks, created[part_first:part_stop], part_first)


def write_funnel_parts(parts: Iterable[SimulatedFunnel], out_dir: Path) -> dict[str, Path]:
    """Write each table as a folder of Parquet part files, one file per funnel part.

    Table ``events`` goes to ``out_dir/events.parquet/part-00000.parquet``, ... (a folder
    that Parquet readers, and the data contract's ``.parquet`` paths, read as one table).

    Args:
        parts: Funnel parts, e.g. from :func:`simulate_funnel_parts`.
        out_dir: Folder for the table folders (created if missing).

    Returns:
        Table name -> its folder.
    """
    folders = {name: out_dir / f"{name}.parquet" for name in TABLES}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for number, part in enumerate(parts):
        for name, folder in folders.items():
            pa_parquet.write_table(_arrow_table(getattr(part, name)),
                                   folder / f"part-{number:05d}.parquet")
    return folders


def write_funnel(funnel: SimulatedFunnel, out_dir: Path,
                 file_format: Literal["csv", "parquet"]) -> dict[str, Path]:
    """Write the four tables as ``leads``, ``events``, ``stage_changes``, ``truth`` files.

    CSV timestamps are ISO 8601 with offset (``2025-03-04T10:15:00+00:00``), missing
    details empty; Parquet keeps the UTC timestamp type.

    Args:
        funnel: The simulated funnel.
        out_dir: Folder for the files (created if missing).
        file_format: ``csv`` or ``parquet``.

    Returns:
        Table name -> path written.

    Raises:
        ValueError: Unknown file format.
    """
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in TABLES:
        path = out_dir / f"{name}.{file_format}"
        table = _arrow_table(getattr(funnel, name))
        if file_format == "csv":
            _write_csv(_with_iso_times(table), path)
        else:
            pa_parquet.write_table(table, path)
        written[name] = path
    return written


CRM_FILES = {"leads": "contacts.csv", "events": "activities.csv",
             "stage_changes": "lifecycle_stage_history.csv"}
"""File of each table in the CRM-export layout (``configs/datasets/example_crm_export.yaml``)."""
CRM_COLUMNS = {"lead_id": "hs_object_id", "created_at": "createdate", "timestamp": "hs_timestamp",
               "event_type": "activity_type", "detail": "activity_detail",
               "stage": "lifecyclestage", "seniority": "hs_seniority",
               "lead_source": "hs_analytics_source", "employees": "numberofemployees"}
"""Contract column -> its name in a HubSpot-style export."""
CRM_ACTIVITIES = {
    "page_view": "PAGE_VIEW", "email_send": "EMAIL_SENT", "email_open": "EMAIL_OPEN",
    "email_click": "EMAIL_CLICK", "email_unsubscribe": "EMAIL_UNSUBSCRIBE",
    "email_bounce": "EMAIL_BOUNCE", "content_download": "FORM_SUBMISSION_CONTENT",
    "webinar_registration": "WEBINAR_REGISTERED", "webinar_attendance": "WEBINAR_ATTENDED",
    "newsletter_signup": "FORM_SUBMISSION_NEWSLETTER", "demo_request": "MEETING_BOOKED",
    "contact_request": "FORM_SUBMISSION_CONTACT"}
"""Simulated event type -> the activity name the export uses."""
CRM_STAGES = {"salesacceptedlead": "sales accepted", "closedlost": "closed lost"}
"""Lifecycle stages the export names its own way (the rest keep HubSpot's names)."""
CRM_TIME_FORMAT, CRM_TIMEZONE = "%Y-%m-%d %H:%M", "America/New_York"
"""Export times: local wall-clock minutes of the portal's zone, without an offset."""


def crm_export(funnel: SimulatedFunnel) -> dict[str, pd.DataFrame]:
    """The funnel laid out like a HubSpot export: its column, activity and stage names,
    and local times without an offset (the truth is not part of an export).

    Returns:
        Table name (``leads``, ``events``, ``stage_changes``) -> frame to write as is.
    """
    events = funnel.events.assign(event_type=funnel.events["event_type"].map(CRM_ACTIVITIES))
    stages = funnel.stage_changes.assign(
        stage=funnel.stage_changes["stage"].replace(CRM_STAGES))
    tables = {"leads": funnel.leads, "events": events, "stage_changes": stages}
    return {name: _local_times(frame).rename(columns=CRM_COLUMNS)
            for name, frame in tables.items()}


def _local_times(frame: pd.DataFrame) -> pd.DataFrame:
    times = {name: column.dt.tz_convert(CRM_TIMEZONE).dt.strftime(CRM_TIME_FORMAT)
             for name, column in frame.items() if isinstance(column.dtype, pd.DatetimeTZDtype)}
    return frame.assign(**times)


def write_crm_export(funnel: SimulatedFunnel, out_dir: Path) -> dict[str, Path]:
    """Write :func:`crm_export` as CSV files named as in :data:`CRM_FILES`.

    Returns:
        Table name -> path written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in crm_export(funnel).items():
        written[name] = out_dir / CRM_FILES[name]
        frame.to_csv(written[name], index=False)
    return written


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table; tz-aware columns become UTC timestamps."""
    columns = {}
    for name, column in frame.items():
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            naive = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            columns[name] = pa.array(naive).cast(pa.timestamp("ns", tz="UTC"))
        else:
            columns[name] = pa.array(column)
    return pa.table(columns)


def _write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: an unquoted header, no quoting (no value holds a comma), NA empty."""
    with path.open("wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(
            include_header=False, quoting_style="none"))


def _with_iso_times(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text with offset, e.g. ``2025-03-04T10:15:00+00:00``."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = table.column(index).cast(pa.timestamp("s", tz="UTC"))
            text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S+00:00")
            table = table.set_column(index, field.name, text)
    return table


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


# ====================================================================== fixed tables
@dataclass(frozen=True)
class _Window:
    """Snapshot settings and the law's tables over a lead's activity window.

    Attributes:
        snapshot_days: Sorted distinct snapshot days.
        horizon_days: Label horizon.
        days: Activity window length ``W`` in days.
        cumulative: ``(process, day + 1)`` running sums from day 0 of each process's age
            profile ``exp(-day / decay_days) + floor``.
        engagement_rate: ``(day, class)`` summed engagement rate (chattiness and
            activity 1) per emission class, including webinar registration.
        onset: ``q(j)``, the waiting -> research hazard into day ``j``.
        onset_survival: ``P(no onset by day j | waiting at day 0)``.
        decides_within: Snapshot day -> ``(state,)`` probability of deciding within the
            horizon from each state at that day.
    """

    snapshot_days: tuple[int, ...]
    horizon_days: int
    days: int
    cumulative: np.ndarray
    engagement_rate: np.ndarray
    onset: np.ndarray
    onset_survival: np.ndarray
    decides_within: dict[int, np.ndarray]

    @classmethod
    def of(cls, snapshot_days: tuple[int, ...], horizon_days: int) -> _Window:
        """The tables for these snapshot settings."""
        days = max(snapshot_days) + horizon_days + EXTRA_DAYS
        ages = np.arange(days)
        profile = np.stack([np.exp(-ages / p.decay_days) + p.floor for p in PROCESSES])
        cumulative = np.concatenate([np.zeros((len(PROCESSES), 1)),
                                     np.cumsum(profile, axis=1)], axis=1)
        onset = ONSET_PEAK * np.exp(-np.arange(days + 2) / ONSET_DECAY_DAYS) + ONSET_FLOOR
        survival = np.cumprod(np.concatenate([[1.0], 1 - onset[1:]]))
        decides = {a: _decides_within(onset, a, horizon_days) for a in snapshot_days}
        return cls(snapshot_days, horizon_days, days, cumulative,
                   _engagement_rate(profile), onset, survival, decides)

    @property
    def seconds(self) -> int:
        """Window length in seconds."""
        return self.days * DAY


def _engagement_rate(profile: np.ndarray) -> np.ndarray:
    engagement = [i for i, p in enumerate(PROCESSES) if p.driver == "engagement"]
    boosts = np.stack([PROCESSES[i].boost * PROCESSES[i].rate for i in engagement])
    return profile[engagement].T @ boosts


def _transition(beta: np.ndarray, onset: float, close: np.ndarray | float) -> np.ndarray:
    """One day of the chain on the last axis of ``beta``; won decisions leave the chain."""
    none, waiting, research, evaluation, decided = np.moveaxis(beta, -1, 0)
    return np.stack([none, waiting * (1 - onset),
                     waiting * onset + research * (1 - RESEARCH_EXIT),
                     research * RESEARCH_EXIT + evaluation * (1 - EVALUATION_EXIT),
                     decided + evaluation * EVALUATION_EXIT * (1 - close)], axis=-1)


def _decides_within(onset: np.ndarray, day: int, horizon_days: int) -> np.ndarray:
    """P(decision in days [day, day + horizon)) from each state on ``day``."""
    state = np.eye(5)
    decided = np.zeros(5)
    for step in range(horizon_days):
        decided += state[:, EVALUATION] * EVALUATION_EXIT
        state = _transition(state, onset[day + step + 1], 0.0)
    return decided


def _creation_seconds(n_leads: int, seed: int) -> np.ndarray:
    """Creation times (seconds after START), sorted so lead ids follow creation."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_CREATION,)))
    return np.sort(rng.integers(0, CREATION_DAYS * DAY, n_leads))


@dataclass(frozen=True)
class _Campaigns:
    """The email calendar: send time (seconds after START) and kind of each campaign."""

    seconds: np.ndarray
    kind: np.ndarray


def _campaigns(seed: int, window: _Window) -> _Campaigns:
    """One campaign a week, Tuesday to Thursday between 08:00 and 16:00 UTC."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM_CAMPAIGNS,)))
    weeks = (CREATION_DAYS + window.days) // 7 + 2
    weekday = rng.integers(1, 4, weeks)
    seconds = rng.integers(8 * 3600, 16 * 3600, weeks)
    kind = rng.choice(len(CAMPAIGN_KINDS), size=weeks, p=CAMPAIGN_SHARE)
    return _Campaigns((np.arange(weeks) * 7 + weekday) * DAY + seconds, kind)


# ====================================================================== one block
@dataclass(frozen=True)
class _Firms:
    """Firmographic codes (indexes into the category tuples) and employees."""

    industry: np.ndarray
    size: np.ndarray
    employees: np.ndarray
    country: np.ndarray
    seniority: np.ndarray
    source: np.ndarray


@dataclass(frozen=True)
class _LeadLaw:
    """Per-lead parameters of the law, functions of the firmographics only.

    Attributes:
        fit: ICP fit ``phi``.
        intent: ``P(K = 1)``.
        onset_now: ``P(episode starts on day 0 | K = 1)``.
        close: ``c(phi)``, P(customer | decision).
        activity: ``a(x)``, the engagement rate multiplier.
    """

    fit: np.ndarray
    intent: np.ndarray
    onset_now: np.ndarray
    close: np.ndarray
    activity: np.ndarray

    @property
    def size(self) -> int:
        """Number of leads."""
        return len(self.fit)


@dataclass(frozen=True)
class _Latent:
    """The hidden draws of each lead (days are lead days; NEVER when not in the window).

    Attributes:
        intent: K.
        job_seeker: The job-seeker flag.
        nu: Index into NU_VALUES.
        onset_day: First research day.
        evaluation_day: First evaluation day.
        decision_day: Last evaluation day (the decision falls in it).
        decision_second: Decision time in seconds after creation (NEVER if undecided).
        won: Became a customer at the decision.
    """

    intent: np.ndarray
    job_seeker: np.ndarray
    nu: np.ndarray
    onset_day: np.ndarray
    evaluation_day: np.ndarray
    decision_day: np.ndarray
    decision_second: np.ndarray
    won: np.ndarray

    def emission_class(self, lead: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Emission class of ``lead`` on lead day ``day``."""
        cls = np.where(day < self.onset_day[lead], 1,
                       np.where(day < self.evaluation_day[lead], 2,
                                np.where(day <= self.decision_day[lead], 3, 1)))
        return np.where(self.intent[lead], cls, 0)


@dataclass(frozen=True)
class _Points:
    """Events of a block: lead (index in block), seconds after creation, key, process."""

    lead: np.ndarray
    second: np.ndarray
    key: np.ndarray
    process: np.ndarray

    @classmethod
    def empty(cls) -> _Points:
        """No events."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)

    @classmethod
    def concat(cls, parts: Sequence[_Points]) -> _Points:
        """All events of ``parts``."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("lead", "second", "key", "process")))

    def where(self, mask: np.ndarray) -> _Points:
        """The events where ``mask`` holds."""
        return _Points(self.lead[mask], self.second[mask], self.key[mask], self.process[mask])


@dataclass(frozen=True)
class _Sends:
    """Email sends and their outcomes (times in seconds after the lead's creation).

    Attributes:
        lead: Lead index in the block.
        second: Send time.
        kind: Campaign kind index.
        bounced: The send bounced (same second).
        opened: Open time, NEVER if not opened.
        follow: 0 nothing, 1 click, 2 unsubscribe (after the open).
        follow_second: Click or unsubscribe time, NEVER if none.
    """

    lead: np.ndarray
    second: np.ndarray
    kind: np.ndarray
    bounced: np.ndarray
    opened: np.ndarray
    follow: np.ndarray
    follow_second: np.ndarray

    def where(self, mask: np.ndarray) -> _Sends:
        """The sends where ``mask`` holds."""
        return _Sends(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class _Webinars:
    """At most one webinar registration per lead and its attendance.

    Attributes:
        lead: Lead index in the block.
        second: Registration time.
        at_creation: Registered when created (webinar leads): no Poisson evidence.
        attended: Attendance time, NEVER if the lead did not attend.
    """

    lead: np.ndarray
    second: np.ndarray
    at_creation: np.ndarray
    attended: np.ndarray

    def where(self, mask: np.ndarray) -> _Webinars:
        """The registrations where ``mask`` holds."""
        return _Webinars(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class _History:
    """What the oracle reads: the law's parameters and the state-dependent activity."""

    law: _LeadLaw
    visits: _Points
    sends: _Sends
    webinars: _Webinars


@dataclass(frozen=True)
class _Block:
    """One block's tables as arrays (times in seconds after START, leads global)."""

    firms: _Firms
    events: tuple[np.ndarray, np.ndarray, np.ndarray]
    stages: tuple[np.ndarray, np.ndarray, np.ndarray]
    truth: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def shifted(self, first_lead: int) -> _Block:
        """The block with lead indexes offset by ``first_lead``, in compact dtypes."""
        lead, second, key = self.events
        s_lead, stage, s_second = self.stages
        t_lead, day, probability, converted = self.truth
        return _Block(self.firms, (_index(lead, first_lead), second, key.astype(np.int8)),
                      (_index(s_lead, first_lead), stage.astype(np.int8), s_second),
                      (_index(t_lead, first_lead), day, probability, converted))


def _index(lead: np.ndarray, first_lead: int) -> np.ndarray:
    """Global lead indexes (int32 holds any simulable number of leads)."""
    return (lead + first_lead).astype(np.int32)


def _simulate_block(rng: np.random.Generator, created: np.ndarray, campaigns: _Campaigns,
                    window: _Window) -> _Block:
    """Simulate one block of leads created at ``created`` (seconds after START)."""
    firms = _firmographics(rng, len(created))
    law = _lead_law(firms)
    latent = _latent(rng, law, window)
    processes = _poisson_events(rng, law, latent, window)
    webinars = _webinars(rng, processes, firms, latent)
    sends = _sends(rng, created, latent, campaigns, window)
    history = _History(law, processes.where(np.isin(processes.process, VISIT_PROCESSES)),
                       sends, webinars)
    events = _all_events(rng, processes, sends, webinars, firms, window)
    stages = _stage_changes(rng, events, firms, latent, window)
    lead, second, key = events
    return _Block(firms, (lead, second + created[lead], key),
                  (stages[0], stages[1], stages[2] + created[stages[0]]),
                  _truth(history, latent, window))


def _firmographics(rng: np.random.Generator, n: int) -> _Firms:
    industry = rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_SHARE)
    log_employees = INDUSTRY_LOG_EMPLOYEES[industry] + EMPLOYEES_SIGMA * rng.standard_normal(n)
    employees = np.clip(np.rint(np.exp(log_employees)), 1, MAX_EMPLOYEES).astype(np.int64)
    return _Firms(industry, np.searchsorted(SIZE_UPPER, employees, side="left"), employees,
                  rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE),
                  rng.choice(len(SENIORITIES), size=n, p=SENIORITY_SHARE),
                  rng.choice(len(LEAD_SOURCES), size=n, p=SOURCE_SHARE))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _lead_law(firms: _Firms) -> _LeadLaw:
    fit = (INDUSTRY_FIT[firms.industry] + SIZE_FIT[firms.size]
           + INDUSTRY_SIZE_FIT[firms.industry, firms.size] + COUNTRY_FIT[firms.country]
           + SENIORITY_FIT[firms.seniority])
    return _LeadLaw(
        fit=fit,
        intent=_sigmoid(INTENT_BASE + INTENT_FIT * fit + SOURCE_INTENT[firms.source]),
        onset_now=SOURCE_ONSET_NOW[firms.source],
        close=_sigmoid(CLOSE_BASE + CLOSE_FIT * fit),
        activity=np.exp(SOURCE_ACTIVITY[firms.source] + SENIORITY_ACTIVITY[firms.seniority]))


def _latent(rng: np.random.Generator, law: _LeadLaw, window: _Window) -> _Latent:
    """Draw K, the job-seeker flag, chattiness and the episode's days."""
    n = law.size
    intent = rng.random(n) < law.intent
    job_seeker = rng.random(n) < JOB_SEEKER_SHARE
    nu = rng.choice(len(NU_VALUES), size=n, p=NU_WEIGHTS)
    now = rng.random(n) < law.onset_now
    later = np.searchsorted(-window.onset_survival, -rng.random(n), side="right")
    later = np.where(later < window.days, later, NEVER)
    onset = np.where(intent, np.where(now, 0, later), NEVER)
    evaluation = onset + rng.geometric(RESEARCH_EXIT, n)
    decision_day = evaluation + rng.geometric(EVALUATION_EXIT, n) - 1
    decided = decision_day < window.days
    in_window = np.minimum(decision_day, window.days)
    second = np.where(decided, in_window * DAY + rng.integers(0, DAY, n), NEVER)
    won = decided & (rng.random(n) < law.close)
    return _Latent(intent, job_seeker, nu, onset, np.minimum(evaluation, NEVER),
                   np.minimum(decision_day, NEVER), second, won)


# --------------------------------------------------------------------- activity
def _segments(latent: _Latent, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per lead, four day ranges ``[start, end)`` with a constant emission class."""
    bounds = np.stack([np.zeros_like(latent.onset_day), latent.onset_day,
                       latent.evaluation_day, latent.decision_day + 1,
                       np.full_like(latent.onset_day, days)], axis=1)
    bounds = np.clip(bounds, 0, days)
    classes = np.where(latent.intent[:, None], np.array([1, 2, 3, 1]), 0)
    return bounds[:, :-1], bounds[:, 1:], classes


def _amplitude(process: _Process, law: _LeadLaw, latent: _Latent) -> np.ndarray:
    """Per-lead rate multiplier of a process (its driver)."""
    if process.driver == "engagement":
        return process.rate * NU_VALUES[latent.nu] * law.activity
    if process.driver == "job_seeker":
        return process.rate * np.where(latent.job_seeker, process.job_seeker_boost, 1.0)
    return np.full(law.size, process.rate)


def _poisson_events(rng: np.random.Generator, law: _LeadLaw, latent: _Latent,
                    window: _Window) -> _Points:
    """Events of every process in :data:`PROCESSES` over the window."""
    start, end, classes = _segments(latent, window.days)
    parts = []
    for index, process in enumerate(PROCESSES):
        cumulative = window.cumulative[index]
        mass = (_amplitude(process, law, latent)[:, None] * process.boost[classes]
                * (cumulative[end] - cumulative[start]))
        lead, day = _poisson_days(rng, mass, start, end, cumulative)
        if process.once:
            lead, day = _first_day(lead, day)
        second = day * DAY + rng.integers(0, DAY, len(day))
        parts.append(_Points(lead, second, np.full(len(lead), _PROCESS_KEY[index]),
                             np.full(len(lead), index)))
    return _Points.concat(parts)


def _poisson_days(rng: np.random.Generator, mass: np.ndarray, start: np.ndarray,
                  end: np.ndarray, cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lead and day of each event, given each segment's expected count."""
    counts = rng.poisson(mass).ravel()
    segment = np.repeat(np.arange(counts.size), counts)
    low = cumulative[start.ravel()[segment]]
    high = cumulative[end.ravel()[segment]]
    day = np.searchsorted(cumulative, low + rng.random(segment.size) * (high - low),
                          side="right") - 1
    day = np.clip(day, start.ravel()[segment], end.ravel()[segment] - 1)
    return segment // start.shape[1], day


def _first_day(lead: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's earliest day (the once-only processes keep that one event)."""
    order = np.lexsort((day, lead))
    first = order[np.unique(lead[order], return_index=True)[1]]
    return lead[first], day[first]


def _webinars(rng: np.random.Generator, processes: _Points, firms: _Firms,
              latent: _Latent) -> _Webinars:
    """The registration per lead (at creation for webinar leads) and its attendance."""
    from_webinar = firms.source == LEAD_SOURCES.index("webinar")
    poisson = processes.where(processes.process == WEBINAR_PROCESS)
    poisson = poisson.where(~from_webinar[poisson.lead])
    created = np.flatnonzero(from_webinar)
    lead = np.concatenate([created, poisson.lead])
    second = np.concatenate([np.zeros(len(created), dtype=np.int64), poisson.second])
    attends = rng.random(len(lead)) < WEBINAR_ATTEND[
        latent.emission_class(lead, second // DAY)]
    delay = rng.integers(1, WEBINAR_DELAY_DAYS + 1, len(lead)) * DAY + rng.integers(
        0, DAY, len(lead))
    return _Webinars(lead, second, np.arange(len(lead)) < len(created),
                     np.where(attends, second + delay, NEVER))


def _sends(rng: np.random.Generator, created: np.ndarray, latent: _Latent,
           campaigns: _Campaigns, window: _Window) -> _Sends:
    """Campaign sends inside each lead's window, their outcomes, bounces and opt-outs."""
    first = np.searchsorted(campaigns.seconds, created, side="right")
    last = np.searchsorted(campaigns.seconds, created + window.seconds, side="left")
    lead = np.repeat(np.arange(len(created)), last - first)
    campaign = first[lead] + _positions(last - first)
    kept = rng.random(len(lead)) < SEND_INCLUSION
    lead, campaign = lead[kept], campaign[kept]
    second = campaigns.seconds[campaign] - created[lead]
    sends = _outcomes(rng, lead, second, campaigns.kind[campaign], latent)
    return _stop_after_bounce_or_opt_out(rng, sends, len(created))


def _positions(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... within each run of ``counts`` consecutive items."""
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


def _outcomes(rng: np.random.Generator, lead: np.ndarray, second: np.ndarray,
              kind: np.ndarray, latent: _Latent) -> _Sends:
    """Open, click and unsubscribe draws for each send (bounces come later)."""
    cls = latent.emission_class(lead, second // DAY)
    n = len(lead)
    opened = rng.random(n) < OPEN[cls, kind]
    open_delay = _open_delay_days(rng.random(n))
    draw = rng.random(n)
    click = CLICK[cls, kind]
    follow = np.where(draw < click, 1, np.where(draw < click + UNSUBSCRIBE[cls], 2, 0))
    follow = np.where(opened, follow, 0)
    open_second = np.where(opened, second + np.floor(open_delay * DAY).astype(np.int64), NEVER)
    follow_second = np.where(follow > 0, open_second + rng.integers(
        0, FOLLOW_DELAY_MAX_SECONDS, n), NEVER)
    return _Sends(lead, second, kind, np.zeros(n, dtype=bool), open_second, follow,
                  follow_second)


def _open_delay_days(uniform: np.ndarray) -> np.ndarray:
    """Inverse CDF of the exponential open delay truncated at OPEN_DELAY_MAX."""
    top = 1 - np.exp(-OPEN_DELAY_MAX / OPEN_DELAY_MEAN)
    return -OPEN_DELAY_MEAN * np.log1p(-uniform * top)


def _open_delay_cdf(days: np.ndarray) -> np.ndarray:
    top = 1 - np.exp(-OPEN_DELAY_MAX / OPEN_DELAY_MEAN)
    inside = (1 - np.exp(-np.clip(days, 0, None) / OPEN_DELAY_MEAN)) / top
    return np.where(days >= OPEN_DELAY_MAX, 1.0, inside)


def _stop_after_bounce_or_opt_out(rng: np.random.Generator, sends: _Sends,
                                  n_leads: int) -> _Sends:
    """Bad addresses bounce at the first send; nobody gets mail after opting out."""
    position = _positions(np.bincount(sends.lead, minlength=n_leads))
    bad = (rng.random(n_leads) < BAD_ADDRESS)[sends.lead]
    opt_out = np.full(n_leads, NEVER)
    np.minimum.at(opt_out, sends.lead, np.where((sends.follow == 2) & ~bad, position, NEVER))
    keep = np.where(bad, position == 0, position <= opt_out[sends.lead])
    bounced = bad & (position == 0)
    sends = _Sends(sends.lead, sends.second, sends.kind, bounced,
                   np.where(bounced, NEVER, sends.opened), np.where(bounced, 0, sends.follow),
                   np.where(bounced, NEVER, sends.follow_second))
    return sends.where(keep)


# ------------------------------------------------------------------- event table
def _all_events(rng: np.random.Generator, processes: _Points, sends: _Sends,
                webinars: _Webinars, firms: _Firms,
                window: _Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every event of the block (lead, seconds after creation, key), sorted, in window."""
    others = processes.where(processes.process != WEBINAR_PROCESS)
    newsletter = _KEY[("newsletter_signup", None)]
    from_newsletter = firms.source == LEAD_SOURCES.index("newsletter")
    others = others.where(~((others.key == newsletter) & from_newsletter[others.lead]))
    parts = [_as_triple(others), *_email_events(sends), *_webinar_events(webinars),
             *_creation_events(rng, firms)]
    lead, second, key = (np.concatenate(column) for column in zip(*parts, strict=True))
    inside = second < window.seconds
    lead, second, key = lead[inside], second[inside], key[inside]
    order = np.lexsort((key, second, lead))
    return lead[order], second[order], key[order]


def _as_triple(points: _Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return points.lead, points.second, points.key


def _email_events(sends: _Sends) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    opened = sends.opened < NEVER
    followed = sends.follow > 0
    follow_key = np.where(sends.follow == 1, _email_keys("email_click")[sends.kind],
                          _email_keys("email_unsubscribe")[sends.kind])
    return [(sends.lead, sends.second, _email_keys("email_send")[sends.kind]),
            (sends.lead[sends.bounced], sends.second[sends.bounced],
             np.full(int(sends.bounced.sum()), _KEY[("email_bounce", None)])),
            (sends.lead[opened], sends.opened[opened],
             _email_keys("email_open")[sends.kind[opened]]),
            (sends.lead[followed], sends.follow_second[followed], follow_key[followed])]


def _webinar_events(webinars: _Webinars) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    attended = webinars.attended < NEVER
    return [(webinars.lead, webinars.second,
             np.full(len(webinars.lead), _KEY[("webinar_registration", None)])),
            (webinars.lead[attended], webinars.attended[attended],
             np.full(int(attended.sum()), _KEY[("webinar_attendance", None)]))]


def _creation_events(rng: np.random.Generator,
                     firms: _Firms) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Landing page views of search and social leads, sign-ups of newsletter leads."""
    parts = []
    draw = rng.random(len(firms.source))
    for source, pages in CREATION_PAGES.items():
        lead = np.flatnonzero(firms.source == LEAD_SOURCES.index(source))
        keys = np.array([_KEY[("page_view", page)] for page in pages])
        pick = np.searchsorted(np.cumsum(list(pages.values())), draw[lead], side="right")
        parts.append((lead, np.zeros(len(lead), dtype=np.int64),
                      keys[np.minimum(pick, len(keys) - 1)]))
    lead = np.flatnonzero(firms.source == LEAD_SOURCES.index("newsletter"))
    parts.append((lead, np.zeros(len(lead), dtype=np.int64),
                  np.full(len(lead), _KEY[("newsletter_signup", None)])))
    return parts


# ---------------------------------------------------------------------- the CRM
def _first_of(events: tuple[np.ndarray, np.ndarray, np.ndarray], event_types: Sequence[str],
              n_leads: int) -> np.ndarray:
    """Each lead's first event of these types (seconds after creation), NEVER if none."""
    lead, second, key = events
    wanted = np.array([k for k, (t, _) in enumerate(EVENT_KEYS) if t in event_types])
    hit = np.isin(key, wanted)
    first = np.full(n_leads, NEVER)
    np.minimum.at(first, lead[hit], second[hit])
    return first


def _stage_changes(rng: np.random.Generator, events: tuple[np.ndarray, np.ndarray, np.ndarray],
                   firms: _Firms, latent: _Latent,
                   window: _Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lifecycle stage changes (lead, stage index, seconds after creation), sorted."""
    n = len(firms.source)
    request = _first_of(events, REQUESTS, n)
    decided = latent.decision_second < NEVER
    onset = np.minimum(latent.onset_day, NEVER // DAY) * DAY
    early = onset + np.floor(rng.random(n) * MQL_EARLY_SHARE
                             * (latent.decision_second - onset)).astype(np.int64)
    mql = np.where(decided, np.where(request < latent.decision_second, request, early),
                   request)
    subscriber = np.isin(firms.source, [LEAD_SOURCES.index(s) for s in SUBSCRIBER_SOURCES])
    become_lead = np.minimum(_first_of(events, FORM_FILLS, n), mql)
    rows = [(np.arange(n), np.where(subscriber, SUBSCRIBER, LEAD), np.zeros(n, np.int64)),
            _rows(subscriber & (become_lead < NEVER), LEAD, become_lead),
            _rows(mql < NEVER, MQL, mql),
            *_decider_stages(rng, mql, onset, latent, decided),
            *_non_buyer_stages(rng, mql, decided)]
    lead, stage, second = (np.concatenate(column) for column in zip(*rows, strict=True))
    inside = second < window.seconds
    order = np.lexsort((stage[inside], second[inside], lead[inside]))
    return lead[inside][order], stage[inside][order], second[inside][order]


def _rows(mask: np.ndarray, stage: int,
          second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lead = np.flatnonzero(mask)
    return lead, np.full(len(lead), stage), second[lead]


def _decider_stages(rng: np.random.Generator, mql: np.ndarray, onset: np.ndarray,
                    latent: _Latent,
                    decided: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """SAL, SQL and opportunity between the episode's MQL and T; customer or lost at T."""
    start = np.maximum(mql, onset)
    span = np.where(decided, latent.decision_second - start, 0)
    fractions = np.sort(rng.random((len(mql), 3)), axis=1)
    steps = start[:, None] + np.floor(fractions * span[:, None]).astype(np.int64)
    rows = [_rows(decided, stage, steps[:, i])
            for i, stage in enumerate((SAL, SQL, OPPORTUNITY))]
    rows.append(_rows(decided & latent.won, CUSTOMER, latent.decision_second))
    rows.append(_rows(decided & ~latent.won, CLOSED_LOST, latent.decision_second))
    return rows


def _non_buyer_stages(rng: np.random.Generator, mql: np.ndarray,
                      decided: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Some MQLs who decide nothing in the window are accepted, qualified, then lost."""
    n = len(mql)
    accepted = ~decided & (mql < NEVER) & (rng.random(n) < NON_BUYER_SAL)
    qualified = accepted & (rng.random(n) < NON_BUYER_SQL)
    delays = (rng.exponential(NON_BUYER_DELAYS_DAYS, (n, 3)) * DAY).astype(np.int64)
    sal = np.where(accepted, mql, 0) + delays[:, 0]
    sql = sal + delays[:, 1]
    lost = np.where(qualified, sql, sal) + delays[:, 2]
    return [_rows(accepted, SAL, sal), _rows(qualified, SQL, sql),
            _rows(accepted, CLOSED_LOST, lost)]


# ======================================================================= the oracle
@dataclass(frozen=True)
class _Evidence:
    """Day-by-day log-evidence of a block's history over days ``[0, days)``.

    Attributes:
        visits: ``(lead, day)`` repeatable engagement events (they scale with ``nu``).
        loglik: ``(lead, day, class)`` log-probability of the day's events that does not
            involve ``nu``: boosts of visits, email outcomes, attendance outcomes.
        rate: ``(lead, day, class)`` integrated engagement rate at ``nu = 1``.
        registration: ``(lead, nu, state)`` log-probability of the Poisson registration on
            its day (-inf where there was none; webinar leads register at creation).
        registration_day: Lead day of that registration (-1 if none).
    """

    visits: np.ndarray
    loglik: np.ndarray
    rate: np.ndarray
    registration: np.ndarray
    registration_day: np.ndarray


def _truth(history: _History, latent: _Latent,
           window: _Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Truth rows (lead, snapshot day, probability, converted) of one block."""
    evidence = _evidence(history, window)
    parts = []
    for day in window.snapshot_days:
        as_of = day * DAY
        open_ = ~(latent.won & (latent.decision_second < as_of))
        probability = _posterior(history, evidence, day, window)
        converted = latent.won & (latent.decision_second >= as_of) & (
            latent.decision_second < as_of + window.horizon_days * DAY)
        lead = np.flatnonzero(open_)
        parts.append((lead, np.full(len(lead), day), probability[lead],
                      converted[lead].astype(np.int8)))
    lead, day, probability, converted = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((day, lead))
    return lead[order], day[order], probability[order], converted[order]


def _posterior(history: _History, evidence: _Evidence, day: int,
               window: _Window) -> np.ndarray:
    """P(customer within the horizon | history before lead day ``day``, not a customer).

    The forward algorithm of the hidden chain (chattiness x state), one step per day.
    """
    law = history.law
    loglik = _censored(history, evidence.loglik, day)
    beta = NU_WEIGHTS[None, :, None] * _prior(law)[:, None, :]
    for step in range(day):
        beta = _reweight(beta, _day_evidence(evidence, loglik, step))
        beta = _transition(beta, window.onset[step + 1], law.close[:, None])
    weights = beta.sum(axis=1)
    return law.close * (weights @ window.decides_within[day]) / weights.sum(axis=1)


def _prior(law: _LeadLaw) -> np.ndarray:
    """``(lead, state)`` distribution of the state on day 0."""
    prior = np.zeros((law.size, 5))
    prior[:, NONE] = 1 - law.intent
    prior[:, WAITING] = law.intent * (1 - law.onset_now)
    prior[:, RESEARCH] = law.intent * law.onset_now
    return prior


def _reweight(beta: np.ndarray, log_evidence: np.ndarray) -> np.ndarray:
    """``beta * exp(log_evidence)`` normalised per lead, without overflow."""
    with np.errstate(divide="ignore"):
        log_beta = np.log(beta) + log_evidence
    log_beta -= log_beta.max(axis=(1, 2), keepdims=True)
    weights = np.exp(log_beta)
    return weights / weights.sum(axis=(1, 2), keepdims=True)


def _day_evidence(evidence: _Evidence, loglik: np.ndarray, day: int) -> np.ndarray:
    """``(lead, nu, state)`` log-evidence of one day's events."""
    states = loglik[:, day][:, None, EMISSION_CLASS]
    rate = evidence.rate[:, day][:, None, EMISSION_CLASS]
    log_evidence = (evidence.visits[:, day, None, None] * np.log(NU_VALUES)[None, :, None]
                    + states - NU_VALUES[None, :, None] * rate)
    registered = np.flatnonzero(evidence.registration_day == day)
    log_evidence[registered] += evidence.registration[registered]
    return log_evidence


def _evidence(history: _History, window: _Window) -> _Evidence:
    """The day-by-day evidence up to the last snapshot day, outcomes uncensored."""
    n, days = history.law.size, max(window.snapshot_days)
    visits = history.visits.where(history.visits.second < days * DAY)
    cell = visits.lead * days + visits.second // DAY
    counts = np.bincount(cell, minlength=n * days).reshape(n, days)
    boosts = np.log(np.stack([process.boost for process in PROCESSES]))
    loglik = _scatter(cell, boosts[visits.process], n, days)
    sends = history.sends.where(history.sends.second < days * DAY)
    loglik += _scatter(sends.lead * days + sends.second // DAY,
                       _send_loglik(sends, np.full(len(sends.lead), NEVER)), n, days)
    webinars = history.webinars.where(history.webinars.second < days * DAY)
    loglik += _scatter(webinars.lead * days + webinars.second // DAY,
                       _attendance_loglik(webinars, np.full(len(webinars.lead), NEVER)),
                       n, days)
    rate, registration, registration_day = _registration(history, webinars,
                                                         window.engagement_rate[:days])
    return _Evidence(counts, loglik, rate, registration, registration_day)


def _scatter(cell: np.ndarray, values: np.ndarray, n: int, days: int) -> np.ndarray:
    """Sum ``(item, class)`` values into a ``(lead, day, class)`` array by cell."""
    return np.stack([np.bincount(cell, weights=values[:, c], minlength=n * days)
                     for c in range(values.shape[1])], axis=1).reshape(n, days, values.shape[1])


def _registration(history: _History, webinars: _Webinars, engagement_rate: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated engagement rate, with the webinar process stopped once registered,
    and the log-probability of each Poisson registration on its day."""
    law = history.law
    days = len(engagement_rate)
    rate = law.activity[:, None, None] * engagement_rate[None]
    webinar = PROCESSES[WEBINAR_PROCESS]
    profile = np.exp(-np.arange(days) / webinar.decay_days) + webinar.floor
    per_day = webinar.rate * profile[:, None] * webinar.boost[None, :]
    day = webinars.second // DAY
    stopped = np.arange(days)[None, :] >= day[:, None]
    rate[webinars.lead] -= (law.activity[webinars.lead, None, None] * stopped[:, :, None]
                            * per_day[None])
    registration = np.full((law.size, len(NU_VALUES), 5), -np.inf)
    registration_day = np.full(law.size, -1)
    poisson = webinars.where(~webinars.at_creation)
    daily = (law.activity[poisson.lead, None] * per_day[poisson.second // DAY])[:, None, :]
    registration[poisson.lead] = np.log(-np.expm1(
        -NU_VALUES[None, :, None] * daily))[:, :, EMISSION_CLASS]
    registration_day[poisson.lead] = poisson.second // DAY
    return rate, registration, registration_day


def _send_loglik(sends: _Sends, cutoff: np.ndarray) -> np.ndarray:
    """``(send, class)`` log-probability of each send's outcome as seen before ``cutoff``.

    Outcomes after ``cutoff`` are unseen: an unseen open has probability ``1 - p_open *
    F(cutoff - send)`` with F the open delay's CDF. Bounced sends carry no evidence.
    """
    p_open = OPEN[:, sends.kind].T
    p_click = CLICK[:, sends.kind].T
    p_out = UNSUBSCRIBE[None, :]
    open_seen = (sends.opened < cutoff)[:, None]
    follow_seen = (sends.follow_second < cutoff)[:, None]
    open_cdf = _open_delay_cdf((cutoff - sends.second) / DAY)[:, None]
    follow_cdf = np.clip((cutoff - sends.opened) / FOLLOW_DELAY_MAX_SECONDS, 0, 1)[:, None]
    after_open = np.where(
        follow_seen, np.log(np.where((sends.follow == 1)[:, None], p_click, p_out)),
        np.log1p(-(p_click + p_out) * follow_cdf))
    loglik = np.where(open_seen, np.log(p_open) + after_open, np.log1p(-p_open * open_cdf))
    return np.where(sends.bounced[:, None], 0.0, loglik)


def _attendance_loglik(webinars: _Webinars, cutoff: np.ndarray) -> np.ndarray:
    """``(registration, class)`` log-probability of the attendance as seen before cutoff."""
    waited = (cutoff - webinars.second)[:, None] / DAY
    offsets = np.arange(1, WEBINAR_DELAY_DAYS + 1)[None, :]
    cdf = np.clip(waited - offsets, 0, 1).mean(axis=1, keepdims=True)
    seen = (webinars.attended < cutoff)[:, None]
    return np.where(seen, np.log(WEBINAR_ATTEND)[None, :],
                    np.log1p(-WEBINAR_ATTEND[None, :] * cdf))


def _censored(history: _History, loglik: np.ndarray, day: int) -> np.ndarray:
    """``loglik`` over days ``[0, day)`` with outcomes that may fall after ``day`` censored.

    Only sends of the last day and registrations of the last CENSOR_DAYS days can have
    outcomes after ``as_of``; their uncensored terms are swapped for censored ones.
    """
    as_of = day * DAY
    result = loglik[:, :day].copy()
    sends = history.sends.where((history.sends.second < as_of)
                                & (history.sends.second >= as_of - DAY))
    cutoff = np.full(len(sends.lead), as_of)
    np.add.at(result, (sends.lead, sends.second // DAY),
              _send_loglik(sends, cutoff) - _send_loglik(sends, np.full_like(cutoff, NEVER)))
    webinars = history.webinars.where((history.webinars.second < as_of)
                                      & (history.webinars.second >= as_of - CENSOR_DAYS * DAY))
    cutoff = np.full(len(webinars.lead), as_of)
    np.add.at(result, (webinars.lead, webinars.second // DAY),
              _attendance_loglik(webinars, cutoff)
              - _attendance_loglik(webinars, np.full_like(cutoff, NEVER)))
    return result


# ====================================================================== assembling
def _assemble(blocks: list[_Block], created: np.ndarray, first_lead: int = 0
              ) -> SimulatedFunnel:
    """The four DataFrames, built one column at a time to bound memory.

    ``created`` and the blocks' lead indexes are those of leads ``first_lead``, ... (the
    ids count on from there)."""
    ids = pa.array([f"L{i:07d}" for i in range(first_lead + 1, first_lead + len(created) + 1)],
                   type=pa.string())
    return SimulatedFunnel(_leads_frame(ids, created, blocks), _events_frame(ids, blocks),
                           _stages_frame(ids, blocks), _truth_frame(ids, created, blocks))


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


def _leads_frame(ids: pa.Array, created: np.ndarray, blocks: list[_Block]) -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": _text(np.arange(len(created)), ids),
        "created_at": _times(created),
        "industry": _text(_firm(blocks, "industry"), INDUSTRIES),
        "company_size": _text(_firm(blocks, "size"), COMPANY_SIZES),
        "employees": _firm(blocks, "employees"),
        "country": _text(_firm(blocks, "country"), COUNTRIES),
        "seniority": _text(_firm(blocks, "seniority"), SENIORITIES),
        "lead_source": _text(_firm(blocks, "source"), LEAD_SOURCES)}, copy=False)


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


def simulate_into(config: DatasetConfig, n_leads: int, seed: int,
                  out_dir: Path) -> DatasetConfig:
    """Simulate ``n_leads`` leads with the config's snapshot settings, write them as
    Parquet to ``out_dir`` and return the config pointed at those files.

    Args:
        config: A simulated-dataset config (its ``snapshots`` give the truth's moments).
        n_leads: Leads to simulate.
        seed: Random seed.
        out_dir: Folder for the Parquet files (created if missing).
    """
    snapshots = config.snapshots
    write_funnel(simulate_funnel(n_leads, seed, snapshots.days_after_creation,
                                 snapshots.horizon_days), out_dir, "parquet")
    return config.pointed_at(out_dir, PARQUET_FILES)

"""The simulated funnel's generative law and its oracle, stated in full, with the law's tables.

The simulator (:func:`~predictive_scoring.data.synthetic.simulate_funnel`) draws leads
(firmographics), their marketing activity (events), their CRM lifecycle (stage changes)
and, for every lead and snapshot day ``d``, the *exact* probability that the lead becomes
a customer within ``horizon_days`` of ``as_of = created_at + d days`` given what is
observable before ``as_of``: its firmographics and its events with ``timestamp < as_of``.
A model trained on the files can be compared with this oracle; nothing can beat it in
expectation.

The generative law
------------------
Time is measured per lead in seconds since its creation; day ``j`` of a lead is
``[j, j + 1)`` days after creation, so every snapshot ``as_of`` is a day boundary. The
activity window is ``W = max(snapshot_days) + horizon_days + 30`` days, so the label of
every snapshot is fully observed.

*Fit.* Industry, employees (lognormal per industry, bucketed into ``company_size``),
country, seniority and lead source are drawn independently (leads are contacts of
companies, :mod:`.accounts`: a company's contacts share its industry, employees and
country, and seniority is drawn given the contact's buying role). The ideal-customer-profile
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

Randomness and scale: leads are simulated in blocks (:data:`.funnel.BLOCK`), each with its
own generator from ``SeedSequence(seed, spawn_key=(stream, block))`` (creation times and
the campaign calendar have their own streams), so the same seed gives the same funnel and
memory stays bounded by a block plus the result. Everything is vectorised over the
leads of a block; Python loops run over processes, days and snapshot days only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd


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
STREAM_CREATION, STREAM_CAMPAIGNS, STREAM_BLOCKS = 0, 1, 2

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
class Process:
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


PROCESSES: tuple[Process, ...] = (
    Process("page_view", "home", 0.05, 21, 0.3),
    Process("page_view", "product", 0.04, 21, 0.3, research=2.0, evaluation=1.5),
    Process("page_view", "pricing", 0.008, 21, 0.3, research=3.0, evaluation=8.0),
    Process("page_view", "contact", 0.004, 21, 0.3, research=1.5, evaluation=6.0),
    Process("page_view", "case_study", 0.005, 21, 0.3, research=5.0, evaluation=3.0),
    Process("content_download", "ebook", 0.004, 30, 0.25),
    Process("content_download", "whitepaper", 0.003, 30, 0.25, research=2.5),
    Process("content_download", "datasheet", 0.0015, 30, 0.25, research=3.0, evaluation=6.0),
    Process("demo_request", None, 0.0022, 30, 0.3, research=2.0, evaluation=25.0),
    Process("contact_request", None, 0.0014, 30, 0.3, research=2.0, evaluation=15.0),
    Process("webinar_registration", None, 0.002, 30, 0.25, research=4.0, evaluation=2.0,
             once=True),
    Process("page_view", "blog", 0.03, 60, 0.4, driver="job_seeker", job_seeker_boost=3.0),
    Process("page_view", "careers", 0.002, np.inf, 0.0, driver="job_seeker",
             job_seeker_boost=30.0),
    Process("newsletter_signup", None, 0.001, 30, 0.2, driver="age", once=True),
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
KEY = {key: index for index, key in enumerate(EVENT_KEYS)}
PROCESS_KEY = np.array([KEY[(p.event_type, p.detail)] for p in PROCESSES])


def email_keys(event_type: str) -> np.ndarray:
    return np.array([KEY[(event_type, kind)] for kind in CAMPAIGN_KINDS])


# ====================================================================== fixed tables
@dataclass(frozen=True)
class Window:
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
    def of(cls, snapshot_days: tuple[int, ...], horizon_days: int) -> Window:
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


def transition(beta: np.ndarray, onset: float, close: np.ndarray | float) -> np.ndarray:
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
        state = transition(state, onset[day + step + 1], 0.0)
    return decided



@dataclass(frozen=True)
class Firms:
    """Firmographic codes (indexes into the category tuples) and employees."""

    industry: np.ndarray
    size: np.ndarray
    employees: np.ndarray
    country: np.ndarray
    seniority: np.ndarray
    source: np.ndarray


@dataclass(frozen=True)
class LeadLaw:
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



def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def lead_law(firms: Firms) -> LeadLaw:
    fit = (INDUSTRY_FIT[firms.industry] + SIZE_FIT[firms.size]
           + INDUSTRY_SIZE_FIT[firms.industry, firms.size] + COUNTRY_FIT[firms.country]
           + SENIORITY_FIT[firms.seniority])
    return LeadLaw(
        fit=fit,
        intent=sigmoid(INTENT_BASE + INTENT_FIT * fit + SOURCE_INTENT[firms.source]),
        onset_now=SOURCE_ONSET_NOW[firms.source],
        close=sigmoid(CLOSE_BASE + CLOSE_FIT * fit),
        activity=np.exp(SOURCE_ACTIVITY[firms.source] + SENIORITY_ACTIVITY[firms.seniority]))



def open_delay_days(uniform: np.ndarray) -> np.ndarray:
    """Inverse CDF of the exponential open delay truncated at OPEN_DELAY_MAX."""
    top = 1 - np.exp(-OPEN_DELAY_MAX / OPEN_DELAY_MEAN)
    return -OPEN_DELAY_MEAN * np.log1p(-uniform * top)


def open_delay_cdf(days: np.ndarray) -> np.ndarray:
    top = 1 - np.exp(-OPEN_DELAY_MAX / OPEN_DELAY_MEAN)
    inside = (1 - np.exp(-np.clip(days, 0, None) / OPEN_DELAY_MEAN)) / top
    return np.where(days >= OPEN_DELAY_MAX, 1.0, inside)



"""The event processes of the simulated funnel: who the leads are, their hidden buying
episodes, their activity (visits, downloads, requests, webinars, email) and the CRM
lifecycle that follows from it, all drawn as :mod:`.law` says, vectorised over a block of
leads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from predictive_scoring.data.synthetic.law import (
    BAD_ADDRESS,
    CAMPAIGN_KINDS,
    CAMPAIGN_SHARE,
    CLICK,
    CLOSED_LOST,
    COUNTRIES,
    COUNTRY_SHARE,
    CREATION_DAYS,
    CREATION_PAGES,
    CUSTOMER,
    DAY,
    EMPLOYEES_SIGMA,
    EVALUATION_EXIT,
    EVENT_KEYS,
    FOLLOW_DELAY_MAX_SECONDS,
    FORM_FILLS,
    INDUSTRIES,
    INDUSTRY_LOG_EMPLOYEES,
    INDUSTRY_SHARE,
    JOB_SEEKER_SHARE,
    KEY,
    LEAD,
    LEAD_SOURCES,
    MAX_EMPLOYEES,
    MQL,
    MQL_EARLY_SHARE,
    NEVER,
    NON_BUYER_DELAYS_DAYS,
    NON_BUYER_SAL,
    NON_BUYER_SQL,
    NU_VALUES,
    NU_WEIGHTS,
    OPEN,
    OPPORTUNITY,
    PROCESS_KEY,
    PROCESSES,
    REQUESTS,
    RESEARCH_EXIT,
    SAL,
    SEND_INCLUSION,
    SENIORITIES,
    SENIORITY_SHARE,
    SIZE_UPPER,
    SOURCE_SHARE,
    SQL,
    STREAM_CAMPAIGNS,
    SUBSCRIBER,
    SUBSCRIBER_SOURCES,
    UNSUBSCRIBE,
    WEBINAR_ATTEND,
    WEBINAR_DELAY_DAYS,
    WEBINAR_PROCESS,
    Firms,
    LeadLaw,
    Process,
    Window,
    email_keys,
    open_delay_days,
)


@dataclass(frozen=True)
class Campaigns:
    """The email calendar: send time (seconds after START) and kind of each campaign."""

    seconds: np.ndarray
    kind: np.ndarray


def draw_campaigns(seed: int, window: Window) -> Campaigns:
    """One campaign a week, Tuesday to Thursday between 08:00 and 16:00 UTC."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_CAMPAIGNS,)))
    weeks = (CREATION_DAYS + window.days) // 7 + 2
    weekday = rng.integers(1, 4, weeks)
    seconds = rng.integers(8 * 3600, 16 * 3600, weeks)
    kind = rng.choice(len(CAMPAIGN_KINDS), size=weeks, p=CAMPAIGN_SHARE)
    return Campaigns((np.arange(weeks) * 7 + weekday) * DAY + seconds, kind)


@dataclass(frozen=True)
class Latent:
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
class Points:
    """Events of a block: lead (index in block), seconds after creation, key, process."""

    lead: np.ndarray
    second: np.ndarray
    key: np.ndarray
    process: np.ndarray

    @classmethod
    def empty(cls) -> Points:
        """No events."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)

    @classmethod
    def concat(cls, parts: Sequence[Points]) -> Points:
        """All events of ``parts``."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("lead", "second", "key", "process")))

    def where(self, mask: np.ndarray) -> Points:
        """The events where ``mask`` holds."""
        return Points(self.lead[mask], self.second[mask], self.key[mask], self.process[mask])


@dataclass(frozen=True)
class Sends:
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

    def where(self, mask: np.ndarray) -> Sends:
        """The sends where ``mask`` holds."""
        return Sends(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class Webinars:
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

    def where(self, mask: np.ndarray) -> Webinars:
        """The registrations where ``mask`` holds."""
        return Webinars(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class History:
    """What the oracle reads: the law's parameters and the state-dependent activity."""

    law: LeadLaw
    visits: Points
    sends: Sends
    webinars: Webinars



def draw_firmographics(rng: np.random.Generator, n: int) -> Firms:
    industry = rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_SHARE)
    log_employees = INDUSTRY_LOG_EMPLOYEES[industry] + EMPLOYEES_SIGMA * rng.standard_normal(n)
    employees = np.clip(np.rint(np.exp(log_employees)), 1, MAX_EMPLOYEES).astype(np.int64)
    return Firms(industry, np.searchsorted(SIZE_UPPER, employees, side="left"), employees,
                 rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE),
                 rng.choice(len(SENIORITIES), size=n, p=SENIORITY_SHARE),
                 rng.choice(len(LEAD_SOURCES), size=n, p=SOURCE_SHARE))



def draw_latent(rng: np.random.Generator, law: LeadLaw, window: Window) -> Latent:
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
    return Latent(intent, job_seeker, nu, onset, np.minimum(evaluation, NEVER),
                  np.minimum(decision_day, NEVER), second, won)


# --------------------------------------------------------------------- activity
def _segments(latent: Latent, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per lead, four day ranges ``[start, end)`` with a constant emission class."""
    bounds = np.stack([np.zeros_like(latent.onset_day), latent.onset_day,
                       latent.evaluation_day, latent.decision_day + 1,
                       np.full_like(latent.onset_day, days)], axis=1)
    bounds = np.clip(bounds, 0, days)
    classes = np.where(latent.intent[:, None], np.array([1, 2, 3, 1]), 0)
    return bounds[:, :-1], bounds[:, 1:], classes


def _amplitude(process: Process, law: LeadLaw, latent: Latent) -> np.ndarray:
    """Per-lead rate multiplier of a process (its driver)."""
    if process.driver == "engagement":
        return process.rate * NU_VALUES[latent.nu] * law.activity
    if process.driver == "job_seeker":
        return process.rate * np.where(latent.job_seeker, process.job_seeker_boost, 1.0)
    return np.full(law.size, process.rate)


def poisson_events(rng: np.random.Generator, law: LeadLaw, latent: Latent,
                   window: Window) -> Points:
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
        parts.append(Points(lead, second, np.full(len(lead), PROCESS_KEY[index]),
                            np.full(len(lead), index)))
    return Points.concat(parts)


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


def draw_webinars(rng: np.random.Generator, processes: Points, firms: Firms,
                  latent: Latent) -> Webinars:
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
    return Webinars(lead, second, np.arange(len(lead)) < len(created),
                    np.where(attends, second + delay, NEVER))


def draw_sends(rng: np.random.Generator, created: np.ndarray, latent: Latent,
               campaigns: Campaigns, window: Window) -> Sends:
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
              kind: np.ndarray, latent: Latent) -> Sends:
    """Open, click and unsubscribe draws for each send (bounces come later)."""
    cls = latent.emission_class(lead, second // DAY)
    n = len(lead)
    opened = rng.random(n) < OPEN[cls, kind]
    open_delay = open_delay_days(rng.random(n))
    draw = rng.random(n)
    click = CLICK[cls, kind]
    follow = np.where(draw < click, 1, np.where(draw < click + UNSUBSCRIBE[cls], 2, 0))
    follow = np.where(opened, follow, 0)
    open_second = np.where(opened, second + np.floor(open_delay * DAY).astype(np.int64), NEVER)
    follow_second = np.where(follow > 0, open_second + rng.integers(
        0, FOLLOW_DELAY_MAX_SECONDS, n), NEVER)
    return Sends(lead, second, kind, np.zeros(n, dtype=bool), open_second, follow,
                 follow_second)



def _stop_after_bounce_or_opt_out(rng: np.random.Generator, sends: Sends,
                                  n_leads: int) -> Sends:
    """Bad addresses bounce at the first send; nobody gets mail after opting out."""
    position = _positions(np.bincount(sends.lead, minlength=n_leads))
    bad = (rng.random(n_leads) < BAD_ADDRESS)[sends.lead]
    opt_out = np.full(n_leads, NEVER)
    np.minimum.at(opt_out, sends.lead, np.where((sends.follow == 2) & ~bad, position, NEVER))
    keep = np.where(bad, position == 0, position <= opt_out[sends.lead])
    bounced = bad & (position == 0)
    sends = Sends(sends.lead, sends.second, sends.kind, bounced,
                  np.where(bounced, NEVER, sends.opened), np.where(bounced, 0, sends.follow),
                  np.where(bounced, NEVER, sends.follow_second))
    return sends.where(keep)


# ------------------------------------------------------------------- event table
def all_events(rng: np.random.Generator, processes: Points, sends: Sends,
               webinars: Webinars, firms: Firms,
               window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every event of the block (lead, seconds after creation, key), sorted, in window."""
    others = processes.where(processes.process != WEBINAR_PROCESS)
    newsletter = KEY[("newsletter_signup", None)]
    from_newsletter = firms.source == LEAD_SOURCES.index("newsletter")
    others = others.where(~((others.key == newsletter) & from_newsletter[others.lead]))
    parts = [_as_triple(others), *_email_events(sends), *_webinar_events(webinars),
             *_creation_events(rng, firms)]
    lead, second, key = (np.concatenate(column) for column in zip(*parts, strict=True))
    inside = second < window.seconds
    lead, second, key = lead[inside], second[inside], key[inside]
    order = np.lexsort((key, second, lead))
    return lead[order], second[order], key[order]


def _as_triple(points: Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return points.lead, points.second, points.key


def _email_events(sends: Sends) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    opened = sends.opened < NEVER
    followed = sends.follow > 0
    follow_key = np.where(sends.follow == 1, email_keys("email_click")[sends.kind],
                          email_keys("email_unsubscribe")[sends.kind])
    return [(sends.lead, sends.second, email_keys("email_send")[sends.kind]),
            (sends.lead[sends.bounced], sends.second[sends.bounced],
             np.full(int(sends.bounced.sum()), KEY[("email_bounce", None)])),
            (sends.lead[opened], sends.opened[opened],
             email_keys("email_open")[sends.kind[opened]]),
            (sends.lead[followed], sends.follow_second[followed], follow_key[followed])]


def _webinar_events(webinars: Webinars) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    attended = webinars.attended < NEVER
    return [(webinars.lead, webinars.second,
             np.full(len(webinars.lead), KEY[("webinar_registration", None)])),
            (webinars.lead[attended], webinars.attended[attended],
             np.full(int(attended.sum()), KEY[("webinar_attendance", None)]))]


def _creation_events(rng: np.random.Generator,
                     firms: Firms) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Landing page views of search and social leads, sign-ups of newsletter leads."""
    parts = []
    draw = rng.random(len(firms.source))
    for source, pages in CREATION_PAGES.items():
        lead = np.flatnonzero(firms.source == LEAD_SOURCES.index(source))
        keys = np.array([KEY[("page_view", page)] for page in pages])
        pick = np.searchsorted(np.cumsum(list(pages.values())), draw[lead], side="right")
        parts.append((lead, np.zeros(len(lead), dtype=np.int64),
                      keys[np.minimum(pick, len(keys) - 1)]))
    lead = np.flatnonzero(firms.source == LEAD_SOURCES.index("newsletter"))
    parts.append((lead, np.zeros(len(lead), dtype=np.int64),
                  np.full(len(lead), KEY[("newsletter_signup", None)])))
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


def draw_stage_changes(rng: np.random.Generator,
                       events: tuple[np.ndarray, np.ndarray, np.ndarray],
                       firms: Firms, latent: Latent,
                       window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
                    latent: Latent,
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



"""The oracle: each snapshot's exact conversion probability given what is observable
before it, by the forward algorithm of the hidden chain (see :mod:`.law`, "The oracle")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predictive_scoring.data.synthetic.activity import History, Latent, Sends, Webinars
from predictive_scoring.data.synthetic.law import (
    CENSOR_DAYS,
    CLICK,
    DAY,
    EMISSION_CLASS,
    FOLLOW_DELAY_MAX_SECONDS,
    NEVER,
    NONE,
    NU_VALUES,
    NU_WEIGHTS,
    OPEN,
    PROCESSES,
    RESEARCH,
    UNSUBSCRIBE,
    WAITING,
    WEBINAR_ATTEND,
    WEBINAR_DELAY_DAYS,
    WEBINAR_PROCESS,
    LeadLaw,
    Window,
    open_delay_cdf,
    transition,
)


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


def truth_rows(history: History, latent: Latent,
               window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Truth rows (lead, snapshot day, probability, converted) of one block, at every
    snapshot day (lead age) the window holds."""
    evidence = gather_evidence(history, window)
    probabilities = posteriors(history, evidence, window)
    parts = []
    for day in window.snapshot_days:
        as_of = day * DAY
        open_ = ~(latent.won & (latent.decision_second < as_of))
        probability = probabilities[day]
        converted = latent.won & (latent.decision_second >= as_of) & (
            latent.decision_second < as_of + window.horizon_days * DAY)
        lead = np.flatnonzero(open_)
        parts.append((lead, np.full(len(lead), day), probability[lead],
                      converted[lead].astype(np.int8)))
    lead, day, probability, converted = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((day, lead))
    return lead[order], day[order], probability[order], converted[order]


def posterior(history: History, evidence: _Evidence, day: int,
              window: Window) -> np.ndarray:
    """P(customer within the horizon | history before lead day ``day``, not a customer).

    The forward algorithm of the hidden chain (chattiness x state), one step per day.
    """
    law = history.law
    loglik = _censored(history, evidence.loglik, day)
    beta = NU_WEIGHTS[None, :, None] * _prior(law)[:, None, :]
    for step in range(day):
        beta = _reweight(beta, _day_evidence(evidence, loglik, step))
        beta = transition(beta, window.onset[step + 1], law.close[:, None])
    weights = beta.sum(axis=1)
    return law.close * (weights @ window.decides_within[day]) / weights.sum(axis=1)


def posteriors(history: History, evidence: _Evidence, window: Window
               ) -> dict[int, np.ndarray]:
    """:func:`posterior` at every snapshot day, from one forward pass over the days.

    Only the last ``CENSOR_DAYS`` days before a snapshot see censored outcomes, so the
    pass runs once on the uncensored evidence, keeps the chain as it stands
    ``CENSOR_DAYS`` days before each snapshot, and finishes each snapshot from there with
    its censored evidence: the same arithmetic as :func:`posterior`, step for step, in
    about ``max(days)`` steps instead of ``sum(days)`` (ages up to a year: 365, not 673).
    """
    law = history.law
    start = {day: max(0, day - CENSOR_DAYS) for day in window.snapshot_days}
    kept: dict[int, np.ndarray] = {}
    beta = NU_WEIGHTS[None, :, None] * _prior(law)[:, None, :]
    last = max(start.values())
    for step in range(last + 1):
        if step in start.values():
            kept[step] = beta
        if step < last:
            beta = _step(beta, _day_evidence(evidence, evidence.loglik, step), window, law,
                         step)
    probabilities = {}
    for day, first in start.items():
        loglik = _censored(history, evidence.loglik, day)
        beta = kept[first]
        for step in range(first, day):
            beta = _step(beta, _day_evidence(evidence, loglik, step), window, law, step)
        weights = beta.sum(axis=1)
        probabilities[day] = (law.close * (weights @ window.decides_within[day])
                              / weights.sum(axis=1))
    return probabilities


def _step(beta: np.ndarray, log_evidence: np.ndarray, window: Window, law: LeadLaw,
          step: int) -> np.ndarray:
    """One day of the forward algorithm: weigh by the day's evidence, then move the chain."""
    return transition(_reweight(beta, log_evidence), window.onset[step + 1],
                      law.close[:, None])


def _prior(law: LeadLaw) -> np.ndarray:
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


def gather_evidence(history: History, window: Window) -> _Evidence:
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


def _registration(history: History, webinars: Webinars, engagement_rate: np.ndarray,
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


def _send_loglik(sends: Sends, cutoff: np.ndarray) -> np.ndarray:
    """``(send, class)`` log-probability of each send's outcome as seen before ``cutoff``.

    Outcomes after ``cutoff`` are unseen: an unseen open has probability ``1 - p_open *
    F(cutoff - send)`` with F the open delay's CDF. Bounced sends carry no evidence.
    """
    p_open = OPEN[:, sends.kind].T
    p_click = CLICK[:, sends.kind].T
    p_out = UNSUBSCRIBE[None, :]
    open_seen = (sends.opened < cutoff)[:, None]
    follow_seen = (sends.follow_second < cutoff)[:, None]
    open_cdf = open_delay_cdf((cutoff - sends.second) / DAY)[:, None]
    follow_cdf = np.clip((cutoff - sends.opened) / FOLLOW_DELAY_MAX_SECONDS, 0, 1)[:, None]
    after_open = np.where(
        follow_seen, np.log(np.where((sends.follow == 1)[:, None], p_click, p_out)),
        np.log1p(-(p_click + p_out) * follow_cdf))
    loglik = np.where(open_seen, np.log(p_open) + after_open, np.log1p(-p_open * open_cdf))
    return np.where(sends.bounced[:, None], 0.0, loglik)


def _attendance_loglik(webinars: Webinars, cutoff: np.ndarray) -> np.ndarray:
    """``(registration, class)`` log-probability of the attendance as seen before cutoff."""
    waited = (cutoff - webinars.second)[:, None] / DAY
    offsets = np.arange(1, WEBINAR_DELAY_DAYS + 1)[None, :]
    cdf = np.clip(waited - offsets, 0, 1).mean(axis=1, keepdims=True)
    seen = (webinars.attended < cutoff)[:, None]
    return np.where(seen, np.log(WEBINAR_ATTEND)[None, :],
                    np.log1p(-WEBINAR_ATTEND[None, :] * cdf))


def _censored(history: History, loglik: np.ndarray, day: int) -> np.ndarray:
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



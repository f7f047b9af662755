"""Paired promotion: a new version becomes champion only when it beats the champion on
the same leads (a bootstrap interval of the difference over leads above 0) and beats the
points there; the first version of a name only when it beats the points.

:func:`decide` is pure (scores in, decision out); :func:`judge` scores the challenger's
test leads with the champion loaded from the registry and adds the preview; :func:`apply`
moves the aliases once the new version is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import pandas as pd

from predictive_scoring.config import ConfigError, TrainingConfig
from predictive_scoring.errors import StoreUnreachable
from predictive_scoring.explain import global_weights, sample_rows
from predictive_scoring.models.columns import model_frame
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.stages import stage_for_values
from predictive_scoring.workflow.paired import LEVEL, RESAMPLES, metric_function, paired_bootstrap
from predictive_scoring.workflow.preview import Preview, promotion_preview

Decision = Literal["promoted", "kept", "first", "not_promoted"]
PREVIEW_ROWS = 2_000
"""Test leads (a seeded sample) the preview's global weights are measured on."""


class Failure(StrEnum):
    """Why no comparison could be made (each has its exit code in the CLI)."""

    NO_CONVERTERS = "no_converters"
    """The test leads hold one outcome only: no metric ranks them."""
    CHAMPION_UNUSABLE = "champion_unusable"
    """The champion's bundle cannot be loaded or cannot score the new data."""


@dataclass(frozen=True)
class PromotionSettings:
    """How a challenger is compared with the champion.

    Attributes:
        metric: ``roc_auc`` or ``pr_auc`` (``training.promotion_metric``).
        resamples: Bootstrap resamples of the leads.
        level: Coverage of the difference's interval.
        seed: Seed of the resamples.
    """

    metric: str = "roc_auc"
    resamples: int = RESAMPLES
    level: float = LEVEL
    seed: int = 0

    @classmethod
    def of(cls, training: TrainingConfig) -> PromotionSettings:
        """The project's settings: its promotion metric and seed.

        Raises:
            ValueError: A metric promotion cannot be decided on.
            ConfigError: ``promotion_higher_is_better`` is false (both metrics are
                better higher).
        """
        metric_function(training.promotion_metric)
        if not training.promotion_higher_is_better:
            raise ConfigError(f"training.promotion_higher_is_better is false, but "
                             f"{training.promotion_metric} is better higher; set it to true")
        return cls(training.promotion_metric, seed=training.seed)


@dataclass(frozen=True)
class Promotion:
    """The decision on a new version: ``metrics.json``'s ``promotion`` block.

    Attributes:
        champion_version: The champion it was compared with (None: none, or none
            usable).
        challenger_version: The new version (None until registered, or not registered).
        n_leads: Distinct leads compared.
        metric: The metric compared.
        champion: The champion's metric on those leads (None without one).
        challenger: The new version's.
        rules: The points'.
        difference_interval: Bootstrap interval of challenger minus champion.
        decision: ``promoted``, ``kept`` (the champion stays), ``first`` (first version,
            made champion) or ``not_promoted``.
        reason: One paragraph saying why.
        failure: Why nothing could be compared, if so (not written to the block).
    """

    champion_version: str | None
    challenger_version: str | None
    n_leads: int
    metric: str
    champion: float | None
    challenger: float | None
    rules: float | None
    difference_interval: tuple[float, float] | None
    decision: Decision
    reason: str
    failure: Failure | None = None

    @property
    def moves_champion(self) -> bool:
        """Whether the new version becomes champion."""
        return self.decision in ("promoted", "first")

    def block(self) -> dict[str, Any]:
        """The ``promotion`` block of ``metrics.json``."""
        interval = self.difference_interval
        return {"champion_version": self.champion_version,
                "challenger_version": self.challenger_version, "n_leads": self.n_leads,
                "metric": self.metric, "champion": self.champion,
                "challenger": self.challenger, "rules": self.rules,
                "difference_interval": None if interval is None else list(interval),
                "decision": self.decision, "reason": self.reason}


@dataclass(frozen=True)
class SameLeads:
    """The challenger's test rows, scored by everyone.

    Attributes:
        lead_id: Each row's lead (a lead may have several rows: snapshots).
        y: 0/1 outcome per row.
        challenger: The new version's probability per row.
        rules: The points per row.
        champion: The champion's probability per row, or None without a champion.
    """

    lead_id: np.ndarray
    y: np.ndarray
    challenger: np.ndarray
    rules: np.ndarray
    champion: np.ndarray | None = None


def decide(same: SameLeads, settings: PromotionSettings,
           champion_version: str | None) -> Promotion:
    """Promote, keep or refuse, from scores on the same leads (see the module docstring).

    Test leads of one outcome only give ``not_promoted`` with failure ``no_converters``.
    """
    metric = settings.metric
    n_leads = int(pd.Series(np.asarray(same.lead_id, dtype=object)).nunique())
    y = np.asarray(same.y)
    if np.unique(y).size < 2:
        held = "no converters" if y.sum() == 0 else "no leads that did not convert"
        return Promotion(champion_version, None, n_leads, metric, None, None, None, None,
                         "not_promoted",
                         f"the {len(y):,} test examples ({n_leads:,} leads) hold {held}, so "
                         f"{metric} cannot rank them and no model can be compared with the "
                         "champion or the points; nothing was promoted. Train on a longer "
                         "history (the test slice is the latest leads), or lower "
                         "training.test_fraction", Failure.NO_CONVERTERS)
    scores = {"challenger": same.challenger, "rules": same.rules}
    pairs = []
    if same.champion is not None:
        scores["champion"] = same.champion
        pairs = [("challenger", "champion")]
    found = paired_bootstrap(y, same.lead_id, scores, pairs, metric, settings.resamples,
                             settings.seed, settings.level)
    values = found.values
    challenger, rules = values["challenger"], values["rules"]
    beats_points = challenger > rules
    on = (f"on the same {n_leads:,} test leads ({len(y):,} examples, {int(y.sum()):,} "
          "converted)")
    versus_points = f"{metric} {challenger:.4f} against the points' {rules:.4f}"
    if same.champion is None:
        if beats_points:
            return Promotion(None, None, n_leads, metric, None, challenger, rules, None,
                             "first", f"first version of this model: it beats the points "
                             f"{on} ({versus_points}), so it becomes the champion")
        return Promotion(None, None, n_leads, metric, None, challenger, rules, None,
                         "not_promoted", f"first version of this model, registered without "
                         f"the champion alias: it does not beat the points {on} "
                         f"({versus_points}). Keep scoring with the points; retrain when "
                         "there is more history")
    champion = values["champion"]
    low, high = found.interval("challenger", "champion")
    shown = (f"{metric} {challenger:.4f} against champion version {champion_version}'s "
             f"{champion:.4f}, {settings.level:.0%} interval of the difference "
             f"[{low:+.4f}, {high:+.4f}]")
    common = (champion_version, None, n_leads, metric, champion, challenger, rules,
              (low, high))
    if low > 0 and beats_points:
        return Promotion(*common, "promoted", f"it beats the champion {on} ({shown}) and "
                         f"the points ({versus_points}), so it is the new champion")
    if low <= 0:
        why = (f"the champion stays: the new version is not better {on} ({shown}: the "
               "interval does not lie above 0)")
    else:
        why = (f"the champion stays: the new version beats it {on} ({shown}) but not the "
               f"points ({versus_points})")
    return Promotion(*common, "kept", why)


def champion_unusable(champion_version: str, problem: str, n_leads: int, metric: str,
                      dataset: str) -> Promotion:
    """The decision when the champion cannot be loaded or cannot score the new data."""
    return Promotion(champion_version, None, n_leads, metric, None, None, None, None,
                     "not_promoted",
                     f"champion version {champion_version} cannot score the new data "
                     f"({problem}), so the versions could not be compared on the same leads "
                     f"and the champion alias stays where it is; compare them yourself and "
                     f"move it with `predictive-scoring promote --dataset {dataset} "
                     "--version <version>`", Failure.CHAMPION_UNUSABLE)


def not_registered(promotion: Promotion) -> Promotion:
    """The decision of a run that was not registered: nothing moves."""
    return replace(promotion, decision="not_promoted",
                   reason=f"not registered (--no-register); otherwise: {promotion.reason}")


# ------------------------------------------------------------------ the champion
@dataclass(frozen=True)
class TestLeads:
    """The challenger's test slice as everyone scores it.

    Attributes:
        frame: The raw test rows (``lead_id``, attributes; events shape also
            ``created_at`` and ``as_of``), one per example.
        events: The events of those leads (events shape), or None.
        y: 0/1 outcome per row.
        rule_points: The points per row.
        rule_stage: The points' stage per row.
    """

    frame: pd.DataFrame
    events: pd.DataFrame | None
    y: np.ndarray
    rule_points: np.ndarray
    rule_stage: np.ndarray


@dataclass(frozen=True)
class Judgement:
    """The decision and the preview of one new version."""

    promotion: Promotion
    preview: Preview | None


def champion_input(champion: LeadScorer, test: TestLeads, dataset: str,
                   shape: str) -> pd.DataFrame:
    """The champion's model input for the challenger's test rows (built from the raw
    rows and events, with the champion's own vocabulary).

    Raises:
        ValueError: The champion was trained on another dataset or shape, reads fields
            the new data lacks, or its bundle's layout is not this version's.
    """
    if champion.dataset != dataset or champion.shape != shape:
        raise ValueError(f"it was trained on dataset '{champion.dataset}' ({champion.shape} "
                         f"shape), the new version on '{dataset}' ({shape} shape)")
    champion.check_layout()
    missing = [f for f in champion.raw_attributes() if f not in test.frame]
    if missing:
        raise ValueError(f"it reads fields the new data no longer has: {', '.join(missing)}")
    return champion.features(test.frame, champion.encode(test.frame, test.events))


def model_input(scorer: LeadScorer, test: TestLeads) -> pd.DataFrame:
    """A scorer's model input for the test rows: the frame's own columns when it holds
    them (the examples it was trained on), else built from the raw rows and events."""
    if all(c in test.frame for c in scorer.columns.all):
        return model_frame(test.frame, scorer.columns)
    return scorer.features(test.frame, scorer.encode(test.frame, test.events))


def judge(name: str, challenger: LeadScorer, test: TestLeads, settings: PromotionSettings,
          handoff: str, probability: np.ndarray | None = None) -> Judgement:
    """Compare a new scorer with the registered champion (if any) and the points on its
    test leads, and preview the change.

    Args:
        name: The registered model.
        challenger: The new scorer.
        test: Its test slice.
        settings: The metric and the bootstrap.
        handoff: The first stage handed to sales.
        probability: The new scorer's probability of the test rows, in their order, when
            training computed it already (None: scored here).

    Raises:
        StoreUnreachable: The registry cannot be reached.
    """
    from predictive_scoring.tracking import registry

    champion_version = registry.alias_version(name, registry.CHAMPION)
    new_input = model_input(challenger, test)
    p_new = challenger.probability(new_input) if probability is None else probability
    same = SameLeads(test.frame["lead_id"].to_numpy(object), test.y, p_new, test.rule_points)
    inputs: tuple[pd.DataFrame, pd.DataFrame | None] = (new_input, None)
    champion = None
    if champion_version is not None:
        try:
            champion = registry.load_scorer(f"models:/{name}/{champion_version}")
            old_input = champion_input(champion, test, challenger.dataset, challenger.shape)
            same = replace(same, champion=champion.probability(old_input))
            inputs = (new_input, old_input)
        except Exception as exc:  # any failure of the old bundle on the new data
            if isinstance(exc, StoreUnreachable):
                raise
            n_leads = int(pd.Series(same.lead_id).nunique())
            return Judgement(champion_unusable(champion_version, _first_line(exc), n_leads,
                                               settings.metric, challenger.dataset), None)
    promotion = decide(same, settings, champion_version)
    if promotion.failure is not None:
        return Judgement(promotion, None)
    return Judgement(promotion, _preview((challenger, champion), champion_version, test,
                                         same, inputs, (handoff, settings.seed)))


def _preview(scorers: tuple[LeadScorer, LeadScorer | None], champion_version: str | None,
             test: TestLeads, same: SameLeads,
             inputs: tuple[pd.DataFrame, pd.DataFrame | None],
             handoff_and_seed: tuple[str, int]) -> Preview:
    from predictive_scoring.stages import FUNNEL

    challenger, champion = scorers
    handoff, seed = handoff_and_seed
    order = [s.value for s in FUNNEL if s in challenger.rules.stage_thresholds]
    after = stage_for_values(same.challenger, challenger.stage_thresholds)
    picked = sample_rows(len(test.frame), PREVIEW_ROWS, seed)
    weights_after = _importance(challenger, inputs[0].iloc[picked])
    if champion is None or same.champion is None or inputs[1] is None:
        return promotion_preview(test.y, test.rule_stage, after, order, handoff,
                                 "the points", (None, weights_after))
    before = stage_for_values(same.champion, champion.stage_thresholds)
    return promotion_preview(test.y, before, after, order, handoff,
                             f"champion version {champion_version}",
                             (_importance(champion, inputs[1].iloc[picked]), weights_after))


def _importance(scorer: LeadScorer, features: pd.DataFrame) -> pd.DataFrame:
    return global_weights(scorer, features).importance


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def apply(name: str, version: str, promotion: Promotion) -> Promotion:
    """Make the new version the challenger, and the champion when the decision says so.

    Returns:
        The decision with the new version's number.
    """
    from predictive_scoring.tracking import registry

    registry.set_alias(name, registry.CHALLENGER, version)
    if promotion.moves_champion:
        registry.promote(name, version)
    return replace(promotion, challenger_version=version)

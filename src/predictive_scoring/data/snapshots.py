"""Training snapshots and labels: each lead as it looked at a moment ``as_of``, labelled
by whether it reached the target stage within the horizon after it, with no look-ahead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictive_scoring.config import SnapshotConfig
from predictive_scoring.data.dataset import ROW, EventsDataset
from predictive_scoring.stages import FUNNEL, Stage

DECIDED = "decided"
"""The snapshot column (with ``decision_after``): 1 when the lead decided (won, or lost
after reaching that stage) within the horizon, see :func:`first_decision`."""


@dataclass(frozen=True)
class Snapshots:
    """Training examples ``(lead, as_of)`` with labels, and what was left out and why.

    Attributes:
        frame: ``lead_id``, ``created_at``, ``as_of``, ``label`` (0/1), ``weight`` (see
            :func:`lead_weights`), with ``decision_after`` :data:`DECIDED` (0/1), the
            lead's attributes; one row per example.
        n_candidates: Snapshots considered before exclusions.
        n_past_target: Left out: the lead had already reached the target stage.
        n_censored: Left out: the horizon runs past the end of the data.
    """

    frame: pd.DataFrame
    n_candidates: int
    n_past_target: int
    n_censored: int


def candidate_as_of(leads: pd.DataFrame, config: SnapshotConfig, data_end: pd.Timestamp,
                    first_created: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per candidate snapshot: ``lead_id``, ``created_at``, ``as_of``.

    ``days_after_creation`` gives ``created_at + d days`` for each lead age d; ``every_days``
    gives calendar snapshots at midnight UTC every N days from the first lead's
    creation day (``first_created`` when given: the first of all leads, for a caller
    that passes a part of them) until ``data_end``, for every lead created before
    each date.
    """
    base = leads[["lead_id", "created_at"]]
    if config.days_after_creation is not None:
        offsets = pd.to_timedelta(sorted(set(config.days_after_creation)), unit="D")
        frame = base.loc[base.index.repeat(len(offsets))].reset_index(drop=True)
        frame["as_of"] = frame["created_at"] + np.tile(offsets, len(base))
        return frame
    start = (base["created_at"].min() if first_created is None else first_created).floor("D")
    dates = pd.date_range(start, data_end, freq=f"{config.every_days}D")
    frame = base.merge(pd.DataFrame({"as_of": dates}), how="cross")
    return frame.loc[frame["as_of"] > frame["created_at"]].reset_index(drop=True)


def first_reach(stage_changes: pd.DataFrame, target: Stage) -> pd.Series:
    """When each lead first reached ``target`` or any funnel stage beyond it."""
    beyond = {s.value for s in FUNNEL if s.rank >= target.rank}
    reached = stage_changes.loc[stage_changes["stage"].isin(beyond)]
    return reached.groupby("lead_id")["timestamp"].min()


def first_decision(stage_changes: pd.DataFrame, target: Stage, after: Stage) -> pd.Series:
    """When each lead first decided: reached ``target`` (or beyond), or ``lost`` at or
    after first reaching ``after`` (or a later funnel stage). A loss before that stage (a
    lead sales turned down early) is no decision: the lead was not buying."""
    won = first_reach(stage_changes, target)
    engaged = first_reach(stage_changes, after)
    losses = stage_changes.loc[stage_changes["stage"] == Stage.LOST.value,
                               ["lead_id", "timestamp"]]
    lost = losses.loc[(losses["timestamp"] >= lead_times(engaged, losses)).fillna(False)
                      .to_numpy()]
    return pd.concat([won, lost.groupby("lead_id")["timestamp"].min()]).groupby(level=0).min()


def lead_times(first: pd.Series, candidates: pd.DataFrame) -> pd.Series:
    """Each row's lead's time in ``first`` (by the rows' ``lead_id``; NaT without one)."""
    return pd.Series(first.reindex(candidates["lead_id"]).to_numpy(), index=candidates.index,
                     dtype="datetime64[ns, UTC]")


def within(when: pd.Series, start: pd.Series, end: pd.Series) -> pd.Series:
    """Whether each time falls in ``[start, end)`` (False for NaT)."""
    return ((when >= start) & (when < end)).fillna(False)


def data_end_of(dataset: EventsDataset) -> pd.Timestamp:
    """The last moment the data covers: the latest timestamp in any of its tables."""
    stamps = [dataset.leads["created_at"].max(), dataset.events["timestamp"].max(),
              dataset.stage_changes["timestamp"].max()]
    return max(s for s in stamps if pd.notna(s))


def build_snapshots(dataset: EventsDataset, config: SnapshotConfig,
                    data_end: pd.Timestamp,
                    first_created: pd.Timestamp | None = None) -> Snapshots:
    """Training examples with labels, with no look-ahead.

    The label is 1 when the lead first reaches the target stage (or a stage beyond it)
    in ``[as_of, as_of + horizon_days)``. Snapshots of leads that reached it before
    ``as_of``, and snapshots whose horizon ends after ``data_end`` (label not yet
    known), are left out and counted. ``first_created`` anchors calendar snapshots
    (see :func:`candidate_as_of`) when ``dataset`` holds a part of all leads.
    """
    candidates = candidate_as_of(dataset.leads, config, data_end, first_created)
    reached = lead_times(first_reach(dataset.stage_changes, config.target_stage), candidates)
    horizon_end = candidates["as_of"] + pd.Timedelta(days=config.horizon_days)
    past = (reached < candidates["as_of"]).fillna(False).to_numpy()
    censored = (horizon_end > data_end).to_numpy() & ~past
    keep = ~(past | censored)
    label = within(reached, candidates["as_of"], horizon_end)
    weight = lead_weights(candidates["lead_id"], (horizon_end <= data_end).to_numpy())
    frame = candidates.loc[keep].assign(label=label[keep].astype("int8"), weight=weight[keep])
    if config.decision_after is not None:
        decided = within(lead_times(first_decision(
            dataset.stage_changes, config.target_stage, config.decision_after), candidates),
            candidates["as_of"], horizon_end)
        frame[DECIDED] = decided[keep].astype("int8")
    attributes = dataset.leads.drop(columns=["created_at", ROW], errors="ignore")
    frame = frame.merge(attributes, on="lead_id", how="left", validate="many_to_one")
    return Snapshots(frame.reset_index(drop=True), len(candidates), int(past.sum()),
                     int(censored.sum()))


def lead_weights(lead_id: pd.Series, labellable: np.ndarray) -> np.ndarray:
    """Each candidate snapshot's weight: 1 / (its lead's number of snapshots whose horizon
    ends within the data), so a lead seen at six ages counts as much as one seen at two
    (long-lived leads would otherwise dominate the fit).

    The count ignores the outcome: a lead's snapshots sum to 1, less the share of those
    left out because it had reached the target by then. Weights that grew when a lead
    converted early would over-weight converters among the young snapshots.

    Args:
        lead_id: Lead of each candidate snapshot.
        labellable: Whether each candidate's horizon ends within the data.
    """
    counts = pd.Series(labellable, dtype=np.float64).groupby(
        lead_id.to_numpy()).transform("sum").to_numpy()
    with np.errstate(divide="ignore"):
        return np.where(labellable, 1.0 / counts, 0.0)

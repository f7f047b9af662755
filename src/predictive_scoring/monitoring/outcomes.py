"""Logged scores joined with what happened to their leads since.

Each logged score describes a lead at a moment (its ``as_of``; ``scored_at`` when it has
none) and the model was trained to say whether the lead reaches the target stage (or a
stage beyond it) within the horizon after that moment. The stage changes of the dataset
answer it, exactly as training labels its examples
(:func:`predictive_scoring.data.snapshots.build_snapshots`):

- ``matured``: the horizon has passed by the end of the data; the label is 1 when the
  lead first reached the target in ``[moment, moment + horizon)``, else 0;
- ``pending``: the horizon runs past the end of the data. Counted, never a negative
  (nor a positive: a lead that converted early still waits, as in training);
- ``already_converted``: the lead had reached the target before the moment scored;
- ``unknown_lead``: the lead is not in the dataset;
- ``duplicate``: the same request, lead, moment and model version logged again (the
  first is kept).

Only matured scores are judged; every other status is counted and named.
"""

from __future__ import annotations

import pandas as pd

from predictive_scoring.data.snapshots import first_reach
from predictive_scoring.stages import Stage

MATURED, PENDING = "matured", "pending"
ALREADY, UNKNOWN_LEAD, DUPLICATE = "already_converted", "unknown_lead", "duplicate"
STATUSES = (MATURED, PENDING, ALREADY, UNKNOWN_LEAD, DUPLICATE)
DUPLICATE_KEY = ["request_id", "lead_id", "moment", "model_version"]


def outcomes(rows: pd.DataFrame, lead_ids: pd.Series, stage_changes: pd.DataFrame,
             target: Stage, horizon_days: float, data_end: pd.Timestamp) -> pd.DataFrame:
    """The logged rows with ``status`` (:data:`STATUSES`), ``label`` (1/0 for matured
    rows, else missing) and ``horizon_end``.

    Args:
        rows: Logged scores (:func:`predictive_scoring.monitoring.log.read_log`).
        lead_ids: Every lead of the dataset.
        stage_changes: The dataset's stage changes (funnel stages).
        target: The stage the model predicts.
        horizon_days: Its horizon.
        data_end: The last moment the dataset covers.
    """
    moment = rows["moment"]
    horizon_end = moment + pd.Timedelta(days=horizon_days)
    reached = pd.Series(first_reach(stage_changes, target).reindex(rows["lead_id"])
                        .to_numpy(), index=rows.index, dtype="datetime64[ns, UTC]")
    known = rows["lead_id"].isin(lead_ids).to_numpy()
    duplicate = rows.duplicated(DUPLICATE_KEY, keep="first").to_numpy()
    already = (reached < moment).fillna(False).to_numpy()
    pending = (horizon_end > data_end).to_numpy()
    status = pd.Series(MATURED, index=rows.index, dtype=object)
    status[pending] = PENDING
    status[already] = ALREADY
    status[~known] = UNKNOWN_LEAD
    status[duplicate] = DUPLICATE
    converted = ((reached >= moment) & (reached < horizon_end)).fillna(False)
    label = converted.astype("float64").where(status == MATURED)
    return rows.assign(status=status, label=label, horizon_end=horizon_end)

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.stages import (
    FUNNEL,
    Stage,
    funnel_conversion,
    headline_rates,
    stage_for_values,
)

CLASSIC = {Stage.SUBSCRIBER: 1, Stage.LEAD: 6, Stage.MQL: 16, Stage.SQL: 50,
           Stage.OPPORTUNITY: 60}


def test_funnel_order() -> None:
    assert [s.value for s in FUNNEL] == ["subscriber", "lead", "mql", "sal", "sql",
                                         "opportunity", "customer"]
    assert Stage.LOST not in FUNNEL


@pytest.mark.parametrize(("points", "stage"), [
    (-20, "subscriber"), (0, "subscriber"), (1, "subscriber"), (5, "subscriber"),
    (6, "lead"), (15.9, "lead"), (16, "mql"), (49, "mql"), (50, "sql"), (60, "opportunity"),
    (500, "opportunity"),
])
def test_classic_thresholds(points: float, stage: str) -> None:
    assert stage_for_values(np.array([points]), CLASSIC)[0] == stage


def test_thresholds_order_does_not_depend_on_mapping_order() -> None:
    shuffled = dict(reversed(list(CLASSIC.items())))
    values = np.array([0, 7, 20, 55, 70])
    assert list(stage_for_values(values, shuffled)) == list(stage_for_values(values, CLASSIC))


def _changes(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["lead_id", "stage"])


def test_conversion_counts_skipped_steps_as_passed() -> None:
    changes = _changes([
        ("a", "lead"), ("a", "mql"), ("a", "sql"), ("a", "customer"),  # skipped SAL, opp
        ("b", "lead"), ("b", "mql"), ("b", "lost"),
        ("c", "subscriber"),
        ("d", "lead"), ("d", "mql"), ("d", "sal"), ("d", "sql"), ("d", "lost"),
    ])
    table = funnel_conversion(changes, n_leads=5)  # lead 'e' has no stage change
    assert table.loc["subscriber", "reached"] == 5
    assert table.loc["lead", "reached"] == 3
    assert table.loc["mql", "reached"] == 3
    assert table.loc["sal", "reached"] == 2
    assert table.loc["sql", "reached"] == 2
    assert table.loc["customer", "reached"] == 1
    assert table.loc["sql", "rate_from_previous"] == pytest.approx(1.0)
    rates = headline_rates(table)
    assert rates == pytest.approx({"lead_to_mql": 1.0, "mql_to_sql": 2 / 3, "sql_to_won": 0.5})


def test_empty_stage_gives_nan_rate() -> None:
    rates = headline_rates(funnel_conversion(_changes([("a", "subscriber")]), n_leads=1))
    assert all(np.isnan(v) for v in rates.values())


def test_no_thresholds_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one stage threshold"):
        stage_for_values(np.array([1.0]), {})

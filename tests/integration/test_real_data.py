"""The public datasets load through the same validation as any CRM export.

Expected figures come from each dataset's SOURCE.md (rows and positive counts published
with the data), not from this code.
"""

from pathlib import Path

import pytest

from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import all_problems, load_dataset
from predictive_scoring.learned_points import comparison, learn_points
from predictive_scoring.train import TrainingPlan
from predictive_scoring.workflow.training import run_training
from tests.conftest import REPO

pytestmark = pytest.mark.heavy

PUBLISHED = {  # dataset config -> (rows, positives) from SOURCE.md
    "bank_marketing": (45_211, 5_289),
    "online_shoppers": (12_330, 1_908),
    "olist_mqls": (8_000, 842),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_public_dataset_validates_cleanly(name: str, data_dir: Path) -> None:
    config = load_config(REPO / "configs" / "datasets" / f"{name}.yaml", DatasetConfig)
    dataset = load_dataset(config, data_dir)
    rows, positives = PUBLISHED[name]
    assert all_problems(dataset.checks).empty
    assert len(dataset.table) == rows
    assert int(dataset.table["target"].sum()) == positives
    assert dataset.table["lead_id"].is_unique
    for column in config.attributes.numeric:
        assert dataset.table[column].notna().all(), column


@pytest.mark.realdata
def test_bank_marketing_leaky_duration_is_set_aside(data_dir: Path) -> None:
    config = load_config(REPO / "configs/datasets/bank_marketing.yaml", DatasetConfig)
    dataset = load_dataset(config, data_dir)
    assert dataset.dropped_for_leakage == ["duration"]
    assert "duration" not in dataset.table


@pytest.mark.realdata
def test_olist_first_contact_dates_are_utc(data_dir: Path) -> None:
    config = load_config(REPO / "configs/datasets/olist_mqls.yaml", DatasetConfig)
    time = load_dataset(config, data_dir).table["time"]
    assert str(time.dtype) == "datetime64[ns, UTC]"
    assert time.min().strftime("%Y-%m-%d") == "2017-06-14"
    assert time.max().strftime("%Y-%m-%d") == "2018-05-31"


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "rows"), [("bank_marketing", 15_000),
                                            ("online_shoppers", None), ("olist_mqls", None)])
def test_model_and_learned_points_beat_the_hand_set_points_on_real_data(name: str, rows: int | None,
                                                      data_dir: Path,
                                                      tmp_path: Path) -> None:
    config = load_config(REPO / "configs" / "datasets" / f"{name}.yaml", DatasetConfig)
    if rows:  # a slice keeps the suite fast; the benchmarks train on everything
        source = config.root_dir(data_dir) / config.table.file
        sliced = tmp_path / config.table.file
        sliced.write_text("".join(source.open(encoding="utf-8").readlines()[: rows + 1]))
        config = config.model_copy(update={"root": str(tmp_path)})
    base = load_config(REPO / "configs/base.yaml", BaseConfig)
    run = run_training(load_dataset(config, data_dir), TrainingPlan(
        config, load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig),
        load_config(REPO / config.rules, RulesConfig), base))
    metrics = run.metrics
    assert metrics["model"]["roc_auc"] > metrics["rules"]["roc_auc"] + 0.05
    assert metrics["model"]["ece"] < 0.05
    assert metrics["oracle"] is None
    assert run.warnings == []
    test = run.trained.rows["test"]
    learned = learn_points(run.trained.scorer, run.examples.frame, None,
                           run.trained.rows["train"], run.examples.label)
    ranked = comparison(run.trained.scorer, learned, run.examples.frame.iloc[test], None,
                        run.examples.label[test], run.examples.rule_points[test],
                        len(test) // 5)["roc_auc"]
    assert ranked["learned points"] > ranked["hand-set points"] + 0.02

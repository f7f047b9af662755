"""The public datasets load through the same validation as any CRM export.

Expected figures come from each dataset's SOURCE.md (rows and positive counts published
with the data), not from this code.
"""

from pathlib import Path

import pytest

from predictive_scoring.config import DatasetConfig, load_config
from predictive_scoring.data import all_problems, load_dataset
from tests.conftest import REPO

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

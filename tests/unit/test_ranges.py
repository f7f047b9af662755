"""Allowed ranges of numeric attributes: declared in the dataset config, one check for any
caller (a number or an array), kept by a trained scorer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from predictive_scoring.config import (
    RANGES_KEY,
    Attributes,
    ConfigError,
    DatasetConfig,
    NumericRange,
    load_config,
    ranges_from_metadata,
)
from tests.conftest import REPO


def test_outside_reads_numbers_and_arrays_and_lets_missing_through() -> None:
    at_least_zero = NumericRange(min=0)
    assert at_least_zero.outside(-0.5) and not at_least_zero.outside(0)
    assert not at_least_zero.outside(math.nan)
    between = NumericRange(min=1, max=5)
    np.testing.assert_array_equal(between.outside(np.array([0.0, 1.0, 5.0, 5.5, np.nan])),
                                  [True, False, False, True, False])
    assert between.describe() == "must be between 1 and 5"
    assert NumericRange(max=10).describe() == "must be <= 10"


@pytest.mark.parametrize(("ranges", "message"), [
    ({"industry": {"min": 0}}, "not numeric attributes"),
    ({"employees": {"min": 5, "max": 1}}, "above max"),
    ({"employees": {}}, "give min, max or both"),
    ({"employees": {"min": 0, "low": 1}}, "low"),
])
def test_a_bad_range_is_refused_naming_it(ranges: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Attributes(categorical=["industry"], numeric=["employees"], ranges=ranges)


def test_the_shipped_configs_declare_ranges_that_load(tmp_path) -> None:
    simulated = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig)
    assert simulated.attributes.ranges == {"employees": NumericRange(min=0)}
    broken = (REPO / "configs/datasets/simulated.yaml").read_text().replace(
        "employees: {min: 0}", "employes: {min: 0}")
    (tmp_path / "typo.yaml").write_text(broken)
    with pytest.raises(ConfigError, match="employes"):
        load_config(tmp_path / "typo.yaml", DatasetConfig)


def test_a_scorer_keeps_its_ranges_as_plain_values() -> None:
    metadata = {RANGES_KEY: {"employees": NumericRange(min=0).model_dump()}}
    assert ranges_from_metadata(metadata) == {"employees": NumericRange(min=0)}
    assert ranges_from_metadata({}) == {}  # a bundle from before ranges

"""A hand-made table-shaped CRM export of a few hundred leads (about a third customers),
with its hand-set points: the small-data case of the tests and of benchmarks/bench_small.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from predictive_scoring.config import DatasetConfig, RulesConfig

EXPORT_RULES = RulesConfig.model_validate({
    "name": "export points",
    "attribute_rules": [
        {"name": "software", "field": "industry", "op": "eq", "value": "software",
         "points": 10},
        {"name": "big company", "field": "employees", "op": "gte", "value": 200,
         "points": 5}],
    "stage_thresholds": {"lead": 0, "mql": 10}})


def crm_export(folder: Path, n: int = 300, seed: int = 4) -> DatasetConfig:
    """A hand-made CRM export of ``n`` leads (about 28% customers), one row per lead."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["software", "retail", "finance", "health"], n)
    employees = np.round(rng.lognormal(4.5, 1.3, n))
    visits = rng.poisson(3, n)
    source = rng.choice(["web", "event", "partner"], n)
    logit = (-1.6 + 1.0 * (industry == "software") + 0.5 * np.log10(employees + 1)
             + 0.25 * visits - 0.8 * (source == "web"))
    won = rng.random(n) < 1 / (1 + np.exp(-(logit - 0.6)))
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 365, n)),
                                                          unit="D")
    pd.DataFrame({"id": [f"C{i}" for i in range(n)], "created": created.strftime("%Y-%m-%d"),
                  "industry": industry, "employees": employees, "visits": visits,
                  "source": source, "customer": np.where(won, "yes", "no")}
                 ).to_csv(folder / "export.csv", index=False)
    return DatasetConfig.model_validate({
        "name": "small_export", "shape": "table", "root": str(folder),
        "table": {"file": "export.csv", "id_column": "id", "target": "customer",
                  "time_column": "created"},
        "attributes": {"categorical": ["industry", "source"],
                       "numeric": ["employees", "visits"]},
        "feature_groups": {"engagement": ["visits"]}, "rules": "unused.yaml"})

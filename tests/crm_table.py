"""A small hand-made CRM export (one row per lead, table shape) with a known law, its
points table and its dataset config: the retrain tests' data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

INDUSTRIES = ("software", "retail", "finance", "health")
PLANS = ("free", "pro", "team")
POINTS = {"name": "crm_points", "attribute_rules": [
    {"name": "software", "field": "industry", "op": "eq", "value": "software", "points": 10},
    {"name": "busy", "field": "visits", "op": "gte", "value": 5, "points": 10},
    {"name": "large", "field": "employees", "op": "gte", "value": 200, "points": 5}],
    "stage_thresholds": {"subscriber": -100, "lead": 0, "mql": 10, "sql": 20}}


def crm_leads(n: int, seed: int, law: str = "interactions") -> pd.DataFrame:
    """Leads created one per hour. ``interactions``: conversion follows fit and an
    interaction the points miss (visits count only on paid plans); ``drift``: the earlier
    leads convert on the paid plans, the latest fifth (the test slice) when they visit
    often, as the points expect, so a model learnt from the past loses to the points."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(INDUSTRIES, n)
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    employees = np.round(np.exp(rng.normal(4.5, 1.2, n))).astype(int)
    visits = rng.poisson(4, n)
    if law == "drift":
        latest = np.arange(n) >= n - round(n * 0.2)
        converted = np.where(latest, visits >= 5, plan != "free") ^ (rng.random(n) < 0.05)
    else:
        paid = plan != "free"
        logit = (-3.2 + 1.0 * (industry == "software") + 0.5 * np.log10(employees)
                 + 0.45 * visits * paid - 0.3 * visits * ~paid)
        converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    created = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), "h")
    return pd.DataFrame({"lead_id": [f"C{seed}-{i}" for i in range(n)],
                         "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "industry": industry, "plan": plan, "employees": employees,
                         "visits": visits, "converted": np.where(converted, "yes", "no")})


def write_crm_dataset(folder: Path, name: str, leads: pd.DataFrame,
                      categorical: tuple[str, ...] = ("industry", "plan")) -> Path:
    """The leads as CSV, the points table and the dataset config in ``folder`` (the
    categorical attributes it reads: ``categorical``); returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    leads.to_csv(folder / "leads.csv", index=False)
    (folder / "points.yaml").write_text(yaml.safe_dump(POINTS), encoding="utf-8")
    config = {"name": name, "shape": "table", "root": str(folder),
              "table": {"file": "leads.csv", "id_column": "lead_id", "target": "converted",
                        "time_column": "created_at"},
              "attributes": {"categorical": list(categorical),
                             "numeric": ["employees", "visits"]},
              "feature_groups": {"engagement": ["visits"]},
              "rules": str(folder / "points.yaml")}
    path = folder / "dataset.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path

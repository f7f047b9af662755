"""The HTTP part of ``bench_accounts``: ``POST /v1/accounts/score`` for an account of 10
contacts against ``POST /v1/score`` for one lead, on the same server, taking turns."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._serving import (
    Connection,
    http_post,
    interleaved_ms,
    prepare,
    server,
    service_env,
    socket_caller,
)

REPO = Path(__file__).resolve().parents[1]
LEADS = 20_000
CONTACTS = 10
REQUESTS = 2_000
ROUNDS = 10


def account_bodies(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Held-out leads in groups of CONTACTS, each group an account scored as of its
    latest lead's moment (roles cycling through the buying group)."""
    roles = ["decision_maker", "champion", "user", "gatekeeper", "job_seeker"]
    accounts = []
    for start in range(0, len(leads) - CONTACTS + 1, CONTACTS):
        group = leads[start:start + CONTACTS]
        as_of = max(lead["as_of"] for lead in group)
        accounts.append({"account_id": f"bench-{start}", "as_of": as_of,
                         "attributes": {k: group[0]["attributes"].get(k) for k in
                                        ("industry", "company_size", "country", "employees")},
                         "contacts": [{"lead_id": lead["lead_id"],
                                       "created_at": lead["created_at"],
                                       "role": roles[i % len(roles)],
                                       "attributes": lead["attributes"],
                                       "events": lead["events"]}
                                      for i, lead in enumerate(group)]})
    return accounts


def http_section() -> str:
    with tempfile.TemporaryDirectory() as folder:
        prepared = prepare(Path(folder), LEADS, accounts=True, experiment="bench-accounts")
        single = [http_post("/v1/score", json.dumps(lead).encode())
                  for lead in prepared.leads]
        accounts = [http_post("/v1/accounts/score", json.dumps(body).encode())
                    for body in account_bodies(prepared.leads)]
        load_before = os.getloadavg()[0]
        with server("serving.app:create_app", service_env(prepared),
                    Path(folder) / "server.log", "/ready") as port:
            lead_connection, account_connection = Connection(port), Connection(port)
            try:
                ms = interleaved_ms({"single lead": socket_caller(lead_connection, single),
                                     "account of 10": socket_caller(account_connection,
                                                                    accounts)},
                                    REQUESTS, ROUNDS)
            finally:
                lead_connection.close()
                account_connection.close()
        load_after = os.getloadavg()[0]
    p = {name: (np.percentile(v, 50), np.percentile(v, 99)) for name, v in ms.items()}
    ratio = p["account of 10"][1] / p["single lead"][1]
    rows = "\n".join(f"| {name} | {p50:.2f} | {p99:.2f} | {p99 / p['single lead'][1]:.2f} |"
                     for name, (p50, p99) in p.items())
    return f"""### HTTP: an account of {CONTACTS} contacts against one lead

A LightGBM lead model and its account model trained on {LEADS:,} simulated leads, one \
uvicorn worker on 127.0.0.1 (uvloop, httptools), the minimal keep-alive client of \
`bench_serve`; {REQUESTS:,} sequential requests per series after a warm-up, the two \
series taking turns in {ROUNDS} blocks, reasons on (the default: each contact's own \
reasons come with the account). {len(single):,} held-out leads cycled; accounts are \
{len(accounts):,} groups of {CONTACTS} of them. Load average {load_before:.1f} at the \
start, {load_after:.1f} at the end (2 cores, shared).

| request | p50 (ms) | p99 (ms) | p99 / single-lead p99 (its floor) |
|---|---:|---:|---:|
{rows}

| check | result |
|---|---|
| account of {CONTACTS} p99 < 5x single-lead p99 | {'PASS' if ratio < 5 else 'FAIL'} \
({ratio:.2f}x) |
"""

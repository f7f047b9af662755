"""The ``score`` command: batch scoring of a file, on this machine or on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    BaseOption,
    Engine,
    EngineOption,
    ExitCode,
    PartitionsOption,
    SchedulerOption,
    WorkersOption,
    app,
    console,
    fail,
    friendly,
    parse_timestamp_option,
    progress_bar,
)

if TYPE_CHECKING:
    import pandas as pd

    from predictive_scoring.config import ReadOptions
    from predictive_scoring.distributed import DaskPlan, ScoreRequest
    from predictive_scoring.models.scorer import LeadScorer

CHUNK_ROWS = 200_000
"""Rows scored per chunk by default: bounds memory whatever the file's size."""


def separator(value: str) -> str:
    """The --sep option: one character (``\\t`` and ``tab`` mean a tab)."""
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1:
        raise typer.BadParameter(f"{value!r} is not one character")
    return value


@app.command()
@friendly
def score(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    input: Annotated[Path, typer.Option("--input", help="Leads to score (.csv/.parquet).")],
    output: Annotated[Path, typer.Option(help="Scores (.csv or .parquet).")],
    events: Annotated[Path | None, typer.Option(help="The leads' events (events shape).")]
    = None,
    as_of: Annotated[str | None, typer.Option(
        help="Score as of this time (ISO 8601) where a row has no as_of; default: now.")]
    = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (bounds memory).")]
    = CHUNK_ROWS,
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = "local",
    workers: WorkersOption = 2,
    partitions: PartitionsOption = 8,
    retries: Annotated[int, typer.Option(
        min=0, help="--engine dask: extra attempts for a partition that fails.")] = 2,
    reasons: Annotated[int, typer.Option(
        "--reasons", min=0, help="Top reasons per lead each way, as sentences in columns "
        "reason_up_1..K and reason_down_1..K (effects in score points); 0: none. Fit "
        "grade, engagement level and quadrant are always added.")] = 0,
    sep: Annotated[str, typer.Option(
        help="Field separator of CSV inputs (one character; '\\t' for tab).",
        callback=separator)] = ",",
    accounts: Annotated[Path | None, typer.Option(
        help="Also write one row per account (.csv/.parquet): its score, stage, points "
        "sum and maximum, the contacts that drive it with their own top reasons, and the "
        "missing roles (models trained with accounts; implies --reasons 2 when 0). Leads "
        "without an account id score as leads alone.")] = None,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Score a file of leads: probability, score, suggested stage, fit vs engagement,
    reasons, and the rules' points.

    With --engine dask, --input and --events are Parquet files, folders or globs and
    --output is a folder of part files (one per partition). The output appears only when
    every row is in it: a run that fails leaves no output file."""
    import pandas as pd

    from predictive_scoring.config import BaseConfig, ReadOptions, load_config
    from predictive_scoring.predict import read_leads_input, score_file
    from predictive_scoring.tracking import registry, store

    base = load_config(base_config, BaseConfig)
    read = ReadOptions(sep=sep)
    moment = parse_timestamp_option(as_of, read) or pd.Timestamp.now(tz="UTC")
    store.use_tracking(base)
    if engine is Engine.DASK:
        from predictive_scoring.distributed import DaskPlan, ScoreRequest

        with console.status(f"Loading {model}..."):
            scorer = registry.load_scorer(model)
        score_dask(scorer, ScoreRequest(input, events, moment, output, reasons, read),
                   DaskPlan(scheduler, workers, partitions, retries))
        return
    # The input is checked before the model is loaded: a bad file fails in a second.
    with console.status(f"Reading {input}..."):
        leads = read_leads_input(input, read)
    event_frame = _scoring_events(events, read, output) if events else None
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
    if accounts is not None:
        if getattr(scorer, "accounts", None) is None:
            fail(f"--accounts: {model} has no account model; train it on a dataset whose "
                 "config has an accounts section", ExitCode.BAD_CONFIG)
        reasons = reasons or 2
    with progress_bar() as progress:
        task = progress.add_task("Scoring leads", total=leads.rows)
        summary = score_file(scorer, input, event_frame, moment, output, chunk_rows, read,
                             lambda done, total: progress.update(task, completed=done,
                                                                 total=total), reasons, leads)
    console.print(f"Read {summary.rows_in:,} rows: {summary.rows_scored:,} scored, "
                  f"{summary.rows_failed:,} could not be scored -> [bold]{output}[/]")
    if summary.quarantine:
        console.print(f"[yellow]Rows that could not be scored (with reasons):[/] "
                      f"{summary.quarantine}")
    if summary.beyond_training:
        console.print(f"[yellow]warning:[/] {summary.beyond_training:,} lead(s) are older than "
                      f"any lead the model was trained on ({scorer.oldest_trained_age:g} "
                      "days): their scores extrapolate (age_beyond_training is true). "
                      "Train on older snapshot ages (snapshots.days_after_creation) to "
                      "cover them.")
    if accounts is not None:
        from predictive_scoring.accounts.scoring import score_accounts_file

        with console.status(f"Scoring the accounts into {accounts}..."):
            done = score_accounts_file(scorer.accounts, input, output, event_frame, accounts,
                                       read)
        console.print(f"{done.accounts:,} accounts -> [bold]{accounts}[/]")
        if done.note:
            console.print(f"[yellow]{escape(done.note)}[/]")


def score_dask(scorer: LeadScorer, request: ScoreRequest, plan: DaskPlan) -> None:
    """Score Parquet leads partition by partition on a Dask cluster; print the summary."""
    from predictive_scoring import distributed

    with distributed.dask_client(plan.scheduler, plan.workers) as client, \
            progress_bar() as progress:
        task = progress.add_task("Scoring partitions", total=plan.partitions)
        summary = distributed.score_distributed(
            client, scorer, request, plan, done=lambda n: progress.update(task, completed=n))
    for partition, attempts in summary.retried.items():
        console.print(f"[yellow]partition {partition} failed {len(attempts)} time(s) and "
                      f"succeeded on retry;[/] last error: {escape(attempts[-1])}")
    console.print(f"Read {summary.rows_in:,} rows: {summary.rows_scored:,} scored, "
                  f"{summary.rows_failed:,} could not be scored -> [bold]{request.output}[/] "
                  f"({summary.partitions} part files; rows in = rows out)")
    for path in (summary.quarantine, summary.events_quarantine):
        if path:
            console.print(f"[yellow]Rows that could not be used (with reasons):[/] {path}")


def _scoring_events(path: Path, read: ReadOptions, output: Path) -> pd.DataFrame:
    """The events file read for scoring; rows that cannot be used go next to the output."""
    from predictive_scoring.config import ColumnNames
    from predictive_scoring.data.dataset import ROW, read_scoring_events

    with console.status(f"Reading events from {path}..."):
        events, bad = read_scoring_events(path, read, ColumnNames())
    if len(bad):
        quarantine = output.with_name(f"{output.stem}.events.quarantine.csv")
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        bad.rename(columns={ROW: "row"}).to_csv(quarantine, index=False)
        console.print(f"[yellow]{len(bad):,} event rows could not be used[/] -> {quarantine}")
    return events

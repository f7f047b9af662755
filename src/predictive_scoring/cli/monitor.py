"""``monitor``: is the model still beating the points, read back from the prediction log;
``score-change``: why one lead's score changed between two moments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    BadRowsOption,
    BaseOption,
    ConfigOption,
    ExitCode,
    OnBadRows,
    app,
    console,
    events_dataset,
    fail,
    friendly,
    load_checked,
    parse_timestamp_option,
    progress_bar,
    table,
)

if TYPE_CHECKING:
    import pandas as pd

    from predictive_scoring.config import DatasetConfig


@app.command()
@friendly
def monitor(
    prediction_log: Annotated[str, typer.Option(
        help="SQLAlchemy URL of the service's prediction log: sqlite:///out/predictions.db "
        "or postgresql+psycopg://user@host/db.")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Folder for monitoring.json and "
                                      "monitoring.html.")],
    since: Annotated[str | None, typer.Option(
        help="First moment scored to include (ISO 8601); default: the log's first.")] = None,
    until: Annotated[str | None, typer.Option(
        help="First moment scored to leave out (ISO 8601); default: the log's last.")] = None,
    period: Annotated[str, typer.Option(help="month or week.")] = "month",
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="A bundle logged scores came from (models:/NAME/VERSION, runs:/..., "
        "or an exported folder), when the registry does not have it; repeatable.")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.QUARANTINE,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Realised accuracy of the logged scores, model vs points, per period and per model
    version; calibration; conversion by stage; drift and staleness against each model's
    training reference; alerts. Writes monitoring.json and monitoring.html."""
    import pandas as pd

    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.data.snapshots import data_end_of
    from predictive_scoring.monitoring import html, log
    from predictive_scoring.monitoring.report import MonitorPlan, Outcomes, monitoring_report

    if period not in ("month", "week"):
        fail(f"--period {period!r}: use month or week", ExitCode.BAD_CONFIG)
    base = load_config(base_config, BaseConfig)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           out / "quarantine")
    dataset = events_dataset(dataset, "monitor")
    window = (parse_timestamp_option(since, dataset_config.read),
              parse_timestamp_option(until, dataset_config.read))
    if None not in window and window[0] >= window[1]:
        fail(f"--since {since} is not before --until {until}", ExitCode.BAD_CONFIG)
    try:
        with progress_bar() as progress:
            task = progress.add_task("Reading the prediction log", total=None)
            read = log.read_log(prediction_log, *window, lambda done, total: progress.update(
                task, completed=done, total=total))
    except log.LogUnreachable as exc:
        fail(str(exc), ExitCode.NO_MODEL)
    except log.LogError as exc:
        fail(str(exc), ExitCode.BAD_CONFIG)
    references = model_references(read.rows, model or [], base)
    target, horizon = target_of(references, dataset_config)
    plan = MonitorPlan(target, horizon, base.training.handoff_stage, base.training.ece_bins,
                       period, window[0], window[1], base.monitoring,
                       pd.Timestamp.now(tz="UTC"))
    with console.status("Judging the logged scores..."):
        report, rows = monitoring_report(read, Outcomes(dataset.leads["lead_id"],
                                                        dataset.stage_changes,
                                                        data_end_of(dataset)),
                                         references, plan)
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitoring.json").write_text(to_json(report), encoding="utf-8")
    with console.status("Drawing monitoring.html..."):
        page, _ = html.write_report(report, rows, out)
    show_report(report)
    console.print(f"Wrote [bold]{out / 'monitoring.json'}[/] and [bold]{page}[/]")


def model_references(rows: pd.DataFrame, uris: list[str], base: Any
                     ) -> dict[str, dict[str, Any] | None]:
    """``name/version`` -> the training reference of each logged model version whose
    bundle is found (given with --model, else in the registry); None when the bundle has
    no reference. Versions not found are left out (unknown)."""
    from predictive_scoring.monitoring.metrics import versions_of
    from predictive_scoring.monitoring.reference import METADATA_KEY
    from predictive_scoring.tracking import registry, store

    store.use_tracking(base)
    found: dict[str, dict[str, Any] | None] = {}
    for uri in uris:
        ref = registry.resolve_bundle(uri)
        found[f"{ref.name}/{ref.version}"] = registry.load_scorer(ref.uri).metadata.get(
            METADATA_KEY)
    for name, version in versions_of(rows):
        key = f"{name}/{version}"
        if key in found or not version.isdigit():
            continue
        try:
            with console.status(f"Loading {key} from the registry..."):
                scorer = registry.load_scorer(f"models:/{name}/{version}")
        except Exception as exc:  # any reason: the version is unknown, its scores judged
            console.print(f"[yellow]{escape(key)}: not found ({escape(str(exc))[:200]}); its "
                          "scores are judged, its drift is unavailable[/]")
            continue
        found[key] = scorer.metadata.get(METADATA_KEY)
    return found


def target_of(references: dict[str, dict[str, Any] | None],
              config: DatasetConfig) -> tuple[Any, float]:
    """The target stage and horizon the models were trained for: the bundles' (they must
    agree), else the dataset config's."""
    from predictive_scoring.stages import Stage

    stated = {(r["target_stage"], r["horizon_days"]) for r in references.values()
              if r is not None and r.get("target_stage")}
    if len(stated) > 1:
        raise ValueError(f"the logged model versions were trained for different targets "
                         f"{sorted(stated)}; monitor them separately (--since/--until)")
    if stated:
        stage, horizon = stated.pop()
        return Stage(stage), float(horizon)
    return config.snapshots.target_stage, float(config.snapshots.horizon_days)


def to_json(report: dict[str, Any]) -> str:
    """The document as JSON: numpy numbers as plain ones, NaN and infinities as null."""
    import json
    import math

    import numpy as np

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return json.dumps(plain(report), indent=2, allow_nan=False, default=str)


def show_report(report: dict[str, Any]) -> None:
    """The headline numbers and the alerts on the console."""
    import pandas as pd

    from predictive_scoring.monitoring.html import headline

    text = headline(report).replace("<br>", "\n")
    for tag in ('<p class="headline">', "<b>", "</b>", "</p>"):
        text = text.replace(tag, "")
    import html as html_text

    console.print(html_text.unescape(text), highlight=False)
    frame = pd.DataFrame([{"version": version, "scored": b["n_scored"],
                           "matured": b["n_matured"], "pending": b["n_pending"],
                           "model auc": b["model"]["roc_auc"],
                           "points auc": b["rules"]["roc_auc"]}
                          for version, b in report["by_version"].items()])
    if len(frame):
        console.print(table("By model version", frame, {"scored": ",", "matured": ",",
                                                        "pending": ",", "model auc": ".3f",
                                                        "points auc": ".3f"}))
    for alert in report["alerts"]:
        console.print(f"[bold yellow]alert[/] {escape(alert['model_version'])}: "
                      f"{escape(alert['message'])}", highlight=False)


@app.command("score-change")
@friendly
def score_change(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    input: Annotated[Path, typer.Option("--input", help="Leads (.csv/.parquet).")],
    events: Annotated[Path, typer.Option(help="The leads' events (.csv/.parquet).")],
    lead: Annotated[str, typer.Option(help="The lead's id.")],
    from_: Annotated[str, typer.Option("--from", help="The first moment (ISO 8601).")],
    to: Annotated[str, typer.Option("--to", help="The second moment (ISO 8601).")],
    out: Annotated[Path | None, typer.Option(help="Also write the change as JSON here.")]
    = None,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Why a lead's score changed between two moments: each field's share of the change,
    in the reasons' words, adding up to it."""
    from predictive_scoring.config import BaseConfig, ReadOptions, load_config
    from predictive_scoring.data.read import read_table
    from predictive_scoring.monitoring.change import change_from_frames
    from predictive_scoring.predict import prepare_chunk
    from predictive_scoring.tracking import registry, store

    read = ReadOptions()
    moments = (parse_timestamp_option(from_, read), parse_timestamp_option(to, read))
    leads = read_table(input, read).to_pandas()
    if "lead_id" not in leads:
        fail(f"{input}: the leads file needs a lead_id column", ExitCode.BAD_DATA)
    own = leads.loc[leads["lead_id"].astype(str).str.strip() == lead]
    if own.empty:
        fail(f"{input}: no lead with lead_id {lead!r}", ExitCode.BAD_DATA)
    lead_events = _lead_events(events, read, lead)
    store.use_tracking(load_config(base_config, BaseConfig))
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
    frame, error = prepare_chunk(own.iloc[[0]], scorer, moments[0], read)
    if error.iloc[0]:
        fail(f"{input}, row {own['_row'].iloc[0]}: {error.iloc[0]}", ExitCode.BAD_DATA)
    change = change_from_frames(scorer, frame.drop(columns=["as_of"]), lead_events,
                                *moments)
    show_change(change)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_json(change.as_dict()), encoding="utf-8")
        console.print(f"Wrote [bold]{out}[/]")


def _lead_events(path: Path, read: Any, lead: str) -> pd.DataFrame:
    from predictive_scoring.config import ColumnNames
    from predictive_scoring.data.dataset import read_scoring_events

    events, bad = read_scoring_events(path, read, ColumnNames())
    if len(bad):
        console.print(f"[yellow]{len(bad):,} event rows of {path} could not be used "
                      "(bad timestamps or missing fields) and were left out[/]")
    return events.loc[events["lead_id"].astype(str) == lead]


def show_change(change: Any) -> None:
    """The change and its sentences on the console."""
    console.print(f"Lead {escape(change.lead_id)}: score {change.score_from:.1f} on "
                  f"{change.as_of_from:%Y-%m-%d} -> {change.score_to:.1f} on "
                  f"{change.as_of_to:%Y-%m-%d} ({change.score_change:+.1f} points)",
                  highlight=False)
    for item in change.shown():
        console.print(f"  {escape(item.sentence)}", highlight=False)

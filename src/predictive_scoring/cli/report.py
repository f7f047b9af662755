"""Commands for marketing ops: the comparison report and the learned points table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    BadRowsOption,
    BaseOption,
    CapacityOption,
    ConfigOption,
    MaxRulesOption,
    OnBadRows,
    app,
    console,
    friendly,
    load_checked,
    sales_capacity,
    table,
)

if TYPE_CHECKING:
    from predictive_scoring.config import RulesConfig
    from predictive_scoring.learned_points import LearnedPoints

ModelOption = Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                          "runs:/..., or an exported folder.")]


@app.command("learn-points")
@friendly
def learn_points_command(
    model: ModelOption,
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Points table to write (YAML, the rules format), "
                                      "e.g. configs/rules/learned.yaml.")],
    max_rules: MaxRulesOption = None,
    points_per_doubling: Annotated[float | None, typer.Option(
        min=1, help="Points that double a lead's odds of converting (the table's scale; "
        "default 10).")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Turn a model into a points table a CRM admin can type in: shown as edits to the
    current table, and compared with the model and the hand-set points on the same test
    leads."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.learned_points import write_rules
    from predictive_scoring.tracking import registry, store
    from predictive_scoring.workflow.reports import learn_points_for

    base = load_config(base_config, BaseConfig)
    store.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           out.parent / "quarantine")
    with console.status("Learning points from the model...") as status:
        found = learn_points_for(scorer, dataset, dataset_config, base, max_rules,
                                 points_per_doubling, lambda step: status.update(f"{step}..."))
    write_rules(found.learned.rules, out, f"Learned points: `predictive-scoring learn-points "
                f"--model {store.redact(model)}`.")
    ranking = found.ranking
    console.print(table(f"'{dataset_config.name}': {found.n_test:,} test examples, ranked by "
                        "each scorer", ranking.reset_index(),
                        dict.fromkeys(ranking.columns, ".4f")))
    show_learned(scorer.rules, found.learned)
    console.print(f"Learned table -> [bold]{escape(str(out))}[/] (`predictive-scoring rules "
                  f"--rules {escape(str(out))}` scores with it)")


def show_learned(current: RulesConfig, learned: LearnedPoints) -> None:
    """Print the learned table as edits to the current one, its stage thresholds, its
    starting points and what became of the company's own events."""
    from predictive_scoring.learned_points import table_edits, threshold_edits

    edits = table_edits(current, learned.rules)
    counts = edits["change"].value_counts()
    summary = ", ".join(f"{counts.get(c, 0)} {c}" for c in ("kept", "changed", "added",
                                                             "removed"))
    rules = len(learned.rules.event_rules) + len(learned.rules.attribute_rules)
    console.print(table(f"Learned points as edits to '{current.name}' ({rules} rules: "
                        f"{summary})", edits.rename(columns={"current points": "now",
                                                             "learned points": "learned"})))
    console.print(table("Stage thresholds (points at which a stage starts)",
                        threshold_edits(current, learned.rules)))
    if learned.rules.starting_points:
        console.print(f"Every lead starts with [bold]{learned.rules.starting_points:g}[/] "
                      "points (the scale's shift so that the thresholds start at 0).")
    for event_type, kept in learned.own_events.items():
        verdict = ("kept: it ranks the training leads better" if kept else
                   "left out: a rule on it does not rank the training leads better")
        console.print(f"'{escape(event_type)}' is an event the company sends itself; "
                      f"{verdict}.")


@app.command()
@friendly
def report(
    model: ModelOption,
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("report.html"),
    points_out: Annotated[Path | None, typer.Option(
        help="Also write the learned points table (YAML) here.")] = None,
    max_rules: MaxRulesOption = None,
    capacity: CapacityOption = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """The marketing-ops comparison report (one self-contained HTML file): model vs
    hand-set points vs learned points on the model's test leads, with the accuracy page."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.learned_points import write_rules
    from predictive_scoring.reporting.sections import write_report
    from predictive_scoring.tracking import registry, store
    from predictive_scoring.workflow.reports import model_report

    base = load_config(base_config, BaseConfig)
    capacity_used = sales_capacity(capacity, base_config)
    store.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
        promotion = registry.logged_promotion(model)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           out.parent / "quarantine")
    with console.status("Writing the report...") as status:
        data = model_report(scorer, dataset, dataset_config, base, capacity_used, max_rules,
                            lambda step: status.update(f"{step}..."), promotion)
        write_report(data, out)
    learned = data.learned
    if points_out is not None:
        write_rules(learned.rules, points_out, f"Learned points: `predictive-scoring report "
                    f"--model {store.redact(model)}`.")
    console.print(table("Ranked on the test leads", data.ranking.reset_index(),
                         dict.fromkeys(data.ranking.columns, ".4f")))
    show_accuracy(data.accuracy)
    console.print(f"Report -> [bold]{escape(str(out))}[/]")


def show_accuracy(accuracy: dict) -> None:
    """Print the accuracy page's thresholds: handed over, precision, recall, F1 per
    scorer, and the backtest's converters reached."""
    import pandas as pd

    for block in accuracy["thresholds"].values():
        if block is None:
            continue
        frame = pd.DataFrame([{"scorer": name, "threshold": row["threshold"],
                               "handed over": row["handed_over"],
                               "converted": row["true_positives"],
                               "precision": row["precision"], "recall": row["recall"],
                               "F1": row["f1"]} for name, row in block["scorers"].items()])
        console.print(table(f"{block['reading'].capitalize()}: {block['volume']:,} test leads",
                            frame, {"threshold": ".4g", "handed over": ",", "converted": ",",
                                    "precision": ".1%", "recall": ".1%", "F1": ".3f"}))
    backtest = accuracy["backtest"]
    if backtest is not None:
        reached = "; ".join(f"{name} {row['converters_reached']:.0f}"
                            for name, row in backtest["scorers"].items())
        console.print(f"Backtest, last {backtest['weeks']} weeks at {accuracy['capacity']}: "
                      f"{backtest['converters']:,} converters, reached by {reached}.")
    if accuracy.get("note"):
        console.print(f"note: {escape(accuracy['note'])}")

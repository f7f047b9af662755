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
    from predictive_scoring.config import BaseConfig, RulesConfig
    from predictive_scoring.learned_points import LearnedPoints, LearnSettings
    from predictive_scoring.train import Examples

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
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.learned_points import comparison, learn_points, write_rules
    from predictive_scoring.tracking import registry, store
    from predictive_scoring.train import examples_for_scorer

    base = load_config(base_config, BaseConfig)
    store.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           out.parent / "quarantine")
    with console.status("Rebuilding the training and test examples..."):
        examples, rows, _ = examples_for_scorer(scorer, dataset, dataset_config, base.training)
    events = dataset.events if isinstance(dataset, EventsDataset) else None
    with console.status("Learning points from the model..."):
        learned = learn_points(scorer, examples.frame, events, rows["train"], examples.label,
                               learn_settings(max_rules, points_per_doubling))
    write_rules(learned.rules, out, f"Learned points: `predictive-scoring learn-points "
                f"--model {store.redact(model)}`.")
    test = rows["test"]
    ranking = comparison(scorer, learned, examples.frame.iloc[test], events,
                         examples.label[test], examples.rule_points[test],
                         _handoff_volume(examples, rows, scorer.rules, base))
    console.print(table(f"'{dataset_config.name}': {len(test):,} test examples, ranked by "
                        "each scorer", ranking.reset_index(),
                        dict.fromkeys(ranking.columns, ".4f")))
    show_learned(scorer.rules, learned)
    console.print(f"Learned table -> [bold]{escape(str(out))}[/] (`predictive-scoring rules "
                  f"--rules {escape(str(out))}` scores with it)")


def learn_settings(max_rules: int | None, points_per_doubling: float | None = None
                   ) -> LearnSettings:
    """The learning settings, with the options given on the command line."""
    from predictive_scoring.learned_points import LearnSettings

    given = {"max_rules": max_rules, "points_per_doubling": points_per_doubling}
    return LearnSettings(**{k: v for k, v in given.items() if v is not None})


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
    from dataclasses import replace

    from predictive_scoring.accounts.training import evaluate_accounts
    from predictive_scoring.cli.train import dataset_funnel
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.leakage import leakage_warnings
    from predictive_scoring.learned_points import learn_points, write_rules
    from predictive_scoring.reporting.report import report_data
    from predictive_scoring.reporting.sections import write_report
    from predictive_scoring.tracking import registry, store
    from predictive_scoring.train import examples_for_scorer, test_weights

    base = load_config(base_config, BaseConfig)
    capacity_used = sales_capacity(capacity, base_config)
    store.use_tracking(base)
    with console.status(f"Loading {model}..."):
        scorer = registry.load_scorer(model)
    dataset_config, dataset = load_checked(config, base_config, on_bad_rows,
                                           out.parent / "quarantine")
    events = dataset.events if isinstance(dataset, EventsDataset) else None
    with console.status("Rebuilding the examples and learning points from the model..."):
        examples, rows, notes = examples_for_scorer(scorer, dataset, dataset_config,
                                                    base.training)
        warnings = leakage_warnings(examples.frame, examples.label, rows, examples.columns,
                                    base.training.leakage_auc)
        learned = learn_points(scorer, examples.frame, events, rows["train"], examples.label,
                               learn_settings(max_rules))
    with console.status("Drawing the figures and writing the report..."):
        weights = test_weights(scorer, examples, rows["test"], base.training.seed)
        data = report_data(scorer, examples, rows, events, learned, weights,
                           base.training.handoff_stage, capacity_used,
                           dataset_funnel(dataset), warnings, notes)
        accounts = evaluate_accounts(scorer, dataset, examples.frame, rows, dataset_config,
                                     base.training)
        write_report(replace(data, accounts=accounts), out)
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


def _handoff_volume(examples: Examples, rows: dict, rules_config: RulesConfig,
                    base: BaseConfig) -> int:
    """Test leads the hand-set rules put at the hand-off stage or later."""
    from predictive_scoring import evaluate
    from predictive_scoring.stages import FUNNEL

    names = [s.value for s in FUNNEL if s in rules_config.stage_thresholds]
    return evaluate.volume_of_stages(examples.rule_stage[rows["test"]],
                                     base.training.handoff_stage.value, names)

"""Commands for marketing ops: the comparison report and the learned points table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    BadRowsOption,
    BaseOption,
    ConfigOption,
    OnBadRows,
    app,
    console,
    friendly,
    load_checked,
    table,
)

if TYPE_CHECKING:
    from predictive_scoring.config import BaseConfig, RulesConfig
    from predictive_scoring.train import Examples


@app.command("learn-points")
@friendly
def learn_points_command(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Points table to write (YAML, the rules format), "
                                      "e.g. configs/rules/learned.yaml.")],
    points_per_doubling: Annotated[float | None, typer.Option(
        min=1, help="Points that double a lead's odds of converting (the table's scale; "
        "default 10).")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Turn a model into a points table the rules engine (and a CRM) can use, and compare it
    with the model and the hand-set points on the same test leads."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.learned_points import (
        LearnSettings,
        comparison,
        learn_points,
        write_rules,
    )
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
        settings = (LearnSettings() if points_per_doubling is None
                    else LearnSettings(points_per_doubling=points_per_doubling))
        learned = learn_points(scorer, examples.frame, events, rows["train"], settings)
    write_rules(learned.rules, out, f"Learned points: `predictive-scoring learn-points "
                f"--model {store.redact(model)}`.")
    test = rows["test"]
    ranking = comparison(scorer, learned, examples.frame.iloc[test], events,
                         examples.label[test], examples.rule_points[test],
                         _handoff_volume(examples, rows, scorer.rules, base))
    console.print(table(f"'{dataset_config.name}': {len(test):,} test examples, ranked by "
                        "each scorer", ranking.reset_index(),
                        dict.fromkeys(ranking.columns, ".4f")))
    console.print(f"{len(learned.rules.event_rules)} event rules and "
                  f"{len(learned.rules.attribute_rules)} attribute rules (of "
                  f"{learned.n_candidates} candidates) -> [bold]{out}[/]")


@app.command()
@friendly
def report(
    model: Annotated[str, typer.Option(help="models:/NAME@champion, models:/NAME/VERSION, "
                                       "runs:/..., or an exported folder.")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("report.html"),
    points_out: Annotated[Path | None, typer.Option(
        help="Also write the learned points table (YAML) here.")] = None,
    on_bad_rows: BadRowsOption = OnBadRows.FAIL,
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """The marketing-ops comparison report (one self-contained HTML file): model vs
    hand-set points vs learned points on the model's test leads."""
    from predictive_scoring.cli.train import dataset_funnel
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.leakage import leakage_warnings
    from predictive_scoring.learned_points import learn_points, write_rules
    from predictive_scoring.reporting.report import report_data, write_report
    from predictive_scoring.tracking import registry, store
    from predictive_scoring.train import examples_for_scorer, test_weights

    base = load_config(base_config, BaseConfig)
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
        learned = learn_points(scorer, examples.frame, events, rows["train"])
    with console.status("Drawing the figures and writing the report..."):
        weights = test_weights(scorer, examples, rows["test"], base.training.seed)
        data = report_data(scorer, examples, rows, events, learned, weights,
                           base.training.handoff_stage, dataset_funnel(dataset), warnings,
                           notes)
        write_report(data, out)
    if points_out is not None:
        write_rules(learned.rules, points_out, f"Learned points: `predictive-scoring report "
                    f"--model {store.redact(model)}`.")
    console.print(table("Ranked on the test leads", data.ranking.reset_index(),
                         dict.fromkeys(data.ranking.columns, ".4f")))
    console.print(f"Report -> [bold]{out}[/]")


def _handoff_volume(examples: Examples, rows: dict, rules_config: RulesConfig,
                    base: BaseConfig) -> int:
    """Test leads the hand-set rules put at the hand-off stage or later."""
    from predictive_scoring import evaluate
    from predictive_scoring.stages import FUNNEL

    names = [s.value for s in FUNNEL if s in rules_config.stage_thresholds]
    return evaluate.volume_of_stages(examples.rule_stage[rows["test"]],
                                     base.training.handoff_stage.value, names)

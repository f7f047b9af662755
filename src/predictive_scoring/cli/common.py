"""What every command shares: the Typer app, the consoles, option types, the error
paragraph, tables, progress bars and the dataset loader with its bad-rows policy.

Nothing heavy is imported at module level here or in the command modules (pandas, the
models, MLflow are imported where they are used), so ``--help`` answers at once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from predictive_scoring.errors import IncompleteOutput, ModelNotFound
from predictive_scoring.models.kinds import catalog as kinds

if TYPE_CHECKING:
    import pandas as pd

    from predictive_scoring.config import Capacity, DatasetConfig, ReadOptions
    from predictive_scoring.data.dataset import EventsDataset, TableDataset

app = typer.Typer(help="Lead scoring learned from historical lead behaviour, next to the "
                  "classic hand-set points.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


console = Console()


errors = Console(stderr=True)


F = TypeVar("F", bound=Callable[..., object])


class OnBadRows(StrEnum):
    """What to do with rows that fail validation."""

    FAIL = "fail"
    QUARANTINE = "quarantine"


class FileFormat(StrEnum):
    """Output file format of the simulator."""

    CSV = "csv"
    PARQUET = "parquet"


class Layout(StrEnum):
    """How the simulator lays out its files."""

    CONTRACT = "contract"
    CRM = "crm"


BaseOption = Annotated[Path, typer.Option("--base-config", help="Project settings file.")]


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Dataset config YAML.")]


BadRowsOption = Annotated[OnBadRows, typer.Option(
    "--on-bad-rows", help="fail: stop on the first bad file; quarantine: write bad rows to "
    "a quarantine folder next to the output and go on with the rest.")]


DEFAULT_BASE = Path("configs/base.yaml")


MaxRulesOption = Annotated[int | None, typer.Option(
    min=1, help="Most rules in the learned points table, one per signal (default 25).")]


CapacityOption = Annotated[str | None, typer.Option(
    help="Leads sales can take, for the accuracy page's threshold: a number per week "
    "(250) or a share of the leads (10%). Default: training.sales_capacity in the base "
    "config.")]


class Engine(StrEnum):
    """Where training and scoring run."""

    LOCAL = "local"
    DASK = "dask"


EngineOption = Annotated[Engine, typer.Option(
    help="local: this machine (the default); dask: a Dask cluster (needs the [dask] extra; "
    "inputs are Parquet files, folders or globs every worker can read).")]


SchedulerOption = Annotated[str, typer.Option(
    help="--engine dask: a running scheduler's address (tcp://host:8786), or 'local' for "
    "a cluster of worker processes on this machine.")]


WorkersOption = Annotated[int, typer.Option(
    min=1, help="--engine dask --scheduler local: worker processes (one thread each).")]


PartitionsOption = Annotated[int, typer.Option(
    min=1, help="--engine dask: partitions of leads (more bounds each worker's memory).")]


SIMULATED_CONFIG = Path("configs/datasets/simulated.yaml")


CRM_EXAMPLE_CONFIG = Path("configs/datasets/example_crm_export.yaml")


ModelName = StrEnum("ModelName", {name.upper(): name for name in kinds.names()})
"""The model kinds the catalog names (each has its config in configs/models/NAME.yaml);
reading their names imports no model library."""


DEFAULT_MODEL = ModelName(kinds.DEFAULT)


MODELS_DIR = Path("configs/models")


DatasetName = Annotated[str, typer.Option("--dataset", help="Dataset name (its config's "
                        "`name`); each dataset has its own registered model.")]


SERVICE_ENV = "PREDICTIVE_SCORING_"


class ExitCode(IntEnum):
    """What a command's exit code says (the README lists them)."""

    OK = 0
    BAD_DATA = 1
    """Input files, rows or option values that cannot be used."""
    BAD_CONFIG = 2
    """A config file or service setting that cannot be used (also click's usage errors)."""
    NO_MODEL = 3
    """The model URI names no loadable bundle, or its tracking store cannot be reached."""
    BUG = 4
    """An unexpected error: a bug to report (``PREDICTIVE_SCORING_DEBUG=1`` shows where)."""
    NOT_PROMOTED = 5
    """``retrain``: no champion, and the new version does not beat the points."""
    RELOAD_FAILED = 6
    """``retrain``: promoted, but the running service did not reload the champion."""


DEBUG_ENV = "PREDICTIVE_SCORING_DEBUG"


def fail(message: str, code: int = ExitCode.BAD_DATA) -> NoReturn:
    """Print one paragraph on standard error and exit with ``code``.

    The paragraph is one line the terminal wraps (``soft_wrap``): a file path in it is
    never broken by a newline, so it can be copied as it is."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def friendly(command: F) -> F:
    """Turn every error into one clear paragraph and an exit code (:class:`ExitCode`),
    never a traceback (unless ``PREDICTIVE_SCORING_DEBUG=1`` asks for one)."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except ModelNotFound as exc:
            fail(str(exc), ExitCode.NO_MODEL)
        except (ValueError, OSError, IncompleteOutput) as exc:
            from predictive_scoring.config import ConfigError

            if isinstance(exc, ConfigError):
                fail(f"bad configuration: {exc}", ExitCode.BAD_CONFIG)
            fail(str(exc) or type(exc).__name__, ExitCode.BAD_DATA)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            fail(f"unexpected error ({type(exc).__name__}: {_first_line(exc)}); this is a bug: "
                 f"please report it with the traceback that {DEBUG_ENV}=1 shows",
                 ExitCode.BUG)

    return run  # type: ignore[return-value]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def table(title: str, frame: pd.DataFrame, formats: dict[str, str] | None = None) -> Table:
    """A rich table of a frame; columns named in ``formats`` are right-aligned numbers."""
    shown = Table(title=title, title_justify="left", min_width=len(title) + 2)
    for column in frame.columns:
        shown.add_column(str(column), justify="right" if column in (formats or {}) else "left",
                         overflow="fold")
    for row in frame.itertuples(index=False):
        shown.add_row(*[_cell(value, (formats or {}).get(col))
                        for col, value in zip(frame.columns, row, strict=True)])
    return shown


def _cell(value: object, fmt: str | None) -> str:
    import pandas as pd

    if fmt and isinstance(value, int | float) and not pd.isna(value):
        return format(value, fmt)
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def load_checked(config_path: Path, base_path: Path, on_bad_rows: OnBadRows,
                 quarantine_dir: Path) -> tuple[DatasetConfig, EventsDataset | TableDataset]:
    """Read, validate and report a dataset, applying the bad-rows policy."""
    from predictive_scoring.config import BaseConfig, DatasetConfig, load_config
    from predictive_scoring.data.dataset import (
        DataValidationError,
        all_problems,
        checks_summary,
        describe_problems,
        load_dataset,
        write_quarantine,
    )

    config = load_config(config_path, DatasetConfig)
    base = load_config(base_path, BaseConfig)
    with console.status(f"Reading and validating dataset '{config.name}'..."):
        dataset = load_dataset(config, base.resolved_data_dir())
    console.print(table(f"Dataset '{config.name}' ({config.shape})",
                         checks_summary(dataset.checks),
                         {c: "," for c in ("read", "kept", "quarantined", "problems")}))
    problems = all_problems(dataset.checks)
    if len(problems) and on_bad_rows is OnBadRows.FAIL:
        raise DataValidationError(problems, f"dataset '{config.name}' has bad rows (rerun "
                                  "with --on-bad-rows quarantine to set them aside)")
    if len(problems):
        written = write_quarantine(dataset.checks, quarantine_dir)
        console.print(escape(describe_problems(problems, "quarantined")), style="yellow",
                      highlight=False)
        console.print(f"Quarantined rows written to {', '.join(map(str, written))}")
    return config, dataset


def events_dataset(dataset: EventsDataset | TableDataset, command: str) -> EventsDataset:
    """The dataset if it has the events shape, else a clear error naming the command."""
    from predictive_scoring.data.dataset import EventsDataset

    if not isinstance(dataset, EventsDataset):
        raise ValueError(f"'{command}' needs an events-shaped dataset (leads, events and "
                         "stage changes); this dataset config has shape 'table'")
    return dataset


def progress_bar() -> Progress:
    """The progress bar every long-running command shows."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def sales_capacity(text: str | None, base_config: Path) -> Capacity:
    """The ``--capacity`` option, or the base config's ``training.sales_capacity``."""
    from predictive_scoring.config import BaseConfig, Capacity, load_config

    if text is None:
        return load_config(base_config, BaseConfig).training.sales_capacity
    return Capacity(**Capacity.parsed(text))


def default_out(base_config: Path, config: Path) -> Path:
    """``<output_dir>/<dataset name>``: where a command writes unless told otherwise."""
    from predictive_scoring.config import BaseConfig, DatasetConfig, load_config

    base = load_config(base_config, BaseConfig)
    return Path(base.output_dir) / load_config(config, DatasetConfig).name


def parse_timestamp_option(text: str | None, read: ReadOptions) -> pd.Timestamp | None:
    """The ``--as-of`` option as a UTC timestamp, read like the dataset's timestamps."""
    import pandas as pd

    from predictive_scoring.data.dataset import parse_timestamps

    if text is None:
        return None
    parsed = parse_timestamps(pd.Series([text]), read)
    if parsed.isna().iloc[0]:
        raise ValueError(f"--as-of {text!r} is not a timestamp (use ISO 8601, e.g. "
                         "2025-06-30T00:00:00Z)")
    return parsed.iloc[0]


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet (``.parquet``/``.pq``) or CSV, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)

"""Registry commands: move the champion alias by hand, give it back, export a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from predictive_scoring.cli.common import (
    DEFAULT_BASE,
    BaseOption,
    DatasetName,
    app,
    console,
    friendly,
)


@app.command()
@friendly
def promote(
    dataset: DatasetName,
    version: Annotated[str, typer.Option(help="Registered version to make champion.")],
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Make a registered version the champion (the one serving and scoring load)."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.tracking import registry, store

    base = load_config(base_config, BaseConfig)
    store.use_tracking(base)
    registry.promote(base.model_name(dataset), version)
    console.print(f"'{base.model_name(dataset)}' version {version} is now the champion.")


@app.command()
@friendly
def rollback(dataset: DatasetName, base_config: BaseOption = DEFAULT_BASE) -> None:
    """Give the champion alias back to the version that held it before."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.tracking import registry, store

    base = load_config(base_config, BaseConfig)
    store.use_tracking(base)
    version = registry.rollback(base.model_name(dataset))
    console.print(f"'{base.model_name(dataset)}' champion rolled back to version {version}.")


@app.command()
@friendly
def export(
    dataset: DatasetName,
    out: Annotated[Path, typer.Option(help="Folder for the bundle (e.g. models/champion).")],
    alias: Annotated[str, typer.Option(help="Registry alias to export.")] = "champion",
    base_config: BaseOption = DEFAULT_BASE,
) -> None:
    """Copy a registered bundle to a folder that loads without a tracking server."""
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.tracking import registry, store

    base = load_config(base_config, BaseConfig)
    store.use_tracking(base)
    path = registry.export_bundle(base.model_name(dataset), alias, out)
    exported = registry.resolve_bundle(path)
    console.print(f"Exported '{exported.name}' version {exported.version} (@{alias}) -> "
                  f"[bold]{path}[/]")

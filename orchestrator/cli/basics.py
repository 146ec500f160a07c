"""Commands that need nothing but the protocol and the catalog: schema, devices catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator import catalog
from orchestrator.protocol import schema

schema_app = typer.Typer(help="JSON Schemas of the protocol messages.", no_args_is_help=True)


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the *.schema.json files")],
) -> None:
    """Write the JSON Schema of every protocol message (as committed in ios-runner/Schema)."""
    for path in schema.export_schemas(directory):
        typer.echo(str(path))


def devices_catalog(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    selector: Annotated[
        str, typer.Option("--devices", help="Selector: all, A12, iPhone11,8, iPad8,*, chip>=A14")
    ] = "all",
) -> None:
    """List the device generations anefarm knows (chip, ANE cores and TOPS, OS range)."""
    rows = catalog.select(selector)
    if as_json:
        typer.echo(json.dumps([d.to_json() for d in rows], indent=2))
        return
    table = Table("ProductType", "name", "chip", "ANE cores", "ANE TOPS", "OS range")
    for d in rows:
        tops = f"{d.ane_tops:g}" if d.ane_tops is not None else "n/p"
        table.add_row(
            d.product_type, d.name, d.chip, str(d.ane_cores), tops, f"{d.min_os} – {d.max_os}"
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    from orchestrator.cli.groups import devices_app

    devices_app.command("catalog")(devices_catalog)

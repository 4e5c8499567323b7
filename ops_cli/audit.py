"""`ops audit`: the privilege matrix and RLS policies, as templated and as live."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from deploy.audit import differences, live_sql, render_csv, render_markdown
from deploy.settings import BadInput
from ops_cli.common import DEFAULT, InventoryOpt, console, err, fail, problem, target
from ops_cli.target import Target

app = typer.Typer(help="The auditor's report: grants and RLS policies.", no_args_is_help=True)


class Format(str, Enum):
    md = "md"
    csv = "csv"


@app.command()
def grants(
    fmt: Annotated[Format, typer.Option("--format", help="md or csv")] = Format.md,
    inventory: InventoryOpt = DEFAULT,
):
    """Print the role x schema x object-class privilege matrix and RLS policies from the templates."""
    try:
        settings = Target(inventory).settings
    except BadInput as e:
        fail(str(e), 2)
    print(render_markdown(settings) if fmt is Format.md else render_csv(settings), end="")


@app.command()
def check(inventory: InventoryOpt = DEFAULT):
    """Compare the live catalog with the templates; exit 2 and list each difference on drift."""
    with target(inventory) as t:
        diffs = differences(t.settings, t.query_json(live_sql(t.settings)))
    if diffs:
        for d in diffs:
            problem("drift", d)
        err.print(f"{len(diffs)} differences from templates/access.toml")
        raise typer.Exit(2)
    console.print("live catalog matches templates/access.toml")

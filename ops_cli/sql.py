"""`ops sql render`: print the exact SQL a step would run."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from onesift.errors import BadInput
from ops_cli.common import InventoryOpt, fail, inventory_of, lazy, noun

inventory_file = lazy("onesift.inventory")
steps = lazy("onesift.steps")

app = noun("The SQL behind each step.")


@app.command()
def render(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="A migration name, functions, grants, role_settings, audit_owner, tenant, views or tenant-create.")],
    slug: Annotated[Optional[str], typer.Option(help="Tenant slug, for the tenant steps.")] = None,
    inventory: InventoryOpt = None,
):
    """Print a step's SQL, rendered with the inventory's settings. Connects to nothing."""
    try:
        print(steps.step_sql(inventory_file.offline_settings(inventory_of(ctx, inventory)), step, slug), end="")
    except BadInput as e:
        fail(str(e), 2)

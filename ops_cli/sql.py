"""`ops sql render`: print the exact SQL a step would run."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from onesift.settings import BadInput
from deploy.sqlsteps import create_tenant, functions, grants, migrations, superuser_steps, tenant_ddl, views_ddl
from onesift.inventory import offline_settings
from onesift.settings import Settings
from ops_cli.common import InventoryOpt, fail, inventory_of

app = typer.Typer(help="The SQL behind each step.", no_args_is_help=True)


def step_sql(s: Settings, step: str, slug: str | None) -> str:
    fixed = {m.name.split(":", 1)[1]: m.sql for m in migrations(s)}
    fixed.update(functions=functions(s).sql, grants=grants(s).sql)
    fixed.update({step.name.split(':', 1)[1]: step.sql for step in superuser_steps(s)})
    if step in fixed:
        return fixed[step]
    if step in ("tenant", "views", "tenant-create"):
        if not slug:
            raise BadInput(f"step {step!r} needs --slug")
        if step == "tenant":
            return tenant_ddl(s, slug)
        if step == "views":
            return views_ddl(s, slug)
        return create_tenant(s, slug, slug, "api", None)
    names = ", ".join([*fixed, "tenant", "views", "tenant-create"])
    raise BadInput(f"unknown step {step!r}; steps: {names}")


@app.command()
def render(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="A migration name, functions, grants, role_settings, audit_owner, tenant, views or tenant-create.")],
    slug: Annotated[Optional[str], typer.Option(help="Tenant slug, for the tenant steps.")] = None,
    inventory: InventoryOpt = None,
):
    """Print a step's SQL, rendered with the inventory's settings. Connects to nothing."""
    try:
        print(step_sql(offline_settings(inventory_of(ctx, inventory)), step, slug), end="")
    except BadInput as e:
        fail(str(e), 2)

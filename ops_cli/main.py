"""The `ops` command: one sub-command per noun."""

from typing import Annotated, Optional

import typer

from ops_cli import apikey, audit, backup, cluster, db, host, sql, tenant
from ops_cli.common import DEFAULT_INVENTORY, Shared

app = typer.Typer(
    help="Operate the OneSift multi-tenant PostgreSQL database on any inventory.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: see ops_cli.common.noun
    pretty_exceptions_show_locals=False,  # locals can hold passwords
)


@app.callback()
def main(
    ctx: typer.Context,
    inventory: Annotated[
        str,
        typer.Option("--inventory", "-i", envvar="ONESIFT_INVENTORY",
                     help="Inventory for every sub-command (a sub-command's own -i wins)."),
    ] = DEFAULT_INVENTORY,
    actor: Annotated[
        Optional[str],
        typer.Option("--actor", envvar="ONESIFT_ACTOR",
                     help="Who is acting, for the audit trail (default: OS user@machine)."),
    ] = None,
):
    """Operate the OneSift multi-tenant PostgreSQL database on any inventory."""
    ctx.obj = Shared(inventory, actor)


app.add_typer(db.app, name="db")
app.add_typer(tenant.app, name="tenant")
app.add_typer(apikey.app, name="apikey")
app.add_typer(sql.app, name="sql")
app.add_typer(host.app, name="host")
app.add_typer(audit.app, name="audit")
app.add_typer(backup.app, name="backup")
app.add_typer(cluster.app, name="cluster")

if __name__ == "__main__":
    app()

"""`ops db`: set up, migrate, reset and seed the OneSift database on an inventory's host."""

from __future__ import annotations

from typing import Annotated

import typer

from ops_cli.common import InventoryOpt, console, fail, lazy, literal, noun, print_seeded, refuse_destructive, session

database = lazy("onesift.database")
tenants = lazy("onesift.tenants")

app = noun("The database: init, migrate, setup, reset, seed.")

DryOpt = Annotated[bool, typer.Option("--dry", help="Show what would change, change nothing.")]


def run_deploy(ctx: typer.Context, inventory: str | None, deploy: str, dry: bool) -> None:
    with session(ctx, inventory) as s:
        code = database.deploy(s, deploy, dry)
    if code:
        fail(f"pyinfra {deploy} failed (exit {code})", code)


@app.command()
def init(ctx: typer.Context, inventory: InventoryOpt = None, dry: DryOpt = False):
    """Create the roles, the database and its extensions."""
    run_deploy(ctx, inventory, "deploy.database.bootstrap", dry)


@app.command()
def migrate(ctx: typer.Context, inventory: InventoryOpt = None, dry: DryOpt = False):
    """Apply pending migrations and changed functions and grants."""
    run_deploy(ctx, inventory, "deploy.database.migrate", dry)


@app.command()
def setup(ctx: typer.Context, inventory: InventoryOpt = None, dry: DryOpt = False):
    """The whole deploy: server, roles, database, schema (deploy.py)."""
    run_deploy(ctx, inventory, "deploy.py", dry)


@app.command()
def reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this deletes every tenant's data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """Drop the database and set it up again, empty."""
    with session(ctx, inventory) as s:
        refuse_destructive(s, yes, allow_production, "reset")
        database.refuse_bad_server_input(s)  # before the drop: the setup after it would fail
        database.drop(s)
        console.print(literal(f"dropped database {s.settings.db_name}"))
        code = database.setup_after_reset(s)
    if code:
        fail(f"setup after reset failed (exit {code})", code)


@app.command()
def seed(ctx: typer.Context, inventory: InventoryOpt = None):
    """Create the example customers ABC Honda (email) and Demo Dealership (API, prints its key once)."""
    with session(ctx, inventory) as s:
        for done in tenants.seed(s):
            print_seeded(done)

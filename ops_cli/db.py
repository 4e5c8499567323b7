"""`ops db`: set up, migrate, reset and seed the OneSift database on an inventory's host."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy import tls
from deploy.render import quote_ident, quote_literal
from onesift.settings import schema_for
from deploy.sqlsteps import owner_prefix
from ops_cli.apikey import create_key, print_key_once
from ops_cli.common import DEFAULT, InventoryOpt, console, fail, literal, refuse_destructive, target
from onesift.session import Target
from ops_cli.tenant import create_one, customer, exists

app = typer.Typer(help="The database: init, migrate, setup, reset, seed.", no_args_is_help=True)

DryOpt = Annotated[bool, typer.Option("--dry", help="Show what would change, change nothing.")]

SEED_CUSTOMERS = [
    {"slug": "abc-honda", "name": "ABC Honda", "mode": "email", "handover_email": "sarah-abc-honda@onesift.com"},
    {"slug": "demo-dealership", "name": "Demo Dealership", "mode": "api", "handover_email": None},
]
SEED_PERSONA = {"name": "Alex", "tone": "friendly, concise, never pushy"}


def refuse_bad_server_input(t: Target) -> None:
    """What deploy.server.install refuses (the certificate files it would upload), as
    BadInput before the host is reached: pyinfra would refuse it only once connected."""
    tls.from_data(t.host.data)


def run_deploy(inventory: str, deploy: str, dry: bool) -> None:
    with target(inventory) as t:
        if deploy == "deploy.py":
            refuse_bad_server_input(t)
        code = t.pyinfra(deploy, dry=dry)
    if code:
        fail(f"pyinfra {deploy} failed (exit {code})", code)


@app.command()
def init(inventory: InventoryOpt = DEFAULT, dry: DryOpt = False):
    """Create the roles, the database and its extensions."""
    run_deploy(inventory, "deploy.database.bootstrap", dry)


@app.command()
def migrate(inventory: InventoryOpt = DEFAULT, dry: DryOpt = False):
    """Apply pending migrations and changed functions and grants."""
    run_deploy(inventory, "deploy.database.migrate", dry)


@app.command()
def setup(inventory: InventoryOpt = DEFAULT, dry: DryOpt = False):
    """The whole deploy: server, roles, database, schema (deploy.py)."""
    run_deploy(inventory, "deploy.py", dry)


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this deletes every tenant's data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Drop the database and set it up again, empty."""
    with target(inventory) as t:
        refuse_destructive(t, yes, allow_production, "reset")
        refuse_bad_server_input(t)  # before the drop: the setup after it would fail
        t.run_sql(f"DROP DATABASE IF EXISTS {quote_ident(t.settings.db_name)} WITH (FORCE);", "postgres", transaction=False)
        console.print(literal(f"dropped database {t.settings.db_name}"))
        code = t.pyinfra("deploy.py")
        if not code:  # the old trail went with the database: the new one starts with who reset it
            t.run_sql("SELECT audit.write('database.reset');")
    if code:
        fail(f"setup after reset failed (exit {code})", code)


def add_default_persona(t: Target, slug: str) -> None:
    schema = quote_ident(schema_for(slug))
    t.run_sql(
        owner_prefix(t.settings)
        + f"SELECT system.act_as_tenant({quote_literal(slug)});\n"
        + f"INSERT INTO {schema}.personas (name, tone, is_default) "
        + f"VALUES ({quote_literal(SEED_PERSONA['name'])}, {quote_literal(SEED_PERSONA['tone'])}, true);"
    )


def has_active_key(t: Target, customer_id: str) -> bool:
    return bool(t.query_json(
        "SELECT to_jsonb(EXISTS (SELECT 1 FROM system.api_keys WHERE revoked_at IS NULL "
        f"AND customer_id = {quote_literal(customer_id)}))"
    ))


def seed_customer(t: Target, c: dict) -> None:
    if exists(t, c["slug"]):
        console.print(f"{c['slug']}: exists, left as it is")
    else:
        create_one(t, c["slug"], c["name"], c["mode"], c["handover_email"])
        add_default_persona(t, c["slug"])
        console.print(f"{c['slug']}: created")
    if c["mode"] == "api":
        info = customer(t, c["slug"])
        if has_active_key(t, info["id"]):
            console.print(f"{c['slug']}: has an API key already (keys are shown only when made)")
        else:
            print_key_once(c["slug"], create_key(t, info["id"], "seed"))


@app.command()
def seed(inventory: InventoryOpt = DEFAULT):
    """Create the example customers ABC Honda (email) and Demo Dealership (API, prints its key once)."""
    with target(inventory) as t:
        for c in SEED_CUSTOMERS:
            seed_customer(t, c)

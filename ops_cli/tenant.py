"""`ops tenant`: create, list, show and drop tenants (one schema per customer)."""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from deploy.render import quote_ident, quote_literal
from deploy.settings import BadInput, Settings, schema_for, validate_slug
from deploy.sqlsteps import create_tenant, owner_prefix
from ops_cli.common import DEFAULT, InventoryOpt, console, refuse_destructive, target
from ops_cli.target import Target

app = typer.Typer(help="Tenants: one customer, one schema.", no_args_is_help=True)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Mode(str, Enum):
    email = "email"
    api = "api"


def validate_customer(name: str, mode: str, handover_email: str | None) -> None:
    if not name.strip() or len(name) > 200 or "\x00" in name:
        raise BadInput("customer name must be 1-200 characters")
    if handover_email is not None and not EMAIL_RE.match(handover_email):
        raise BadInput(f"invalid handover email {handover_email!r}")
    if mode == "email" and not handover_email:
        raise BadInput("email-mode customers need --handover-email")


def customer(t: Target, slug: str) -> dict:
    """The customer row for ``slug``; BadInput if there is none."""
    row = t.query_json(
        "SELECT to_jsonb(c) FROM system.customers c WHERE slug = " + quote_literal(validate_slug(slug))
    )
    if row is None:
        raise BadInput(f"no tenant {slug!r}")
    return row


def exists(t: Target, slug: str) -> bool:
    return bool(t.query_json(f"SELECT to_jsonb(EXISTS (SELECT 1 FROM system.customers WHERE slug = {quote_literal(slug)}))"))


def create_one(t: Target, slug: str, name: str, mode: str, handover_email: str | None) -> dict:
    """Validate, then create the customer and its schema in one transaction."""
    validate_slug(slug)
    validate_customer(name, mode, handover_email)
    if exists(t, slug):
        raise BadInput(f"tenant {slug!r} already exists")
    return t.query_json(create_tenant(t.settings, slug, name, mode, handover_email))


@app.command()
def create(
    slug: Annotated[str, typer.Argument(help="lowercase letters, digits, '_' or '-'; 2-40 chars")],
    name: Annotated[str, typer.Option(help="Display name of the customer.")],
    mode: Annotated[Mode, typer.Option(help="How leads arrive.")] = Mode.email,
    handover_email: Annotated[Optional[str], typer.Option(help="Where handoffs go (email mode).")] = None,
    inventory: InventoryOpt = DEFAULT,
):
    """Create a customer and its tenant schema (tables, indexes, RLS, grants, views)."""
    with target(inventory) as t:
        made = create_one(t, slug, name, mode.value, handover_email)
        console.print(f"created tenant [bold]{slug}[/] in schema {made['schema']} (customer {made['id']})")


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """List tenants."""
    with target(inventory) as t:
        rows = t.query_json(
            "SELECT coalesce(jsonb_agg(t ORDER BY t.slug), '[]') FROM ("
            "SELECT c.slug, c.name, c.schema_name, c.ingestion_mode, c.is_active, c.schema_version, "
            "(SELECT count(*) FROM system.api_keys k WHERE k.customer_id = c.id AND k.revoked_at IS NULL) AS active_keys "
            "FROM system.customers c) t"
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("slug", "name", "schema", "mode", "active", "keys")
    for r in rows:
        table.add_row(r["slug"], r["name"], r["schema_name"], r["ingestion_mode"], str(r["is_active"]), str(r["active_keys"]))
    console.print(table)


def show_sql(settings: Settings, slug: str, customer_id: str) -> str:
    schema = quote_ident(schema_for(slug))
    tables = ("personas", "leads", "conversations", "messages", "handoffs")
    counts = ", ".join(f"{quote_literal(tb)}, (SELECT count(*) FROM {schema}.{quote_ident(tb)})" for tb in tables)
    return (
        owner_prefix(settings)
        + f"SELECT set_config('onesift.tenant', {quote_literal(slug)}, true);\n"
        + f"SELECT jsonb_build_object('rows', jsonb_build_object({counts}), "
        + f"'storage_bytes', system.get_customer_storage_size({quote_literal(customer_id)}));\n"
    )


@app.command()
def show(
    slug: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Show one tenant: settings, row counts, storage."""
    with target(inventory) as t:
        info = customer(t, slug)
        info.update(t.query_json(show_sql(t.settings, slug, info["id"])))
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key in ("slug", "name", "schema_name", "ingestion_mode", "handover_email", "is_active", "created_at", "storage_bytes"):
        console.print(f"[bold]{key}[/]: {info.get(key)}", highlight=False)
    for tb, n in info["rows"].items():
        console.print(f"  {tb}: {n}", highlight=False)


@app.command()
def drop(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this deletes the tenant's data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Drop a tenant: its schema and all its rows, its customer row and API keys."""
    with target(inventory) as t:
        refuse_destructive(t, yes, allow_production, f"dropping tenant {slug!r}")
        info = customer(t, slug)
        t.run_sql(owner_prefix(t.settings) + f"SELECT system.drop_customer_schema({quote_literal(info['id'])});")
        console.print(f"dropped tenant [bold]{slug}[/]")

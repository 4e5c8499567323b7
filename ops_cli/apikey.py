"""`ops apikey`: create, list and revoke a tenant's API keys. Keys are shown once and stored hashed."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deploy.render import quote_literal
from onesift.settings import BadInput
from deploy.sqlsteps import owner_prefix
from ops_cli.common import DEFAULT, InventoryOpt, JsonOpt, console, err, literal, target
from onesift.session import Target
from ops_cli.tenant import customer

app = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)


def create_key(t: Target, customer_id: str, name: str) -> dict:
    if not name.strip() or len(name) > 100:
        raise BadInput("key name must be 1-100 characters")
    return t.query_json(
        owner_prefix(t.settings)
        + "SELECT to_jsonb(k) FROM system.create_api_key("
        + f"{quote_literal(customer_id)}, {quote_literal(name)}) k;"
    )


def print_key_once(slug: str, made: dict) -> None:
    # The key goes to stdout alone (for scripts); the warning to stderr.
    err.print(Text.assemble("API key for ", literal(slug, "bold"),
                            literal(f" (id {made['key_id']}); it is shown only this once:")))
    print(made["api_key"])


@app.command()
def create(
    slug: str,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    inventory: InventoryOpt = DEFAULT,
):
    """Create an API key for a tenant and print it once."""
    with target(inventory) as t:
        info = customer(t, slug)
        print_key_once(slug, create_key(t, info["id"], name))


@app.command("list")
def list_(
    slug: str,
    as_json: JsonOpt = False,
    inventory: InventoryOpt = DEFAULT,
):
    """List a tenant's keys (prefix and dates; never the key)."""
    with target(inventory) as t:
        info = customer(t, slug)
        rows = t.query_json(
            "SELECT coalesce(jsonb_agg(k ORDER BY k.created_at), '[]') FROM ("
            "SELECT id, name, key_prefix, created_at, last_used_at, revoked_at FROM system.api_keys "
            f"WHERE customer_id = {quote_literal(info['id'])}) k"
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "name", "prefix", "created", "last used", "revoked")
    for r in rows:
        cells = (r["id"], r["name"], r["key_prefix"], r["created_at"], r["last_used_at"] or "", r["revoked_at"] or "")
        table.add_row(*map(literal, cells))
    console.print(table)


@app.command()
def revoke(key_id: str, inventory: InventoryOpt = DEFAULT):
    """Revoke a key by its id."""
    with target(inventory) as t:
        try:
            uuid.UUID(key_id)
        except ValueError:
            raise BadInput(f"not a key id (UUID): {key_id!r}") from None
        done = t.query_json(owner_prefix(t.settings) + f"SELECT to_jsonb(system.revoke_api_key({quote_literal(key_id)}));")
        if not done:
            raise BadInput(f"no active key with id {key_id}")
        console.print(literal(f"revoked key {key_id}"))

"""`ops apikey`: create, list and revoke a tenant's API keys. Keys are shown once and stored hashed."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from ops_cli.common import InventoryOpt, JsonOpt, console, lazy, literal, noun, print_key_once, session, table

apikeys = lazy("onesift.apikeys")
tenants = lazy("onesift.tenants")

app = noun("API keys of a tenant.")


@app.command()
def create(
    ctx: typer.Context,
    slug: str,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    inventory: InventoryOpt = None,
):
    """Create an API key for a tenant and print it once."""
    with session(ctx, inventory) as s:
        print_key_once(slug, apikeys.create(s, tenants.customer(s, slug).id, name))


@app.command("list")
def list_(ctx: typer.Context, slug: str, as_json: JsonOpt = False, inventory: InventoryOpt = None):
    """List a tenant's keys (prefix and dates; never the key)."""
    with session(ctx, inventory) as s:
        keys = apikeys.list_for(s, tenants.customer(s, slug).id)
    if as_json:
        print(json.dumps([asdict(k) for k in keys], indent=2))
        return
    print(table(["id", "name", "prefix", "created", "last used", "revoked"],
                [[k.id, k.name, k.key_prefix, k.created_at, k.last_used_at or "", k.revoked_at or ""] for k in keys]))


@app.command()
def revoke(ctx: typer.Context, key_id: str, inventory: InventoryOpt = None):
    """Revoke a key by its id."""
    with session(ctx, inventory) as s:
        apikeys.revoke(s, key_id)
        console.print(literal(f"revoked key {key_id}"))

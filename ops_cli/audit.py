"""`ops audit`: the privilege matrix and RLS policies, as templated and as live; the audit trail."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from typing import Annotated, Optional

import typer

from onesift.errors import BadInput
from onesift.settings import validate_slug
from ops_cli.common import InventoryOpt, JsonOpt, console, err, fail, inventory_of, lazy, noun, problem, session, table

audit = lazy("onesift.audit")
inventory_file = lazy("onesift.inventory")

app = noun("The auditor's report: grants and RLS policies; the audit trail.")


class Format(str, Enum):
    md = "md"
    csv = "csv"


@app.command()
def grants(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="md or csv")] = Format.md,
    inventory: InventoryOpt = None,
):
    """Print the role x schema x object-class privilege matrix and RLS policies from the templates. Connects to nothing."""
    try:
        settings = inventory_file.offline_settings(inventory_of(ctx, inventory))
    except BadInput as e:
        fail(str(e), 2)
    print(audit.render_markdown(settings) if fmt is Format.md else audit.render_csv(settings), end="")


@app.command()
def check(ctx: typer.Context, inventory: InventoryOpt = None):
    """Compare the live catalog with the templates; exit 2 and list each difference on drift."""
    with session(ctx, inventory) as s:
        diffs = audit.check(s)
    if diffs:
        for d in diffs:
            problem("drift", d)
        err.print(f"{len(diffs)} differences from sql/access.toml")
        raise typer.Exit(2)
    console.print("live catalog matches sql/access.toml")


@app.command()
def log(
    ctx: typer.Context,
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant's entries (kept after a drop).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only entries from this time on (ISO 8601; UTC if no zone).")] = None,
    as_json: JsonOpt = False,
    inventory: InventoryOpt = None,
):
    """Read the audit trail: who did what to which tenant, and when."""
    try:  # refused before the host is reached
        slug, when = tenant and validate_slug(tenant), audit.parse_since(since)
    except BadInput as e:
        fail(str(e), 2)
    with session(ctx, inventory) as s:
        entries = audit.log(s, slug, when)
    if as_json:
        print(json.dumps([asdict(e) for e in entries], indent=1))
        return
    print(table(["time", "actor", "action", "tenant", "details"],
                [[e.created_at, e.actor, e.action, e.slug or "", json.dumps(e.details)] for e in entries]))

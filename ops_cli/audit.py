"""`ops audit`: the privilege matrix and RLS policies, as templated and as live; the audit trail."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from deploy.audit import differences, live_sql, read_live, render_csv, render_markdown
from deploy.render import quote_literal
from deploy.settings import BadInput, validate_slug
from ops_cli.common import DEFAULT, InventoryOpt, JsonOpt, console, err, fail, literal, problem, target
from ops_cli.target import Target

app = typer.Typer(help="The auditor's report: grants and RLS policies; the audit trail.", no_args_is_help=True)


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
        diffs = differences(t.settings, read_live(t.run_sql(live_sql(t.settings))))
    if diffs:
        for d in diffs:
            problem("drift", d)
        err.print(f"{len(diffs)} differences from sql/access.toml")
        raise typer.Exit(2)
    console.print("live catalog matches sql/access.toml")


def log_sql(tenant: str | None, since: datetime | None) -> str:
    """The audit trail, oldest first: one JSON object a line."""
    where = []
    if tenant:
        where.append(f"slug = {quote_literal(validate_slug(tenant))}")
    if since:
        where.append(f"created_at >= {quote_literal(since.isoformat())}::timestamptz")
    # One entry a line: pyinfra reads output a line at a time, slower with the
    # square of a line's length (issue 9), so no single-line JSON of the whole log.
    return ("SELECT to_jsonb(l) FROM (SELECT id, created_at, actor, db_user, action, customer_id, slug, details "
            f"FROM audit.log {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id) l;")


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--since wants a date or time like 2026-11-29 or 2026-11-29T14:00+00:00, not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@app.command()
def log(
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant's entries (kept after a drop).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only entries from this time on (ISO 8601; UTC if no zone).")] = None,
    as_json: JsonOpt = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Read the audit trail: who did what to which tenant, and when."""
    try:
        sql = log_sql(tenant, parse_since(since))  # bad input refused before the inventory is loaded
    except BadInput as e:
        fail(str(e), 2)
    with target(inventory) as t:
        rows = [json.loads(line) for line in t.run_sql(sql) if line.strip()]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table("time", "actor", "action", "tenant", "details")
    for r in rows:
        table.add_row(literal(r["created_at"]), literal(r["actor"]), literal(r["action"]), literal(r["slug"] or ""),
                      literal(json.dumps(r["details"])))
    console.print(table)

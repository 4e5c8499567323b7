"""`ops tenant`: create, list, show, drop, migrate and import tenants (one schema per customer)."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from onesift.settings import HANDOVER_THRESHOLD, HANDOVER_THRESHOLD_RANGE, MODES
from ops_cli.common import (
    InventoryOpt, JsonOpt, assemble, console, err, lazy, literal, problem, noun, refuse_destructive,
    refusing_bad_input, session, table,
)

if TYPE_CHECKING:
    from rich.text import Text

tenants = lazy("onesift.tenants")
tenant_migrations = lazy("onesift.tenant_migrations")
steps = lazy("onesift.steps")

app = noun("Tenants: one customer, one schema.")

Mode = Enum("Mode", {m: m for m in MODES}, type=str)


@app.command()
def create(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="lowercase letters, digits, '_' or '-'; 2-40 chars")],
    name: Annotated[str, typer.Option(help="Display name of the customer.")],
    mode: Annotated[Mode, typer.Option(help="How leads arrive.")] = Mode.email,
    handover_email: Annotated[Optional[str], typer.Option(help="Where handoffs go (email mode).")] = None,
    handover_threshold: Annotated[int, typer.Option(
        min=HANDOVER_THRESHOLD_RANGE[0], max=HANDOVER_THRESHOLD_RANGE[1],
        help="When the AI hands a lead over to a person (README createCustomer handoverThreshold).",
    )] = HANDOVER_THRESHOLD,
    inventory: InventoryOpt = None,
):
    """Create a customer and its tenant schema (tables, indexes, RLS, grants, views)."""
    with session(ctx, inventory) as s:
        made = tenants.create(s, tenants.NewCustomer(slug, name, mode.value, handover_email, handover_threshold))
        console.print(assemble("created tenant ", literal(slug, "bold"),
                                    literal(f" in schema {made.schema} (customer {made.id})")))


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False, inventory: InventoryOpt = None):
    """List tenants."""
    with session(ctx, inventory) as s:
        rows = tenants.list_all(s)
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    print(tenant_table(rows))


LIST_COLUMNS = {"slug": "slug", "name": "name", "schema": "schema_name", "mode": "ingestion_mode",
                "active": "is_active", "version": "schema_version", "keys": "active_keys"}


def tenant_table(rows: list[tenants.Summary]) -> str:
    """The `ops tenant list` table; every cell literal, as names come from users."""
    return table(list(LIST_COLUMNS), [[getattr(r, key) for key in LIST_COLUMNS.values()] for r in rows])


@app.command()
def show(ctx: typer.Context, slug: str, as_json: JsonOpt = False, inventory: InventoryOpt = None):
    """Show one tenant: settings, row counts, storage."""
    with session(ctx, inventory) as s:
        info = tenants.details(s, slug).as_dict()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    console.print(tenant_details(info), highlight=False)


SHOW_KEYS = ("slug", "name", "schema_name", "ingestion_mode", "handover_email", "handover_threshold",
             "is_active", "created_at", "storage_bytes")


def tenant_details(info: dict) -> Text:
    """The `ops tenant show` lines: `key: value`, then `  table: rows`; values literal."""
    lines = [assemble((key, "bold"), ": ", literal(info.get(key))) for key in SHOW_KEYS]
    lines += [literal(f"  {tb}: {n}") for tb, n in info["rows"].items()]
    return assemble("\n").join(lines)


@app.command()
def drop(
    ctx: typer.Context,
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this deletes the tenant's data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """Drop a tenant: its schema and all its rows, its customer row and API keys."""
    with session(ctx, inventory) as s:
        refuse_destructive(s, yes, allow_production, f"dropping tenant {slug!r}")
        tenants.drop(s, slug)
        console.print(assemble("dropped tenant ", literal(slug, "bold")))


@app.command()
def migrate(
    ctx: typer.Context,
    parallel: Annotated[int, typer.Option(min=1, max=32, help="psql sessions migrating tenants at once.")] = 2,
    inventory: InventoryOpt = None,
):
    """Apply pending tenant migrations to every tenant schema; run again to resume after a failure.

    Each tenant migrates in one transaction that waits for a lock no longer
    than the inventory's migrate_lock_timeout_ms, and is tried again
    migrate_lock_retries times before it is left for the next run."""
    from rich.progress import Progress  # ~40 ms: not for --help

    with session(ctx, inventory) as s:
        with Progress(console=err.console) as progress:
            task = progress.add_task(f"migrate to v{steps.tenant_version()}", total=None)

            def advance(n: int, total: int, note: str) -> None:
                label = " ".join([f"migrate to v{steps.tenant_version()}", note]).strip()
                progress.update(task, advance=n, total=total, description=literal(label).markup)

            result = tenant_migrations.migrate_all(s, parallel, advance)
        wait, tries = s.settings.migrate_lock_timeout_ms, s.settings.migrate_lock_retries + 1
    for slug, error in sorted(result.failed.items()):
        problem("failed", f"{slug}: {error}")
    for slug, error in sorted(result.retryable.items()):
        problem("waiting", f"{slug}: {error} (lock_timeout {wait} ms, tried {tries} times)")
    done = result.pending - len(result.failed) - len(result.retryable)
    console.print(f"{done} of {result.pending} tenants migrated to v{steps.tenant_version()}"
                  + (f", {len(result.retried)} after waiting for a lock" if result.retried else ""))
    if result.failed or result.retryable:
        err.print("fix the failures, or let the app's locks go, and run `ops tenant migrate` again: "
                  "migrated tenants are skipped")
        raise typer.Exit(1)


@app.command("import")
def import_(
    ctx: typer.Context,
    csv_file: Annotated[Path, typer.Argument(help="CSV with columns slug,name,mode,handover_email and optionally handover_threshold.")],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Tenants per round trip.")] = 50,
    inventory: InventoryOpt = None,
):
    """Onboard many tenants from a CSV. Every row is checked first; existing slugs are skipped, so a re-run resumes."""
    from rich.progress import Progress  # ~40 ms: not for --help

    with refusing_bad_input():
        customers = tenants.read_import(csv_file)  # before the inventory: a bad file never reaches a host
    with session(ctx, inventory) as s, Progress(console=err.console) as progress:
        task = progress.add_task("onboarding", total=None)
        made = tenants.import_all(s, customers, batch,
                                  lambda n, total: progress.update(task, advance=n, total=total))
    console.print(f"created {made} tenants; {len(customers) - made} existed already")

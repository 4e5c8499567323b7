"""`ops backup`: run, list, restore and verify backups on the database host (scripts from templates/jobs)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from onesift.settings import validate_slug
from ops_cli.common import (
    InventoryOpt, assemble, console, err, fail, lazy, literal, noun, problem, refuse_destructive, session, table,
)

backups = lazy("onesift.backups")

app = noun("Backups: run, list, restore, verify.")

RunOpt = Annotated[Optional[str], typer.Option("--run", help="Backup run (default: latest).")]


@app.command()
def run(
    ctx: typer.Context,
    tenant_dumps: Annotated[Optional[bool], typer.Option(
        "--tenant-dumps/--no-tenant-dumps",
        help="Also a pg_dump -n file per tenant (default: inventory backup_tenant_dumps). "
             "Tenants restore from the whole dump either way.")] = None,
    inventory: InventoryOpt = None,
):
    """Back up the whole database now (what the nightly job does)."""
    from rich.progress import Progress  # ~40 ms: not for --help

    with session(ctx, inventory) as s, Progress(console=err.console, transient=True) as progress:
        task = progress.add_task("backup", total=None)

        def advance(step: str) -> None:  # a task description is markup: names from the host go in escaped
            progress.update(task, advance=1, description=literal(step).markup)

        name = backups.run(s, s.settings.backup_tenant_dumps if tenant_dumps is None else tenant_dumps, advance)
    console.print(assemble("backup run ", literal(name, "bold"), " complete"))


@app.command("list")
def list_(ctx: typer.Context, inventory: InventoryOpt = None):
    """List backup runs and their dumps."""
    with session(ctx, inventory) as s:
        runs = backups.list_runs(s)
    print(table(["run", "state", "dumps", "bytes"], [[r.name, r.state, r.dumps, r.bytes] for r in runs]))


@app.command()
def restore(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug to restore.")],
    run: RunOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: replaces the tenant's current data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """Replace one tenant's schema with its copy from a backup run (its own dump, else the run's file for it), in one transaction."""
    with session(ctx, inventory) as s:
        validate_slug(tenant)
        refuse_destructive(s, yes, allow_production, f"restoring tenant {tenant!r}")
        name = backups.restore(s, tenant, run)
        console.print(assemble("restored tenant ", literal(tenant, "bold"), literal(f" from run {name}")))


@app.command()
def status(ctx: typer.Context, inventory: InventoryOpt = None):
    """Exit 1 when the newest complete backup run is older than backup_max_age_hours (a check for monitoring)."""
    with session(ctx, inventory) as s:
        good, failure = backups.last_good_run(s), backups.last_nightly_failure(s)
        where, limit = s.settings.backup_dir, s.settings.backup_max_age_hours
    if failure:
        problem("last nightly run failed:", failure)
    if good is None:
        fail(f"no complete backup run in {where}: run `ops backup run`", 1)
    name, hours = good
    if hours > limit:
        fail(f"last good backup run {name} is {hours:.1f} h old, past backup_max_age_hours ({limit})", 1)
    console.print(literal(f"last good backup run {name}: {hours:.1f} h old (limit {limit} h)"))


@app.command()
def verify(ctx: typer.Context, run: RunOpt = None, inventory: InventoryOpt = None):
    """Restore drill: restore a run into a scratch database and compare row counts with the dump."""
    with session(ctx, inventory) as s:
        name = backups.pick_run(s, run)
        with console.status(literal(f"restoring {name} into a scratch database")):
            rows = backups.verify_run(s, name)
    console.print(literal(f"run {name}: {len(rows)} tables, {sum(r.dump for r in rows)} rows in the dump"))
    bad = 0
    for r in rows:
        if r.restored != r.dump:
            problem("mismatch", f"{r.table}: dump {r.dump}, restored {r.restored}")
        if r.tenant_file not in (None, r.dump):
            problem("mismatch", f"{r.table}: dump {r.dump}, tenant file {r.tenant_file}")
        bad += r.restored != r.dump or r.tenant_file not in (None, r.dump)
    if bad or not rows:
        raise typer.Exit(1)
    console.print("[green]restore drill passed[/]: every table restored with the dump's row count, "
                  "and each tenant's file holds it too")

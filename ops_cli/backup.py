"""`ops backup`: logical runs (run, list, verify), pgBackRest's physical backups and point-in-time
recovery (status, pitr, drill), and one tenant's restore from either (scripts from templates/jobs)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from onesift.errors import BadInput
from onesift.pitr import TARGET_HELP, parse_target  # light: its queries load when a command runs
from onesift.settings import validate_slug
from ops_cli.common import (
    InventoryOpt, JsonOpt, assemble, console, err, fail, lazy, literal, noun, problem, refuse_destructive,
    refusing_bad_input, session, table,
)

backups = lazy("onesift.backups")

app = noun("Backups: status, point-in-time recovery (pitr, drill), logical runs (run, list, verify), restore.")


def say(text) -> None:
    """One line on stdout, unwrapped: monitoring and scripts read these (rich wraps at 80 columns without a terminal)."""
    console.print(text, soft_wrap=True)


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
    to: Annotated[Optional[str], typer.Option(
        "--to", help=f"Bring the tenant back to this moment from pgBackRest's backups and WAL: {TARGET_HELP}.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="With --to: leave the scratch instance running.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: replaces the tenant's current data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """Replace one tenant's schema, in one transaction: with its copy at a moment (--to: a point-in-time
    restore into scratch, then pg_dump -n there), or from a logical backup run (its own dump, else the run's file)."""
    with refusing_bad_input():
        validate_slug(tenant)
        target = parse_target(to) if to is not None else None
        if target is not None and run is not None:
            raise BadInput("--run (a logical backup run) or --to (a moment), not both")
    with session(ctx, inventory) as s:
        refuse_destructive(s, yes, allow_production, f"restoring tenant {tenant!r}")
        if target is None:
            name = backups.restore(s, tenant, run)
            say(assemble("restored tenant ", literal(tenant, "bold"), literal(f" from run {name}")))
            return
        from onesift import pitr

        with console.status(literal(f"restoring the database to {target} in scratch")):
            done = pitr.restore_tenant(s, tenant, target, keep)
    say(assemble("restored tenant ", literal(tenant, "bold"),
                                literal(f" to {target} (last transaction there {done.reached or 'none'}; "
                                        f"restore into scratch {done.seconds:.1f} s, dump and replace {done.replaced:.1f} s); "
                                        "every other tenant kept its data")))


@app.command()
def status(ctx: typer.Context, json_: JsonOpt = False, inventory: InventoryOpt = None):
    """Physical backups (pgBackRest: last full and diff, WAL archiving, check) and, when kept, the logical runs.
    Exit 1 when archiving fails, check fails, or the last good backup is older than its schedule allows."""
    import json

    from onesift import pitr

    with session(ctx, inventory) as s:
        st = pitr.status(s)
        logical = None
        if s.settings.backup_logical:
            good, failure = backups.last_good_run(s), backups.last_nightly_failure(s)
            where, limit = s.settings.backup_dir, s.settings.backup_max_age_hours
            logical = {"last_good_run": good[0] if good else None, "age_hours": round(good[1], 2) if good else None,
                       "limit_hours": limit, "last_failure": failure}
            if good is None:
                st.problems.append(f"no complete backup run in {where}: run `ops backup run`")
            elif good[1] > limit:
                st.problems.append(f"last good backup run {good[0]} is {good[1]:.1f} h old, past backup_max_age_hours ({limit})")
    if json_:
        print(json.dumps({"ok": not st.problems, "pgbackrest": st.to_json(), "logical": logical}, default=str))
        raise typer.Exit(1 if st.problems else 0)
    def described(b):
        return f"{b['label']} ({b['age_hours']:.1f} h old)" if b else "none"
    say(literal(f"pgBackRest stanza {st.stanza}: last full {described(st.last_full)}, "
                          f"last diff {described(st.last_diff)}, {len(st.backups)} backups"))
    a = st.archiver
    say(literal(f"WAL archiving: {a.get('archived_count', 0)} archived, last {a.get('last_archived_wal') or 'none'} "
                          f"{a.get('lag_seconds')} s ago, {a.get('failed_count', 0)} failed, {a.get('ready', 0)} waiting; "
                          f"pgbackrest check: {st.check}"))
    if logical:
        if logical["last_failure"]:
            problem("last nightly run failed:", logical["last_failure"])
        if logical["last_good_run"]:
            say(literal(f"last good backup run {logical['last_good_run']}: {logical['age_hours']:.1f} h old "
                                  f"(limit {logical['limit_hours']} h)"))
    for p in st.problems:
        problem("error:", p)
    if st.problems:
        raise typer.Exit(1)


@app.command()
def pitr(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help=f"Recovery target: {TARGET_HELP}.")],
    keep: Annotated[bool, typer.Option("--keep", help="Leave the scratch instance running (its port and socket are printed).")] = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Restore the live cluster itself (stops it; needs --yes).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --in-place: the live data after the target is lost.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed for --in-place on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """Point-in-time restore into the scratch instance (own port and directory; the live cluster is not
    touched), or with --in-place --yes of the live cluster; reports the time reached and how long it took."""
    from onesift import pitr as service

    with refusing_bad_input():
        target = parse_target(to)
        if in_place and keep:
            raise BadInput("--keep is for the scratch instance; --in-place restores the live cluster")
    with session(ctx, inventory) as s:
        if in_place:
            refuse_destructive(s, yes, allow_production, "restoring the live cluster in place")
            with console.status(literal(f"restoring the live cluster to {target}")):
                done = service.restore_in_place(s, target)
        else:
            with console.status(literal(f"restoring to {target} into the scratch instance")):
                done = service.restore(s, target, keep)
    where = "the live cluster" if in_place else "scratch"
    say(literal(f"restored {where} to {done.target}: last transaction {done.reached or 'none'}, "
                          f"newest marker {done.marker or 'none'}, in {done.seconds:.1f} s"))
    if done.kept:
        say(literal(f"scratch instance kept: psql -h {done.socket} -p {done.port} (as postgres on the host); "
                              "drop it with onesift-pitr stop"))


@app.command()
def drill(ctx: typer.Context, inventory: InventoryOpt = None):
    """Restore drill (weekly on the host): PITR to a random moment of the last day into scratch; every canary
    and audit row up to it present, none after; logs RTO and RPO in one line; exit 1 on failure."""
    from onesift import pitr

    with session(ctx, inventory) as s:
        with console.status("restore drill"):
            line = pitr.drill(s)
    say(literal(line))


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

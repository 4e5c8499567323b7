"""`ops backup`: run, list, restore and verify backups on the database host (scripts from templates/jobs)."""

from __future__ import annotations

import re
import secrets
import shlex
from typing import Annotated, NamedTuple, Optional

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from onesift.settings import TENANT_PREFIX, BadInput, validate_slug
from ops_cli.common import DEFAULT, InventoryOpt, console, err, fail, literal, problem, refuse_destructive, target
from onesift.session import OpsError, Target
from ops_cli.tenant import customer

app = typer.Typer(help="Backups: run, list, restore, verify.", no_args_is_help=True)

SCRIPT = "/usr/local/sbin/onesift-backup"
RUN_RE = re.compile(r"^\d{8}T\d{6}Z$")
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Backup run (default: latest).")]


def backup(t: Target, *args: str) -> list[str]:
    return t.shell(" ".join([SCRIPT, *args]))


def pick_run(t: Target, run: str | None, tenant: str | None = None) -> str:
    """``run`` (default: latest) when it is complete, and holds ``tenant`` if one is named; else BadInput.
    One round trip to the host: each is ~0.1 s of a one-tenant restore."""
    if run is not None and not RUN_RE.match(run):
        raise BadInput(f"not a backup run name: {run!r}")
    d = shlex.quote(t.settings.backup_dir)
    name = shlex.quote(run) if run else f"$(readlink {d}/latest)"
    check = f"; {SCRIPT} has-tenant \"$r\" {shlex.quote(tenant)}; echo \"$?\"" if tenant else ""
    answer = t.shell(f'r={name}; echo "$r"; if [ -n "$r" ] && [ -e {d}/"$r"/COMPLETE ]; then echo complete{check}; fi; true')
    name, state = answer[0].strip(), answer[1:]
    if not name:
        raise BadInput("no backups yet: run `ops backup run`")
    if not state:
        raise BadInput(f"no complete backup run {name}")
    if tenant and state[-1].strip() == "3":
        raise BadInput(f"run {name} has no copy of tenant {tenant!r}")
    if tenant and state[-1].strip() != "0":
        raise OpsError(f"cannot read run {name}")
    return name


def run_all(t: Target, tenant_dumps: bool, show: bool = True) -> str:
    """One backup run, step by step, with a progress bar; the run's name."""
    run = backup(t, "start")[-1].strip()
    slugs = [s for s in backup(t, "tenants") if s.strip()] if tenant_dumps else []
    with Progress(console=err, disable=not show, transient=True) as progress:
        # A task description is markup: names from the host go in escaped.
        task = progress.add_task(literal(f"backup {run}").markup, total=len(slugs) + 2)
        backup(t, "whole", run)
        progress.advance(task)
        for slug in slugs:
            progress.update(task, description=literal(f"backup {slug}").markup)
            backup(t, "tenant", run, slug)
            progress.advance(task)
        backup(t, "finish", run)
        progress.advance(task)
    return run


@app.command()
def run(
    tenant_dumps: Annotated[Optional[bool], typer.Option(
        "--tenant-dumps/--no-tenant-dumps",
        help="Also a pg_dump -n file per tenant (default: inventory backup_tenant_dumps). "
             "Tenants restore from the whole dump either way.")] = None,
    inventory: InventoryOpt = DEFAULT,
):
    """Back up the whole database now (what the nightly job does)."""
    with target(inventory) as t:
        name = run_all(t, t.settings.backup_tenant_dumps if tenant_dumps is None else tenant_dumps)
        console.print(Text.assemble("backup run ", literal(name, "bold"), " complete"))


@app.command("list")
def list_(inventory: InventoryOpt = DEFAULT):
    """List backup runs and their dumps."""
    with target(inventory) as t:
        lines = t.shell(
            f"cd {t.settings.backup_dir} 2>/dev/null && for d in */; do d=${{d%/}}; [ -L $d ] && continue; "
            "echo \"$d $( [ -e $d/COMPLETE ] && echo complete || echo partial ) "
            "$(ls $d | grep -c '\\.dump$') $(du -sb $d | cut -f1)\"; done || true"
        )
    table = Table("run", "state", "dumps", "bytes")
    for line in sorted(x for x in lines if x.strip()):
        table.add_row(*map(literal, line.split()))
    console.print(table)


@app.command()
def restore(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug to restore.")],
    run: RunOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: replaces the tenant's current data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Replace one tenant's schema with its copy from a backup run (its own dump, else the whole dump), in one transaction."""
    with target(inventory) as t:
        validate_slug(tenant)
        refuse_destructive(t, yes, allow_production, f"restoring tenant {tenant!r}")
        customer(t, tenant)
        name = pick_run(t, run, tenant)
        backup(t, "restore", name, tenant)
        console.print(Text.assemble("restored tenant ", literal(tenant, "bold"), literal(f" from run {name}")))


LOG = "/var/log/onesift/backup.log"  # the nightly job's (templates/jobs/onesift.cron.j2)


def last_good_run(t: Target) -> tuple[str, float] | None:
    """The run ``latest`` points at and its age in hours (by its COMPLETE file, on the host's clock); None if no run completed."""
    d = shlex.quote(t.settings.backup_dir)
    line = t.shell(
        f'r=$(readlink {d}/latest || true); '
        f'[ -n "$r" ] && c=$(stat -c %Y {d}/"$r"/COMPLETE 2>/dev/null) && echo "$r $(( $(date +%s) - c ))" || true'
    )
    if not line:
        return None
    run, seconds = line[-1].split()
    return run, int(seconds) / 3600


def last_nightly_failure(t: Target) -> str | None:
    """The nightly job's last log line when it says FAILED (the job's one line, no SQL), else None."""
    line = t.shell(f"tail -n 1 {LOG} 2>/dev/null | grep FAILED || true")
    return line[-1] if line else None


@app.command()
def status(inventory: InventoryOpt = DEFAULT):
    """Exit 1 when the newest complete backup run is older than backup_max_age_hours (a check for monitoring)."""
    with target(inventory) as t:
        good, failure, limit = last_good_run(t), last_nightly_failure(t), t.settings.backup_max_age_hours
        where = t.settings.backup_dir
    if failure:
        problem("last nightly run failed:", failure)
    if good is None:
        fail(f"no complete backup run in {where}: run `ops backup run`", 1)
    run, hours = good
    if hours > limit:
        fail(f"last good backup run {run} is {hours:.1f} h old, past backup_max_age_hours ({limit})", 1)
    console.print(literal(f"last good backup run {run}: {hours:.1f} h old (limit {limit} h)"))


# Rows per table as the dump holds them: count the lines of each COPY block.
COUNT_COPY = r"""awk '/^COPY /{t=$2; n=0; c=1; next} /^\\\.$/{if(c) print t, n; c=0; next} c{n++}'"""


# Rows per table in a restored database, one line a table ("schema.table n"),
# named as pg_dump names them in COPY. One jsonb_build_object over every table
# took two arguments a table, and PostgreSQL allows 100: it failed from 10
# tenants on (issue 9). query_to_xml counts each table inside one query.
COUNT_RESTORED = """SELECT format('%I.%I', n.nspname, c.relname) || ' ' || (xpath('/row/n/text()',
    query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_';
"""


class Counted(NamedTuple):
    """Rows of one table: in the dump, restored from it, and in its tenant's file of the run (None: not a tenant table)."""
    table: str
    dump: int
    restored: int
    tenant_file: int | None


def verify_run(t: Target, name: str) -> list[Counted]:
    """Restore a run's whole-database dump into a scratch database and count every table's rows,
    and count tenant tables in the per-tenant files as well, which one-tenant restores read."""
    s = t.settings
    run = f"{s.backup_dir}/{name}"
    dump = f"{run}/{s.db_name}.dump"
    scratch = f"{s.db_name}_verify_{secrets.token_hex(4)}"
    pg = "runuser -u postgres --"
    expected = counts(t.shell(f"{pg} pg_restore -f - --data-only {dump} | {COUNT_COPY}"))
    split = counts(t.shell(f"[ ! -d {run}/tenants ] || find {run}/tenants -name '*.sql.gz' "
                           f"-exec gzip -dc {{}} + | {COUNT_COPY}"))
    try:
        t.shell(f"{pg} createdb -p {s.pg_port} -T template0 {scratch}")
        # A scratch database needs no durable commits: without a flush per
        # statement the restore of 700 tenants took 27.5 s instead of 57 s
        # (-j 2 took 40 s, one transaction 49.7 s).
        t.shell(f'{pg} env PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" '
                f"pg_restore -p {s.pg_port} -d {scratch} --exit-on-error --no-comments {dump}")
        restored = counts(t.run_sql(COUNT_RESTORED, database=scratch))
    finally:
        t.shell(f"{pg} dropdb -p {s.pg_port} --if-exists {scratch}")
    prefix = (TENANT_PREFIX, f'"{TENANT_PREFIX}')
    tenant_file = (lambda tb: split.get(tb, -1) if tb.startswith(prefix) else None) if split else (lambda tb: None)
    return [Counted(tb, n, restored.get(tb, -1), tenant_file(tb)) for tb, n in sorted(expected.items())]


def counts(lines: list[str]) -> dict[str, int]:
    return dict(line_count(line) for line in lines if line.strip())


def line_count(line: str) -> tuple[str, int]:
    table, n = line.rsplit(" ", 1)
    return table, int(n)


@app.command()
def verify(run: RunOpt = None, inventory: InventoryOpt = DEFAULT):
    """Restore drill: restore a run into a scratch database and compare row counts with the dump."""
    with target(inventory) as t:
        name = pick_run(t, run)
        with console.status(literal(f"restoring {name} into a scratch database")):
            rows = verify_run(t, name)
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

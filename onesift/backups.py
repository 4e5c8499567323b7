"""
Backups on the database host, through its backup script (templates/jobs/onesift-backup.sh.j2):
run one now, list runs, restore one tenant, check their age, and the restore drill (verify).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

from onesift.errors import BadInput, OpsError
from onesift.queries import query
from onesift.settings import TENANT_PREFIX, validate_slug

if TYPE_CHECKING:
    from onesift.session import HostSession

SCRIPT = "/usr/local/sbin/onesift-backup"
RUN_RE = re.compile(r"^\d{8}T\d{6}Z$")
LOG = "/var/log/onesift/backup.log"  # the nightly job's (templates/jobs/onesift.cron.j2)


def backup(s: HostSession, *args: str) -> list[str]:
    return s.shell(" ".join([SCRIPT, *map(shlex.quote, args)]))


def pick_run(s: HostSession, run: str | None, tenant: str | None = None) -> str:
    """``run`` (default: latest) when it is complete, and holds ``tenant`` if one is named; else BadInput.
    One round trip to the host: each is ~0.1 s of a one-tenant restore."""
    if run is not None and not RUN_RE.match(run):
        raise BadInput(f"not a backup run name: {run!r}")
    d = shlex.quote(s.settings.backup_dir)
    name = shlex.quote(run) if run else f"$(readlink {d}/latest)"
    check = f"; {SCRIPT} has-tenant \"$r\" {shlex.quote(tenant)}; echo \"$?\"" if tenant else ""
    answer = s.shell(f'r={name}; echo "$r"; if [ -n "$r" ] && [ -e {d}/"$r"/COMPLETE ]; then echo complete{check}; fi; true')
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


def run(s: HostSession, tenant_dumps: bool, advance: Callable[[str], None] = lambda step: None) -> str:
    """One backup run, step by step (``advance`` is told each step's name as it starts); the run's name."""
    name = backup(s, "start")[-1].strip()
    slugs = [x for x in backup(s, "tenants") if x.strip()] if tenant_dumps else []
    advance(f"backup {name}")
    backup(s, "whole", name)
    for slug in slugs:
        advance(f"backup {slug}")
        backup(s, "tenant", name, slug)
    advance("finish")
    backup(s, "finish", name)
    return name


@dataclass(frozen=True, order=True)
class Run:
    """A backup run directory: complete or partial, its dumps and its size."""
    name: str
    state: str
    dumps: int
    bytes: int


def list_runs(s: HostSession) -> list[Run]:
    lines = s.shell(
        f"cd {shlex.quote(s.settings.backup_dir)} 2>/dev/null && for d in */; do d=${{d%/}}; [ -d \"$d\" ] && [ ! -L \"$d\" ] || continue; "
        "echo \"$d $( [ -e $d/COMPLETE ] && echo complete || echo partial ) "
        "$(ls $d | grep -c '\\.dump$') $(du -sb $d | cut -f1)\"; done || true"
    )
    runs = (line.split() for line in lines if line.strip())
    return sorted(Run(name, state, int(dumps), int(size)) for name, state, dumps, size in runs)


def restore(s: HostSession, slug: str, run_name: str | None) -> str:
    """Replace tenant ``slug``'s schema with its copy in a run (default: latest), in one transaction; the run's name."""
    from onesift import tenants

    tenants.customer(s, validate_slug(slug))
    name = pick_run(s, run_name, slug)
    backup(s, "restore", name, slug)
    return name


def last_good_run(s: HostSession) -> tuple[str, float] | None:
    """The run ``latest`` points at and its age in hours (by its COMPLETE file, on the host's clock); None if no run completed."""
    d = shlex.quote(s.settings.backup_dir)
    line = s.shell(
        f'r=$(readlink {d}/latest || true); '
        f'[ -n "$r" ] && c=$(stat -c %Y {d}/"$r"/COMPLETE 2>/dev/null) && echo "$r $(( $(date +%s) - c ))" || true'
    )
    if not line:
        return None
    run, seconds = line[-1].split()
    return run, int(seconds) / 3600


def last_nightly_failure(s: HostSession) -> str | None:
    """The nightly job's last log line when it says FAILED (the job's one line, no SQL), else None."""
    line = s.shell(f"tail -n 1 {LOG} 2>/dev/null | grep FAILED || true")
    return line[-1] if line else None


# Rows per table as the dump holds them: count the lines of each COPY block.
COUNT_COPY = r"""awk '/^COPY /{t=$2; n=0; c=1; next} /^\\\.$/{if(c) print t, n; c=0; next} c{n++}'"""




class Counted(NamedTuple):
    """Rows of one table: in the dump, restored from it, and in its tenant's file of the run (None: not a tenant table)."""
    table: str
    dump: int
    restored: int
    tenant_file: int | None


def verify_run(s: HostSession, name: str) -> list[Counted]:
    """Restore a run's whole-database dump into a scratch database and count every table's rows,
    and count tenant tables in the per-tenant files as well, which one-tenant restores read."""
    c = s.settings
    run = shlex.quote(f"{c.backup_dir}/{name}")
    dump = shlex.quote(f"{c.backup_dir}/{name}/{c.db_name}.dump")
    scratch = shlex.quote(f"{c.db_name}_verify_{secrets.token_hex(4)}")
    pg = "runuser -u postgres --"
    expected = counts(s.shell(f"{pg} pg_restore -f - --data-only {dump} | {COUNT_COPY}"))
    split = counts(s.shell(f"[ ! -d {run}/tenants ] || find {run}/tenants -name '*.sql.gz' "
                           f"-exec gzip -dc {{}} + | {COUNT_COPY}"))
    try:
        s.shell(f"{pg} createdb -p {c.pg_port} -T template0 {scratch}")
        # A scratch database needs no durable commits: without a flush per
        # statement the restore of 700 tenants took 27.5 s instead of 57 s
        # (-j 2 took 40 s, one transaction 49.7 s).
        s.shell(f'{pg} env PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" '
                f"pg_restore -p {c.pg_port} -d {scratch} --exit-on-error --no-comments {dump}")
        restored = counts(s.run_sql(query("table_rows", c), database=scratch))
    finally:
        s.shell(f"{pg} dropdb -p {c.pg_port} --if-exists {scratch}")
    prefix = (TENANT_PREFIX, f'"{TENANT_PREFIX}')
    tenant_file = (lambda tb: split.get(tb, -1) if tb.startswith(prefix) else None) if split else (lambda tb: None)
    return [Counted(tb, n, restored.get(tb, -1), tenant_file(tb)) for tb, n in sorted(expected.items())]


def counts(lines: list[str]) -> dict[str, int]:
    return dict(line_count(line) for line in lines if line.strip())


def line_count(line: str) -> tuple[str, int]:
    table, n = line.rsplit(" ", 1)
    return table, int(n)

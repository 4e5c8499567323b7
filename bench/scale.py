#!/usr/bin/env python3
"""
The scale run (issues 9 and 15): takes the bench host (onesift-bench) to N
tenants with `ops tenant import` and times each command at N/10 and at N,
as its users run it. Each line prints the time at N, the time at N/10 as its
baseline, the ratio and a verdict:

    fixed work (create, show, redeploy, no-op migrate, one-tenant restore)   <= 1.5x
    per-tenant work (import a tenant, list, audit check, nightly, verify)     <= 12x for 10x the tenants
    migrate-all at N/10 and at N against one psql running the same DDL         <= 2x

plus `ops audit check` at N against 10 s, and a one-tenant restore at N
against the same at 100 tenants (<= 2x). Too long for CI (24 minutes at
10,000 tenants on 2 cores, 2026-12-03): run it by hand, and put its table in the README.

    .venv/bin/python bench/scale.py                  # N = 10,000
    .venv/bin/python bench/scale.py --tenants 300    # a quick look
    .venv/bin/python bench/scale.py --check          # exit 1 if a target is missed
    .venv/bin/python bench/scale.py --only "audit check,migrate-all"   # some lines only
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402
from bench.run import INVENTORY, OPS, report, sh, slugs, timed  # noqa: E402

FIXED, PER_TENANT = 1.5, 12.0
AUDIT_LIMIT_S = 10.0
BACKUP = bench.BACKUP


def ops(*args: str) -> float:
    return timed(sh, *OPS, *args, "-i", INVENTORY)


def import_to(t, n: int, have: int, sample: int = 500) -> float:
    """Seconds a tenant for `ops tenant import` of the last ``sample`` tenants up to ``n``; the
    ones before go in through one psql session (rendered DDL, as the bench's onboarding floor),
    which takes a 10,000-tenant host there in minutes rather than half an hour."""
    sample = min(sample, n - have)
    for start in range(have, n - sample, 1000):
        t.run_sql(bench.floor_sql(t, min(start + 1000, n - sample), start), None, False)
    return timed(bench.onboard_cli, n) / sample


def create_and_drop() -> tuple[float, float]:
    made = ops("tenant", "create", "scale-new", "--name", "Scale New", "--mode", "api")
    shown = ops("tenant", "show", "scale-new")
    ops("tenant", "drop", "scale-new", "--yes")
    return made, shown


def restore(slug: str) -> float:
    """One tenant back from the newest run (made by the nightly measurement): the median of 3,
    since the ratio of two ~1.5 s runs swung 1.9-2.04x from one run to the next."""
    return statistics.median(ops("backup", "restore", "--tenant", slug, "--yes") for _ in range(3))


def measure(t, n: int, have: int, only: set[str] | None = None) -> dict[str, float]:
    """Every command at ``n`` tenants (or those in ``only``), having imported them from ``have``."""
    times: dict[str, float] = {"import, per tenant": import_to(t, n, have)}
    print(f"-- {n} tenants", flush=True)
    wanted = lambda *names: only is None or any(name in only for name in names)  # noqa: E731
    if wanted("create one tenant", "show one tenant"):
        times["create one tenant"], times["show one tenant"] = create_and_drop()
    steps = {
        "list tenants": lambda: ops("tenant", "list"),
        "no-change redeploy": bench.redeploy_seconds,
        "audit check": lambda: ops("audit", "check"),
        "no-op migrate": lambda: ops("tenant", "migrate"),
        # the run a restore reads, and the footprint's dump size
        "nightly job": lambda: timed(t.shell, f"TENANT_DUMPS=no {BACKUP} all >/dev/null"),
        "verify": lambda: ops("backup", "verify"),
        "restore one tenant": lambda: restore(slugs(n)[n // 2]),
    }
    for name, step in steps.items():
        if wanted(name) or name == "nightly job" and wanted("restore one tenant", "verify"):
            times[name] = step()
    if only is None:
        footprint(t, n)
    if wanted("migrate-all"):
        ours, floor = bench.migrate_pair(t, slugs(n))
        times["migrate-all"], times["migrate-all floor"] = ours, floor
        report(f"migrate {n} tenants (ADD COLUMN default + index): ops vs one psql (s)", ours, floor, limit=2)
    t.shell(f"rm -rf {t.settings.backup_dir}/2*")  # runs only the next measurement reads
    return times


FOOTPRINT = """SELECT (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
        WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'),
    (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute), pg_database_size(current_database());
"""


# A backend's memory grows with each tenant it touches (relation and catalog
# caches, kept for the session): what a pooled app connection ends up holding.
SESSION_MEMORY = """CREATE TEMP TABLE before AS SELECT sum(total_bytes) AS b FROM pg_backend_memory_contexts;
DO $$
DECLARE s text;
BEGIN
    FOR s IN SELECT schema_name FROM system.customers ORDER BY slug LIMIT {k} LOOP
        EXECUTE format('SELECT (SELECT count(*) FROM %1$I.leads) + (SELECT count(*) FROM %1$I.conversations)
            + (SELECT count(*) FROM %1$I.messages) + (SELECT count(*) FROM %1$I.handoffs)
            + (SELECT count(*) FROM %1$I.personas)', s);
    END LOOP;
END $$;
SELECT (sum(total_bytes) - (SELECT b FROM before)) / {k} FROM pg_backend_memory_contexts;
"""


def footprint(t, n: int) -> None:
    """What N tenants cost the server, for the README's 100,000-tenant estimate."""
    catalog, relations, attributes, database = map(int, t.run_sql(FOOTPRINT)[-1].split("|"))
    k = min(n, 1000)
    per_tenant = float(t.run_sql(SESSION_MEMORY.format(k=k))[-1])
    print(f"-- {n} tenants: a session's memory grows {per_tenant / 1024:.1f} KB a tenant it touches ({k} touched)", flush=True)
    dump = int(t.shell(f"stat -c %s {t.settings.backup_dir}/latest/{t.settings.db_name}.dump")[-1])
    print(f"-- {n} tenants: catalog {catalog / 2**20:.1f} MB ({catalog / n / 1024:.1f} KB a tenant), "
          f"{relations} pg_class rows, {attributes} pg_attribute rows, database {database / 2**20:.1f} MB, "
          f"nightly dump {dump / 2**20:.1f} MB", flush=True)


KINDS = {
    "import, per tenant": FIXED, "create one tenant": FIXED, "show one tenant": FIXED,
    "no-change redeploy": FIXED, "no-op migrate": FIXED, "restore one tenant": FIXED,
    "list tenants": PER_TENANT, "audit check": PER_TENANT, "nightly job": PER_TENANT,
    "verify": PER_TENANT, "migrate-all": PER_TENANT,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=bench.positive, default=10_000, help="N; also timed at N/10, and a restore at 100 when N/10 is more")
    p.add_argument("--release", choices=bench.RELEASES, default=bench.RELEASES[0], help="the bench host's Debian release")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--only", type=lambda text: set(x.strip() for x in text.split(",")),
                   help=f"comma-separated measurements, of: {', '.join(KINDS)} (tenants are imported either way)")
    args = p.parse_args()
    if args.only and args.only - set(KINDS):
        p.error(f"unknown measurement {sorted(args.only - set(KINDS))[0]!r}")
    n = args.tenants
    small = max(n // 10, 1)
    t = bench.bring_up(args.release)
    print(f"platform: Debian {args.release}, PostgreSQL {t.run_sql('SHOW server_version')[-1].split()[0]}", flush=True)
    print(f"{'measurement':68} {'value':>9} {'baseline':>9} {'ratio':>8}  target", flush=True)
    try:
        bench.reset()
        at_100, have = None, 0
        if small > 100 and (args.only is None or "restore one tenant" in args.only):
            bench.onboard_cli(100)
            at_100, have = restore_at(t, 100), 100
        low = measure(t, small, have, args.only)
        high = measure(t, n, small, args.only)
    finally:
        t.close()
    for name, limit in KINDS.items():
        if name in high:
            report(f"{name}: {n} vs {small} tenants (s)", high[name], low[name], limit=limit)
    if "migrate-all" in high:
        report(f"migrate-all floor (one psql): {n} vs {small} tenants (s)", high["migrate-all floor"],
               low["migrate-all floor"], "context: PostgreSQL's own slope")
    if at_100:
        report(f"restore one tenant: {n} vs 100 tenants (s)", high["restore one tenant"], at_100, limit=2)
    if "audit check" in high:
        report(f"audit check at {n} tenants vs {AUDIT_LIMIT_S:g} s (s)", high["audit check"], AUDIT_LIMIT_S, limit=1)
    print(f"targets missed: {len(bench.MISSED)}" + "".join(f"\n  {name}" for name in bench.MISSED))
    if args.check and bench.MISSED:
        sys.exit(1)


def restore_at(t, n: int) -> float:
    t.shell(f"TENANT_DUMPS=no {BACKUP} all >/dev/null")
    return restore(slugs(n)[n // 2])


if __name__ == "__main__":
    main()

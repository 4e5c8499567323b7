#!/usr/bin/env python3
"""
Point-in-time recovery benchmarks (issue 12), on the bench host (bench/run.py's
onesift-bench, or ONESIFT_BENCH_CONTAINER). Each line prints a measurement,
its baseline from the same run, the ratio and, with a target, met or MISSED:

    RPO: a commit on a quiet server until its WAL is in the repository,
         worst of --rpo-samples, vs archive_timeout               target <= 1.1x
    whole database, N tenants: ops backup pitr --to latest (into scratch)
         vs pg_restore of the whole logical dump into a new database  target <= 1x
    one tenant of N back to a moment (restore --tenant X --to T)
         vs the same tenant from the nightly run (restore --tenant X)  context
    pgBackRest full backup + verify vs the nightly pg_dump              context

    .venv/bin/python bench/pitr.py                          # N = 1000, 3 RPO samples (about 10 minutes)
    .venv/bin/python bench/pitr.py --tenants 20 --rpo-samples 1
    .venv/bin/python bench/pitr.py --check                  # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402
from bench.run import BACKUP, INVENTORY, OPS, report, sh, slugs, timed  # noqa: E402

PITR = "/usr/local/sbin/onesift-pitr"


def ops(*args: str) -> float:
    return timed(sh, *OPS, *args, "-i", INVENTORY)


def fill(t, n: int) -> None:
    """N empty tenants through one psql session, a thousand at a time (bench/scale.py's way)."""
    for start in range(0, n, 1000):
        t.run_sql(bench.floor_sql(t, min(start + 1000, n), start), None, False)


def rpo_sample(t) -> float:
    """Seconds from a commit to the moment its WAL segment is in the repository (pg_stat_archiver), on a
    server whose only other writes are the per-minute canary: the data a host lost then would have lost."""
    wal, committed = t.run_sql("INSERT INTO system.pitr_marker DEFAULT VALUES;\n"
                               "SELECT pg_walfile_name(pg_current_wal_lsn()) || ' ' || extract(epoch FROM clock_timestamp());",
                               None, False)[-1].split()
    while True:
        done = t.run_sql("SELECT coalesce(last_archived_wal, '') || ' ' || "
                         "coalesce(extract(epoch FROM last_archived_time), 0) FROM pg_stat_archiver")[-1].split()
        # Segment names sort in WAL order within a timeline; .backup and .history files are not segments.
        if len(done) == 2 and len(done[0]) == 24 and done[0] >= wal:
            return float(done[1]) - float(committed)
        time.sleep(0.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=bench.positive, default=1000)
    p.add_argument("--rpo-samples", type=bench.positive, default=3)
    p.add_argument("--release", choices=bench.RELEASES, default=bench.RELEASES[0], help="the bench host's Debian release")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args()
    n = args.tenants
    t = bench.bring_up(args.release)
    print(f"platform: Debian {args.release}, PostgreSQL {t.run_sql('SHOW server_version')[-1].split()[0]}", flush=True)
    print(f"{'measurement':68} {'value':>9} {'baseline':>9} {'ratio':>8}  target", flush=True)
    try:
        bench.reset()
        fill(t, n)
        # The logical nightly run, and the weekly full backup with its verify.
        run = t.shell(f"{BACKUP} start")[-1].strip()
        whole = timed(t.shell, f"{BACKUP} whole {run} >/dev/null")
        t.shell(f"{BACKUP} finish {run} >/dev/null")
        full = timed(t.shell, f"{PITR} backup full >/dev/null")
        report(f"pgBackRest full backup + verify vs pg_dump of the whole database, {n} tenants (s)", full, whole,
               "context")
        # The whole database back: PITR into scratch against pg_restore of the dump.
        pitr = ops("backup", "pitr", "--to", "latest")
        # One tenant back to a moment against the same tenant from the nightly run, before the
        # pg_restore below: its WAL (~1 GB at 1,000 tenants) would be replayed too (83.9 s instead of ~50).
        slug = slugs(n)[n // 2]
        moment = datetime.now(timezone.utc).isoformat()
        time.sleep(1)
        one_pitr = ops("backup", "restore", "--tenant", slug, "--to", moment, "--yes")
        one_logical = ops("backup", "restore", "--tenant", slug, "--yes")
        report(f"one tenant of {n} back to a moment (--to) vs from the nightly run (s)", one_pitr, one_logical,
               "context: --to restores the whole database into scratch first")
        dump = f"{t.settings.backup_dir}/{run}/{t.settings.db_name}.dump"
        pg = "runuser -u postgres --"
        t.shell(f"{pg} createdb -p {t.settings.pg_port} -T template0 onesift_bench_restore")
        try:
            logical = timed(t.shell, f"{pg} pg_restore -p {t.settings.pg_port} -d onesift_bench_restore "
                                     f"--exit-on-error {dump}")
        finally:
            t.shell(f"{pg} dropdb -p {t.settings.pg_port} --if-exists onesift_bench_restore")
        report(f"whole database, {n} tenants: ops backup pitr --to latest vs pg_restore (s)", pitr, logical, limit=1)
        # RPO on a quiet server, at random moments of the archive_timeout cycle.
        timeout = t.settings.pgbackrest.pg_archive_timeout
        samples = []
        for _ in range(args.rpo_samples):
            time.sleep(random.uniform(0, timeout / 3))
            samples.append(rpo_sample(t))
        report(f"RPO on a quiet server, worst of {len(samples)} (mean {sum(samples) / len(samples):.1f} s) "
               f"vs archive_timeout (s)", max(samples), timeout, limit=1.1)
    finally:
        t.close()
    print(f"targets missed: {len(bench.MISSED)}" + "".join(f"\n  {name}" for name in bench.MISSED))
    if args.check and bench.MISSED:
        sys.exit(1)


if __name__ == "__main__":
    main()

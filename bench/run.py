#!/usr/bin/env python3
"""
OneSift benchmarks. Every number is printed next to a baseline measured in
the same run, as a ratio, on a container host of its own (onesift-bench).

    .venv/bin/python bench/run.py                 # N = 100, 1000 (about 2 minutes once its host is deployed)
    .venv/bin/python bench/run.py --tenants 20,100 --rls-rows 20000 --rls-loops 500
    .venv/bin/python bench/run.py --check         # exit 1 if a target is missed

A line with a target says whether the ratio met it; the others are context.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from onesift import secrets  # noqa: E402
from onesift.render import access, quote_ident, quote_literal, sql_environment  # noqa: E402
from onesift.settings import TENANT_VERSION_MARK, schema_for  # noqa: E402
from onesift.steps import owner_prefix, tenant_ddl, tenant_version, views_ddl  # noqa: E402
from onesift.local_hosts import LocalHost, run_container, state_dir, wait_for_port  # noqa: E402
from onesift.platform import RELEASES  # noqa: E402
from onesift.tenant_migrations import migrate_all  # noqa: E402
from onesift.local_hosts import docker_env  # noqa: E402
from onesift.session import HostSession  # noqa: E402

INVENTORY = "bench/inventory.py"
# ONESIFT_BENCH_CONTAINER / _SSH_PORT / _PG_PORT (with ONESIFT_STATE_DIR) let a second
# checkout bench a host of its own beside this one's; bench/inventory.py reads the same.
HOST = LocalHost("bench", os.environ.get("ONESIFT_BENCH_CONTAINER") or "onesift-bench", INVENTORY,
                 {"5432/tcp": int(os.environ.get("ONESIFT_BENCH_PG_PORT") or 55434),
                  "22/tcp": int(os.environ.get("ONESIFT_BENCH_SSH_PORT") or 22023)})
OPS = [sys.executable, "-m", "ops_cli.main"]
ENV = docker_env()
MISSED: list[str] = []


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def sh(*cmd: str) -> None:
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(name: str, value: float, baseline: float, note: str = "", limit: float | None = None) -> None:
    """Print a measurement, its same-run baseline and their ratio; with ``limit``, whether the ratio met it."""
    ratio = value / baseline if baseline else float("inf")  # a baseline that failed to a zero: a miss, not a crash
    if limit is not None:
        met = ratio <= limit
        note = f"target <= {limit:g}x: {'met' if met else 'MISSED'}" + (f" ({note})" if note else "")
        if not met:
            MISSED.append(name)
    print(f"{name:68} {value:9.4g} {baseline:9.4g} {ratio:7.2f}x  {note}", flush=True)


def reset() -> None:
    sh(*OPS, "db", "reset", "--yes", "-i", INVENTORY)


def slugs(n: int) -> list[str]:
    return [f"b{i:05d}" for i in range(n)]


def onboard_cli(n: int) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        w = csv.writer(f)
        w.writerow(["slug", "name", "mode", "handover_email"])
        w.writerows([s, f"Bench {s}", "api", ""] for s in slugs(n))
    sh(*OPS, "tenant", "import", f.name, "-i", INVENTORY)
    os.unlink(f.name)


def floor_sql(t: HostSession, n: int, start: int = 0) -> str:
    """The same DDL, rendered here and run straight through one psql session (tenants ``start``..``n``)."""
    parts = []
    for s in slugs(n)[start:]:
        parts += [
            "BEGIN;\n", owner_prefix(t.settings),
            "INSERT INTO system.customers (slug, name, ingestion_mode, schema_version) VALUES "
            f"({quote_literal(s)}, {quote_literal('Bench ' + s)}, 'api', {tenant_version()});\n",
            tenant_ddl(t.settings, s), views_ddl(t.settings, s), "COMMIT;\n",
        ]
    return "".join(parts)


def bench_onboarding(t: HostSession, sizes: list[int]) -> dict[int, float]:
    per_tenant = {}
    for n in sizes:
        reset()
        cli = timed(onboard_cli, n)
        reset()
        sql = floor_sql(t, n)
        floor = timed(t.run_sql, sql, None, False)
        per_tenant[n] = cli / n
        report(f"onboard {n} tenants: ops tenant import vs one psql (s)", cli, floor, limit=2)
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        report(f"onboarding s/tenant at {hi} vs at {lo} (slope)", per_tenant[hi], per_tenant[lo],
               "s/tenant; under 1x: fixed costs spread")
    return per_tenant


def redeploy_seconds() -> float:
    """Median of three no-change runs of the whole deploy on the bench host."""
    return statistics.median(timed(sh, sys.executable, "-m", "pyinfra", "-y", INVENTORY, "deploy.py") for _ in range(3))


def bench_redeploy(label: str) -> float:
    floor = [sys.executable, "-m", "pyinfra", "-y", "@local", "exec", "--", "true"]
    ours = redeploy_seconds()
    base = statistics.median(timed(sh, *floor) for _ in range(3))
    report(f"no-change redeploy, {label} vs pyinfra @local exec true (s)", ours, base, limit=3)
    return ours


def rls_tables(owner, slug: str, rows: int) -> str:
    """Fill one tenant's leads, and a copy without RLS (same columns, indexes, order), both vacuumed; the schema."""
    schema = quote_ident(schema_for(slug))
    with owner.transaction():
        owner.execute("SELECT system.act_as_tenant(%s)", [slug])
        owner.execute(
            f"INSERT INTO {schema}.leads (email, status, created_at) "
            "SELECT 'l' || g || '@example.com', (ARRAY['new','processing','qualified','handed_off'])[1 + mod(g, 4)]::system.lead_status, "
            "now() - make_interval(secs => g) FROM generate_series(1, %s) g", [rows])
        owner.execute("DROP SCHEMA IF EXISTS bench_norls CASCADE")
        owner.execute("CREATE SCHEMA bench_norls")
        owner.execute(f"CREATE TABLE bench_norls.leads (LIKE {schema}.leads INCLUDING ALL)")
        owner.execute(f"INSERT INTO bench_norls.leads SELECT * FROM {schema}.leads ORDER BY ctid")
        owner.execute("GRANT USAGE ON SCHEMA bench_norls TO onesift_app")
        owner.execute("GRANT SELECT ON bench_norls.leads TO onesift_app")
    owner.execute(f"VACUUM ANALYZE {schema}.leads")
    owner.execute("VACUUM ANALYZE bench_norls.leads")
    return schema


def rls_pair(app, slug: str, schema: str, measure) -> tuple[float, float]:
    """Median seconds of measure(table with RLS) and measure(table without), 11 rounds interleaved, as the app in the tenant."""
    with_rls, without = [], []
    for _ in range(11):
        for table, out in ((f"{schema}.leads", with_rls), ("bench_norls.leads", without)):
            with app.transaction():
                app.execute("SELECT system.use_tenant(%s)", [slug])
                out.append(measure(table))
    return statistics.median(with_rls), statistics.median(without)


def bench_rls(rows: int, loops: int) -> None:
    pw = secrets.load("bench", generate=True)
    conn_args = dict(host="127.0.0.1", port=HOST.ports["5432/tcp"], dbname="onesift")
    slug = slugs(1)[0]
    indexed = "SELECT id, email FROM {} WHERE status = 'qualified' ORDER BY created_at DESC LIMIT 20"
    scan = "SELECT status, count(*) FROM {} GROUP BY status"
    with psycopg.connect(user="onesift_owner", password=pw["owner"], autocommit=True, **conn_args) as owner, \
            psycopg.connect(user="onesift_app", password=pw["app"], **conn_args) as app:
        schema = rls_tables(owner, slug, rows)

        def in_server(table):
            loop = f"DO $$ BEGIN FOR i IN 1..{loops} LOOP PERFORM count(*) FROM ({indexed.format(table)}) q; END LOOP; END $$"
            return timed(app.execute, loop.encode())

        def client(sql, n):
            return lambda table: timed(lambda: [app.execute(sql.format(table), prepare=True).fetchall() for _ in range(n)])

        report(f"indexed tenant query x{loops} in one DO loop, RLS vs none (s)",
               *rls_pair(app, slug, schema, in_server), "server CPU alone: a fixed ~1 us a query")
        report(f"indexed tenant query x{loops} from the client, RLS vs none (s)",
               *rls_pair(app, slug, schema, client(indexed, loops)), limit=1.10)
        report(f"{rows}-row tenant aggregate x20 from the client, RLS vs none (s)",
               *rls_pair(app, slug, schema, client(scan, 20)), "full scan: one parameter check a row")
        # The policy as tenant schema v2 had it: checked per row, not once per statement.
        per_row = f"current_setting('onesift.tenant', true) = {quote_literal(slug)}"
        owner.execute(f"ALTER POLICY tenant_isolation ON {schema}.leads USING ({per_row}) WITH CHECK ({per_row})")
        try:
            old, base = rls_pair(app, slug, schema, client(scan, 20))
        finally:  # back to access.toml's policy, rendered as the tenant DDL renders it
            clauses = sql_environment().get_template("macros/policy.sql.j2").module.policy_clauses
            for p in access()["tenant"]["policy"]:
                owner.execute(f"ALTER POLICY {quote_ident(p['name'])} ON {schema}.leads {clauses(p, slug)}")
        report("same aggregate with the v2 per-row policy, RLS vs none (s)", old, base, "what migration 0003 removed")
        owner.execute("DROP SCHEMA bench_norls CASCADE")


def concurrent_calls(conn_args: dict, sql: str, params: list, clients: int, calls: int,
                     before=lambda: None) -> tuple[list[float], int]:
    """Seconds per call of ``sql`` from ``clients`` connections at once, each in its own
    REPEATABLE READ transaction (the app's strictest setting); and how many failed.
    Each connection runs ``sql`` once first, as a pooled app connection has: the
    first call in a session compiles and caches, and with 32 clients those 32
    calls were the whole p99. ``before`` runs after that, before the timing."""
    warm, go = threading.Barrier(clients + 1), threading.Barrier(clients + 1)
    times: list[float] = []
    failed = [0]

    def client():
        with psycopg.connect(**conn_args) as conn:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(sql, params).fetchall()
            conn.commit()
            warm.wait()
            go.wait()
            for _ in range(calls):
                start = time.perf_counter()
                try:
                    conn.execute(sql, params).fetchall()
                    conn.commit()
                except psycopg.Error:
                    conn.rollback()
                    failed[0] += 1
                times.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    warm.wait()
    before()
    go.wait()
    for t in threads:
        t.join()
    return times, failed[0]


def bench_validation(clients: int, calls: int) -> None:
    """Issue 8.5: validations of one key used to queue on its row lock to write
    last_used_at, and under REPEATABLE READ 558 of 1,000 failed with 40001."""
    pw = secrets.load("bench", generate=True)
    conn_args = dict(host="127.0.0.1", port=HOST.ports["5432/tcp"], dbname="onesift")
    with psycopg.connect(user="onesift_owner", password=pw["owner"], autocommit=True, **conn_args) as owner:
        key = owner.execute("SELECT api_key FROM system.create_api_key("
                            "(SELECT id FROM system.customers ORDER BY slug LIMIT 1), 'bench')").fetchone()[0]

        def hour_old():  # the first validations timed must write last_used_at
            owner.execute("UPDATE system.api_keys SET last_used_at = now() - interval '1 hour' "
                          "WHERE key_prefix = %s", [key[:12]])

        app = {**conn_args, "user": "onesift_app", "password": pw["app"]}
        valid, failed = concurrent_calls(app, "SELECT * FROM system.validate_api_key(%s)", [key], clients, calls,
                                         hour_old)
    base, _ = concurrent_calls(app, "SELECT %s::text", [key], clients, calls)
    cuts, base_cuts = statistics.quantiles(valid, n=100), statistics.quantiles(base, n=100)
    name = f"validate_api_key, {clients} clients on one key"
    report(f"{name}, p50 vs SELECT $1 (ms)", cuts[49] * 1000, base_cuts[49] * 1000, limit=3)
    report(f"{name}, p99 vs SELECT $1 (ms)", cuts[98] * 1000, base_cuts[98] * 1000, limit=3)
    print(f"{'':68} {failed} of {len(valid)} validations failed (target: 0: {'met' if not failed else 'MISSED'})")
    if failed:
        MISSED.append(f"{name}: {failed} failed")


# Issue 15's realistic tenant migration: a column with a default, and an index on it,
# written as sql/tenant/migrations/0002 is: on PostgreSQL 17.12 ADD COLUMN with a
# DEFAULT reads every pg_index row of the database, so an empty table gets the
# column bare and then its default (see that file, and bench_add_column_default).
BENCH_VERSION = tenant_version() + 1


def bench_ddl(slug: str) -> str:
    table = f"{quote_ident(schema_for(slug))}.leads"
    return (f"DO $b$ BEGIN IF pg_relation_size({quote_literal(table)}) = 0 THEN\n"
            f"  ALTER TABLE {table} ADD COLUMN bench_region text, ALTER COLUMN bench_region SET DEFAULT 'eu';\n"
            f"  ALTER TABLE {table} ALTER COLUMN bench_region SET NOT NULL;\n"
            f"ELSE ALTER TABLE {table} ADD COLUMN bench_region text NOT NULL DEFAULT 'eu'; END IF; END $b$;\n"
            f"CREATE INDEX ON {table} (bench_region, created_at);\n")


def default_ddl(slug: str) -> str:
    """The same column in one ALTER TABLE … ADD COLUMN … DEFAULT, whatever the table holds."""
    table = f"{quote_ident(schema_for(slug))}.leads"
    return f"ALTER TABLE {table} ADD COLUMN bench_region text NOT NULL DEFAULT 'eu';\n"


def undo_bench_migration(t: HostSession, some: list[str]) -> None:
    """The tenants back where they were: no column, the shipped version, in the
    schema comment too, which a restore reads (autocommit: one transaction
    would lock every tenant's table at once)."""
    mark = quote_literal(f"{TENANT_VERSION_MARK}{tenant_version()}")
    t.run_sql("".join(f"ALTER TABLE {quote_ident(schema_for(s))}.leads DROP COLUMN IF EXISTS bench_region;\n"
                      f"COMMENT ON SCHEMA {quote_ident(schema_for(s))} IS {mark};\n" for s in some)
              + f"UPDATE system.customers SET schema_version = {tenant_version()} "
              f"WHERE schema_version = {BENCH_VERSION};\n", None, False)


def only_pending(t: HostSession, some: list[str]) -> None:
    """Only ``some`` tenants pending for the bench migration: the others are marked past it."""
    t.run_sql(f"UPDATE system.customers SET schema_version = CASE WHEN slug = ANY(ARRAY[{', '.join(map(quote_literal, some))}]) "
              f"THEN {tenant_version()} ELSE {BENCH_VERSION} END;\n")


def migrate_pair(t: HostSession, some: list[str], parallel: int = 2) -> tuple[float, float]:
    """Seconds of `ops tenant migrate`'s code, and of the same DDL through one psql in autocommit."""
    floor = "".join(bench_ddl(s) for s in some)
    base = timed(t.run_sql, floor, None, False)
    undo_bench_migration(t, some)
    only_pending(t, some)
    result = {}
    ours = timed(lambda: result.update(r=migrate_all(t, parallel, extra={BENCH_VERSION: bench_ddl})))
    assert len(result["r"].applied) == len(some), result["r"]
    undo_bench_migration(t, some)
    return ours, base


def fill_leads(t: HostSession, some: list[str], rows: int) -> None:
    t.run_sql("".join(f"SELECT system.act_as_tenant({quote_literal(s)});\n"
                      f"INSERT INTO {quote_ident(schema_for(s))}.leads (email) "
                      f"SELECT 'm' || g || '@example.com' FROM generate_series(1, {rows}) g;\n" for s in some))


def app_latencies(conn_args: dict, tenants: list[str], until: threading.Event, clients: int = 4) -> list[float]:
    """Seconds per app transaction (use_tenant, a read, a write) on random tenants, from ``clients`` at once."""
    import random

    times: list[float] = []

    def client(seed: int):
        rnd = random.Random(seed)
        with psycopg.connect(**conn_args, autocommit=True) as conn:
            while not until.is_set():
                start = time.perf_counter()
                with conn.transaction():
                    conn.execute("SELECT system.use_tenant(%s)", [rnd.choice(tenants)])
                    conn.execute("SELECT count(*) FROM leads WHERE status = 'new'").fetchone()
                    conn.execute("INSERT INTO leads (email) VALUES ('app-' || gen_random_uuid() || '@example.com')")
                times.append(time.perf_counter() - start)
                time.sleep(0.005)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times


def bench_add_column_default(t: HostSession, everyone: list[str]) -> None:
    """What 0002's form saves on empty tables: the column in one ADD COLUMN … DEFAULT vs bare then
    given its default, through one psql (PostgreSQL 17.12 reads pg_index whole for the first)."""
    table = lambda s: f"{quote_ident(schema_for(s))}.leads"  # noqa: E731
    drop = "".join(f"ALTER TABLE {table(s)} DROP COLUMN IF EXISTS bench_region;\n" for s in everyone)
    one = timed(t.run_sql, "".join(default_ddl(s) for s in everyone), None, False)
    t.run_sql(drop, None, False)
    split = timed(t.run_sql, "".join(bench_ddl(s).rsplit("CREATE INDEX", 1)[0] for s in everyone), None, False)
    t.run_sql(drop, None, False)
    report(f"add a column with a default to {len(everyone)} empty tenants: one ALTER vs bare then default (s)",
           one, split, "context: why tenant migration 0002 adds it bare")


def bench_migrate(t: HostSession, n: int, with_data: int = 100, rows: int = 1000) -> None:
    """Issue 15: migrate-all against its floor, with and without data, and under app load."""
    everyone, with_data = slugs(n), min(with_data, n)
    ours, base = migrate_pair(t, everyone)
    report(f"migrate {n} tenants (ADD COLUMN default + index): ops vs one psql (s)", ours, base, limit=2)
    bench_add_column_default(t, everyone)
    loaded = everyone[:with_data]
    fill_leads(t, loaded, rows)
    ours_data, base_data = migrate_pair(t, loaded)
    report(f"the same on {with_data} tenants with {rows} leads each (s)", ours_data, base_data)
    report(f"s/tenant: {with_data} tenants with {rows} leads vs {n} empty", ours_data / with_data, ours / n)
    # Under load: the app's transactions during migrate-all vs without it.
    pw = secrets.load("bench", generate=True)
    app = dict(host="127.0.0.1", port=HOST.ports["5432/tcp"], dbname="onesift", user="onesift_app", password=pw["app"])
    quiet = threading.Event()
    timer = threading.Timer(5, quiet.set)
    timer.start()
    alone = app_latencies(app, loaded, quiet)
    only_pending(t, everyone)
    busy, result = threading.Event(), {}
    worker = threading.Thread(target=lambda: result.update(r=app_latencies(app, loaded, busy)))
    worker.start()
    outcome = migrate_all(t, 2, extra={BENCH_VERSION: bench_ddl})
    busy.set()
    worker.join()
    undo_bench_migration(t, everyone)
    p99, p99_alone = (statistics.quantiles(x, n=100)[98] * 1000 for x in (result["r"], alone))
    limit_ms = t.settings.migrate_lock_timeout_ms + 100
    report("app transaction p99 during migrate-all vs without (ms)", p99, p99_alone,
           f"target p99 <= {limit_ms} ms: {'met' if p99 <= limit_ms else 'MISSED'} (lock_timeout + 100 ms); "
           f"{len(outcome.retried)} tenants retried, {len(outcome.retryable)} left retryable")
    if p99 > limit_ms:
        MISSED.append("app p99 during migrate-all")


BACKUP = "/usr/local/sbin/onesift-backup"


def bench_backup(t: HostSession, n: int, sample: int = 20) -> None:
    run = t.shell(f"{BACKUP} start")[-1].strip()
    whole = timed(t.shell, f"{BACKUP} whole {run} >/dev/null")
    some = slugs(n)[:: max(1, n // sample)][:sample]
    each = timed(t.shell, " && ".join(f"{BACKUP} tenant {run} {s} >/dev/null" for s in some)) / len(some)
    report(f"one tenant's pg_dump -n vs the whole dump, {n} tenants (s)", each, whole, "each reads the whole catalog")
    report(f"pg_dump -n of all {n} tenants (from {len(some)}) vs the whole dump (s)", each * n, whole,
           "why they are off by default")
    t.shell(f"{BACKUP} finish {run} >/dev/null")
    nightly = timed(t.shell, f"TENANT_DUMPS=no {BACKUP} all >/dev/null")
    report(f"nightly job with {n} tenants vs the whole dump (s)", nightly, whole, "one dump whatever the tenant count")
    latest = t.shell(f"readlink {t.settings.backup_dir}/latest")[-1].strip()
    slug = some[0]  # the tenant with the RLS bench's leads
    own = timed(t.shell, f"{BACKUP} restore {run} {slug} >/dev/null")
    from_whole = timed(t.shell, f"{BACKUP} restore {latest} {slug} >/dev/null")
    report("restore one tenant: from the whole dump vs from its own dump (s)", from_whole, own)
    t.shell(f"rm -rf {t.settings.backup_dir}/{run} {t.settings.backup_dir}/{latest} {t.settings.backup_dir}/latest")


def median_seconds(cmd: list[str], runs: int = 5) -> float:
    return statistics.median(timed(sh, *cmd) for _ in range(runs))


def bench_cli_start(n: int) -> None:
    """`ops` against what it wraps (issue 10): --help against 0.3 s, and `ops tenant list`
    against one ssh + psql listing the same tenants on the same host."""
    report("ops --help vs 0.3 s (s)", median_seconds([*OPS, "--help"]), 0.3, limit=1)
    ssh = ["ssh", "-p", str(HOST.ports["22/tcp"]), "-i", str(state_dir() / "ssh" / "id_ed25519"),
           "-o", f"UserKnownHostsFile={state_dir() / 'ssh' / 'known_hosts_bench'}", "-o", "BatchMode=yes",
           "root@127.0.0.1", "runuser -u postgres -- psql -X -d onesift -c "
           "'SELECT slug, name, schema_name, ingestion_mode, is_active, schema_version FROM system.customers ORDER BY slug'"]
    # The first run opens the SSH master connection that the next four ride (onesift/transport.py).
    subprocess.run(["ssh", *ssh[1:-2], "-o", f"ControlPath={control_path_of(INVENTORY)}", "-O", "exit", "root@127.0.0.1"],
                   capture_output=True)
    runs = [timed(sh, *OPS, "tenant", "list", "-i", INVENTORY) for _ in range(5)]
    baseline = median_seconds(ssh)
    report(f"ops tenant list, {n} tenants, vs ssh + psql (s)", statistics.median(runs), baseline, limit=2)
    report("the same, its first run (it opens the SSH master connection) (s)", runs[0], baseline,
           "context: a command after a minute idle")


def control_path_of(inventory: str) -> str:
    """The SSH master connection's socket that `ops` uses for ``inventory``'s host."""
    from onesift.inventory import host_entry
    from onesift.transport import OpenSSH, control_path

    t = OpenSSH.from_data(*host_entry(inventory))
    return control_path(t.destination, t.options)


def positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")
    return int(text)


def counts(text: str) -> list[int]:
    return sorted(set(positive(x) for x in text.split(",")))


def bring_up(release: str = RELEASES[0]) -> HostSession:
    """The bench host on Debian ``release``, made (again, if it predates sshd or runs
    another release) and deployed; a HostSession on it."""
    global HOST
    HOST = replace(HOST, release=release)
    os.environ.update(ENV)
    import docker

    try:  # an older bench container without sshd: replace it
        old = docker.from_env(environment=ENV).containers.get(HOST.container)
        if "22/tcp" not in (old.attrs["HostConfig"].get("PortBindings") or {}):
            old.remove(force=True)
    except docker.errors.NotFound:
        pass
    (state_dir() / "ssh" / "known_hosts_bench").unlink(missing_ok=True)
    run_container(HOST)
    wait_for_port(HOST.ports["22/tcp"])
    sh(*OPS, "db", "setup", "-i", INVENTORY)
    return HostSession(INVENTORY)


SECTIONS = ("redeploy", "cli", "rls", "validation", "migrate", "backup")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=counts, default="100,1000", help="comma-separated tenant counts")
    p.add_argument("--rls-rows", type=positive, default=100_000)
    p.add_argument("--rls-loops", type=positive, default=2000)
    p.add_argument("--clients", type=positive, default=32, help="concurrent API key validations")
    p.add_argument("--calls", type=positive, default=100, help="validations per client")
    p.add_argument("--release", choices=RELEASES, default=RELEASES[0], help="the bench host's Debian release")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--only", type=lambda text: set(text.split(",")), default=set(SECTIONS),
                   help=f"comma-separated sections, of: {', '.join(SECTIONS)} (the onboarding, which makes the tenants, runs either way)")
    args = p.parse_args()
    if args.only - set(SECTIONS):
        p.error(f"unknown section {sorted(args.only - set(SECTIONS))[0]!r}; sections: {', '.join(SECTIONS)}")
    sizes = args.tenants

    t = bring_up(args.release)
    print(f"platform: Debian {args.release}, PostgreSQL {t.run_sql('SHOW server_version')[-1].split()[0]}", flush=True)
    print(f"{'measurement':68} {'value':>9} {'baseline':>9} {'ratio':>8}  target")
    try:
        reset()
        n = max(sizes)
        empty = bench_redeploy("0 tenants") if "redeploy" in args.only else None
        bench_onboarding(t, sizes)  # leaves max(sizes) tenants, made by the floor
        if "redeploy" in args.only:
            full = bench_redeploy(f"{n} tenants")
            # "Not growing with tenant count": 1.2x leaves room for run-to-run noise.
            report(f"no-change redeploy with {n} tenants vs with 0 (s)", full, empty, limit=1.2)
        sections = {"cli": lambda: bench_cli_start(n), "rls": lambda: bench_rls(args.rls_rows, args.rls_loops),
                    "validation": lambda: bench_validation(args.clients, args.calls),
                    "migrate": lambda: bench_migrate(t, n), "backup": lambda: bench_backup(t, n)}
        for name, section in sections.items():
            if name in args.only:
                section()
    finally:
        t.close()
    print(f"targets missed: {len(MISSED)}" + "".join(f"\n  {name}" for name in MISSED))
    if args.check and MISSED:
        sys.exit(1)


if __name__ == "__main__":
    main()

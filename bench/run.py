#!/usr/bin/env python3
"""
OneSift benchmarks. Every number is printed next to a baseline measured in
the same run, as a ratio, on a container host of its own (onesift-bench).

    .venv/bin/python bench/run.py                 # N = 100, 1000
    .venv/bin/python bench/run.py --tenants 50    # quicker
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from deploy import secrets  # noqa: E402
from deploy.render import quote_literal  # noqa: E402
from deploy.settings import schema_for  # noqa: E402
from deploy.sqlsteps import owner_prefix, tenant_ddl, tenant_version, views_ddl  # noqa: E402
from ops_cli.host import LocalHost, run_container, state_dir, wait_for_port  # noqa: E402
from ops_cli.target import Target, docker_env  # noqa: E402

INVENTORY = "bench/inventory.py"
HOST = LocalHost("ssh", "onesift-bench", INVENTORY, {"5432/tcp": 55434, "22/tcp": 22023})
OPS = [sys.executable, "-m", "ops_cli.main"]
ENV = docker_env()
RESULTS: list[tuple[str, float, float, str]] = []


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def sh(*cmd: str) -> None:
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(name: str, value: float, baseline: float, target: str) -> None:
    RESULTS.append((name, value, baseline, target))
    print(f"{name:58} {value:9.3f} {baseline:9.3f} {value / baseline:7.2f}x  {target}", flush=True)


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


def floor_sql(t: Target, n: int) -> str:
    """The same DDL, rendered here and run straight through one psql session."""
    parts = []
    for s in slugs(n):
        parts += [
            "BEGIN;\n", owner_prefix(t.settings),
            "INSERT INTO system.customers (slug, name, schema_name, ingestion_mode, schema_version) VALUES "
            f"({quote_literal(s)}, {quote_literal('Bench ' + s)}, {quote_literal(schema_for(s))}, 'api', {tenant_version()});\n",
            tenant_ddl(t.settings, s), views_ddl(t.settings, s), "COMMIT;\n",
        ]
    return "".join(parts)


def bench_onboarding(t: Target, sizes: list[int]) -> dict[int, float]:
    per_tenant = {}
    for n in sizes:
        reset()
        cli = timed(onboard_cli, n)
        reset()
        sql = floor_sql(t, n)
        floor = timed(t.run_sql, sql, None, False)
        per_tenant[n] = cli / n
        report(f"onboard {n} tenants: ops tenant import vs one psql (s)", cli, floor, "target <= 2x")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        report(f"onboarding s/tenant at {hi} vs at {lo} (slope)", per_tenant[hi], per_tenant[lo], "flat ~1x")
    return per_tenant


def bench_redeploy(label: str) -> float:
    deploy = [sys.executable, "-m", "pyinfra", "-y", INVENTORY, "deploy.py"]
    floor = [sys.executable, "-m", "pyinfra", "-y", "@local", "exec", "--", "true"]
    ours = statistics.median(timed(sh, *deploy) for _ in range(3))
    base = statistics.median(timed(sh, *floor) for _ in range(3))
    report(f"no-change redeploy, {label} vs pyinfra @local exec true (s)", ours, base, "target <= 3x")
    return ours


def bench_rls(rows: int, loops: int) -> None:
    pw = secrets.load("bench", generate=True)
    conn_args = dict(host="127.0.0.1", port=HOST.ports["5432/tcp"], dbname="onesift")
    slug = slugs(1)[0]
    with psycopg.connect(user="onesift_owner", password=pw["owner"], **conn_args) as conn:
        conn.execute("SELECT set_config('onesift.tenant', %s, true)", [slug])
        conn.execute(
            f'INSERT INTO "{schema_for(slug)}".leads (email, status, created_at) '
            "SELECT 'l' || g || '@example.com', (ARRAY['new','contacted','qualified','won'])[1 + mod(g, 4)]::system.lead_status, "
            "now() - make_interval(secs => g) FROM generate_series(1, %s) g", [rows])
        # The baseline: the same rows and index, no RLS.
        conn.execute("DROP SCHEMA IF EXISTS bench_norls CASCADE")
        conn.execute("CREATE SCHEMA bench_norls")
        conn.execute(f'CREATE TABLE bench_norls.leads AS SELECT * FROM "{schema_for(slug)}".leads')
        conn.execute("CREATE INDEX ON bench_norls.leads (status, created_at DESC)")
        conn.execute("GRANT USAGE ON SCHEMA bench_norls TO onesift_app")
        conn.execute("GRANT SELECT ON bench_norls.leads TO onesift_app")
        conn.commit()
        conn.execute(f'ANALYZE "{schema_for(slug)}".leads')
        conn.execute("ANALYZE bench_norls.leads")
    query = "SELECT id, email FROM {}.leads WHERE status = 'qualified' ORDER BY created_at DESC LIMIT 20"
    loop = "DO $$ BEGIN FOR i IN 1..{} LOOP PERFORM count(*) FROM ({}) q; END LOOP; END $$"
    with psycopg.connect(user="onesift_app", password=pw["app"], **conn_args) as conn:
        def run(schema):
            with conn.transaction():
                conn.execute("SELECT system.use_tenant(%s)", [slug])
                start = time.perf_counter()
                conn.execute(loop.format(loops, query.format(schema)).encode())
                return time.perf_counter() - start
        with_rls, without = [], []
        for _ in range(5):  # interleaved, median of five
            with_rls.append(run(f'"{schema_for(slug)}"'))
            without.append(run("bench_norls"))
    report(f"indexed tenant query x{loops}, RLS vs no RLS ({rows} rows) (s)",
           statistics.median(with_rls), statistics.median(without), "target < 1.10x")


def bench_backup(t: Target, n: int) -> None:
    run = t.shell("/usr/local/sbin/onesift-backup start")[-1].strip()
    whole = timed(t.shell, f"/usr/local/sbin/onesift-backup whole {run} >/dev/null")
    each = timed(t.shell, f"for s in $(/usr/local/sbin/onesift-backup tenants); do "
                          f"/usr/local/sbin/onesift-backup tenant {run} $s >/dev/null || exit 1; done")
    t.shell(f"rm -rf {t.settings.backup_dir}/{run}")
    report(f"per-tenant dumps of {n} tenants vs one whole dump (s)", each, whole, "cost of per-tenant restores")
    report("one tenant's dump vs the whole dump (s)", each / n, whole, "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", default="100,1000", help="comma-separated tenant counts")
    p.add_argument("--rls-rows", type=int, default=100_000)
    p.add_argument("--rls-loops", type=int, default=2000)
    args = p.parse_args()
    sizes = sorted(int(x) for x in args.tenants.split(","))

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
    t = Target(INVENTORY)
    print(f"{'measurement':58} {'value':>9} {'baseline':>9} {'ratio':>8}  target")
    try:
        reset()
        bench_redeploy("0 tenants")
        bench_onboarding(t, sizes)  # leaves max(sizes) tenants, made by the floor
        bench_redeploy(f"{max(sizes)} tenants")
        bench_rls(args.rls_rows, args.rls_loops)
        bench_backup(t, max(sizes))
    finally:
        t.close()


if __name__ == "__main__":
    main()

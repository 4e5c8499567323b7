"""bench/run.py, end to end at small sizes on its own host: every measurement printed with its baseline and ratio."""

import re
import sys

import psycopg

from bench.run import HOST
from onesift import secrets
from onesift.steps import tenant_version
from tests.e2e.conftest import run

# A measurement line: name, value, baseline, ratio ("0.851     0.341    2.50x", 4 significant digits).
NUMBER = r"(\d[\d.]*(?:e[+-]\d+)?)"
MEASUREMENT = re.compile(rf"^(.+?)\s+{NUMBER}\s+{NUMBER}\s+(\d+\.\d\d)x\s")


def test_bench_prints_every_ratio():
    out = run([sys.executable, "bench/run.py", "--tenants", "3,6", "--rls-rows", "2000", "--rls-loops", "40",
               "--clients", "8", "--calls", "20"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [m.groups() for m in map(MEASUREMENT.match, out.stdout.splitlines()) if m]
    names = [r[0] for r in rows]
    assert len(rows) == 24, out.stdout
    for needle in ("onboard 6 tenants", "slope", "redeploy, 6 tenants", "with 6 tenants vs with 0",
                   "from the client, RLS vs none", "v2 per-row policy", "pg_dump -n of all 6", "nightly job",
                   "restore one tenant", "validate_api_key, 8 clients on one key, p99",
                   "migrate 6 tenants (ADD COLUMN default + index): ops vs one psql", "with 1000 leads each",
                   "p99 during migrate-all", "ops --help vs 0.3 s", "ops tenant list, 6 tenants, vs ssh + psql",
                   "add a column with a default to 6 empty tenants", "its first run (it opens the SSH master"):
        assert any(needle in n for n in names), (needle, names)
    # Ratios are value / baseline, and a line with a target says whether it was met.
    for name, value, baseline, ratio in rows:
        assert float(baseline) > 0 and abs(float(value) / float(baseline) - float(ratio)) < 0.006 + 0.002 * float(ratio), name
    assert sum("target <=" in line for line in out.stdout.splitlines()) == 11
    assert re.search(r"p99 during migrate-all.*target p99 <= 2100 ms: (met|MISSED) \(lock_timeout \+ 100 ms\); \d+ tenants retried", out.stdout)
    assert re.search(r"^\s+0 of 160 validations failed", out.stdout, re.M), out.stdout
    assert re.search(r"^targets missed: \d+$", out.stdout, re.M)
    # It put back what it changed: the old per-row policy it timed, the table copy without RLS.
    audit = run([sys.executable, "-m", "ops_cli.main", "audit", "check", "-i", "bench/inventory.py"])
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # The audit reads only system and tenant_* schemas, so the copy is checked here.
    with psycopg.connect(host="127.0.0.1", port=HOST.ports["5432/tcp"], dbname="onesift", user="onesift_owner",
                         password=secrets.load("bench")["owner"]) as conn:
        assert conn.execute("SELECT to_regnamespace('bench_norls')").fetchone()[0] is None
        # ... and the tenant migration it timed: no column left, every tenant at the shipped version.
        assert conn.execute("SELECT count(*) FROM pg_attribute WHERE attname = 'bench_region' AND NOT attisdropped").fetchone()[0] == 0
        assert conn.execute("SELECT array_agg(DISTINCT schema_version) FROM system.customers").fetchone()[0] == [tenant_version()]
        # The bench resets its database: the new audit trail starts with who did it.
        assert conn.execute("SELECT count(*) FROM audit.log WHERE action = 'database.reset'").fetchone()[0] >= 1


def test_bench_refuses_bad_sizes_before_touching_a_host():
    for args in (["--tenants", "abc"], ["--tenants", "10,0"], ["--rls-loops", "-5"]):
        out = run([sys.executable, "bench/run.py", *args])
        assert out.returncode == 2 and "not a whole number above 0" in out.stderr, (args, out.stderr)
        assert "measurement" not in out.stdout


def test_scale_run_times_every_command_at_both_sizes():
    """bench/scale.py at 20 tenants (2 and 20): each command with its ratio and verdict."""
    out = run([sys.executable, "bench/scale.py", "--tenants", "20"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [m.groups() for m in map(MEASUREMENT.match, out.stdout.splitlines()) if m]
    names = [r[0] for r in rows]
    for needle in ("import, per tenant", "create one tenant", "show one tenant", "list tenants", "no-change redeploy",
                   "audit check: 20 vs 2", "no-op migrate", "nightly job", "verify", "restore one tenant",
                   "migrate-all: 20 vs 2", "migrate 20 tenants (ADD COLUMN default + index): ops vs one psql",
                   "audit check at 20 tenants vs 10 s"):
        assert any(needle in n for n in names), (needle, names)
    assert re.search(r"^-- 20 tenants: catalog .* KB a tenant", out.stdout, re.M), out.stdout
    assert re.search(r"^-- 20 tenants: a session's memory grows .* KB a tenant it touches", out.stdout, re.M), out.stdout
    assert re.search(r"^targets missed: \d+$", out.stdout, re.M)

"""
The OneSift database README's contract (issue 14): the Node.js test in
tests/contract run against the dev host, system migration 0003 on a database
holding every old enum value, and the handover threshold through `ops`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest

from onesift.render import ROOT, render_sql
from onesift.settings import Settings
from onesift.steps import context, migrations, owner_prefix, tenant_migrations, tenant_names, views_ddl

NODE_IMAGE = os.environ.get("ONESIFT_NODE_IMAGE", "localhost/onesift-node:bookworm")
S = Settings()
SCRATCH = "contract_migration"
OLD_STATUS = ["new", "contacted", "engaged", "qualified", "handed_off", "won", "lost"]
OLD_SENDER = ["lead", "persona", "agent", "system"]
NEW_STATUS = {"new": "new", "contacted": "processing", "engaged": "responded", "qualified": "qualified",
              "handed_off": "handed_off", "won": "handed_off", "lost": "handed_off"}
NEW_SENDER = {"lead": "customer", "persona": "ai", "agent": "system", "system": "system"}
# Tenant migration 0002 as tenants at v2 and later got it, before 0003.
OLD_V2 = ("ALTER TABLE {s}.leads ADD COLUMN score smallint NOT NULL DEFAULT 0;\n"
          "CREATE INDEX leads_score_idx ON {s}.leads (score DESC) WHERE status NOT IN ('won', 'lost');\n")


def test_node_contract(dev):
    """node-postgres, as the app uses it, against the README: createCustomer ... backupCustomerData."""
    # no-verify: the dev host has Debian's snakeoil certificate, and its
    # pg_hba wants TLS from the bridge address that published ports arrive from.
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(dev.pg_port), "PGSSLMODE": "no-verify",
           "ONESIFT_OWNER_PASSWORD": dev.passwords["owner"], "ONESIFT_APP_PASSWORD": dev.passwords["app"]}
    # `-e NAME` takes the value from this environment: no password in argv.
    names = ["PGHOST", "PGPORT", "PGSSLMODE", "ONESIFT_OWNER_PASSWORD", "ONESIFT_APP_PASSWORD"]
    out = subprocess.run(
        ["docker", "run", "--rm", "--init", "--network", "host",
         "-v", f"{ROOT / 'tests' / 'contract'}:/contract:ro",
         *[a for n in names for a in ("-e", n)],
         NODE_IMAGE, "node", "/contract/readme_contract.test.js"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout and "# pass 1" in out.stdout, out.stdout[-2000:]
    assert out.stdout.count("\n    ok ") >= 11, out.stdout
    assert dev.ops("audit", "check").returncode == 0


def psql(dev, sql: str, db: str = SCRATCH, check: bool = True, single: bool = True) -> subprocess.CompletedProcess:
    """SQL fed on stdin to psql as the postgres OS user on the dev host, in one transaction."""
    out = subprocess.run(
        ["docker", "exec", "-i", "-u", "postgres", dev.local.container,
         "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *(["--single-transaction"] if single else []), "-d", db],
        input=sql, capture_output=True, text=True, timeout=300,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def as_owner(sql: str) -> str:
    return owner_prefix(S) + sql


def old_context() -> dict:
    """The templates' variables with the policy tenants had up to v3, before the tenant proof."""
    ctx = context(S)
    access = copy.deepcopy(ctx["access"])
    for p in access["tenant"]["policy"]:
        p["using"] = p["check"] = "(SELECT current_setting('onesift.tenant', true) = {slug})"
    return {**ctx, "access": access}


def old_migration(version: int, slug: str) -> str:
    return render_sql(tenant_migrations()[version], **old_context(), **tenant_names(slug))


def old_tenant(slug: str, version: int) -> str:
    """A tenant schema as create_customer_schema made it before 0003, at version 1 or 3."""
    parts = [
        f"INSERT INTO system.customers (slug, name, schema_name, ingestion_mode, schema_version) "
        f"VALUES ('{slug}', 'Old {slug}', 'tenant_{slug}', 'api', {version});\n",
        render_sql("tenant/base.sql.j2", **old_context(), **tenant_names(slug)),
    ]
    if version >= 2:
        parts.append(OLD_V2.format(s=f'"tenant_{slug}"'))
    if version >= 3:
        parts.append(old_migration(3, slug))
    parts.append(views_ddl(S, slug))
    return "".join(parts)


def old_rows(slug: str) -> str:
    """One lead per old lead_status, one message per old message_sender."""
    s = f'"tenant_{slug}"'
    leads = ", ".join(f"('{v}@old.example', '{v}')" for v in OLD_STATUS)
    senders = ", ".join(f"('{v}')" for v in OLD_SENDER)
    return (
        f"SELECT set_config('onesift.tenant', '{slug}', true);\n"
        f"INSERT INTO {s}.leads (email, status) VALUES {leads};\n"
        f"INSERT INTO {s}.conversations (lead_id) SELECT id FROM {s}.leads WHERE status = 'new';\n"
        f"INSERT INTO {s}.messages (conversation_id, sender, body) "
        f"SELECT c.id, v.sender::system.message_sender, 'hi' FROM {s}.conversations c, (VALUES {senders}) v(sender);\n"
    )


@pytest.fixture
def old_database(dev):
    """A scratch database at system migration 0002: tenants at v1 and v3 holding every old value."""
    psql(dev, f"DROP DATABASE IF EXISTS {SCRATCH};\nCREATE DATABASE {SCRATCH} OWNER {S.roles.owner};\n",
         db="postgres", single=False)
    psql(dev, 'CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION pgcrypto;')
    before = [m.sql for m in migrations(S) if m.name < "migration:0003"]
    assert len(before) == 2
    psql(dev, as_owner("".join(before)))
    psql(dev, as_owner("".join(old_tenant(s, v) + old_rows(s) for s, v in (("old-v1", 1), ("old-v3", 3)))))
    yield
    psql(dev, f"DROP DATABASE IF EXISTS {SCRATCH};", db="postgres", single=False)


def rows(dev, sql: str) -> list[list[str]]:
    out = psql(dev, as_owner(sql)).stdout
    return [line.split("|") for line in out.splitlines() if line]


def contract_migration() -> str:
    [step] = [m for m in migrations(S) if m.name.startswith("migration:0003")]
    return step.sql


def test_contract_migration_maps_every_old_value(dev, old_database):
    # One transaction: a stray column of the old type makes the last DROP TYPE
    # fail, and every tenant stays exactly as it was.
    psql(dev, "CREATE TABLE public.stray (status system.lead_status);")
    failed = psql(dev, as_owner(contract_migration()), check=False)
    assert failed.returncode != 0 and "stray" in failed.stderr, failed.stderr
    assert rows(dev, "SELECT enum_range(NULL::system.lead_status)::text") == [["{" + ",".join(OLD_STATUS) + "}"]]
    psql(dev, "DROP TABLE public.stray;")

    psql(dev, as_owner(contract_migration()))
    assert rows(dev, "SELECT enum_range(NULL::system.lead_status)::text, enum_range(NULL::system.message_sender)::text") == [
        ["{new,processing,responded,qualified,handed_off,error}", "{customer,ai,system}"]]
    for slug in ("old-v1", "old-v3"):
        s = f'"tenant_{slug}"'
        got = rows(dev, f"SELECT set_config('onesift.tenant', '{slug}', true);\n"
                        f"SELECT split_part(email, '@', 1), status, coalesce(metadata->>'before_0003', '') FROM {s}.leads")
        assert sorted(map(tuple, got[1:])) == sorted(
            (old, NEW_STATUS[old], old if old in ("won", "lost") else "") for old in OLD_STATUS)
        got = rows(dev, f"SELECT set_config('onesift.tenant', '{slug}', true);\n"
                        f"SELECT sender, coalesce(metadata->>'before_0003', '') FROM {s}.messages")
        assert sorted(map(tuple, got[1:])) == sorted(
            (NEW_SENDER[old], "agent" if old == "agent" else "") for old in OLD_SENDER)
        got = rows(dev, f"SELECT set_config('onesift.tenant', '{slug}', true);\n"
                        f"SELECT status, leads FROM {s}.lead_funnel ORDER BY status")
        assert got[1:] == [["new", "1"], ["processing", "1"], ["responded", "1"], ["qualified", "1"], ["handed_off", "3"]]
        assert rows(dev, f"SELECT has_table_privilege('{S.roles.app}', '{s}.lead_funnel', 'SELECT')") == [["t"]]

    # The v3 tenant's score index names current values; the v1 tenant gets the
    # same index from tenant migration 0002, which now runs on the new enum.
    index = "SELECT indexdef FROM pg_indexes WHERE indexname = 'leads_score_idx' AND schemaname = 'tenant_{}'"
    assert rows(dev, index.format("old-v1")) == []
    psql(dev, as_owner(old_migration(2, "old-v1") + old_migration(3, "old-v1")))
    assert rows(dev, index.format("old-v1"))[0][0].replace("old-v1", "X") == \
        rows(dev, index.format("old-v3"))[0][0].replace("old-v3", "X")
    assert "'handed_off'" in rows(dev, index.format("old-v3"))[0][0]

    # The customers table: a threshold with its default, a schema name that follows the slug.
    assert rows(dev, "SELECT slug, schema_name, handover_threshold FROM system.customers ORDER BY slug") == [
        ["old-v1", "tenant_old-v1", "3"], ["old-v3", "tenant_old-v3", "3"]]
    bad = psql(dev, as_owner("UPDATE system.customers SET slug = 'renamed' WHERE slug = 'old-v1';"), check=False)
    assert bad.returncode != 0 and "cannot change" in bad.stderr
    bad = psql(dev, as_owner("INSERT INTO system.customers (slug, name, ingestion_mode, schema_name) "
                             "VALUES ('evil', 'Evil', 'api', 'system');"), check=False)
    assert bad.returncode != 0 and "schema_name" in bad.stderr
    assert rows(dev, "SELECT count(*) FROM pg_type WHERE typname LIKE '%before_0003'") == [["0"]]


def test_handover_threshold_through_ops(dev, slug, tmp_path):
    out = dev.ops("tenant", "create", slug, "--name", "Threshold", "--mode", "api", "--handover-threshold", "5")
    assert out.returncode == 0, out.stderr
    try:
        shown = json.loads(dev.ops("tenant", "show", slug, "--json").stdout)
        assert shown["handover_threshold"] == 5
        assert "handover_threshold: 5" in dev.ops("tenant", "show", slug).stdout
        for bad in ("0", "101", "x"):
            out = dev.ops("tenant", "create", slug + "b", "--name", "Bad", "--mode", "api", "--handover-threshold", bad)
            assert out.returncode == 2, out.stderr
        csv = tmp_path / "t.csv"
        csv.write_text(f"slug,name,mode,handover_email,handover_threshold\n{slug}c,C,api,,9\n{slug}d,D,api,,\n")
        bad_csv = tmp_path / "bad.csv"
        bad_csv.write_text(f"slug,name,mode,handover_email,handover_threshold\n{slug}e,E,api,,200\n")
        out = dev.ops("tenant", "import", str(bad_csv))
        assert out.returncode == 2 and "handover threshold" in out.stderr, out.stderr
        assert dev.ops("tenant", "import", str(csv)).returncode == 0
        with dev.connect("auditor") as conn:
            got = dict(conn.execute("SELECT slug, handover_threshold FROM system.customers WHERE slug LIKE %s",
                                    [slug + "%"]).fetchall())
        assert got == {slug: 5, slug + "c": 9, slug + "d": 3}
    finally:
        for s in (slug, slug + "c", slug + "d"):
            dev.ops("tenant", "drop", s, "--yes")

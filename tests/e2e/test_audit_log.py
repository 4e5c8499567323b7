"""
The audit trail (issue 8.8): append-only for every role but a superuser,
written only by the system functions with the server's time, naming the
operator, kept past a tenant's drop, and read back with `ops audit log`.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from psycopg import errors

from tests.e2e.conftest import OPS, ROOT, run


def entries(dev, slug) -> list[dict]:
    out = dev.ops("audit", "log", "--tenant", slug, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ops_as(dev, actor, *args):
    """`ops` as run by the operator ``actor`` (ONESIFT_ACTOR; else the OS user and machine)."""
    env = {**os.environ, "ONESIFT_ACTOR": actor}
    return subprocess.run([*OPS, *args, "-i", dev.inventory], cwd=ROOT, capture_output=True, text=True, env=env)


def test_no_role_can_forge_or_rewrite_history(dev, slug):
    assert dev.ops("tenant", "create", slug, "--name", "Audit", "--mode", "api").returncode == 0
    try:
        with dev.connect("app", autocommit=True) as conn:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("INSERT INTO system.audit_log (action, actor) VALUES ('tenant.created', 'someone')")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM audit.log")
        with dev.connect("owner", autocommit=True) as conn:
            for sql in ("INSERT INTO audit.log (action, actor, db_user, created_at) "
                        "VALUES ('tenant.created', 'someone', 'x', now() - interval '9 days')",
                        "UPDATE audit.log SET actor = 'someone else'",
                        "DELETE FROM audit.log",
                        "TRUNCATE audit.log",
                        "ALTER TABLE audit.log DISABLE TRIGGER USER",
                        "DROP TABLE audit.log CASCADE",
                        "DROP SCHEMA audit CASCADE",
                        "SET ROLE onesift_audit_owner"):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(sql)
            # What the owner's functions may do: write a row, stamped by the server.
            conn.execute("SET onesift.actor = 'test-writer'")
            conn.execute("SELECT audit.write('tenant.noted', id, '{\"n\": 1}') FROM system.customers WHERE slug = %s",
                         [slug])
            row = conn.execute("SELECT actor, db_user, created_at > now() - interval '1 minute' FROM audit.log "
                               "WHERE slug = %s AND action = 'tenant.noted'", [slug]).fetchone()
            assert row == ("test-writer", "onesift_owner", True)
        # Even the table's owner cannot change a row: only a superuser can.
        h = dev.testinfra()
        out = h.run("runuser -u postgres -- psql -XAtq -d onesift -c "
                    "\"SET ROLE onesift_audit_owner; UPDATE audit.log SET actor = 'x' WHERE slug = '%s'\"" % slug)
        assert out.rc != 0 and "append-only" in out.stderr, out.stderr
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_every_change_names_its_operator_and_survives_the_drop(dev, slug):
    assert ops_as(dev, "alice", "tenant", "create", slug, "--name", "Audit", "--mode", "api").returncode == 0
    try:
        out = ops_as(dev, "bob", "apikey", "create", slug, "--name", "k1")
        assert out.returncode == 0, out.stderr
        assert ops_as(dev, "carol", "backup", "run").returncode == 0
        out = ops_as(dev, "carol", "backup", "restore", "--tenant", slug, "--yes")
        assert out.returncode == 0, out.stderr
    finally:
        assert ops_as(dev, "dave", "tenant", "drop", slug, "--yes").returncode == 0
    got = [(e["action"], e["actor"]) for e in entries(dev, slug)]
    assert ("tenant.created", "alice") in got and ("api_key.created", "bob") in got, got
    assert ("tenant.restored", "carol") in got and ("tenant.dropped", "dave") in got, got
    assert all(e["slug"] == slug and e["customer_id"] for e in entries(dev, slug))
    assert run([*OPS, "audit", "check", "-i", dev.inventory]).returncode == 0


def test_ops_audit_log_filters_and_refuses_bad_input(dev, slug):
    assert dev.ops("tenant", "create", slug, "--name", "Audit", "--mode", "api").returncode == 0
    try:
        shown = dev.ops("audit", "log", "--tenant", slug)
        assert shown.returncode == 0 and "tenant.created" in shown.stdout, shown.stderr
        assert dev.ops("audit", "log", "--since", "2999-01-01", "--json").stdout.strip() == "[]"
        since = json.loads(dev.ops("audit", "log", "--since", "2000-01-01", "--json").stdout)
        assert any(e["slug"] == slug for e in since)
        for bad in (["--since", "yesterday-ish"], ["--tenant", "NOT A SLUG"]):
            out = dev.ops("audit", "log", *bad)
            assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_tenant_migrations_are_recorded(dev, slug):
    """Tenant migrations wrote no row before."""
    from tests.e2e.test_tenant_bulk import make_old

    assert dev.ops("tenant", "create", slug, "--name", "Audit", "--mode", "api").returncode == 0
    try:
        make_old(dev, slug)
        assert ops_as(dev, "erin", "tenant", "migrate").returncode == 0
        assert ("tenant.migrated", "erin") in [(e["action"], e["actor"]) for e in entries(dev, slug)]
    finally:
        dev.ops("tenant", "drop", slug, "--yes")

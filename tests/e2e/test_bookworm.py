"""The smoke set on the previous platform, Debian 12 with PostgreSQL 15 (issue
11): the whole suite runs on trixie/17; on bookworm/15 the deploy, a
no-change redeploy, the seed, tenant isolation, a backup with its restore
drill and the audit check. The `bookworm` fixture deploys and seeds."""

import pytest
from psycopg import errors

from tests.e2e.conftest import assert_deploy_changes_nothing


@pytest.fixture(scope="module")
def tenants(bookworm):
    slugs = ["bw-a", "bw-b"]
    for s in slugs:
        bookworm.ops("tenant", "drop", s, "--yes")
        out = bookworm.ops("tenant", "create", s, "--name", s, "--mode", "api")
        assert out.returncode == 0, out.stderr
    yield slugs
    for s in slugs:
        bookworm.ops("tenant", "drop", s, "--yes")


def test_bookworm_runs_its_own_postgresql_15(bookworm):
    assert (bookworm.local.release, bookworm.pg_version) == ("bookworm", 15)
    assert bookworm.testinfra().package("postgresql-15").is_installed


def test_second_deploy_on_bookworm_changes_nothing(bookworm):
    assert_deploy_changes_nothing(bookworm)


def test_seed_on_bookworm(bookworm):
    with bookworm.connect("auditor") as conn:
        slugs = {r[0] for r in conn.execute("SELECT slug FROM system.customers")}
    assert {"abc-honda", "demo-dealership"} <= slugs


def test_isolation_on_bookworm(bookworm, tenants):
    a, b = tenants
    with bookworm.connect("app") as conn:
        with conn.transaction():
            conn.execute("SELECT system.use_tenant(%s)", [b])
            conn.execute("INSERT INTO leads (email) VALUES ('b@example.com')")
        with conn.transaction():
            conn.execute("SELECT system.use_tenant(%s)", [a])
            assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied to set parameter"):
            conn.execute(f"SET onesift.tenant = '{b}'")


def test_backup_and_restore_drill_on_bookworm(bookworm, tenants):
    out = bookworm.ops("backup", "run")
    assert out.returncode == 0, out.stderr
    out = bookworm.ops("backup", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restore drill passed" in out.stdout


def test_audit_check_on_bookworm(bookworm, tenants):
    out = bookworm.ops("audit", "check")
    assert out.returncode == 0, out.stdout + out.stderr

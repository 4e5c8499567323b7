"""The deploy on both real hosts: packages, config, socket, roles, extensions, idempotence."""

import re
import sys

import psycopg
import pytest

from tests.e2e.conftest import assert_deploy_changes_nothing, detected_changes, results_total, run


def test_postgresql_package_installed(db_host):
    h = db_host.testinfra()
    package = h.package(f"postgresql-{db_host.pg_version}")
    assert package.is_installed and package.version.startswith(f"{db_host.pg_version}.")
    # The release's own PostgreSQL: 17 on trixie, the default platform (issue 11).
    assert db_host.pg_version == {"trixie": 17, "bookworm": 15}[db_host.local.release]


def test_listening_on_configured_port(db_host):
    h = db_host.testinfra()
    assert h.socket("tcp://0.0.0.0:5432").is_listening


def test_config_files_rendered(db_host):
    h = db_host.testinfra()
    conf = h.file(f"{db_host.conf_dir}/postgresql.conf")
    assert conf.user == "postgres" and conf.mode == 0o644
    assert conf.contains("^max_locks_per_transaction = 256$")
    assert conf.contains("^password_encryption = scram-sha-256$")
    assert conf.contains("^listen_addresses = '\\*'$")
    hba = h.file(f"{db_host.conf_dir}/pg_hba.conf")
    assert hba.user == "postgres" and hba.mode == 0o640
    assert hba.contains("Managed by the OneSift deploy")
    assert not hba.contains("trust")


def test_extensions_present(db_host):
    with db_host.connect("owner") as conn:
        names = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
    assert {"uuid-ossp", "pgcrypto", "pg_stat_statements"} <= names


def test_runtime_roles_are_not_privileged(db_host):
    with db_host.connect("auditor") as conn:
        rows = dict(conn.execute(
            "SELECT rolname, (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb) "
            "FROM pg_roles WHERE rolname LIKE 'onesift%'"
        ).fetchall())
        # The audit trail's owner: nobody logs in as it, and no role is its member.
        keeper = conn.execute("SELECT r.rolcanlogin, (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid) "
                              "FROM pg_roles r WHERE rolname = 'onesift_audit_owner'").fetchone()
    assert rows == {"onesift_owner": False, "onesift_app": False, "onesift_auditor": False,
                    "onesift_audit_owner": False}
    assert keeper == (False, 0)


def test_wrong_password_is_refused(db_host):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=db_host.pg_port, dbname="onesift",
                        user="onesift_app", password="not-the-password", connect_timeout=10)


def test_client_connections_use_tls(db_host):
    with db_host.connect("app") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


def test_second_deploy_changes_nothing(db_host):
    assert_deploy_changes_nothing(db_host)


def test_dry_run_says_no_change(db_host):
    out = db_host.pyinfra("deploy.py", dry=True)
    assert out.returncode == 0, out.stderr[-2000:]
    listed, changing = detected_changes(out.stdout + out.stderr)
    assert listed >= 13 and changing == []


def test_changed_role_attribute_is_corrected(dev):
    # pyinfra's own postgres.role cannot alter an existing role; ours must.
    dev.testinfra().run_expect([0], "runuser -u postgres -- psql -Xqc 'ALTER ROLE onesift_app CONNECTION LIMIT 3'")
    out = dev.pyinfra("deploy.database.bootstrap")
    assert out.returncode == 0, out.stderr[-2000:]
    total, success, _, _ = results_total(out.stdout + out.stderr)
    assert success == "1"
    with dev.connect("app") as conn:
        limit = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'onesift_app'").fetchone()[0]
    assert limit == 200


def test_failing_sql_stops_and_rolls_back(dev):
    """SQL sent through our path (upload, psql ON_ERROR_STOP, one transaction) stops at the error and keeps nothing."""
    from onesift.session import OpsError, HostSession

    t = HostSession(dev.inventory)
    try:
        with pytest.raises(OpsError, match="division by zero"):
            t.run_sql("CREATE TABLE public.half_done (id int);\nSELECT 1/0;\nCREATE TABLE public.after (id int);\n")
    finally:
        t.close()
    with dev.connect("owner") as conn:
        assert conn.execute("SELECT to_regclass('public.half_done'), to_regclass('public.after')").fetchone() == (None, None)


# The no-change redeploy's time against pyinfra's floor is a benchmark target
# (bench/run.py, on the SSH bench host), not a test: it failed here on a busy
# machine while the bench met it.


def test_no_change_redeploy_reads_each_pg_fact_once(ssh):
    out = run([sys.executable, "-m", "pyinfra", "-y", "--debug", ssh.inventory, "deploy.py"])
    assert out.returncode == 0, out.stderr[-2000:]
    reads = re.findall(r"Getting fact: deploy\.facts\.postgres\.(\w+)", out.stdout + out.stderr)
    assert sorted(reads) == ["PgCluster", "PgClusters", "PgConfigFiles", "PgDatabaseOwners", "PgDeployState",
                             "PgExtensions", "PgLeakproof", "PgLockTable", "PgParameterSetters", "PgRoleAttributes"]


def test_a_cluster_of_another_version_stops_the_deploy(dev):
    """As after a Debian 12 -> 13 upgrade of the host: its 15/main is still there, and the
    deploy would install 17 beside it, empty. It stops before any change (issue 11)."""
    h = dev.testinfra()
    old = "/etc/postgresql/15/main"
    h.run_expect([0], f"mkdir -p {old} /var/lib/postgresql/15/main && printf '%s\\n' "
                      f"\"data_directory = '/var/lib/postgresql/15/main'\" 'port = 5499' > {old}/postgresql.conf")
    try:
        assert "15 main 5499 down" in h.check_output("pg_lsclusters --no-header 2>/dev/null || true")
        conf = h.file(f"{dev.conf_dir}/postgresql.conf").mtime
        out = dev.pyinfra("deploy.py", True)
        assert out.returncode != 0
        text = out.stdout + out.stderr
        # down,binaries_missing: as after an upgrade that removed postgresql-15
        assert "has PostgreSQL cluster 15/main (down,binaries_missing), and this deploy installs PostgreSQL 17" in text, \
            text[-2000:]
        assert "pg_upgradecluster 15 main" in text
        assert h.file(f"{dev.conf_dir}/postgresql.conf").mtime == conf
    finally:
        h.run_expect([0], "rm -rf /etc/postgresql/15 /var/lib/postgresql/15")

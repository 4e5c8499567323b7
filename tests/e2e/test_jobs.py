"""Scheduled jobs, backups, restore drill and the audit check, on the dev host."""

import re
import time

import pytest

from onesift.steps import tenant_version

CLEANUP = "/usr/local/sbin/onesift-cleanup >> /var/log/onesift/cleanup.log 2>&1"
BACKUP = "/usr/local/sbin/onesift-backup all >> /var/log/onesift/backup.log 2>&1"


@pytest.fixture
def tenant(dev, slug):
    out = dev.ops("tenant", "create", slug, "--name", "Jobs", "--mode", "api")
    assert out.returncode == 0, out.stderr
    yield slug
    dev.ops("tenant", "drop", slug, "--yes")


def add_lead_with_messages(dev, slug, ages_days):
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        lead = conn.execute("INSERT INTO leads (email) VALUES (gen_random_uuid() || '@example.com') RETURNING id").fetchone()[0]
        conv = conn.execute("INSERT INTO conversations (lead_id) VALUES (%s) RETURNING id", [lead]).fetchone()[0]
        for age in ages_days:
            conn.execute(
                "INSERT INTO messages (conversation_id, sender, body, created_at) "
                "VALUES (%s, 'customer', 'hi', now() - make_interval(days => %s))", [conv, age])


def message_ages(dev, slug):
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        return sorted(r[0] for r in conn.execute("SELECT extract(day FROM now() - created_at)::int FROM messages"))


def test_jobs_are_scheduled_and_cron_runs(dev):
    h = dev.testinfra()
    cron = h.file("/etc/cron.d/onesift")
    assert cron.mode == 0o644 and cron.contains("onesift-backup all") and cron.contains("onesift-cleanup")
    assert h.run("pgrep -x cron").rc == 0


def test_cleanup_job_deletes_only_old_data(dev, tenant):
    add_lead_with_messages(dev, tenant, [1, 29, 31, 400])  # dev retention: 30 days
    h = dev.testinfra()
    assert h.run(CLEANUP).rc == 0
    assert message_ages(dev, tenant) == [1, 29]
    log = h.file("/var/log/onesift/cleanup.log").content_string
    assert f"ok {tenant} messages=2" in log and "ok done, retention 30 days" in log


def test_cleanup_job_failure_is_logged_and_non_zero(dev):
    h = dev.testinfra()
    sql = "runuser -u postgres -- psql -Xq -d onesift -c 'ALTER FUNCTION system.{} RENAME TO {}'"
    h.run_expect([0], sql.format("cleanup_old_data(integer)", "cleanup_old_data_moved"))
    try:
        assert h.run(CLEANUP).rc != 0
        assert "FAILED" in h.file("/var/log/onesift/cleanup.log").content_string.splitlines()[-1]
    finally:
        h.run_expect([0], sql.format("cleanup_old_data_moved(integer)", "cleanup_old_data"))


def test_backup_job_dumps_the_database_and_prunes(dev, tenant):
    h = dev.testinfra()
    old = "/var/backups/onesift/20200101T000000Z"
    h.run_expect([0], f"mkdir -p {old} && touch {old}/COMPLETE && touch -d '30 days ago' {old}")
    assert h.run(BACKUP).rc == 0
    latest = h.file("/var/backups/onesift/latest").linked_to
    for name in ("onesift.dump", "COMPLETE"):
        assert h.file(f"{latest}/{name}").exists, name
    # One dump a night whatever the tenant count; every tenant restorable from it.
    assert h.run(f"ls {latest}/tenant-*.dump").rc != 0
    restorable = h.check_output("/usr/local/sbin/onesift-backup tenants-in $(basename %s)", latest).split()
    assert {tenant, "abc-honda", "demo-dealership"} <= set(restorable)
    assert not h.file(old).exists
    assert "ok finished" in h.file("/var/log/onesift/backup.log").content_string.splitlines()[-1]


def test_backup_job_with_tenant_dumps(dev, tenant):
    h = dev.testinfra()
    assert h.run("TENANT_DUMPS=yes " + BACKUP).rc == 0
    latest = h.file("/var/backups/onesift/latest").linked_to
    for name in ("onesift.dump", f"tenant-{tenant}.dump", "tenant-abc-honda.dump", "COMPLETE"):
        assert h.file(f"{latest}/{name}").exists, name


def test_backup_step_failure_is_non_zero(dev):
    h = dev.testinfra()
    out = h.run("/usr/local/sbin/onesift-backup tenant 20990101T000000Z abc-honda")
    assert out.rc == 1 and "FAILED" in out.stderr


LATEST = "/var/backups/onesift/latest"
BACKUP_LOG = "/var/log/onesift/backup.log"


def test_failed_nightly_run_is_one_line_and_keeps_latest(dev, tenant):
    """A dump that fails (here: a table it cannot lock in time) exits 1, logs one
    short line without pg_dump's query, and leaves `latest` on the last good run."""
    h = dev.testinfra()
    assert h.run(BACKUP).rc == 0
    good = h.file(LATEST).linked_to
    logged = len(h.file(BACKUP_LOG).content_string.splitlines())
    time.sleep(1)  # a run a second: the failing one gets a directory of its own
    with dev.connect("owner") as conn:
        conn.execute(f'LOCK TABLE "tenant_{tenant}".leads IN ACCESS EXCLUSIVE MODE')
        out = h.run("LOCK_WAIT_TIMEOUT=1s timeout 60 " + BACKUP)
    new = h.file(BACKUP_LOG).content_string.splitlines()[logged:]
    assert out.rc == 1
    assert len(new) == 1 and "FAILED" in new[0] and "timeout" in new[0], new
    assert len(new[0]) < 400 and not re.search(r"Query was|LOCK TABLE|SELECT", new[0]), new[0]
    assert h.file(LATEST).linked_to == good


def test_backup_status_exits_1_when_the_last_good_run_is_too_old(dev):
    assert dev.ops("backup", "run").returncode == 0
    out = dev.ops("backup", "status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"last good backup run \d{8}T\d{6}Z: 0\.\d h old \(limit 26 h\)", out.stdout), out.stdout
    h = dev.testinfra()
    h.run_expect([0], f"touch -d '27 hours ago' $(readlink -f {LATEST})/COMPLETE")
    out = dev.ops("backup", "status")
    assert out.returncode == 1
    assert re.search(r"error: last good backup run \S+ is 27\.0 h old, past backup_max_age_hours \(26\)", out.stderr), out.stderr


def test_ops_backup_run_list_and_verify(dev):
    out = dev.ops("backup", "run")
    assert out.returncode == 0, out.stderr
    assert "complete" in dev.ops("backup", "list").stdout
    out = dev.ops("backup", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restore drill passed" in out.stdout
    with dev.connect("owner") as conn:
        scratch = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'onesift_verify_%'").fetchone()[0]
    assert scratch == 0


def lead_count(dev, slug):
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        return conn.execute("SELECT count(*) FROM leads").fetchone()[0]


@pytest.mark.parametrize("dumps", ["--no-tenant-dumps", "--tenant-dumps"])
def test_restore_one_tenant(dev, tenant, dumps):
    """From the whole dump (default) or the tenant's own: data back, objects made since gone, other tenants untouched."""
    add_lead_with_messages(dev, tenant, [1])
    assert dev.ops("backup", "run", dumps).returncode == 0
    seed_leads = lead_count(dev, "abc-honda")
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [tenant])
        conn.execute("DELETE FROM leads")
    with dev.connect("owner") as conn:
        conn.execute(f'CREATE TABLE "tenant_{tenant}".made_later (id int)')
        # As if a tenant migration ran after the backup: the restore takes the
        # schema back to the backup's version, and the version with it (issue 8.13).
        conn.execute("UPDATE system.customers SET schema_version = schema_version + 1 WHERE slug = %s", [tenant])
        conn.commit()
    out = dev.ops("backup", "restore", "--tenant", tenant)
    assert out.returncode == 2 and "--yes" in out.stderr
    out = dev.ops("backup", "restore", "--tenant", tenant, "--yes")
    assert out.returncode == 0, out.stderr
    assert message_ages(dev, tenant) == [1]
    assert lead_count(dev, "abc-honda") == seed_leads
    with dev.connect("owner") as conn:
        assert conn.execute(f"SELECT to_regclass('\"tenant_{tenant}\".made_later')").fetchone()[0] is None
        assert conn.execute("SELECT schema_version FROM system.customers WHERE slug = %s",
                            [tenant]).fetchone()[0] == tenant_version()
    assert dev.ops("audit", "check").returncode == 0  # grants, RLS and policies came back too


def test_restore_of_a_tenant_not_in_the_run_is_refused(dev, slug):
    assert dev.ops("backup", "run").returncode == 0
    out = dev.ops("backup", "restore", "--tenant", slug, "--yes")
    assert out.returncode == 2 and "no tenant" in out.stderr
    h = dev.testinfra()
    out = h.run(f"/usr/local/sbin/onesift-backup restore $(readlink /var/backups/onesift/latest) {slug}")
    assert out.rc == 1 and f"has no tenant {slug}" in out.stderr


def test_failed_restore_changes_nothing(dev, tenant):
    add_lead_with_messages(dev, tenant, [1, 2])
    assert dev.ops("backup", "run", "--tenant-dumps").returncode == 0
    add_lead_with_messages(dev, tenant, [3])
    h = dev.testinfra()
    dump = f"$(readlink -f /var/backups/onesift/latest)/tenant-{tenant}.dump"
    h.run_expect([0], f"truncate -s $(( $(stat -c %s {dump}) - 200 )) {dump}")
    out = dev.ops("backup", "restore", "--tenant", tenant, "--yes")
    assert out.returncode == 1 and "FAILED" in out.stderr
    assert message_ages(dev, tenant) == [1, 2, 3]
    assert h.run("ls /tmp/tmp.* 2>/dev/null").stdout == ""


def test_audit_check_clean_then_finds_drift(dev, tenant):
    out = dev.ops("audit", "check")
    assert out.returncode == 0, out.stderr
    with dev.connect("owner") as conn:
        conn.execute("GRANT DELETE ON system.customers TO onesift_app")
        conn.execute(f'ALTER TABLE "tenant_{tenant}".leads NO FORCE ROW LEVEL SECURITY')
        conn.execute(f'DROP POLICY tenant_isolation ON "tenant_{tenant}".messages')
        conn.commit()
    try:
        out = dev.ops("audit", "check")
        assert out.returncode == 2
        assert "extra privilege: onesift_app DELETE on table system.customers" in out.stderr
        assert f"row level security not forced: tenant_{tenant}.leads" in out.stderr
        assert f"missing policy: tenant_isolation on tenant_{tenant}.messages" in out.stderr
    finally:
        with dev.connect("owner") as conn:
            conn.execute("REVOKE DELETE ON system.customers FROM onesift_app")
            conn.commit()
    # tenant fixture drops the drifted tenant


def test_audit_grants_report(dev):
    md = dev.ops("audit", "grants").stdout
    assert "| onesift_app | system | function | validate_api_key(text) | EXECUTE |" in md
    assert "tenant_isolation" in md
    csv = dev.ops("audit", "grants", "--format", "csv").stdout.splitlines()
    assert csv[0] == "role,schema,object_class,object,privilege"
    assert "onesift_app,tenant_*,table,leads,DELETE" in csv

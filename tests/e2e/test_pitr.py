"""
Point-in-time recovery with pgBackRest on the session's real hosts (issue 12):
the dev host (Docker API) with a plain repository, the SSH host with an
encrypted one. Each restore goes into the scratch instance; the live
cluster is stopped only by the kill -9 test and the in-place restore, last.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime

import pytest

from tests.e2e.conftest import assert_deploy_changes_nothing, pyinfra

SCRATCH = "/var/lib/postgresql/onesift-scratch"
PITR = "/usr/local/sbin/onesift-pitr"
JOB_LOG = "/var/log/onesift/pgbackrest.log"


def scratch_sql(host, sql: str) -> list[str]:
    """Rows of ``sql`` in the scratch instance (as postgres, over its own socket)."""
    out = host.testinfra().run(f"runuser -u postgres -- psql -X -At -h {SCRATCH} -p 5499 -d onesift -c \"{sql}\"")
    assert out.rc == 0, out.stderr
    return out.stdout.split()


def tenant_emails(host, slug: str) -> list[str]:
    with host.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        return sorted(r[0] for r in conn.execute("SELECT email FROM leads"))


def add_leads(host, slug: str, *emails: str):
    """Insert leads in one transaction; the server's time at its commit."""
    with host.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        for e in emails:
            conn.execute("INSERT INTO leads (email) VALUES (%s)", [e])
    with host.connect("owner") as conn:
        return conn.execute("SELECT clock_timestamp()").fetchone()[0]


@pytest.fixture
def tenants(dev):
    made = ["p" + uuid.uuid4().hex[:9] for _ in range(2)]
    for s in made:
        out = dev.ops("tenant", "create", s, "--name", "PITR", "--mode", "api")
        assert out.returncode == 0, out.stderr
    yield made
    for s in made:
        dev.ops("tenant", "drop", s, "--yes")


def test_deploy_archives_wal_and_has_a_stanza_and_a_full_backup(dev):
    h = dev.testinfra()
    conf = h.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.user == "postgres" and conf.mode == 0o640 and conf.contains("^repo1-path=/var/lib/pgbackrest")
    with dev.connect("owner") as conn:
        settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                     "('archive_mode', 'archive_command', 'archive_timeout', 'wal_level')").fetchall())
    assert settings == {"archive_mode": "on", "archive_timeout": "60", "wal_level": "replica",
                        "archive_command": "pgbackrest --stanza=onesift archive-push %p"}
    info = json.loads(h.check_output("runuser -u postgres -- pgbackrest --stanza=onesift --output=json info"))[0]
    assert info["status"]["code"] == 0 and any(b["type"] == "full" for b in info["backup"])
    cron = h.file("/etc/cron.d/onesift").content_string
    for job in ("onesift-pitr backup full", "onesift-pitr backup diff", "onesift-pitr drill", "onesift-pitr mark"):
        assert job in cron, job
    out = dev.ops("backup", "status", "--json")
    assert out.returncode in (0, 1), out.stderr
    status = json.loads(out.stdout)["pgbackrest"]
    assert status["last_full"] and status["check"] == "ok" and not status["archiver"]["failing"], status


def test_pitr_to_a_moment_gives_exactly_the_rows_before_it(dev, tenants):
    a = tenants[0]
    t = add_leads(dev, a, "before-1@x.io", "before-2@x.io")
    time.sleep(0.5)
    add_leads(dev, a, "after@x.io")
    out = dev.ops("backup", "pitr", "--to", t.isoformat(), "--keep")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"restored scratch to .* in [\d.]+ s", out.stdout), out.stdout
    try:
        assert scratch_sql(dev, f'SELECT email FROM "tenant_{a}".leads ORDER BY email') == ["before-1@x.io", "before-2@x.io"]
        assert scratch_sql(dev, "SHOW archive_mode") == ["off"] and scratch_sql(dev, "SHOW port") == ["5499"]
    finally:
        dev.testinfra().run_expect([0], f"{PITR} stop")
    assert tenant_emails(dev, a) == ["after@x.io", "before-1@x.io", "before-2@x.io"]  # the live cluster untouched


def test_tenant_back_to_a_moment_while_other_tenants_keep_later_writes(dev, tenants):
    a, b = tenants
    add_leads(dev, a, "a1@x.io", "a2@x.io")
    t = add_leads(dev, b, "b1@x.io")
    time.sleep(0.5)
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [a])
        conn.execute("DELETE FROM leads")
    add_leads(dev, b, "b2@x.io")
    out = dev.ops("backup", "restore", "--tenant", a, "--to", t.isoformat())
    assert out.returncode == 2 and "--yes" in out.stderr  # the reset rules
    out = dev.ops("backup", "restore", "--tenant", a, "--to", t.isoformat(), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert tenant_emails(dev, a) == ["a1@x.io", "a2@x.io"]
    assert tenant_emails(dev, b) == ["b1@x.io", "b2@x.io"]
    with dev.connect("owner") as conn:
        entry = conn.execute("SELECT details FROM audit.log WHERE slug = %s AND action = 'tenant.restored' "
                             "ORDER BY id DESC LIMIT 1", [a]).fetchone()
    assert entry and entry[0]["pitr"].startswith("pitr time "), entry
    assert not dev.testinfra().file(SCRATCH).exists  # dropped without --keep


def test_drill_restores_a_random_moment_and_logs_rto_and_rpo(dev):
    out = dev.ops("backup", "drill")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"ok drill target=\S+ \S+ rto=[\d.]+s rpo=\S+ markers,audit=\d+,\d+", out.stdout), out.stdout
    last = dev.testinfra().file("/var/log/onesift/pitr.log").content_string.splitlines()[-1]
    assert "ok drill" in last


def test_corrupted_repository_file_fails_verify_and_status(dev):
    h = dev.testinfra()
    label = json.loads(h.check_output("runuser -u postgres -- pgbackrest --stanza=onesift --output=json info"))[0]["backup"][-1]["label"]
    victim = f"/var/lib/pgbackrest/backup/onesift/{label}/pg_data/PG_VERSION.zst"
    h.run_expect([0], f"cp -p {victim} /tmp/pitr-victim && printf garbage > {victim}")
    try:
        out = h.run(f"{PITR} verify >> {JOB_LOG} 2>&1")
        assert out.rc == 1
        assert "checksum invalid" in h.file(JOB_LOG).content_string.splitlines()[-1]
        out = dev.ops("backup", "status")
        assert out.returncode == 1 and "last backup job failed" in out.stderr and "verify" in out.stderr, out.stderr
    finally:
        h.run_expect([0], f"cp -p /tmp/pitr-victim {victim} && {PITR} verify >> {JOB_LOG} 2>&1")


def archiver(host) -> dict:
    with host.connect("owner") as conn:
        row = conn.execute("SELECT failed_count, last_failed_time, last_archived_time FROM pg_stat_archiver").fetchone()
    return {"failed": row[0], "last_failed": row[1], "last_archived": row[2]}


def switch_wal(host):
    h = host.testinfra()
    h.run_expect([0], f"{PITR} mark && runuser -u postgres -- psql -X -At -c 'SELECT pg_switch_wal()'")


def test_archiving_that_fails_shows_in_status(dev):
    h = dev.testinfra()
    before = archiver(dev)["failed"]
    h.run_expect([0], "chmod -R a-w /var/lib/pgbackrest/archive")
    try:
        switch_wal(dev)
        deadline = time.monotonic() + 40
        while archiver(dev)["failed"] == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert archiver(dev)["failed"] > before
        out = dev.ops("backup", "status")
        assert out.returncode == 1 and "WAL archiving fails" in out.stderr, out.stdout + out.stderr
    finally:
        h.run_expect([0], "chmod -R u+w /var/lib/pgbackrest/archive")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        a = archiver(dev)
        if a["last_archived"] and a["last_archived"] > a["last_failed"]:
            break
        switch_wal(dev)
        time.sleep(1)
    assert not dev.ops("backup", "status", "--json").stdout.count('"failing": true')


def test_row_committed_before_kill_9_survives_a_restore_to_latest(dev, capsys):
    h = dev.testinfra()
    with dev.connect("owner") as conn:  # a canary row: its table is in every backup
        committed = conn.execute("INSERT INTO system.pitr_marker DEFAULT VALUES RETURNING at").fetchone()[0]
    h.run_expect([0], f"kill -9 $(head -n 1 /var/lib/postgresql/{dev.pg_version}/main/postmaster.pid)")
    killed = time.time()
    row = f"SELECT count(*) FROM system.pitr_marker WHERE at = '{committed.isoformat()}'"
    # The host lost at this moment: what the repository holds without the live cluster.
    deadline = time.monotonic() + 20
    while h.run("runuser -u postgres -- psql -X -At -c 'SELECT 1'").rc == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    lost = dev.ops("backup", "pitr", "--to", "latest", "--keep")
    assert lost.returncode == 0, lost.stdout + lost.stderr
    in_repo = scratch_sql(dev, row)
    reached = re.search(r"last transaction (\S+ \S+),", lost.stdout)
    reached = datetime.fromisoformat(reached.group(1)).timestamp() if reached else float("nan")
    h.run_expect([0], f"{PITR} stop")
    # The postmaster back (crash recovery), then a restore to latest.
    h.run_expect([0], f"pg_ctlcluster {dev.pg_version} main start")
    out = dev.ops("backup", "pitr", "--to", "latest", "--keep")
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        assert scratch_sql(dev, row) == ["1"]
    finally:
        h.run_expect([0], f"{PITR} stop")
    with capsys.disabled():
        print(f"\nRPO, postmaster killed and restarted: 0 s (the row restored). Host lost at the kill: the "
              f"repository's newest transaction was {killed - reached:.1f} s older than the kill "
              f"(archive_timeout 60 s), and the row, committed {killed - committed.timestamp():.2f} s before "
              f"the kill, {'was' if in_repo == ['1'] else 'was not'} in it")


def test_encrypted_repository_and_a_wrong_passphrase(ssh, monkeypatch):
    h = ssh.testinfra()
    info = json.loads(h.check_output("runuser -u postgres -- pgbackrest --stanza=onesift --output=json info"))[0]
    assert info["cipher"] == "aes-256-cbc" and info["status"]["code"] == 0
    cipher = h.file("/etc/pgbackrest/conf.d/cipher.conf")
    assert cipher.user == "postgres" and cipher.mode == 0o600
    assert "cipher-pass" not in h.file("/etc/pgbackrest/pgbackrest.conf").content_string
    good = cipher.sha256sum
    assert_deploy_changes_nothing(ssh)
    # A wrong passphrase from the secrets: the deploy refuses in one line, before anything changes.
    monkeypatch.setenv("ONESIFT_PGBACKREST_REPO1_CIPHER_PASS", "not-the-passphrase-0123456789")
    out = ssh.pyinfra("deploy.py")
    monkeypatch.delenv("ONESIFT_PGBACKREST_REPO1_CIPHER_PASS")
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "does not open with ONESIFT_PGBACKREST_REPO1_CIPHER_PASS" in text, text[-2000:]
    assert "not-the-passphrase" not in text
    assert h.file("/etc/pgbackrest/conf.d/cipher.conf").sha256sum == good
    # A wrong passphrase on the host: ops backup status says what pgBackRest says, exit 1.
    h.run_expect([0], "cp -p /etc/pgbackrest/conf.d/cipher.conf /tmp/cipher.keep && "
                      "sed -i 's/=.*/=wrong-passphrase/' /etc/pgbackrest/conf.d/cipher.conf")
    try:
        out = ssh.ops("backup", "status")
        assert out.returncode == 1 and "pgbackrest info" in out.stderr, out.stdout + out.stderr
        assert "wrong-passphrase" not in out.stdout + out.stderr
    finally:
        h.run_expect([0], "cp -p /tmp/cipher.keep /etc/pgbackrest/conf.d/cipher.conf")
    out = ssh.ops("backup", "pitr", "--to", "latest")
    assert out.returncode == 0, out.stdout + out.stderr


def test_in_place_restore_to_latest_keeps_the_data(dev, tenants):
    a = tenants[0]
    add_leads(dev, a, "kept@x.io")
    out = dev.ops("backup", "pitr", "--to", "latest", "--in-place")
    assert out.returncode == 2 and "--yes" in out.stderr
    out = dev.ops("backup", "pitr", "--to", "latest", "--in-place", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restored the live cluster" in out.stdout
    assert tenant_emails(dev, a) == ["kept@x.io"]
    with dev.connect("owner") as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False

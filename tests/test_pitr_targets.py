"""Point-in-time recovery without a host: recovery targets, the pgBackRest settings, the passphrase,
and refusals that come before anything is touched (issue 12)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from onesift import secrets
from onesift.pitr import Target, key_values, parse_target
from onesift.render import render_template
from onesift.settings import BadInput, Settings
from tests.test_cli_input import assert_refused, ops

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, want", [
    ("latest", Target("latest")),
    (" LATEST ", Target("latest")),
    ("0/3000060", Target("lsn", "0/3000060")),
    ("1a/ff00aa", Target("lsn", "1A/FF00AA")),
    ("2026-12-04T02:10:00Z", Target("time", "2026-12-04 02:10:00.000000+00")),
    ("2026-12-04 03:10:00.25+01:00", Target("time", "2026-12-04 02:10:00.250000+00")),
    ("2026-12-03T21:10:00-05:00", Target("time", "2026-12-04 02:10:00.000000+00")),
])
def test_targets_become_what_pgbackrest_takes(text, want):
    assert parse_target(text, NOW) == want


@pytest.mark.parametrize("text, why", [
    ("2026-12-04T02:10:00", "no time zone"),
    ("yesterday", "not a recovery target"),
    ("", "not a recovery target"),
    ("0/3000060; rm -rf /", "not a recovery target"),
    ("2026-12-04T02:10:00Z --delta", "not a recovery target"),
    ("'2026-12-04'", "not a recovery target"),
    ("2027-01-01T00:00:00Z", "in the future"),
    ("0/", "not a recovery target"),
])
def test_bad_targets_refused(text, why):
    with pytest.raises(BadInput, match=why):
        parse_target(text, NOW)


def test_target_arguments_are_quoted_for_the_host_shell():
    assert Target("time", "2026-12-04 02:10:00.000000+00").args() == "time '2026-12-04 02:10:00.000000+00'"
    assert Target("latest").args() == "latest"


def test_job_lines_parsed():
    assert key_values(["reached=2026-12-04 02:47:49+00", "marker=", "seconds=1.8", "noise"]) == {
        "reached": "2026-12-04 02:47:49+00", "marker": "", "seconds": "1.8"}


@pytest.mark.parametrize("data, key", [
    ({"pgbackrest_repo1_path": "relative/path"}, "pgbackrest_repo1_path"),
    ({"pgbackrest_repo1_path": "/var/lib/x; rm -rf /"}, "pgbackrest_repo1_path"),
    ({"pgbackrest_stanza": "on esift"}, "pgbackrest_stanza"),
    ({"pgbackrest_repo1_cipher_type": "rot13"}, "pgbackrest_repo1_cipher_type"),
    ({"pgbackrest_compress_type": "xz"}, "pgbackrest_compress_type"),
    ({"pitr_scratch_port": 5432}, "pitr_scratch_port"),
    ({"archive_timeout": "soon"}, "archive_timeout"),
    ({"pitr_scratch_path": "/var/lib/postgresql/17/main"}, "pitr_scratch_path"),
    ({"pitr_scratch_path": "/var/lib/postgresql"}, "pitr_scratch_path"),
    ({"pitr_scratch_path": "/var/lib"}, "pitr_scratch_path"),
    ({"pitr_scratch_path": "/var/lib/pgbackrest/scratch"}, "pitr_scratch_path"),
    ({"pitr_scratch_path": "/srv/pitr", "pgbackrest_repo1_path": "/srv/pitr/repo"}, "pitr_scratch_path"),
])
def test_bad_pgbackrest_settings_refused(data, key):
    with pytest.raises(BadInput, match=key):
        Settings.from_data(data)


def conf(**data) -> str:
    c = Settings.from_data(data).pgbackrest
    return render_template(
        "config/pgbackrest.conf.j2", stanza=c.stanza, repo1_path=c.repo1_path, repo1_host=c.repo1_host,
        repo1_host_user=c.repo1_host_user, repo1_retention_full=c.repo1_retention_full,
        repo1_cipher_type=c.repo1_cipher_type, compress_type=c.compress_type, process_max=c.process_max,
        archive_timeout=c.archive_timeout, archive_async=c.archive_async, spool_path=c.spool_path,
        data_directory="/var/lib/postgresql/17/main", pg_port=5432, cluster_member=False)


def test_pgbackrest_conf_names_pgbackrests_own_options():
    text = conf()
    for line in ("repo1-path=/var/lib/pgbackrest", "repo1-retention-full=2", "archive-async=y",
                 "spool-path=/var/spool/pgbackrest", "process-max=2", "start-fast=y", "compress-type=zst",
                 "[onesift]", "pg1-path=/var/lib/postgresql/17/main"):
        assert line in text.splitlines(), line
    assert "repo1-cipher-type" not in text
    assert "repo1-host" not in text


def test_pgbackrest_conf_with_encryption_and_a_repo_host_holds_no_passphrase():
    text = conf(pgbackrest_repo1_cipher_type="aes-256-cbc", pgbackrest_repo1_host="backup1.internal")
    assert "repo1-cipher-type=aes-256-cbc" in text.splitlines()
    assert "repo1-host=backup1.internal" in text.splitlines() and "repo1-host-user=pgbackrest" in text.splitlines()
    assert "repo1-cipher-pass" not in text


def test_missing_passphrase_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESIFT_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv(secrets.CIPHER_PASS, raising=False)
    with pytest.raises(BadInput, match=f"missing secret {secrets.CIPHER_PASS}"):
        secrets.cipher_pass("prod")
    made = secrets.cipher_pass("dev", generate=True)
    assert len(made) >= 48 and secrets.cipher_pass("dev") == made
    assert oct((tmp_path / "dev.env").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("args, words", [
    (["backup", "pitr", "--to", "2026-12-04 02:10:00"], ["no time zone"]),
    (["backup", "pitr", "--to", "nonsense"], ["not a recovery target"]),
    (["backup", "pitr", "--to", "latest", "--in-place", "--keep"], ["--keep"]),
    (["backup", "restore", "--tenant", "abc", "--to", "2026-12-04T02:10:00Z", "--run", "20261204T000000Z", "--yes"],
     ["not both"]),
    (["backup", "restore", "--tenant", "ABC", "--to", "latest", "--yes"], ["invalid tenant slug"]),
])
def test_bad_pitr_input_refused_before_any_host(args, words):
    # -i names a container that does not exist: a refusal before the session proves nothing was reached.
    assert_refused(ops(*args, "-i", "inventories/no-such-inventory.py"), *words)


def test_in_place_restore_follows_the_production_rules():
    out = ops("backup", "pitr", "--to", "latest", "--in-place", "-i", "inventories/prod.py")
    assert_refused(out, "--yes")
    out = ops("backup", "pitr", "--to", "latest", "--in-place", "--yes", "-i", "inventories/prod.py")
    assert_refused(out, "production", "--allow-production")

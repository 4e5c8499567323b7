"""The core package without a host: settings and their defaults, inventories read
without pyinfra, step lookup, the secrets file, and what `ops` imports to start."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from onesift import defaults, secrets
from onesift.inventory import host_entries, host_data, offline_settings
from onesift.render import ROOT
from onesift.settings import DEFAULTS, BadInput, PgBackRest, Settings
from onesift.steps import TENANT_STEPS, migrations, step_sql

INVENTORIES = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("inventories/*.py"), ROOT / "bench/inventory.py"])
# Keys Settings reads under another name, or leaves to deploy/tls.py (which checks the files).
ELSEWHERE = {"db_roles": "roles", "pg_ssl_cert_file": None, "pg_ssl_key_file": None, "pg_ssl_ca_file": None}


# Keys Settings.pgbackrest reads (PgBackRest's fields, pgBackRest's option names under a prefix).
PGBACKREST_KEYS = {"archive_timeout": "pg_archive_timeout", "pitr_drill_schedule": "drill_schedule",
                   "pitr_scratch_port": "scratch_port", "pitr_scratch_path": "scratch_path"}


def test_every_inventory_key_has_one_default_and_a_setting():
    fields = {f.name for f in dataclasses.fields(Settings)} - {"pgbackrest"}
    nested = {f.name for f in dataclasses.fields(PgBackRest)}
    for key, field in PGBACKREST_KEYS.items():
        assert field in nested and key in DEFAULTS, key
    for key in [k for k in DEFAULTS if k.startswith("pgbackrest_")]:
        assert key.removeprefix("pgbackrest_") in nested, f"{key} in onesift/defaults.py is read by nothing"
    assert nested == {k.removeprefix("pgbackrest_") for k in DEFAULTS if k.startswith("pgbackrest_")} | set(PGBACKREST_KEYS.values())
    for key in [k for k in DEFAULTS if not k.startswith("pgbackrest_") and k not in PGBACKREST_KEYS]:
        assert ELSEWHERE.get(key, key) in fields | {None}, f"{key} in onesift/defaults.py is read by nothing"
    assert fields <= set(DEFAULTS) | {"roles"}, "a setting without a default in onesift/defaults.py"
    assert Settings.from_data({}) == Settings()


def test_an_inventory_outside_inventories_gets_the_same_defaults(tmp_path):
    (tmp_path / "elsewhere.py").write_text('hosts = [("db1.example", {"max_tenants": 5})]\n')
    assert offline_settings(str(tmp_path / "elsewhere.py")) == dataclasses.replace(Settings(), max_tenants=5)


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_offline_settings_match_pyinfra(inventory):
    """The reader `ops sql render` and `ops audit grants` use gives what pyinfra's own loading gives."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):
        hosts = list(make_inventory(str(ROOT / inventory), cwd=str(ROOT)))
    entries = host_entries(inventory)  # a cluster inventory has several, each with its own data
    assert [name for name, _ in entries] == [h.name for h in hosts]
    for (name, data), host in zip(entries, hosts):
        assert Settings.from_data(data) == Settings.from_data(host.data)
        assert data == {k: host.data.get(k) for k in data}
    if len(hosts) == 1:
        assert offline_settings(inventory) == Settings.from_data(hosts[0].data)


def test_offline_settings_follow_pyinfra_group_rules(tmp_path, monkeypatch):
    """Inline group data, a group named after the file, group_data beside the inventory: as pyinfra reads them."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text("max_tenants = 7\nretention_days = 5\n")
    (tmp_path / "group_data" / "db2.py").write_text("retention_days = 6\nbackup_keep_days = 3\n")
    (tmp_path / "group_data" / "primary.py").write_text("backup_keep_days = 4\n")
    (tmp_path / "db2.py").write_text('primary = (["h1"], {"pg_port": 6000, "backup_keep_days": 9})\n'
                                     'other = [("h1", {"db_name": "x"})]\n')
    monkeypatch.chdir(tmp_path)
    with ctx_state.use(State()):
        [host] = list(make_inventory(str(tmp_path / "db2.py"), cwd=str(tmp_path)))
    ours = offline_settings(str(tmp_path / "db2.py"))
    assert ours == Settings.from_data(host.data)
    assert (ours.max_tenants, ours.retention_days, ours.pg_port, ours.db_name) == (7, 6, 6000, "x")


def test_offline_inventory_refusals(tmp_path):
    (tmp_path / "two.py").write_text('hosts = ["a", "b"]\n')
    with pytest.raises(BadInput, match="has 2 hosts"):
        host_data(str(tmp_path / "two.py"))
    (tmp_path / "bad.py").write_text("hosts = [\n")
    with pytest.raises(BadInput, match="Python syntax error"):
        host_data(str(tmp_path / "bad.py"))
    with pytest.raises(BadInput, match="no inventory file"):
        host_data(str(tmp_path / "none.py"))


def test_every_step_is_found_by_its_name():
    s = Settings()
    for m in migrations(s):
        assert step_sql(s, m.name.split(":", 1)[1]) == m.sql
    assert "CREATE OR REPLACE FUNCTION" in step_sql(s, "functions")
    for step in TENANT_STEPS:
        assert "ab-c" in step_sql(s, step, "ab-c")
        with pytest.raises(BadInput, match="needs --slug"):
            step_sql(s, step)
    with pytest.raises(BadInput, match=r"unknown step 'nope'; steps: .*grants.*tenant-create"):
        step_sql(s, "nope")


def test_secrets_file_is_read_as_a_shell_would(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESIFT_SECRETS_DIR", str(tmp_path))
    for key in secrets.ROLE_KEYS:
        monkeypatch.delenv(secrets.env_var(key), raising=False)
    (tmp_path / "t.env").write_text('# made by hand\nexport ONESIFT_OWNER_PASSWORD="a b#c"\n'
                                    "ONESIFT_APP_PASSWORD='x=y'\nONESIFT_AUDITOR_PASSWORD=z\n")
    assert secrets.load("t") == {"owner": "a b#c", "app": "x=y", "auditor": "z"}


@pytest.mark.parametrize("args", [["--help"], ["sql", "render", "grants"], ["audit", "grants"]])
def test_commands_that_reach_no_host_import_no_connector(args):
    """pyinfra (its connectors and paramiko) and the docker SDK cost ~0.9 s to import (issue 10)."""
    probe = ("import sys\nfrom ops_cli.main import app\n"
             f"try:\n    app({args!r})\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyinfra', 'pyinfra_cli', 'paramiko', 'docker')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- how a session reaches its host (onesift/transport.py) ----------------------------------

@pytest.mark.parametrize("name, data, transport", [
    ("db1.example", {"ssh_user": "deploy", "_sudo": True, "pg_port": 5433}, "openssh"),
    ("127.0.0.1", {"ssh_port": 22022, "ssh_key": "~/k", "ssh_known_hosts_file": "/kh",
                   "ssh_strict_host_key_checking": "accept-new"}, "openssh"),
    ("@docker/onesift-dev", {}, "container"),
    ("@podman/db", {"_sudo": False}, "container"),
    ("db1.example", {"ssh_password": "x"}, "pyinfra"),
    ("db1.example", {"_su_user": "postgres"}, "pyinfra"),
    ("db1.example", {"ssh_paramiko_connect_kwargs": {"timeout": 3}}, "pyinfra"),
    ("@local", {}, "pyinfra"),
    ("@chroot/srv/db", {}, "pyinfra"),
])
def test_a_session_reaches_its_host_as_its_data_asks(name, data, transport):
    from onesift.transport import kind

    assert kind(name, data) == transport


def test_openssh_command_line_follows_pyinfra_data():
    from onesift.transport import OpenSSH

    t = OpenSSH.from_data("db1", {"ssh_hostname": "10.0.0.5", "ssh_port": 2222, "ssh_user": "deploy",
                                  "ssh_key": "~/.ssh/id", "ssh_known_hosts_file": "/kh", "_sudo": True})
    argv = t.argv("echo 'a b'; psql")
    try:
        assert argv[0] == "ssh" and argv[-2] == "deploy@10.0.0.5"
        assert ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]
        assert "StrictHostKeyChecking=accept-new" in argv and "UserKnownHostsFile=/kh" in argv
        assert "BatchMode=yes" in argv  # never a password prompt
        # One word for the remote shell, which splits it back into sudo's arguments.
        import shlex
        assert shlex.split(argv[-1]) == ["sudo", "-H", "-n", "sh", "-c", "echo 'a b'; psql"]
    finally:
        t.close()


def test_container_command_line():
    from onesift.transport import ContainerExec

    assert ContainerExec("docker", "onesift-dev").argv("id -u") == ["docker", "exec", "-i", "onesift-dev",
                                                                     "sh", "-c", "id -u"]


def test_help_loads_no_service_and_no_rich():
    """`ops --help` reads every command's options and runs none: the core's services, rich and
    pydantic (typer 0.29's) cost ~190 ms of it (issue 10, target 0.3 s; bench/run.py times it)."""
    probe = ("import sys\nfrom ops_cli.main import app\n"
             "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pydantic', 'jinja2')))\n"
             "print([m for m in ('onesift.tenants', 'onesift.apikeys', 'onesift.audit', 'onesift.backups')"
             " if m in sys.modules and type(sys.modules[m]).__name__ != '_LazyModule'])\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-2:] == ["[]", "[]"]

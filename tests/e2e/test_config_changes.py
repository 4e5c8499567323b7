"""Config changes with the least disruption (issue 11.4), on the dev host: a
reload-only setting and a pg_hba line reload PostgreSQL (the postmaster keeps
its start time, connections stay), a restart-only setting restarts it, and
--dry says which before anything changes."""

import pytest

from tests.e2e.conftest import detected_changes, inventory, pyinfra


def started(host) -> tuple:
    with host.connect("owner") as conn:
        return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


def show(host, name: str) -> str:
    with host.connect("owner") as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


def deploy(host, tmp_path, dry: bool, **data) -> str:
    code, output = pyinfra("--dry" if dry else "-y", inventory(host, tmp_path, **data), "deploy.py")
    assert code == 0, output[-3000:]
    return output


@pytest.fixture
def back_to_default(dev):
    yield
    out = dev.pyinfra("deploy.py")
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_reload_only_setting_reloads(dev, tmp_path, back_to_default):
    before = started(dev)
    output = deploy(dev, tmp_path, True, pg_settings={"work_mem": "8MB"})
    assert "PostgreSQL reloads its configuration in this deploy (connections stay): work_mem changed" in output
    assert "restarts in this deploy" not in output
    _, changing = detected_changes(output)
    assert [c for c in changing if "PostgreSQL running its current config" in c], changing
    assert show(dev, "work_mem") == "4MB"  # --dry changed nothing
    with dev.connect("app") as conn:  # a connection open across the change
        deploy(dev, tmp_path, False, pg_settings={"work_mem": "8MB"})
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert show(dev, "work_mem") == "8MB"
    assert started(dev) == before


def test_a_pg_hba_line_reloads(dev, tmp_path, back_to_default):
    before = started(dev)
    networks = ["samenet", "192.0.2.0/24"]
    output = deploy(dev, tmp_path, True, client_networks=networks)
    assert "reloads its configuration in this deploy (connections stay): pg_hba.conf changed" in output
    deploy(dev, tmp_path, False, client_networks=networks)
    rules = dev.testinfra().check_output(  # pg_hba_file_rules: superusers only
        "runuser -u postgres -- psql -XAtc \"SELECT count(*) FROM pg_hba_file_rules WHERE address = '192.0.2.0'\"")
    assert int(rules) > 0
    assert started(dev) == before


def test_a_restart_only_setting_restarts(dev, tmp_path, back_to_default):
    before = started(dev)
    output = deploy(dev, tmp_path, True, pg_settings={"shared_buffers": "160MB"})
    assert "PostgreSQL restarts in this deploy (every connection drops): shared_buffers changed" in output
    assert show(dev, "shared_buffers") == "128MB"
    deploy(dev, tmp_path, False, pg_settings={"shared_buffers": "160MB"})
    assert show(dev, "shared_buffers") == "160MB"
    assert started(dev) > before


def test_a_version_the_release_does_not_package_is_refused_before_any_change(dev, tmp_path):
    """Issue 11: pg_version = 15 on a Debian 13 host is one line, and nothing changes."""
    conf = dev.testinfra().file(f"{dev.conf_dir}/postgresql.conf").mtime
    code, output = pyinfra("-y", inventory(dev, tmp_path, pg_version=15), "deploy.py")
    assert code != 0
    assert "inventory data pg_version = 15, but Debian trixie packages PostgreSQL 17 only" in output, output[-2000:]
    assert "Traceback" not in output
    assert dev.testinfra().file(f"{dev.conf_dir}/postgresql.conf").mtime == conf

"""
Real hosts: the local container hosts from `ops host up`, one reached with
the Docker API connector (dev path), one over SSH on loopback (prod path).
Both get the full deploy and the seed once per session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import psycopg
import pytest
import testinfra

from onesift import secrets
from onesift.render import ROOT
from onesift.local_hosts import SECRETS, bring_up, known_hosts, state_dir
from onesift.local_hosts import docker_env

os.environ.update(docker_env())
OPS = [sys.executable, "-m", "ops_cli.main"]


class DbHost:
    def __init__(self, kind):
        self.kind = kind
        self.local = bring_up(kind)
        self.inventory = self.local.inventory
        self.pg_port = self.local.ports["5432/tcp"]
        self.passwords = secrets.load(SECRETS[kind])
        with self.connect("owner") as conn:
            self.pg_version = conn.info.server_version // 10000
        self.conf_dir = f"/etc/postgresql/{self.pg_version}/main"

    def testinfra(self):
        if self.kind == "dev":
            return testinfra.get_host(f"docker://{self.local.container}")
        key = state_dir() / "ssh" / "id_ed25519"
        known = state_dir() / "ssh" / known_hosts(self.local)
        return testinfra.get_host(
            f"ssh://root@127.0.0.1:{self.local.ports['22/tcp']}",
            ssh_identity_file=str(key),
            ssh_extra_args=f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known}",
        )

    def connect(self, role="app", **kwargs) -> psycopg.Connection:
        name = {"owner": "onesift_owner", "app": "onesift_app", "auditor": "onesift_auditor"}[role]
        return psycopg.connect(
            host="127.0.0.1", port=self.pg_port, dbname="onesift", user=name,
            password=self.passwords[role], connect_timeout=10, **kwargs,
        )

    def ops(self, *args, inventory=None, check=False) -> subprocess.CompletedProcess:
        return run([*OPS, *args, "-i", inventory or self.inventory], check=check)

    def pyinfra(self, deploy, dry=False, *options: str) -> subprocess.CompletedProcess:
        mode = "--dry" if dry else "-y"  # -y would skip change detection
        return run([sys.executable, "-m", "pyinfra", mode, *options, self.inventory, deploy])


def run(cmd, check=False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=check, env=os.environ)


def results_total(output: str) -> tuple[str, str, str, str]:
    """(ops, success, error, no change) from pyinfra's 'Grand total' row."""
    m = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    assert m, output[-2000:]
    return m.groups()


def assert_deploy_changes_nothing(host) -> None:
    """A real run of the whole deploy on ``host``: every operation reports no change."""
    out = host.pyinfra("deploy.py")
    assert out.returncode == 0, out.stderr[-2000:]
    total, success, error, no_change = results_total(out.stdout + out.stderr)
    assert (success, error) == ("-", "-") and no_change == total, out.stdout[-3000:]


def detected_changes(output: str) -> tuple[int, list[str]]:
    """From a --dry run: (operations listed, those that would change)."""
    table = output.split("Detected changes:", 1)[1].split("Detected changes may not", 1)[0]
    rows = [line for line in table.splitlines() if "|" in line]
    changing = [r for r in rows if not re.search(r"\s-\s+-\s*$", r)]
    return len(rows), changing


def inventory(host, tmp_path, **data) -> str:
    """An inventory for ``host`` in group ``dev`` (its group data via --group-data) with ``data`` on top."""
    path = tmp_path / "variant.py"
    path.write_text(f"dev = [('@docker/{host.local.container}', {{'secrets_name': 'dev', **{data!r}}})]\n")
    return str(path)


def pyinfra(*args) -> tuple[int, str]:
    """pyinfra with the repository's group data (an inventory from ``inventory`` lives elsewhere)."""
    out = run([sys.executable, "-m", "pyinfra", "--group-data", "inventories/group_data", *args])
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="session")
def dev() -> DbHost:
    return DbHost("dev")


@pytest.fixture(scope="session")
def ssh() -> DbHost:
    return DbHost("ssh")


@pytest.fixture(scope="session")
def bookworm() -> DbHost:
    """Debian 12 with PostgreSQL 15: the previous release, for the smoke set (tests/e2e/test_bookworm.py)."""
    return DbHost("bookworm")


@pytest.fixture(scope="session", params=["dev", "ssh"])
def db_host(request) -> DbHost:
    return request.getfixturevalue(request.param)


@pytest.fixture
def slug() -> str:
    return "t" + uuid.uuid4().hex[:10]

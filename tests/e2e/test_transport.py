"""
How `ops` reaches a real host (onesift/transport.py): OpenSSH's client for the
SSH host, the engine's exec for the container host, and pyinfra's connector
where the inventory asks for what those do not do. Each gives the same answers.
"""

from __future__ import annotations

import json
import subprocess
import sys

from onesift.local_hosts import state_dir
from onesift.render import ROOT


def session_probe(inventory: str) -> list[str]:
    """The transport a session on ``inventory`` uses, then what the host said to two commands through it."""
    probe = ("import sys\nfrom onesift.session import HostSession\n"
             f"s = HostSession({inventory!r})\n"
             "try:\n"
             "    print(type(s.transport).__name__)\n"
             "    print(*s.shell('id -un'))\n"
             "    print(len(s.shell('head -c 3000000 /dev/zero | tr \"\\\\0\" x; echo')[0]))\n"
             "    print(*s.run_sql('SELECT 6 * 7'))\n"
             "finally:\n    s.close()\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def ssh_inventory(host, tmp_path, **data) -> str:
    """The SSH host's inventory, with ``data`` on top (group data beside it, as the repository's)."""
    (tmp_path / "group_data").symlink_to(ROOT / "inventories" / "group_data")
    path = tmp_path / "local_ssh.py"
    key, known = state_dir() / "ssh" / "id_ed25519", state_dir() / "ssh" / "known_hosts"
    host_data = {"ssh_port": host.local.ports["22/tcp"], "ssh_user": "root", "ssh_key": str(key),
                 "ssh_known_hosts_file": str(known), **data}
    path.write_text(f"local_ssh = [('127.0.0.1', {host_data!r})]\n")
    return str(path)


def test_the_ssh_host_through_openssh(ssh):
    # A 3 MB line: through paramiko its read grew with the square of its length (issue 9).
    assert session_probe(ssh.inventory) == ["OpenSSH", "root", "3000000", "42"]


def test_the_container_host_through_exec(dev):
    assert session_probe(dev.inventory) == ["ContainerExec", "root", "3000000", "42"]


def test_pyinfras_connector_where_the_inventory_asks_for_it(ssh, tmp_path):
    # ssh_connect_retries is pyinfra's alone: the session hands the host to its connector.
    inventory = ssh_inventory(ssh, tmp_path, ssh_connect_retries=1)
    assert session_probe(inventory) == ["PyinfraConnector", "root", "3000000", "42"]
    via_pyinfra = json.loads(ssh.ops("tenant", "list", "--json", inventory=inventory).stdout)
    assert via_pyinfra == json.loads(ssh.ops("tenant", "list", "--json").stdout) and via_pyinfra


def test_a_host_that_does_not_answer_is_one_line_and_exit_1(ssh, tmp_path):
    inventory = ssh_inventory(ssh, tmp_path, ssh_port=1)  # nothing listens on port 1
    out = ssh.ops("tenant", "list", inventory=inventory)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "refused" in out.stderr, out.stderr

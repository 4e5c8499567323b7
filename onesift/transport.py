"""
How a host session reaches its database host and runs a shell command there.

- ``OpenSSH``: an SSH host, through the OpenSSH client (``ssh``), one master
  connection per session that every command rides (ControlMaster).
- ``ContainerExec``: a container host (``@docker/NAME``, ``@podman/NAME``),
  through the engine's ``exec``.
- ``PyinfraConnector``: anything else, or a host whose inventory data asks
  for what those two do not do (a password, ``_su_user``, paramiko options):
  pyinfra's own connector, as the deploy uses.

Why not pyinfra's connector every time: loading it imports paramiko and the
connectors, and its handshake and SFTP upload come before the first query.
`ops tenant list` took 2.89 s through it against 0.37 s for `ssh host psql`
listing the same 1,000 tenants (issue 10). Through the OpenSSH client a
command's input goes on its stdin, so SQL needs no upload, and a long output
line costs what a short one does (paramiko reads a line in time that grows
with the square of its length: 43.5 s for one 30 MB line, issue 9).

The host's data means what it means to pyinfra: ``ssh_hostname`` (else the
host's name), ``ssh_port``, ``ssh_user``, ``ssh_key``, ``ssh_config_file``,
``ssh_known_hosts_file``, ``ssh_strict_host_key_checking`` (default
``accept-new``, pyinfra's), and ``_sudo`` (commands run through ``sudo -H -n``).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from onesift.errors import OpsError

# Host data the two subprocess transports honour; any other ssh_* or _* key
# (pyinfra's connector and control arguments) sends the host to pyinfra's connector.
HONOURED = {
    "ssh_hostname", "ssh_port", "ssh_user", "ssh_key", "ssh_config_file", "ssh_known_hosts_file",
    "ssh_strict_host_key_checking", "ssh_allow_agent", "ssh_look_for_keys", "_sudo",
}
ENGINES = {"@docker/": "docker", "@podman/": "podman"}


@dataclass(frozen=True)
class Result:
    ok: bool
    stdout: list[str]
    stderr: list[str]


class Transport(Protocol):
    def run(self, command: str, stdin: str | None = None) -> Result: ...

    def close(self) -> None: ...


def needs_pyinfra(name: str, data: dict) -> list[str]:
    """What in the host's entry only pyinfra's connector handles (empty: a subprocess transport will do)."""
    asks = sorted(k for k, v in data.items() if k.startswith(("ssh_", "_")) and k not in HONOURED and v)
    if name.startswith("@") and not name.startswith(tuple(ENGINES)):
        asks.insert(0, name.split("/")[0])
    return asks


def kind(name: str, data: dict) -> str:
    """Which transport reaches host ``name`` with ``data``: "container", "openssh" or "pyinfra"."""
    if needs_pyinfra(name, data):
        return "pyinfra"
    return "container" if name.startswith(tuple(ENGINES)) else "openssh"


def for_host(path: Path, name: str, data: dict) -> Transport:
    """The transport for host ``name`` (with ``data``) of the inventory file at ``path``."""
    chosen = kind(name, data)
    if chosen == "pyinfra":
        from onesift.connector import PyinfraConnector  # imports pyinfra and paramiko: only when needed

        return PyinfraConnector(path)
    if chosen == "container":
        prefix = next(p for p in ENGINES if name.startswith(p))
        return ContainerExec(ENGINES[prefix], name[len(prefix):], sudo=bool(data.get("_sudo")))
    return OpenSSH.from_data(name, data)


def run(argv: list[str], stdin: str | None) -> Result:
    out = subprocess.run(argv, input=stdin or "", capture_output=True, encoding="utf-8", errors="replace")
    return Result(out.returncode == 0, out.stdout.splitlines(), out.stderr.splitlines())


def shell_words(command: str, sudo: bool) -> list[str]:
    """``command`` for ``sh -c``, through sudo when asked (pyinfra's ``_sudo``: -H, and never a prompt)."""
    return [*(["sudo", "-H", "-n"] if sudo else []), "sh", "-c", command]


class ContainerExec:
    """A running container, through the engine's CLI (``docker exec -i NAME sh -c …``), as pyinfra's
    docker connector runs it; that the container runs is checked before (onesift/containers.py)."""

    def __init__(self, engine: str, container: str, sudo: bool = False):
        self.engine, self.container, self.sudo = engine, container, sudo

    def argv(self, command: str) -> list[str]:
        return [self.engine, "exec", "-i", self.container, *shell_words(command, self.sudo)]

    def run(self, command: str, stdin: str | None = None) -> Result:
        return run(self.argv(command), stdin)

    def close(self) -> None:
        pass


class OpenSSH:
    """An SSH host through OpenSSH's client, as Ansible reaches one: the first command opens a
    master connection (ControlMaster) that later commands ride, this ``ops`` process's and the
    next ones' alike, until it has been idle a minute (ControlPersist=60). A command on it costs
    a round trip, not a handshake: 18 ms against 250 ms on loopback here, so `ops tenant list`
    within a minute of another command took 0.30 s against 0.50 s. Its socket lives in the
    user's state directory (0700), named by a hash of the destination and the options."""

    def __init__(self, destination: str, options: list[str], sudo: bool = False):
        self.destination, self.options, self.sudo = destination, options, sudo

    @classmethod
    def from_data(cls, name: str, data: dict) -> "OpenSSH":
        host = data.get("ssh_hostname") or name
        user = data.get("ssh_user")
        options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                   "-o", f"StrictHostKeyChecking={data.get('ssh_strict_host_key_checking') or 'accept-new'}"]
        if data.get("ssh_port"):
            options += ["-p", str(int(data["ssh_port"]))]
        if data.get("ssh_key"):
            options += ["-i", os.path.expanduser(str(data["ssh_key"]))]
        if data.get("ssh_known_hosts_file"):
            options += ["-o", f"UserKnownHostsFile={os.path.expanduser(str(data['ssh_known_hosts_file']))}"]
        if data.get("ssh_config_file"):
            options += ["-F", os.path.expanduser(str(data["ssh_config_file"]))]
        if data.get("ssh_allow_agent") is False:
            options += ["-o", "IdentityAgent=none"]
        if data.get("ssh_look_for_keys") is False:  # only the named key, as paramiko's look_for_keys=False
            options += ["-o", "IdentitiesOnly=yes"]
        return cls(f"{user}@{host}" if user else str(host), options, sudo=bool(data.get("_sudo")))

    def argv(self, command: str) -> list[str]:
        # ssh joins its arguments into one line for the remote shell: each word quoted.
        remote = " ".join(map(shlex.quote, shell_words(command, self.sudo)))
        return ["ssh", *self.options, *self.control(), "-T", self.destination, remote]

    def control(self) -> list[str]:
        return ["-o", f"ControlPath={control_path(self.destination, self.options)}",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=60"]

    def run(self, command: str, stdin: str | None = None) -> Result:
        if shutil.which("ssh") is None:
            raise OpsError("no ssh client on this machine (Debian: apt-get install openssh-client)")
        return run(self.argv(command), stdin)

    def close(self) -> None:
        pass  # the master ends itself once idle a minute (ControlPersist)


def control_path(destination: str, options: list[str]) -> str:
    """The master connection's socket for ``destination`` reached with ``options`` (short: a unix
    socket's path holds 107 bytes)."""
    from onesift.local_hosts import state_dir

    folder = state_dir() / "ssh-masters"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = hashlib.sha256("\0".join([destination, *options]).encode()).hexdigest()[:20]
    return str(folder / name)

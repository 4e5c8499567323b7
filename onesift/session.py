"""
The database host an inventory names, where SQL runs as the ``postgres`` OS
user: the same trust the deploy needs, and no database password on the
operator's machine. The inventory is read as pyinfra reads it
(onesift/inventory.py); the host is reached through onesift/transport.py
(OpenSSH's client, the container engine's exec, or pyinfra's connector).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys

from onesift.containers import container_problem
from onesift.errors import BadInput, OpsError
from onesift.inventory import host_entries, inventory_path
from onesift.local_hosts import docker_env
from onesift.render import ROOT
from onesift.settings import DEFAULT_INVENTORY, Settings
from onesift.shell import WORK_DIR, psql
from onesift.transport import ENGINES, for_host

# What an actor name may hold: it travels in PGOPTIONS, where a space would split it.
ACTOR_CHARS = re.compile(r"[^A-Za-z0-9@._+:-]")


def actor_name(given: str | None = None) -> str:
    """Who runs ops, for the audit trail: ``given`` (ops --actor) or ONESIFT_ACTOR, else the OS user at this machine."""
    name = given or os.environ.get("ONESIFT_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"
    return ACTOR_CHARS.sub("_", name)[:100]


def refuse_missing_container(name: str, inventory: str) -> None:
    """BadInput (exit 2) for a container host that is missing or stopped: a container
    host is made and started only by `ops host up` (see onesift/containers.py)."""
    for prefix, engine in ENGINES.items():
        if name.startswith(prefix) and (problem := container_problem(engine, name[len(prefix):])):
            raise BadInput(f"{inventory}: {problem}")


# Patroni's health check on a member: 200 from the primary only.
PRIMARY_CHECK = "curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:8008/primary || true"


def primary_of(path, hosts: list[tuple[str, dict]], inventory: str):
    """(name, data, transport) of the cluster member whose Patroni says it is the primary
    (GET /primary: 200), else of the first member that answers at all (a cluster with no
    leader yet, during its first deploy: writes there fail as read-only, exit 1). Members
    that are stopped containers or do not answer are passed over; none answering is OpsError."""
    reachable = []
    for name, data in hosts:
        if any(name.startswith(p) for p in ENGINES) and problem_of(name):
            continue
        transport = for_host(path, name, data)
        answer = transport.run(PRIMARY_CHECK)
        if answer.ok and answer.stdout[-1:] == ["200"]:
            for _, _, other in reachable:
                other.close()
            return name, data, transport
        if answer.ok:
            reachable.append((name, data, transport))
        else:
            transport.close()
    if not reachable:
        raise OpsError(f"{inventory}: no member of the cluster answers")
    for _, _, other in reachable[1:]:
        other.close()
    return reachable[0]


def problem_of(name: str) -> str | None:
    for prefix, engine in ENGINES.items():
        if name.startswith(prefix):
            return container_problem(engine, name[len(prefix):])
    return None


class HostSession:
    """One database host from an inventory file; SQL runs there as ``postgres``."""

    def __init__(self, inventory: str = DEFAULT_INVENTORY, actor: str | None = None):
        self.actor = actor_name(actor)
        os.environ.update(docker_env())
        path = inventory_path(inventory)
        self.inventory = str(path)
        hosts = host_entries(inventory)
        if len(hosts) > 1 and all(h[1].get("patroni_cluster") for h in hosts):
            self.name, self.data, self.transport = primary_of(path, hosts, inventory)
            self.settings = Settings.from_data(self.data)
        elif len(hosts) > 1:
            raise BadInput(f"{path} has {len(hosts)} hosts; ops works on one database host, or on the members "
                           "of a Patroni cluster (patroni_cluster in their data)")
        else:
            self.name, self.data = hosts[0]
            self.settings = Settings.from_data(self.data)  # bad settings before the container, as before
            refuse_missing_container(self.name, inventory)
            self.transport = for_host(path, self.name, self.data)

    @property
    def production(self) -> bool:
        return self.settings.production

    def close(self) -> None:
        self.transport.close()

    def shell(self, command: str, stdin: str | None = None) -> list[str]:
        """Run a shell command on the host (``stdin`` on its standard input); its stdout lines, or
        OpsError with its stderr."""
        # Every psql this starts, the backup job's included, names the operator
        # to the audit trail (audit.stamp() reads onesift.actor).
        command = f"export PGOPTIONS={shlex.quote('-c onesift.actor=' + self.actor)}; {command}"
        result = self.transport.run(command, stdin)
        if not result.ok:
            raise OpsError("\n".join(result.stderr) or f"command failed on {self.name}")
        return result.stdout

    def upload(self, sql: str) -> str:
        """Put SQL into a root-only file on the host; its path."""
        path = f"{WORK_DIR}/ops-{secrets.token_hex(8)}.sql"
        self.shell(f"install -d -m 0700 {WORK_DIR} && umask 077 && cat > {path}", stdin=sql)
        return path

    def psql(self, database: str | None = None, transaction: bool = True) -> str:
        options = ["--single-transaction"] if transaction else []
        return psql(database or self.settings.db_name, self.settings.pg_port, *options, "-At", "-f", "-")

    def run_sql(self, sql: str, database: str | None = None, transaction: bool = True) -> list[str]:
        """Run SQL (in one transaction unless told not to) as the postgres OS user, fed on psql's
        stdin (never in argv: it can hold a password's verifier); psql's output lines."""
        return self.shell(self.psql(database, transaction), stdin=sql)

    def run_sql_streams(self, scripts: list[str]) -> list[list[str]]:
        """Run SQL scripts at once, each through one psql session in autocommit
        (a transaction per statement, stop at the first error); each script's
        output lines, psql's errors among them."""
        paths = [self.upload(sql) for sql in scripts]
        jobs = " ".join(f"( {self.psql(transaction=False)} < {p}; rm -f {p} ) > {p}.out 2>&1 &" for p in paths)
        show = " ".join(f'echo "@@stream {i}"; cat {p}.out; rm -f {p}.out;' for i, p in enumerate(paths))
        outputs: list[list[str]] = []
        for line in self.shell(f"{jobs} wait; {show}"):
            if line.startswith("@@stream "):
                outputs.append([])
            elif outputs:
                outputs[-1].append(line)
        return outputs

    def query_json(self, sql: str, database: str | None = None):
        """Run SQL whose last statement returns one JSON value; that value."""
        lines = [line for line in self.run_sql(sql, database) if line.strip()]
        return json.loads(lines[-1]) if lines else None

    def query_rows(self, sql: str, database: str | None = None) -> list:
        """Run SQL whose last statement returns a JSON value a row; those values."""
        return [json.loads(line) for line in self.run_sql(sql, database) if line.strip()]

    def pyinfra(self, deploy: str, *args: str, dry: bool = False) -> int:
        """Run a pyinfra deploy (a file or module.function) against this inventory."""
        # -y skips change detection, so a dry run must not pass it.
        mode = ["--dry"] if dry else ["-y"]
        cmd = [sys.executable, "-m", "pyinfra", *mode, self.inventory, deploy, *args]
        return subprocess.call(cmd, cwd=ROOT, env=docker_env())

"""
The database host an inventory names, reached through pyinfra's connector
(SSH for real hosts, the Docker API for the local one), where SQL runs as
the ``postgres`` OS user: the same trust the deploy needs, and no database
password on the operator's machine.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Iterator

from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.context import ctx_host, ctx_state
from pyinfra_cli.exceptions import UnexpectedExternalError
from pyinfra_cli.inventory import make_inventory

from onesift.containers import container_problem, docker_hosts, refuse_unmanaged_containers
from onesift.errors import BadInput, OpsError
from onesift.inventory import file_error, inventory_path
from onesift.local_hosts import docker_env
from onesift.render import ROOT
from onesift.settings import DEFAULT_INVENTORY, Settings
from onesift.shell import WORK_DIR, feed_file, psql
from onesift.ssh import enable_nodelay

# What an actor name may hold: it travels in PGOPTIONS, where a space would split it.
ACTOR_CHARS = re.compile(r"[^A-Za-z0-9@._+:-]")


def actor_name(given: str | None = None) -> str:
    """Who runs ops, for the audit trail: ``given`` (ops --actor) or ONESIFT_ACTOR, else the OS user at this machine."""
    name = given or os.environ.get("ONESIFT_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"
    return ACTOR_CHARS.sub("_", name)[:100]


class WarningList(logging.Handler):
    """Keeps the warnings logged to it, in order."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def held_warnings() -> Iterator[WarningList]:
    """pyinfra's warnings kept back instead of printed: a refusal is one line, so they go into it."""
    log, kept = logging.getLogger("pyinfra"), WarningList()
    propagate, log.propagate = log.propagate, False
    log.addHandler(kept)
    try:
        yield kept
    finally:
        log.removeHandler(kept)
        log.propagate = propagate


def load_inventory(path: Path, state: State) -> Inventory:
    """The inventory a file defines, with exactly one host; BadInput saying why not.

    An inventory is Python that pyinfra runs, so any error in running it
    (a CSV passed by mistake is a NameError) is the file's fault: bad input."""
    with held_warnings() as warnings:
        try:
            with ctx_state.use(state):
                inv = make_inventory(str(path), cwd=str(ROOT))
        except Exception as e:  # any: see the docstring
            raise BadInput(f"cannot load inventory {path}: {load_error(e, path)}") from None
    hosts = len(list(inv))
    if hosts != 1:
        found = f"has {hosts} hosts" if hosts else "defines no hosts"
        why = "".join(f" ({w})" for w in warnings.messages[:1])  # e.g. why pyinfra ignored a group
        raise BadInput(f"{path} {found}{why}; ops works on one database host")
    for message in warnings.messages:
        logging.getLogger("pyinfra").warning(message)
    return inv


def load_error(e: Exception, path: Path) -> str:
    """What went wrong in loading the inventory at ``path`` or its group data, in one line."""
    if isinstance(e, UnexpectedExternalError):  # raised by the file's own code; its str() fails
        return file_error(e.exception, path, e.filename)
    return file_error(e, path)


def refuse_missing_containers(inv, inventory: str) -> None:
    """BadInput (exit 2) for a container host that is missing or stopped, before
    pyinfra's connector would create or start it (see onesift/containers.py);
    the connector's own guard stays as the backstop."""
    for docker_cmd, name in docker_hosts(inv):
        problem = container_problem(docker_cmd, name)
        if problem:
            raise BadInput(f"{inventory}: {problem}")


class HostSession:
    """One database host from an inventory file, reached through pyinfra's connector; SQL runs there as ``postgres``."""

    def __init__(self, inventory: str = DEFAULT_INVENTORY, actor: str | None = None):
        self.actor = actor_name(actor)
        os.environ.update(docker_env())
        enable_nodelay()
        refuse_unmanaged_containers()
        path = inventory_path(inventory)
        self.inventory = str(path)
        self.state = State()
        inv = load_inventory(path, self.state)
        self.state.init(inv, Config())
        self.host = list(inv)[0]
        self.settings = Settings.from_data(self.host.data)
        refuse_missing_containers(inv, inventory)
        self.connected = False

    @property
    def production(self) -> bool:
        return self.settings.production

    def connect(self) -> None:
        if not self.connected:
            with ctx_state.use(self.state):
                connect_all(self.state)
            if not self.host.connected:
                raise OpsError(f"cannot connect to {self.host.name}")
            self.connected = True
            self.shell(f"install -d -m 0700 {WORK_DIR}")

    def close(self) -> None:
        if self.connected:
            with ctx_state.use(self.state):
                disconnect_all(self.state)
            self.connected = False

    def shell(self, command: str) -> list[str]:
        """Run a shell command on the host; its stdout lines, or OpsError with its stderr."""
        self.connect()
        # Every psql this starts, the backup job's included, names the operator
        # to the audit trail (audit.stamp() reads onesift.actor).
        command = f"export PGOPTIONS={shlex.quote('-c onesift.actor=' + self.actor)}; {command}"
        with ctx_state.use(self.state), ctx_host.use(self.host):
            ok, output = self.host.run_shell_command(StringCommand(command))
        if not ok:
            raise OpsError("\n".join(output.stderr_lines) or f"command failed on {self.host.name}")
        return output.stdout_lines

    def upload(self, sql: str) -> str:
        """Put SQL into a root-only file on the host; its path."""
        self.connect()
        path = f"{WORK_DIR}/ops-{secrets.token_hex(8)}.sql"
        with ctx_state.use(self.state), ctx_host.use(self.host):
            if not self.host.put_file(StringIO(sql), path):
                raise OpsError(f"could not upload SQL to {self.host.name}")
        return path

    def psql(self, database: str | None = None, transaction: bool = True) -> str:
        options = ["--single-transaction"] if transaction else []
        return psql(database or self.settings.db_name, self.settings.pg_port, *options, "-At", "-f", "-")

    def run_sql(self, sql: str, database: str | None = None, transaction: bool = True) -> list[str]:
        """Run SQL (in one transaction unless told not to) as the postgres OS user; psql's output lines."""
        path = self.upload(sql)
        return self.shell(feed_file(path, self.psql(database, transaction)))

    def run_sql_streams(self, scripts: list[str]) -> list[list[str]]:
        """Run SQL scripts at once, each through one psql session in autocommit
        (a transaction per statement, stop at the first error); each script's
        output lines, psql's errors among them."""
        paths = [self.upload(sql) for sql in scripts]
        jobs = " ".join(f"( {feed_file(p, self.psql(transaction=False))} ) > {p}.out 2>&1 &" for p in paths)
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

    def pyinfra(self, deploy: str, *args: str, dry: bool = False) -> int:
        """Run a pyinfra deploy (a file or module.function) against this inventory."""
        # -y skips change detection, so a dry run must not pass it.
        mode = ["--dry"] if dry else ["-y"]
        cmd = [sys.executable, "-m", "pyinfra", *mode, self.inventory, deploy, *args]
        return subprocess.call(cmd, cwd=ROOT, env=docker_env())

"""
pyinfra's connector for an inventory's host: the host session's transport
when the host's data asks for what the OpenSSH and container transports do
not do (onesift/transport.py), and the inventory loading it needs.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Iterator

from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.context import ctx_host, ctx_state
from pyinfra_cli.exceptions import UnexpectedExternalError
from pyinfra_cli.inventory import make_inventory

from onesift.containers import refuse_unmanaged_containers
from onesift.errors import BadInput, OpsError
from onesift.inventory import file_error
from onesift.render import ROOT
from onesift.shell import WORK_DIR
from onesift.ssh import enable_nodelay
from onesift.transport import Result


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



class PyinfraConnector:
    """pyinfra's connector for the inventory's host (SSH with what the subprocess transports lack,
    or any other connector). A command's stdin is uploaded to a root-only file and fed from there."""

    def __init__(self, path: Path):
        enable_nodelay()
        refuse_unmanaged_containers()
        self.state = State()
        inv = load_inventory(path, self.state)
        self.state.init(inv, Config())
        self.host = list(inv)[0]
        self.connected = False

    def connect(self) -> None:
        if not self.connected:
            with ctx_state.use(self.state):
                connect_all(self.state)
            if not self.host.connected:
                raise OpsError(f"cannot connect to {self.host.name}")
            self.connected = True

    def run(self, command: str, stdin: str | None = None) -> Result:
        self.connect()
        with ctx_state.use(self.state), ctx_host.use(self.host):
            if stdin is not None:
                path = f"{WORK_DIR}/ops-{secrets.token_hex(8)}.in"
                ok, _ = self.host.run_shell_command(StringCommand(f"install -d -m 0700 {WORK_DIR}"))
                if not ok or not self.host.put_file(StringIO(stdin), path):
                    raise OpsError(f"could not upload to {self.host.name}")
                command = f"chmod 0600 {path}; ( {command} ) < {path}; rc=$?; rm -f {path}; exit $rc"
            ok, output = self.host.run_shell_command(StringCommand(command))
        return Result(ok, output.stdout_lines, output.stderr_lines)

    def close(self) -> None:
        if self.connected:
            with ctx_state.use(self.state):
                disconnect_all(self.state)
            self.connected = False

"""The whole database: the deploys `ops db` runs, and a reset (drop, set up again, empty)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onesift.queries import query

if TYPE_CHECKING:
    from onesift.session import HostSession


def refuse_bad_server_input(s: HostSession) -> None:
    """What deploy.server.install refuses (the certificate files it would upload), as
    BadInput before the host is reached: pyinfra would refuse it only once connected."""
    from deploy import tls

    tls.from_data(s.data)


def deploy(s: HostSession, deploy: str, dry: bool = False) -> int:
    """Run a pyinfra deploy (deploy.py, or deploy.database.bootstrap|migrate) on the session's inventory; its exit code."""
    if deploy == "deploy.py":
        refuse_bad_server_input(s)
    return s.pyinfra(deploy, dry=dry)


def drop(s: HostSession) -> None:
    s.run_sql(query("database_drop", s.settings), "postgres", transaction=False)


def setup_after_reset(s: HostSession) -> int:
    """The whole deploy on the dropped database, then the new trail's first entry; the deploy's exit code."""
    code = s.pyinfra("deploy.py")
    if not code:
        s.run_sql(query("database_reset_noted", s.settings))
    return code

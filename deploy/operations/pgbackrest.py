"""
pgBackRest operations: the stanza created and checked once, and a first
full backup when the stanza has none, so a new host can be recovered from
its first deploy on. Both read the stanza (PgBackRestInfo) when they run,
so a second deploy changes nothing.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, operation

from deploy.facts.pgbackrest import PgBackRestInfo, pgbackrest

# pgBackRest's stanza status codes (``pgbackrest info``): these two mean the
# stanza is not created yet; 0 ok and 2 "no valid backups" mean it is.
MISSING = (1, 3)
CREATED = (0, 2)


@operation()
def stanza(stanza: str):
    """
    Create a pgBackRest stanza (``stanza-create``) and ``check`` it (a WAL
    switch, archived into the repository within archive-timeout), when the
    repository does not have it yet.

    + stanza: the stanza's name, as in pgbackrest.conf

    **Example:**

    .. code:: python

        pgbackrest.stanza(name="pgBackRest stanza onesift", stanza="onesift")
    """
    info = host.get_fact(PgBackRestInfo, stanza=stanza)
    if info.get("error"):
        raise OperationError(f"pgbackrest info of stanza {stanza} failed: {info['error']}")
    if info.get("status") in CREATED:
        host.noop(f"pgBackRest stanza {stanza} exists")
        return
    if info and info.get("status") not in MISSING:
        raise OperationError(f"pgBackRest stanza {stanza}: {info.get('message')} (status {info.get('status')})")
    yield pgbackrest(stanza, "stanza-create")
    yield pgbackrest(stanza, "check")


@operation()
def first_backup(stanza: str):
    """
    Take a full backup when the stanza has no good one: until then nothing
    can be restored, not even the WAL archived since.

    + stanza: the stanza's name

    **Example:**

    .. code:: python

        pgbackrest.first_backup(name="A first full backup", stanza="onesift")
    """
    backups = host.get_fact(PgBackRestInfo, stanza=stanza).get("backups", [])
    if any(b["type"] == "full" and not b["error"] for b in backups):
        host.noop(f"stanza {stanza} has a full backup")
        return
    yield pgbackrest(stanza, "--type=full", "backup")


@operation()
def shared_repository(stanza: str, repo1_path: str):
    """
    Refuse a Patroni replica that does not see the stanza the primary made:
    its repository is not the primary's, so after a failover WAL would be
    archived where no restore looks. Changes nothing.

    + stanza: the stanza's name
    + repo1_path: the repository's path, for the message

    **Example:**

    .. code:: python

        pgbackrest.shared_repository(name="Stanza onesift seen from this member", stanza="onesift",
                                     repo1_path="/var/lib/pgbackrest", _if=lambda: not on_primary())
    """
    info = host.get_fact(PgBackRestInfo, stanza=stanza)
    if info.get("status") not in CREATED:
        why = info.get("error") or f"{info.get('message')} (status {info.get('status')})"
        raise OperationError(
            f"this member does not see stanza {stanza} in {repo1_path} ({why}): every member of a cluster needs "
            "the same repository (one mount of shared storage at pgbackrest_repo1_path, or pgbackrest_repo1_host)")
    host.noop(f"this member sees stanza {stanza}")
    yield from ()  # an operation is a generator; this one only checks

"""
Operations on a Patroni cluster member: wait for the cluster to be up, keep
the cluster's dynamic configuration (PostgreSQL's parameters among it) as the
inventory says, and keep PgBouncer's copy of the roles' verifiers current.
"""

from __future__ import annotations

import json
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File

from deploy.facts.cluster import REST, PatroniDynamicConfig, PatroniMember, PoolerUserlist, userlist_query
from deploy.facts.postgres import PgSettingContexts
from onesift.cluster import PATRONI_CONFIG
from onesift.shell import WORK_DIR, psql


def ready_member(member: dict) -> bool:
    """A member that serves: a running primary, or a replica streaming from one."""
    if member.get("state") != "running":
        return False
    return member.get("role") in ("primary", "master") or member.get("replication_state") == "streaming"


@operation()
def member_ready(timeout: int = 180):
    """
    Wait until this member serves: its PostgreSQL runs as the primary, or as a
    replica streaming from it (a new member bootstraps or clones first).

    + timeout: seconds to wait before the deploy fails

    **Example:**

    .. code:: python

        patroni.member_ready(timeout=180)
    """
    if ready_member(host.get_fact(PatroniMember)):
        host.noop("Patroni member is running")
        return
    check = (f"curl -s --max-time 3 {REST}/patroni | python3 -c "
             "'import json,sys; m=json.load(sys.stdin); sys.exit(0 if m.get(\"state\") == \"running\" and "
             "(m.get(\"role\") == \"primary\" or m.get(\"replication_state\") == \"streaming\") else 1)'")
    yield (f"for i in $(seq {int(timeout)}); do {check} 2>/dev/null && exit 0; sleep 1; done; "
           f"echo 'Patroni member not ready after {int(timeout)}s' >&2; exit 1")


def config_patch(current: dict, wanted: dict) -> dict:
    """What to change in Patroni's dynamic configuration ``current`` to make it ``wanted``: changed
    top-level keys, and PostgreSQL parameters changed, added, or removed (None: Patroni drops it)."""
    patch: dict = {}
    for key, value in wanted.items():
        if key == "postgresql":
            continue
        if current.get(key) != value:
            patch[key] = value
    have_pg, want_pg = current.get("postgresql") or {}, wanted.get("postgresql") or {}
    pg_patch: dict = {}
    for key, value in want_pg.items():
        if key == "parameters":
            continue
        if have_pg.get(key) != value:
            pg_patch[key] = value
    have, want = have_pg.get("parameters") or {}, want_pg.get("parameters") or {}
    params = {k: v for k, v in want.items() if str(have.get(k)) != str(v)}
    params.update({k: None for k in have if k not in want})
    if params:
        pg_patch["parameters"] = params
    if pg_patch:
        patch["postgresql"] = pg_patch
    return patch


@operation()
def dynamic_config(config: dict, scope: str, port: int = 5432):
    """
    Keep the cluster's dynamic configuration (``patronictl edit-config``: the
    same on every member, in etcd) as given. Patroni applies a reloadable
    PostgreSQL parameter on every member by itself; a parameter whose
    ``pg_settings`` context is ``postmaster`` needs a restart, which
    ``patronictl restart --pending`` does member by member.

    + config: the wanted keys (ttl, loop_wait, synchronous_mode, postgresql.parameters, ...)
    + scope: the cluster's name
    + port: PostgreSQL's port, for the parameters' contexts

    **Example:**

    .. code:: python

        patroni.dynamic_config(config={"ttl": 12, "postgresql": {"parameters": {"work_mem": "8MB"}}},
                               scope="onesift", _if=on_primary)
    """
    current = host.get_fact(PatroniDynamicConfig)
    patch = config_patch(current, config)
    if not patch:
        host.noop("Patroni's dynamic configuration is current")
        return
    path = f"{WORK_DIR}/patroni-config.json"
    yield f"install -d -m 0700 {WORK_DIR}"
    yield FileUploadCommand(StringIO(json.dumps(patch, indent=1, sort_keys=True)), path)
    ctl = f"runuser -u postgres -- patronictl -c {PATRONI_CONFIG}"
    yield f"chmod 0644 {path}; {ctl} edit-config --force --apply - {shlex.quote(scope)} < {path} >/dev/null; rc=$?; rm -f {path}; exit $rc"
    changed = set((patch.get("postgresql") or {}).get("parameters") or {})
    contexts = host.get_fact(PgSettingContexts, port=port) if changed else {}
    restart = sorted(p for p in changed if contexts.get(p, "postmaster") == "postmaster")
    if restart:
        # Patroni notes pending_restart on its next loop; then the pending members restart.
        yield (f"sleep {int(config.get('loop_wait', 10)) + 2}; "
               f"{ctl} restart --pending --force {shlex.quote(scope)} >/dev/null")


@operation()
def resume_paused(marker: str, scope: str):
    """
    Resume the cluster when ``marker`` says the deploy paused it (``etcd.authentication``
    does, to restart Patroni without stopping PostgreSQL); a pause of anyone else's stays.

    + marker: the file the pausing operation left
    + scope: the cluster's name

    **Example:**

    .. code:: python

        patroni.resume_paused(marker="/var/lib/onesift/deploy/paused-for-etcd-auth", scope="onesift",
                              _if=on_first_member)
    """
    if host.get_fact(File, path=marker) is None:
        host.noop("the deploy paused nothing")
        return
    yield (f"timeout 120 runuser -u postgres -- patronictl -c {PATRONI_CONFIG} resume --wait {shlex.quote(scope)} >/dev/null "
           f"&& rm -f {shlex.quote(marker)}")


@operation()
def pooler_userlist(path: str, roles: list[str], port: int = 5432):
    """
    Copy the roles' SCRAM verifiers from ``pg_authid`` into PgBouncer's
    auth_file (0600, postgres) when they differ, and have PgBouncer read it
    again. PgBouncer then logs in to PostgreSQL with the client's own SCRAM
    proof: no password is stored for it, and a new password reaches it on
    the next deploy. Replicas read their replicated copy of ``pg_authid``.

    + path: PgBouncer's auth_file
    + roles: the roles that log in through PgBouncer
    + port: PostgreSQL's port

    **Example:**

    .. code:: python

        patroni.pooler_userlist(path="/etc/pgbouncer/userlist.txt", roles=["onesift_app"])
    """
    state = host.get_fact(PoolerUserlist, path=path, roles=roles, port=port)["state"]
    if state == "same":
        host.noop("PgBouncer's auth_file is current")
        return
    query = psql("postgres", port, "-At", "-c", shlex.quote(userlist_query(roles)))
    tmp = f"{path}.new"
    yield (f"umask 077 && {query} > {tmp} && chown postgres:postgres {tmp} && mv {tmp} {path} "
           "&& { pkill -HUP -x pgbouncer || true; }")

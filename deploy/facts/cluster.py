"""
Facts about a Patroni cluster member: its daemons, Patroni's REST API on it
(GET needs no password), and whether PgBouncer's copy of the roles' SCRAM
verifiers is current.
"""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase

from onesift.render import quote_literal
from onesift.shell import psql

REST = "http://127.0.0.1:8008"


class DaemonState(FactBase):
    """
    Whether systemd runs this host, and whether a process named ``process`` runs.

    .. code:: python

        {"systemd": False, "running": True}
    """

    default = dict

    def command(self, process: str) -> str:
        return (
            "if [ -d /run/systemd/system ]; then echo systemd; else echo none; fi; "
            f"if pgrep -x {shlex.quote(process)} >/dev/null; then echo running; else echo stopped; fi"
        )

    def process(self, output):
        return {"systemd": output[0] == "systemd", "running": output[1] == "running"}


class PatroniRest(FactBase):
    """What one GET of Patroni's REST API on this member returns, as JSON; empty when Patroni does not answer."""

    default = dict

    def requires_command(self, *args, **kwargs) -> str:
        return "curl"

    def process(self, output):
        text = "\n".join(output).strip()
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}


class PatroniDynamicConfig(PatroniRest):
    """
    The cluster's dynamic configuration, as Patroni's GET /config on this
    member returns it; empty when Patroni does not answer (not started yet).

    .. code:: python

        {"ttl": 12, "loop_wait": 2, "postgresql": {"parameters": {"work_mem": "4MB"}}}
    """

    def command(self) -> str:
        return f"curl -sf --max-time 5 {REST}/config || true"


class PatroniMember(PatroniRest):
    """
    This member as Patroni's GET /patroni describes it (state, role, timeline,
    pending_restart); empty when Patroni does not answer.

    .. code:: python

        {"state": "running", "role": "primary", "timeline": 1}
    """

    def command(self) -> str:
        return f"curl -s --max-time 5 {REST}/patroni || true"


def userlist_query(roles: list[str]) -> str:
    """SQL printing PgBouncer's auth_file lines ("role" "SCRAM-SHA-256$..."), one a role with a password."""
    names = ", ".join(quote_literal(r) for r in roles)
    return (f"SELECT '\"' || rolname || '\" \"' || rolpassword || '\"' FROM pg_authid "
            f"WHERE rolname IN ({names}) AND rolpassword IS NOT NULL ORDER BY rolname")


class PoolerUserlist(FactBase):
    """
    Whether PgBouncer's auth_file holds exactly the roles' current verifiers
    (compared on the host: the verifiers themselves are never printed), or
    whether PostgreSQL does not answer here yet.

    .. code:: python

        {"state": "differs"}   # or "same", "no server"
    """

    default = dict

    def command(self, path: str, roles: list[str], port: int = 5432) -> str:
        query = psql("postgres", port, "-At", "-c", shlex.quote(userlist_query(roles)))
        return (f"lines=$({query} 2>/dev/null) || {{ echo 'no server'; exit 0; }}; "
                f"if printf '%s\\n' \"$lines\" | cmp -s - {shlex.quote(path)}; then echo same; else echo differs; fi")

    def process(self, output):
        return {"state": output[0] if output else "no server"}


ETCD = "http://127.0.0.1:2379"


class EtcdAuth(FactBase):
    """
    Whether the cluster's etcd asks for a user (``etcdctl auth status`` on
    this member's etcd: it answers "false" while authentication is off, and
    refuses a caller with no user once it is on), or why it cannot tell.

    .. code:: python

        {"enabled": True}   # or {"enabled": False}, {"error": "context deadline exceeded"}
    """

    default = dict

    def requires_command(self) -> str:
        return "etcdctl"

    def command(self) -> str:
        return f"etcdctl --endpoints={ETCD} --command-timeout=5s auth status 2>&1 || true"

    def process(self, output):
        text = "\n".join(output)
        if "Authentication Status: false" in text:
            return {"enabled": False}
        if "Authentication Status: true" in text or "user name is empty" in text:
            return {"enabled": True}
        errors = [line for line in output if "Error" in line] or output or ["no answer"]
        return {"error": errors[-1].strip()[:200]}

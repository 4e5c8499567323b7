"""
A Patroni cluster: an inventory whose hosts' data set ``patroni_cluster``
(its scope). Each member runs etcd (one of a three-member DCS), Patroni
(which runs PostgreSQL), PgBouncer (in front of its own PostgreSQL) and
HAProxy (the read-write and read-only endpoints, routed by Patroni's REST
health checks). What ``ops`` and the deploy share about it: the members, the
packages, the paths, which member is the primary, and the ``ops cluster``
commands (through ``patronictl`` and Patroni's REST API on a member).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onesift.errors import BadInput, OpsError

if TYPE_CHECKING:
    from onesift.session import HostSession

PATRONI_CONFIG = "/etc/patroni/config.yml"  # where Debian's patroni.service reads it
PGBOUNCER_DIR = "/etc/pgbouncer"
HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"
ETCD_ENV = "/etc/default/etcd"  # Debian's etcd.service reads ETCD_* from it


def packages(pg_version: int) -> list[str]:
    """Debian packages of a cluster member, beside the single host's (deploy/server.py packages).
    python3-etcd explicitly: Patroni's dependency is satisfied by python3-consul,
    and without python3-etcd Patroni offers only consul and kubernetes."""
    return [f"postgresql-{pg_version}", "patroni", "python3-etcd", "etcd-server", "etcd-client",
            "pgbouncer", "haproxy", "curl"]


def data_dir(pg_version: int) -> str:
    # Not Debian's 17/main: Patroni owns this directory (initdb, basebackup,
    # pg_rewind), and pg_ctlcluster must never start it behind Patroni's back.
    return f"/var/lib/postgresql/{pg_version}/patroni"


def bin_dir(pg_version: int) -> str:
    return f"/usr/lib/postgresql/{pg_version}/bin"


def is_cluster(data) -> bool:
    return bool(data.get("patroni_cluster"))


def member_name(host_name: str, data) -> str:
    """The member's Patroni name (also its etcd name): host data patroni_name, else the host's name."""
    name = data.get("patroni_name") or host_name.split("/")[-1]
    return str(name)


def member_address(host_name: str, data) -> str:
    """Where the other members reach this one: host data patroni_address, else its Patroni name."""
    return str(data.get("patroni_address") or member_name(host_name, data))


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader, sync_standby, replica, standby_leader
    state: str  # running, streaming, starting, stopped, ...
    host: str
    timeline: int | None
    lag: int | None  # bytes behind the leader (None: unknown)
    pending_restart: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "state": self.state, "host": self.host,
                "timeline": self.timeline, "lag_bytes": self.lag, "pending_restart": self.pending_restart}


def members_from(cluster: dict) -> list[Member]:
    """Patroni's GET /cluster answer as Members."""
    found = []
    for m in cluster.get("members", []):
        lag = m.get("lag")
        found.append(Member(
            name=m.get("name", "?"), role=m.get("role", "?"), state=m.get("state", "?"),
            host=str(m.get("host", "")), timeline=m.get("timeline"),
            lag=lag if isinstance(lag, int) else None, pending_restart=bool(m.get("pending_restart")),
        ))
    return found


def problems(members: list[Member], synchronous: bool, max_lag: int) -> list[str]:
    """Why the cluster is unhealthy (empty: healthy): no single running leader, a member
    not streaming, a replica more than ``max_lag`` bytes behind, no synchronous standby
    in synchronous mode."""
    found = []
    leaders = [m for m in members if m.role in ("leader", "primary", "master")]
    if len(leaders) != 1:
        found.append(f"{len(leaders)} leaders")
    for m in leaders:
        if m.state != "running":
            found.append(f"leader {m.name} is {m.state}")
    for m in members:
        if m in leaders:
            continue
        if m.state != "streaming":
            found.append(f"{m.name} is {m.state}, not streaming")
        elif m.lag is None or m.lag > max_lag:
            found.append(f"{m.name} lags {m.lag if m.lag is not None else 'unknown'} bytes (most {max_lag})")
        if leaders and m.timeline != leaders[0].timeline:
            found.append(f"{m.name} is on timeline {m.timeline}, the leader on {leaders[0].timeline}")
    if synchronous and not any(m.role == "sync_standby" for m in members):
        found.append("synchronous_mode is on and no member is a synchronous standby")
    return found


REST = "http://127.0.0.1:8008"


def rest_get(s: HostSession, path: str):
    """GET Patroni's REST API on the session's host (no authentication: read-only endpoints)."""
    lines = s.shell(f"curl -sf --max-time 5 {REST}{shlex.quote(path)}")
    try:
        return json.loads("\n".join(lines))
    except ValueError:
        raise OpsError(f"Patroni on {s.name} answered {path} with no JSON") from None


def patronictl(s: HostSession, *words: str) -> list[str]:
    """patronictl on the session's host, as postgres (it reads the REST password from Patroni's config file)."""
    args = " ".join(shlex.quote(w) for w in words)
    return s.shell(f"runuser -u postgres -- patronictl -c {PATRONI_CONFIG} {args} 2>&1")


def scope(s: HostSession) -> str:
    return str(s.data["patroni_cluster"])


def require_cluster(s: HostSession) -> None:
    if not is_cluster(s.data):
        raise BadInput(f"{s.inventory} is not a Patroni cluster inventory (no patroni_cluster in its data)")


def status(s: HostSession) -> tuple[list[Member], list[str]]:
    """The members (GET /cluster on a member) and what is wrong with them."""
    require_cluster(s)
    members = members_from(rest_get(s, "/cluster"))
    config = rest_get(s, "/config")
    synchronous = bool(config.get("synchronous_mode"))
    max_lag = int(config.get("maximum_lag_on_failover") or 1048576)
    return members, problems(members, synchronous, max_lag)


def leader(members: list[Member]) -> Member | None:
    return next((m for m in members if m.role in ("leader", "primary", "master")), None)


def known(members: list[Member], node: str) -> Member:
    for m in members:
        if m.name == node:
            return m
    raise BadInput(f"no member {node!r} in the cluster; members: {', '.join(m.name for m in members)}")


def succeeded(output: list[str], what: str) -> str:
    """patronictl's output, or OpsError with its last line: a refused switchover or failover
    (candidate not healthy, lagging) is printed and exits 0."""
    text = "\n".join(output)
    if "Successfully" not in text:
        last = next((line for line in reversed(output) if line.strip()), "no output")
        raise OpsError(f"{what} did not happen: {last.strip()}")
    return text


def switchover(s: HostSession, to: str | None) -> str:
    """A planned switchover to ``to`` (default: Patroni picks a healthy replica); patronictl's output."""
    require_cluster(s)
    members = members_from(rest_get(s, "/cluster"))
    current = leader(members)
    if current is None:
        raise OpsError("the cluster has no leader to switch over from: use `ops cluster failover`")
    words = ["switchover", scope(s), "--leader", current.name, "--force"]
    if to:
        if known(members, to) == current:
            raise BadInput(f"{to} is the leader already")
        words += ["--candidate", to]
    return succeeded(patronictl(s, *words), "the switchover")


def failover(s: HostSession, to: str | None) -> str:
    """A manual failover (also without a healthy leader); patronictl's output."""
    require_cluster(s)
    members = members_from(rest_get(s, "/cluster"))
    words = ["failover", scope(s), "--force"]
    target = to or next((m.name for m in members if m.role in ("sync_standby", "replica") and m.state == "streaming"), None)
    if to:
        known(members, to)
    if target is None:
        raise OpsError("no streaming replica to fail over to")
    return succeeded(patronictl(s, *words, "--candidate", target), "the failover")


def reinit(s: HostSession, node: str) -> str:
    """Rebuild member ``node`` from the leader (its data directory is replaced); patronictl's output."""
    require_cluster(s)
    members = members_from(rest_get(s, "/cluster"))
    if known(members, node) == leader(members):
        raise BadInput(f"{node} is the leader: a reinit rebuilds a replica (switch over first)")
    return "\n".join(patronictl(s, "reinit", scope(s), node, "--force", "--wait"))

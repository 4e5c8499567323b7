"""
Keep a daemon running on its current configuration, with or without systemd
(a container host has none): etcd, Patroni, PgBouncer and HAProxy of a
cluster member. Under systemd Debian's own unit does it; elsewhere the deploy
starts the daemon itself, as it does cron (deploy/operations/cron.py).
"""

from __future__ import annotations

from typing import Callable, Union

from pyinfra import host
from pyinfra.api import operation

from deploy.facts.cluster import DaemonState


def detached(command: str, log: str) -> str:
    """``command`` started in a session of its own, out of the deploy's shell, logging to ``log``."""
    return f"setsid -f sh -c {quote(command)} >> {log} 2>&1 < /dev/null"


def quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@operation()
def running(unit: str, process: str, start: str, changed: Union[bool, Callable[[], bool]] = False,
            reload: str | None = None, restart: bool = False):
    """
    Start a daemon when it is not running; when its configuration ``changed``,
    reload it (``reload``, e.g. a SIGHUP), else restart it.

    + unit: its systemd unit (Debian's), used where systemd runs
    + process: its process name (``pgrep -x``)
    + start: the shell that starts it where no systemd runs (it must detach)
    + changed: whether its configuration changed in this deploy (a bool, or a
      callable asked at execution time, such as ``files.put(...).did_change``)
    + reload: the shell that makes it read its configuration again where no
      systemd runs; unset, a change restarts it
    + restart: a change restarts it even where a reload would do (a setting the
      daemon reads only when it starts)

    **Example:**

    .. code:: python

        conf = files.put(src=..., dest="/etc/pgbouncer/pgbouncer.ini")
        daemon.running(unit="pgbouncer", process="pgbouncer",
                       start="runuser -u postgres -- pgbouncer -d /etc/pgbouncer/pgbouncer.ini",
                       changed=conf.did_change, reload="pkill -HUP -x pgbouncer")
    """
    state = host.get_fact(DaemonState, process=process)
    was_changed = changed() if callable(changed) else bool(changed)
    if not state.get("running"):
        yield f"systemctl enable --now {unit}" if state.get("systemd") else start
    elif was_changed and state.get("systemd"):
        yield f"systemctl {'restart' if restart else 'reload-or-restart'} {unit}"
    elif was_changed:
        yield (not restart and reload) or f"pkill -x {process}; while pgrep -x {process} >/dev/null; do sleep 0.2; done; {start}"
    else:
        host.noop(f"{process} is running its current configuration")

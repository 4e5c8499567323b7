"""
etcd, a Patroni cluster's DCS: its authentication, on once for the cluster.
"""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation

from deploy.facts.cluster import ETCD, DaemonState, EtcdAuth
from onesift.cluster import PATRONI_CONFIG
from onesift.shell import WORK_DIR


def enable_script(path: str, user: str, prefix: str, timeout: int) -> str:
    """The shell that turns authentication on, each step only when not done yet, reading the
    two passwords from ``path`` (root's, then ``user``'s), which it removes; exit 1 on a failed step."""
    e = "$etcdctl"
    u, p = shlex.quote(user), shlex.quote(prefix)
    steps = " && ".join([
        f"{{ {e} user get root >/dev/null 2>&1 || sed -n 1p {path} | {e} user add root --interactive=false; }}",
        f"{e} user grant-role root root",
        f"{{ {e} role get {u} >/dev/null 2>&1 || {e} role add {u}; }}",
        f"{e} role grant-permission {u} --prefix=true readwrite {p}",
        f"{{ {e} user get {u} >/dev/null 2>&1 || sed -n 2p {path} | {e} user add {u} --interactive=false; }}",
        f"{e} user grant-role {u} {u}",
        f"{e} auth enable",
    ])
    return (f"trap 'rm -f {path}' EXIT; etcdctl='etcdctl --endpoints={ETCD} --command-timeout=5s'; "
            f"for i in $(seq {int(timeout)}); do {e} endpoint health >/dev/null 2>&1 && break; sleep 1; done; "
            f"status=$({e} auth status 2>&1) || case \"$status\" in *'user name is empty'*) exit 0 ;; "
            f"*) echo \"etcd does not answer: ${{status##*Error: }}\" >&2; exit 1 ;; esac; "
            f"case \"$status\" in *'Authentication Status: false'*) {{ {steps}; }} >/dev/null ;; esac")


@operation()
def authentication(root_password: str, user: str, password: str, prefix: str, scope: str, pause_marker: str,
                   timeout: int = 60):
    """
    Turn etcd's authentication on for the cluster: a root user (etcd needs one
    before it asks anyone for a user), and ``user`` with a role of its own that
    may read and write the keys under ``prefix`` only. Until then anyone who
    reaches a member's client port can delete the leader lock or rewrite the
    dynamic configuration, and with it every member's pg_hba. The passwords
    reach etcdctl on stdin, from an uploaded file in a 0700 directory that the
    command removes; never argv. Run it on one member: etcd's users are the
    cluster's.

    Patroni (4.0.7) logs in to etcd only when it starts: one that started
    while etcd asked for nobody goes on without a token, and every write it
    makes is refused. So on a cluster made before this, Patroni runs here
    already: the cluster is paused first (``patronictl pause --wait``,
    leaving ``pause_marker``), every member's Patroni is restarted with its
    etcd user (paused, it leaves PostgreSQL running), and
    ``patroni.resume_paused`` resumes it.

    + root_password: etcd's root user's
    + user: the user Patroni logs in as
    + password: that user's
    + prefix: the keys it may read and write (Patroni's namespace and scope)
    + scope: the Patroni cluster's name, to pause it
    + pause_marker: the file that says this operation paused the cluster
    + timeout: seconds to wait for etcd to answer

    **Example:**

    .. code:: python

        etcd.authentication(root_password=pw["etcd_root"], user="patroni", password=pw["etcd_patroni"],
                            prefix="/service/onesift/", scope="onesift",
                            pause_marker="/var/lib/onesift/deploy/paused-for-etcd-auth", _if=on_first_member)
    """
    if host.get_fact(EtcdAuth).get("enabled"):
        host.noop("etcd asks every client for a user")
        return
    path = f"{WORK_DIR}/etcd-passwords"
    yield StringCommand(f"install -d -m 0700 {WORK_DIR}")
    yield FileUploadCommand(StringIO(f"{root_password}\n{password}\n"), path)
    if host.get_fact(DaemonState, process="patroni").get("running"):
        # Paused by an earlier run that stopped half way: not again (patronictl would refuse).
        marker = shlex.quote(pause_marker)
        yield StringCommand(f"[ -f {marker} ] || {{ timeout 120 runuser -u postgres -- patronictl -c {PATRONI_CONFIG} "
                            f"pause --wait {shlex.quote(scope)} >/dev/null && touch {marker}; }}")
    yield StringCommand(enable_script(path, user, prefix, timeout))

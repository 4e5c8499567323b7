"""How the deploy reads facts: reused within a run until something changes; SSH without Nagle delays. No host needed."""

import socket

from pyinfra.context import ctx_host

from onesift import ssh
from deploy.facts.postgres import PgDeployState, PgRoleAttributes, guarded_query
from deploy.operations.pg import read_fact


class Meta:
    def __init__(self, executed):
        self.executed = executed


class OpData:
    def __init__(self, executed):
        self.operation_meta = Meta(executed)


class State:
    current_stage = "execute"

    def __init__(self):
        self.ops = {}


class Host:
    def __init__(self):
        self.state = State()
        self.state.ops[self] = {}
        self.reads = []

    def get_fact(self, cls, **kwargs):
        self.reads.append(cls.__name__)
        return {"read": len(self.reads)}


def test_fact_read_once_until_an_operation_runs_a_command():
    h = Host()
    with ctx_host.use(h):
        first = read_fact(PgDeployState, database="onesift", port=5432)
        assert read_fact(PgDeployState, database="onesift", port=5432) is first
        read_fact(PgRoleAttributes, port=5432)
        assert h.reads == ["PgDeployState", "PgRoleAttributes"]

        h.state.ops[h]["noop"] = OpData(executed=False)
        assert read_fact(PgDeployState, database="onesift", port=5432) is first

        h.state.ops[h]["changed"] = OpData(executed=True)
        assert read_fact(PgDeployState, database="onesift", port=5432) == {"read": 3}
        assert read_fact(PgDeployState, database="other", port=5432) == {"read": 4}

        h.state.current_stage = "next"
        assert read_fact(PgDeployState, database="onesift", port=5432) == {"read": 5}


def test_fact_read_without_a_record_of_operations_is_never_reused():
    h = Host()
    h.state.ops = None
    with ctx_host.use(h):
        read_fact(PgDeployState, database="onesift", port=5432)
        read_fact(PgDeployState, database="onesift", port=5432)
    assert h.reads == ["PgDeployState", "PgDeployState"]


def test_guarded_query_is_one_psql_process():
    cmd = guarded_query("SELECT 1", "onesift", 5432, needs_table="system.deploy_state")
    assert cmd.count("psql ") == 1 and "pg_isready" in cmd.split("ONESIFT_SQL\n")[-1]
    assert "\\connect 'onesift'" in cmd and "to_regclass('system.deploy_state')" in cmd
    # Names are SQL literals inside the script: a quote cannot end them.
    assert "datname = 'on''e'" in guarded_query("SELECT 1", "on'e", 5432)


class Connector:
    def __init__(self, sock):
        self.client = type("Client", (), {"get_transport": lambda _: type("T", (), {"sock": sock})()})()


def test_enable_nodelay_sets_tcp_nodelay_after_connect(monkeypatch):
    server = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(server.getsockname())
    b, _ = server.accept()
    calls = []
    monkeypatch.setattr(ssh.SSHConnector, "connect", lambda self: calls.append(self))
    ssh.enable_nodelay()
    ssh.enable_nodelay()  # idempotent: one wrapper
    conn = Connector(a)
    try:
        assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        ssh.SSHConnector.connect(conn)
        assert calls == [conn]
        assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        for s in (a, b, server):
            s.close()

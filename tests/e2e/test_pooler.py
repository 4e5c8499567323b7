"""
Tenant isolation through a real pooler (issue 8.4): Debian's PgBouncer in
transaction mode, run by the fixture as an unprivileged user, in front of
the dev host. Concurrent clients mix the intended pattern with misuse, and
no client may see one row of a tenant its own transaction did not choose.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from onesift.render import quote_ident
from tests.e2e.test_tenants import count

POOLER_PORT = int(os.environ.get("ONESIFT_POOLER_PORT") or 6440)
TENANTS = 12
CLIENTS = 24       # twice the pool, so server connections pass between clients
POOL_SIZE = 4
SECONDS = 8
RUN_AS = "nobody"  # PgBouncer refuses to run as root


def pooler_config(dev, home: Path) -> Path:
    (home / "users.txt").write_text(f'"onesift_app" "{dev.passwords["app"]}"\n')
    ini = home / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"onesift = host=127.0.0.1 port={dev.pg_port} dbname=onesift\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {POOLER_PORT}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {home / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 200\n"
        # The host's pg_hba wants TLS from the bridge address published ports arrive from.
        "server_tls_sslmode = require\n"
        "server_reset_query =\n"  # transaction mode never resets: the realistic worst case
    )
    return ini


@pytest.fixture(scope="module")
def pooler(dev):
    # Not under pytest's tmp dir: that is root's alone, and RUN_AS must reach it.
    home = Path(tempfile.mkdtemp(prefix="onesift-pooler-", dir="/var/tmp"))
    ini = pooler_config(dev, home)
    shutil.chown(home, RUN_AS)
    home.chmod(0o700)
    for f in home.iterdir():
        shutil.chown(f, RUN_AS)
        f.chmod(0o600)
    # Its log goes to a file: a pipe nobody reads fills up and stalls PgBouncer.
    with open(home / "pgbouncer.log", "w") as log:
        proc = subprocess.Popen(["runuser", "-u", RUN_AS, "--", "pgbouncer", str(ini)],
                                stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", POOLER_PORT), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, (home / "pgbouncer.log").read_text()
            time.sleep(0.2)
    yield dev
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(home)


@pytest.fixture(scope="module")
def tenants(pooler):
    """TENANTS tenants with 10, 20, ... leads each: a foreign row is never mistaken for an own one."""
    dev = pooler
    slugs = [f"pool{i:02d}" for i in range(TENANTS)]
    for s in slugs:
        dev.ops("tenant", "drop", s, "--yes")
        assert dev.ops("tenant", "create", s, "--name", s, "--mode", "api").returncode == 0
    with dev.connect("owner") as conn:
        for i, s in enumerate(slugs):
            conn.execute("SELECT system.act_as_tenant(%s)", [s])
            conn.execute(f"INSERT INTO {quote_ident('tenant_' + s)}.leads (email) "
                         "SELECT 'l' || g || '@x.io' FROM generate_series(1, %s) g", [10 * (i + 1)])
            conn.commit()
    yield {s: 10 * (i + 1) for i, s in enumerate(slugs)}
    for s in slugs:
        dev.ops("tenant", "drop", s, "--yes")


def pooled(dev) -> psycopg.Connection:
    # prepare_threshold=None: no server-side prepared statements, as a transaction pool needs.
    return psycopg.connect(host="127.0.0.1", port=POOLER_PORT, dbname="onesift", user="onesift_app",
                           password=dev.passwords["app"], autocommit=True, prepare_threshold=None,
                           connect_timeout=10)


class Client:
    """One application client: each round is the intended pattern or one kind of misuse."""

    def __init__(self, dev, rows: dict[str, int], seed: int):
        self.dev, self.rows, self.slugs = dev, rows, sorted(rows)
        self.rnd = random.Random(seed)
        self.seen = Counter()  # what happened, and "foreign": rows of a tenant not chosen
        self.conn = pooled(dev)

    def run(self, until: float) -> None:
        rounds = [self.correct, self.session_set, self.outside, self.error, self.foreign_write, self.disconnect]
        while time.monotonic() < until:
            try:
                self.rnd.choice(rounds)()
            except psycopg.OperationalError:
                self.seen["reconnect"] += 1
                self.conn = pooled(self.dev)

    def look(self, chosen: str | None, slug: str | None = None) -> None:
        slug = slug or self.rnd.choice(self.slugs)
        got = count(self.conn, slug)
        if slug == chosen:
            self.seen["own_ok" if got == self.rows[slug] else "own_wrong"] += 1
        else:
            self.seen["foreign"] += got

    def correct(self) -> None:
        me = self.rnd.choice(self.slugs)
        with self.conn.transaction():
            self.conn.execute("SELECT system.use_tenant(%s)", [me])
            self.look(me, me)
            self.look(me)
        self.seen["correct"] += 1

    def session_set(self) -> None:
        s = self.rnd.choice(self.slugs)
        forge = self.rnd.choice([f"SET onesift.tenant = '{s}'", f"SELECT set_config('onesift.tenant', '{s}', false)"])
        try:
            self.conn.execute(forge)
            self.seen["session_set"] += 1  # taken: the looks below must still see nothing
        except errors.InsufficientPrivilege:
            self.seen["session_set_refused"] += 1
        self.look(None)
        if self.rnd.random() < 0.5:  # the same, inside a transaction of another tenant
            other = self.rnd.choice(self.slugs)
            try:
                with self.conn.transaction():
                    self.conn.execute("SELECT system.use_tenant(%s)", [other])
                    self.conn.execute(f"SELECT set_config('onesift.tenant', '{s}', true)")
                    if s != other:
                        self.look(None, s)
                self.seen["local_set"] += 1
            except errors.InsufficientPrivilege:
                self.seen["local_set_refused"] += 1

    def outside(self) -> None:
        self.look(None)
        self.seen["outside"] += 1

    def error(self) -> None:
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT system.use_tenant(%s)", [self.rnd.choice(self.slugs)])
                self.conn.execute("SELECT 1 / 0")
        except errors.DivisionByZero:
            self.seen["rolled_back"] += 1
        self.look(None)

    def foreign_write(self) -> None:
        me, other = self.rnd.sample(self.slugs, 2)
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT system.use_tenant(%s)", [me])
                self.conn.execute(f"INSERT INTO {quote_ident('tenant_' + other)}.leads (email) VALUES ('x@x.io')")
            self.seen["foreign_write"] += 1
        except errors.InsufficientPrivilege:
            self.seen["write_refused"] += 1

    def disconnect(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT system.use_tenant(%s)", [self.rnd.choice(self.slugs)])
        self.conn.close()  # mid-transaction: PgBouncer must roll it back before reuse
        self.seen["disconnect"] += 1
        self.conn = pooled(self.dev)


def test_no_foreign_rows_through_a_transaction_pool(pooler, tenants):
    clients = [Client(pooler, tenants, seed) for seed in range(CLIENTS)]
    until = time.monotonic() + SECONDS
    threads = [threading.Thread(target=c.run, args=(until,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    seen = sum((c.seen for c in clients), Counter())
    for c in clients:
        c.conn.close()
    # The run did what it claims: every kind of misuse, many times over.
    for kind in ("correct", "session_set_refused", "local_set_refused", "outside", "rolled_back", "write_refused",
                 "disconnect"):
        assert seen[kind] >= 20, seen
    assert seen["own_ok"] >= seen["correct"] and seen["own_wrong"] == 0, seen
    assert seen["foreign"] == 0 and seen["foreign_write"] == 0, seen

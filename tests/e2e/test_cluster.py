"""
The Patroni cluster (issue 13): three container hosts on their own network
(inventories/cluster.py), each with etcd, Patroni, PgBouncer and HAProxy,
deployed by deploy.py. One cluster is shared by the module; the tests that
break it leave it healthy again (every member streaming) for the next.
Bounded: each write load runs for seconds, not minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import psycopg
import pytest

from deploy.cluster import PATRONI_START
from onesift import secrets
from onesift.cluster import PATRONI_CONFIG, data_dir
from onesift.local_hosts import bring_up_cluster, cluster_hosts
from tests.e2e.conftest import assert_deploy_changes_nothing, run

INVENTORY = "inventories/cluster.py"
ETCDCTL = "etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=5s"  # a member's own etcd, no user
PATRONICTL = f"runuser -u postgres -- patronictl -c {PATRONI_CONFIG}"
OPS = [sys.executable, "-m", "ops_cli.main"]
# How long a write may take to come back through the endpoint in a test (the
# < 10 s target is the bench's, bench/cluster.py): generous for a shared 2-core machine.
RESUME_BOUND = 60


class Cluster:
    def __init__(self):
        bring_up_cluster(seed=False)
        self.members = {h.container: h for h in cluster_hosts()}
        self.inventory = INVENTORY
        self.passwords = secrets.load("cluster")
        self.stopped: str | None = None  # a member a test left stopped for the next

    def ops(self, *args) -> subprocess.CompletedProcess:
        return run([*OPS, *args, "-i", self.inventory])

    def pyinfra(self, deploy: str, *options: str) -> subprocess.CompletedProcess:
        return run([sys.executable, "-m", "pyinfra", "-y", *options, self.inventory, deploy])

    def rest(self, path: str, member: str | None = None):
        """Patroni's REST API through a member's published port (the first that answers)."""
        for name in [member] if member else list(self.members):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.members[name].ports['8008/tcp']}{path}", timeout=3) as r:
                    return json.loads(r.read())
            except OSError:
                continue
        return None

    def roles(self) -> dict[str, tuple[str, str, int | None]]:
        found = self.rest("/cluster") or {"members": []}
        return {m["name"]: (m["role"], m["state"], m.get("timeline")) for m in found["members"]}

    def leader(self) -> str | None:
        return next((n for n, (role, state, _) in self.roles().items() if role == "leader" and state == "running"), None)

    def wait_healthy(self, seconds: float = 120) -> dict:
        """Until every member streams from a running leader on its timeline (a sync standby among them)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            roles = self.roles()
            leaders = [r for r in roles.values() if r[0] == "leader" and r[1] == "running"]
            if len(roles) == 3 and len(leaders) == 1 and all(
                    r[1] == "streaming" and r[2] == leaders[0][2] for r in roles.values() if r[0] != "leader") \
                    and any(r[0] == "sync_standby" for r in roles.values()):
                return roles
            time.sleep(1)
        raise AssertionError(f"cluster not healthy after {seconds}s: {self.roles()}")

    def endpoint(self, member: str) -> int:
        """The read-write endpoint (HAProxy) on ``member``, as published on loopback."""
        return self.members[member].ports["5000/tcp"]

    def connect(self, port: int, role: str = "app", **kwargs) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=port, dbname="onesift", user=f"onesift_{role}",
                               password=self.passwords[role], connect_timeout=2, **kwargs)

    def exec(self, member: str, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "exec", member, "sh", "-c", command], capture_output=True, text=True)

    def sql(self, member: str, query: str) -> str:
        out = self.exec(member, f"runuser -u postgres -- psql -X -At -d onesift -c \"{query}\"")
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def other_than(self, *names: str) -> str:
        return next(n for n in self.members if n not in names)

    def restart_member(self, member: str) -> None:
        """A stopped member's container started and its daemons with it: the deploy, on it alone."""
        subprocess.run(["podman", "start", member], check=True, capture_output=True)
        out = self.pyinfra("deploy.py", "--limit", f"@docker/{member}")
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]


@pytest.fixture(scope="module")
def ha() -> Cluster:
    return Cluster()


@pytest.fixture(scope="module")
def load_tenant(ha) -> str:
    slug = "ha" + uuid.uuid4().hex[:8]
    out = ha.ops("tenant", "create", slug, "--name", slug, "--mode", "api")
    assert out.returncode == 0, out.stderr
    return slug


class Writer:
    """A bounded write load through one endpoint: one lead a transaction, as the app writes
    (use_tenant, then INSERT), numbered; each number the server acknowledged is kept."""

    def __init__(self, ha: Cluster, port: int, slug: str):
        self.ha, self.port, self.slug = ha, port, slug
        self.tag = uuid.uuid4().hex[:6]  # leads.email is unique: each writer's own numbers
        self.acked: list[int] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.events: list[tuple[float, bool]] = []  # (when it ended, acknowledged)

    def run(self) -> None:
        conn, n = None, 0
        while not self.stop.is_set():
            n += 1
            try:
                if conn is None:
                    conn = self.ha.connect(self.port, prepare_threshold=None)
                with conn.transaction():
                    conn.execute("SELECT system.use_tenant(%s)", [self.slug])
                    conn.execute(f'INSERT INTO "tenant_{self.slug}".leads (email) VALUES (%s)', [f"w{self.tag}-{n}@load.io"])
                self.acked.append(n)
                self.events.append((time.monotonic(), True))
            except psycopg.Error:
                self.failures += 1
                self.events.append((time.monotonic(), False))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
            time.sleep(0.01)  # ~50-100 writes a second: bounded load

    def __enter__(self) -> "Writer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)

    def wait_writes(self, count: int = 20, seconds: float = 30) -> None:
        start, deadline = len(self.acked), time.monotonic() + seconds
        while len(self.acked) < start + count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.acked) >= start + count, f"only {len(self.acked) - start} writes in {seconds}s"

    def resumed_after(self, since: float, seconds: float = RESUME_BOUND) -> float:
        """Seconds from ``since`` (the kill) to the write that ended the outage: the
        acknowledgement after the longest gap between acknowledgements. Through PgBouncer a
        client may see no error at all, only a write that waits until the server is back."""
        deadline = since + seconds
        while time.monotonic() < deadline:
            events = list(self.events)
            before = [t for t, ok in events if ok and t <= since]
            acks = [t for t, ok in events if ok and t > since]
            times = before[-1:] + acks
            if len(times) > 1:
                gap, ended = max((b - a, b) for a, b in zip(times, times[1:]))
                if gap > 0.5 and sum(1 for t in acks if t > ended) >= 10:
                    return ended - since
                flowing = time.monotonic() - times[-1] < 0.5  # else an outage is going on
                if flowing and gap <= 0.5 and time.monotonic() > since + 15:  # no outage at all
                    return acks[0] - since
            time.sleep(0.05)
        raise AssertionError(f"no write through the endpoint within {seconds}s")


def present(ha: Cluster, slug: str, w: Writer) -> set[int]:
    """The writes ``w`` had acknowledged that the current primary has."""
    rows = ha.sql(ha.leader(), f"SELECT email FROM \\\"tenant_{slug}\\\".leads WHERE email LIKE 'w{w.tag}-%@load.io'")
    have = {int(line.split("-", 1)[1].split("@")[0]) for line in rows.splitlines() if line}
    return set(w.acked) & have


def test_cluster_deploys_and_redeploy_changes_nothing(ha):
    roles = ha.wait_healthy()
    assert sorted(r[0] for r in roles.values()) == ["leader", "replica", "sync_standby"]
    assert_deploy_changes_nothing(ha)
    out = ha.ops("cluster", "status", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(out.stdout)
    assert status["healthy"] and len(status["members"]) == 3
    # PostgreSQL's settings came through Patroni's dynamic configuration, the same on every member.
    config = ha.rest("/config")
    assert config["synchronous_mode"] is True
    assert config["postgresql"]["parameters"]["shared_preload_libraries"] == "pg_stat_statements,onesift_guard"
    # etcd asks for a user: nobody else on the members' network can take the leader lock or rewrite
    # the dynamic configuration (pg_hba with it), and Patroni's user may touch this cluster's keys only.
    as_patroni = f"ETCDCTL_USER=patroni:$(sed -n 's/^  password: \"\\(.*\\)\"$/\\1/p' {PATRONI_CONFIG}) {ETCDCTL}"
    for member in ha.members:
        out = ha.exec(member, f"{ETCDCTL} put /service/onesift/leader {member}")
        assert out.returncode != 0 and "user name is empty" in out.stderr, out.stdout + out.stderr
        out = ha.exec(member, f"{as_patroni} get --prefix --keys-only /service/onesift/")
        assert out.returncode == 0 and "/service/onesift/leader" in out.stdout, out.stdout + out.stderr
        out = ha.exec(member, f"{as_patroni} put /service/another/leader {member}")
        assert out.returncode != 0 and "permission denied" in out.stderr, out.stdout + out.stderr
    for member in ha.members:
        assert ha.sql(member, "SHOW shared_preload_libraries") == "pg_stat_statements,onesift_guard"
        # The deploy's schema reached every member through replication.
        assert ha.sql(member, "SELECT count(*) > 0 FROM system.deploy_state") == "t"


def test_tenant_isolation_through_the_endpoint_and_the_pooler(ha):
    a, b = "ha" + uuid.uuid4().hex[:8], "ha" + uuid.uuid4().hex[:8]
    for s in (a, b):
        out = ha.ops("tenant", "create", s, "--name", s, "--mode", "api")
        assert out.returncode == 0, out.stderr
    port = ha.endpoint(ha.other_than())
    # The app's own way: named prepared statements through PgBouncer in transaction mode
    # (prepare_threshold=0 prepares every statement; max_prepared_statements keeps them working).
    with ha.connect(port, prepare_threshold=0, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        for slug, n in ((a, 3), (b, 5)):
            with conn.transaction():
                conn.execute("SELECT system.use_tenant(%s)", [slug])
                for i in range(n):
                    conn.execute(f'INSERT INTO "tenant_{slug}".leads (email) VALUES (%s)', [f"l{i}@{slug}.io"])
        for _ in range(3):  # each transaction may land on another server connection
            with conn.transaction():
                conn.execute("SELECT system.use_tenant(%s)", [a])
                assert conn.execute(f'SELECT count(*) FROM "tenant_{a}".leads').fetchone()[0] == 3
                assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0
            assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SET onesift.tenant = '{b}'")
    # The read-only endpoint reaches a replica, which refuses writes.
    with ha.connect(ha.members[ha.other_than()].ports["5001/tcp"], autocommit=True) as ro:
        assert ro.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True


SCRATCH = "/var/lib/postgresql/onesift-scratch"
PITR = "/usr/local/sbin/onesift-pitr"


def scratch_emails(ha: Cluster, member: str, slug: str) -> list[str]:
    """The tenant's leads in the scratch instance a kept restore left on ``member``."""
    out = ha.exec(member, f"runuser -u postgres -- psql -X -At -h {SCRATCH} -p 5499 -d onesift "
                          f"-c 'SELECT email FROM \"tenant_{slug}\".leads ORDER BY 1'")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def add_leads(ha: Cluster, slug: str, *emails: str) -> str:
    """Leads written through the read-write endpoint, in one transaction; the server's time after its commit."""
    with ha.connect(ha.endpoint(ha.other_than()), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT system.use_tenant(%s)", [slug])
            for e in emails:
                conn.execute(f'INSERT INTO "tenant_{slug}".leads (email) VALUES (%s)', [e])
        return conn.execute("SELECT clock_timestamp()").fetchone()[0].isoformat()


def test_cluster_archives_into_one_repository_that_every_member_sees(ha):
    ha.wait_healthy()
    out = ha.ops("backup", "run")  # the nightly logical dump, on the primary
    assert out.returncode == 0, out.stdout + out.stderr
    out = ha.ops("backup", "status", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(out.stdout)["pgbackrest"]
    assert status["last_full"] and not status["problems"] and status["check"] == "ok", status
    assert status["archiver"]["archived_count"] > 0
    for member in ha.members:  # the same stanza, and so the same backups, from every member
        out = ha.exec(member, "runuser -u postgres -- pgbackrest --stanza=onesift --output=json info")
        assert out.returncode == 0, out.stderr
        assert [b["label"] for b in json.loads(out.stdout)[0]["backup"]] == [
            b["label"] for b in status["backups"]], member


def test_pitr_and_backups_go_on_after_a_switchover(ha):
    """Writes before a moment T, after it, and after a switchover: a restore to T has the first only,
    one to latest has all three (WAL of both timelines in the repository), a tenant goes back to T
    live, and the backup job runs on the new primary alone."""
    ha.wait_healthy()
    slug = "pt" + uuid.uuid4().hex[:8]
    out = ha.ops("tenant", "create", slug, "--name", slug, "--mode", "api")
    assert out.returncode == 0, out.stderr
    target = add_leads(ha, slug, "a@before.io")
    time.sleep(1)
    add_leads(ha, slug, "b@after.io")
    old = ha.leader()
    out = ha.ops("cluster", "switchover")
    assert out.returncode == 0, out.stdout + out.stderr
    ha.wait_healthy()
    new = ha.leader()
    assert new != old
    add_leads(ha, slug, "c@new-primary.io")

    # The cron line, on every member: the backup runs where the primary is, once.
    before = json.loads(ha.ops("backup", "status", "--json").stdout)["pgbackrest"]["backups"]
    for member in ha.members:
        out = ha.exec(member, f"/usr/local/sbin/onesift-on-primary {PITR} backup diff")
        assert out.returncode == 0, (member, out.stdout + out.stderr)
    after = json.loads(ha.ops("backup", "status", "--json").stdout)["pgbackrest"]["backups"]
    assert [b["type"] for b in after[len(before):]] == ["diff"], after

    out = ha.ops("backup", "pitr", "--to", target, "--keep")
    assert out.returncode == 0, out.stdout + out.stderr
    assert scratch_emails(ha, new, slug) == ["a@before.io"]
    out = ha.ops("backup", "pitr", "--to", "latest", "--keep")
    assert out.returncode == 0, out.stdout + out.stderr
    assert scratch_emails(ha, new, slug) == ["a@before.io", "b@after.io", "c@new-primary.io"]
    ha.exec(new, f"{PITR} stop")

    out = ha.ops("backup", "restore", "--tenant", slug, "--to", target, "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    for member in ha.members:  # live on the primary, and replicated
        deadline = time.monotonic() + 30
        while ha.sql(member, f"SELECT string_agg(email, ',') FROM \\\"tenant_{slug}\\\".leads") != "a@before.io":
            assert time.monotonic() < deadline, member
            time.sleep(0.5)
    out = ha.ops("backup", "pitr", "--to", "latest", "--in-place", "--yes")
    assert out.returncode == 2 and "Patroni cluster" in out.stderr, out.stdout + out.stderr


def test_postmaster_killed_writes_resume_through_the_same_endpoint(ha, load_tenant):
    ha.wait_healthy()
    primary = ha.leader()
    endpoint = ha.endpoint(ha.other_than(primary))
    with Writer(ha, endpoint, load_tenant) as w:
        w.wait_writes()
        killed = time.monotonic()
        out = ha.exec(primary, f"kill -9 $(head -1 {data_dir(17)}/postmaster.pid)")
        assert out.returncode == 0, out.stderr
        took = w.resumed_after(killed)
        print(f"\nkill -9 of {primary}'s postmaster: writes resumed through the endpoint after {took:.1f} s "
              f"({w.failures} failed attempts)")
        w.wait_writes()
    ha.wait_healthy()
    lost = set(w.acked) - present(ha, load_tenant, w)
    assert not lost, f"{len(lost)} acknowledged writes missing: {sorted(lost)[:10]}"


def test_primary_container_stopped_fails_over(ha, load_tenant):
    ha.wait_healthy()
    primary = ha.leader()
    endpoint_member = ha.other_than(primary)
    with Writer(ha, ha.endpoint(endpoint_member), load_tenant) as w:
        w.wait_writes()
        stopped = time.monotonic()
        subprocess.run(["podman", "stop", "-t", "0", primary], check=True, capture_output=True)
        ha.stopped = primary  # the next test brings it back
        took = w.resumed_after(stopped)
        print(f"\n{primary}'s container stopped: writes resumed through the endpoint after {took:.1f} s "
              f"({w.failures} failed attempts; ttl {ha.rest('/config', endpoint_member)['ttl']} s)")
        w.wait_writes()
    new = ha.leader()
    assert new and new != primary
    # Synchronous mode: every transaction acknowledged to the client is on the new primary.
    lost = set(w.acked) - present(ha, load_tenant, w)
    assert not lost, f"{len(lost)} acknowledged writes lost in synchronous mode: {sorted(lost)[:10]}"


def test_stopped_member_catches_up_and_rejoins_as_a_replica(ha, load_tenant):
    """The old primary, stopped while the others took writes, comes back as a replica
    (pg_rewind onto the new timeline) and catches up."""
    stopped = ha.stopped
    if stopped is None:  # run alone: stop a replica for a while
        ha.wait_healthy()
        stopped = ha.other_than(ha.leader())
        subprocess.run(["podman", "stop", "-t", "0", stopped], check=True, capture_output=True)
    endpoint = ha.endpoint(ha.other_than(stopped))
    with Writer(ha, endpoint, load_tenant) as w:
        w.wait_writes(200, seconds=60)
    rows = int(ha.sql(ha.leader(), f"SELECT count(*) FROM \\\"tenant_{load_tenant}\\\".leads"))
    ha.restart_member(stopped)
    ha.stopped = None
    roles = ha.wait_healthy()
    assert roles[stopped][0] in ("replica", "sync_standby")
    assert roles[stopped][2] == roles[ha.leader()][2]  # on the new primary's timeline
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if int(ha.sql(stopped, f"SELECT count(*) FROM \\\"tenant_{load_tenant}\\\".leads")) >= rows:
            break
        time.sleep(1)
    assert int(ha.sql(stopped, f"SELECT count(*) FROM \\\"tenant_{load_tenant}\\\".leads")) >= rows


def slot_name(member: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in member.lower())  # Patroni's slot for a member


def test_replica_stopped_past_its_slot_catches_up_from_the_repository(ha, load_tenant):
    """A replica stopped longer than its slot is kept (member_slots_ttl, 0 here to keep the test short),
    while the primary writes and recycles more WAL than wal_keep_size: back, it reads what it missed
    from the pgBackRest repository (restore_command), then streams again."""
    ha.wait_healthy()
    leader = ha.leader()
    replica = next(n for n, r in ha.roles().items() if r[0] == "replica")
    kept = ha.rest("/config").get("member_slots_ttl", 1800)
    assert ha.exec(leader, f"{PATRONICTL} edit-config --force --set member_slots_ttl=0 onesift").returncode == 0
    try:
        lsn = ha.sql(leader, "SELECT pg_current_wal_lsn()")
        subprocess.run(["podman", "stop", "-t", "0", replica], check=True, capture_output=True)
        ha.stopped = replica
        deadline = time.monotonic() + 90  # its member key expires (ttl), then Patroni drops its slot
        while ha.sql(leader, f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot_name(replica)}'") != "0":
            assert time.monotonic() < deadline, "the stopped replica's slot was not dropped"
            time.sleep(1)
        with Writer(ha, ha.endpoint(leader), load_tenant) as w:
            w.wait_writes(100, seconds=60)
        keep_mb = int(ha.sql(leader, "SELECT pg_size_bytes(current_setting('wal_keep_size')) / 1048576"))
        switches = keep_mb // 16 + 6
        ha.sql(leader, f"DO \\$\\$ BEGIN FOR i IN 1..{switches} LOOP INSERT INTO system.pitr_marker DEFAULT VALUES; "
                       "PERFORM pg_switch_wal(); END LOOP; END \\$\\$")
        # Archived up to now first: PostgreSQL keeps a segment until it is archived.
        out = ha.exec(leader, "runuser -u postgres -- pgbackrest --stanza=onesift check")
        assert out.returncode == 0, out.stdout + out.stderr
        ha.sql(leader, "CHECKPOINT")
        gone = ha.sql(leader, f"SELECT count(*) FROM pg_ls_waldir() WHERE name = pg_walfile_name('{lsn}')")
        assert gone == "0", "the primary still has the WAL the replica stopped at: the test proves nothing"
        rows = int(ha.sql(leader, f"SELECT count(*) FROM \\\"tenant_{load_tenant}\\\".leads"))
        ha.restart_member(replica)
        ha.stopped = None
        roles = ha.wait_healthy(180)
        assert roles[replica][1] == "streaming"
        assert int(ha.sql(replica, f"SELECT count(*) FROM \\\"tenant_{load_tenant}\\\".leads")) >= rows
    finally:
        ha.exec(ha.leader() or leader, f"{PATRONICTL} edit-config --force --set member_slots_ttl={int(kept)} onesift")


def test_a_cluster_made_before_etcd_asked_for_a_user_moves_over_without_stopping_postgresql(ha):
    """A cluster as the deploy made it before etcd's authentication: etcd asks for nobody and Patroni
    has no etcd user. The next deploy pauses it, turns authentication on, restarts Patroni with its
    user and resumes: the same leader on the same timeline, no postmaster restarted, and every
    Patroni talking to etcd afterwards."""
    ha.wait_healthy()
    root = secrets.load("cluster", keys=secrets.CLUSTER_KEYS)["etcd_root"]
    first = next(iter(ha.members))
    out = subprocess.run(["podman", "exec", "-i", first, "sh", "-c",
                          'read -r p; ETCDCTL_USER="root:$p" ' + ETCDCTL + ' auth disable'],
                         input=root + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for member in ha.members:  # Patroni as it was: no etcd user in its file (patronictl reads it too) ...
        assert ha.exec(member, f"sed -i '/^  username: patroni$/d; /^  password: /d' {PATRONI_CONFIG}").returncode == 0
    assert ha.exec(first, f"{PATRONICTL} pause --wait onesift").returncode == 0
    for member in ha.members:  # ... and started without one
        out = ha.exec(member, f"pkill -x patroni; while pgrep -x patroni >/dev/null; do sleep 0.2; done; {PATRONI_START}")
        assert out.returncode == 0, out.stderr
    assert ha.exec(first, f"{PATRONICTL} resume --wait onesift").returncode == 0
    before = ha.wait_healthy()
    leader = ha.leader()
    started = {m: ha.sql(m, "SELECT pg_postmaster_start_time()") for m in ha.members}

    out = ha.pyinfra("deploy.py", "-vvv", "--debug")  # with full verbosity: no secret in it
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    cluster_secrets = secrets.load("cluster", keys=secrets.CLUSTER_KEYS)
    logs = "".join(ha.exec(m, "cat /var/log/postgresql/patroni.log /var/log/etcd.log").stdout for m in ha.members)
    leaked = [k for k, v in cluster_secrets.items() if v in out.stdout or v in out.stderr or v in logs]
    assert leaked == [], leaked
    time.sleep(3 * int(ha.rest("/config")["loop_wait"]))
    after = ha.wait_healthy()
    assert ha.leader() == leader and {r[2] for r in after.values()} == {r[2] for r in before.values()}  # no failover
    assert not ha.rest("/cluster").get("pause")
    for member in ha.members:
        assert ha.sql(member, "SELECT pg_postmaster_start_time()") == started[member], member
        out = ha.exec(member, f"{ETCDCTL} put /service/onesift/leader {member}")
        assert out.returncode != 0 and "user name is empty" in out.stderr
    # Every Patroni writes to etcd: a pause goes through the leader's, and each member's says it saw it.
    for step in ("pause", "resume"):
        out = ha.exec(first, f"timeout 60 {PATRONICTL} {step} --wait onesift")
        assert out.returncode == 0, f"{step}: {out.stdout + out.stderr}"


def test_tenant_create_during_a_switchover_completes_or_leaves_nothing(ha):
    ha.wait_healthy()
    slugs = ["sw" + uuid.uuid4().hex[:8] for _ in range(4)]
    procs = []
    switch = subprocess.Popen([*OPS, "cluster", "switchover", "-i", INVENTORY], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    for s in slugs:  # spread over the switchover (~5 s here): some before, some during, one after
        procs.append((s, subprocess.Popen([*OPS, "tenant", "create", s, "--name", s, "--mode", "api", "-i", INVENTORY],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        time.sleep(2.5)
    assert switch.wait(120) == 0, switch.communicate()
    ha.wait_healthy()
    leader = ha.leader()
    outcomes = []
    for s, p in procs:
        code = p.wait(120)
        customer = ha.sql(leader, f"SELECT count(*) FROM system.customers WHERE slug = '{s}'")
        schema = ha.sql(leader, f"SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_{s}'")
        tables = ha.sql(leader, f"SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_{s}'")
        outcomes.append((s, code, customer, schema, tables, p.stderr.read().strip()[-300:]))
        if code == 0:
            assert (customer, schema, tables) == ("1", "1", "5"), outcomes
        else:
            assert code == 1 and (customer, schema) == ("0", "0"), outcomes
    print(f"\ntenant create during a switchover: {outcomes}")


def test_manual_failover_and_reinit(ha):
    roles = ha.wait_healthy()
    out = ha.ops("cluster", "failover")
    assert out.returncode == 2 and "--yes" in out.stderr
    target = next(n for n, r in roles.items() if r[0] == "sync_standby")
    time.sleep(5)  # Patroni refused a failover right after the previous test's rejoin (printed, exit 0 then)
    out = ha.ops("cluster", "failover", "--to", target, "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    roles = ha.wait_healthy()
    assert ha.leader() == target
    replica = next(n for n, r in roles.items() if r[0] != "leader")
    out = ha.ops("cluster", "reinit", replica)
    assert out.returncode == 0, out.stdout + out.stderr
    ha.wait_healthy()
    out = ha.ops("cluster", "reinit", target)
    assert out.returncode == 2 and "is the leader" in out.stderr
    out = ha.ops("cluster", "switchover", "--to", "nobody")
    assert out.returncode == 2 and "no member 'nobody'" in out.stderr

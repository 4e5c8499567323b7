#!/usr/bin/env python3
"""
The Patroni cluster's benchmarks (issue 13), on the local cluster
(inventories/cluster.py, `ops host up cluster`). Each line prints a
measurement, a baseline and the ratio; a line with a target says whether it
was met.

    .venv/bin/python bench/cluster.py            # about 5 minutes once the cluster is up
    .venv/bin/python bench/cluster.py --check    # exit 1 if a target is missed

- failover: kill -9 of the primary's postmaster to the first write
  acknowledged through the same endpoint (median of --kills), against
  CloudNativePG's 10 s (target <= 1x);
- the primary's Patroni stopped (SIGTERM: `systemctl stop patroni`, a host's
  orderly shutdown): a real failover, the leader lock handed over, to the
  first write (target under CloudNativePG's 10 s), and acknowledged writes lost;
- the primary's container stopped: to the first write, against the ttl;
- acknowledged transactions lost when the primary's container stops, in
  synchronous mode (target 0) and in asynchronous mode (measured);
- write throughput through the endpoint (HAProxy, PgBouncer in transaction
  mode) vs straight to the primary's PostgreSQL, from the same clients.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.run import MISSED, report  # noqa: E402  (one way to print a line and its verdict)
from onesift.cluster import data_dir  # noqa: E402
from onesift.local_hosts import docker_env  # noqa: E402
from tests.e2e.test_cluster import PATRONICTL, Cluster, Writer, present  # noqa: E402  (the tests' cluster and load)

TARGET_FAILOVER_S = 10.0  # CloudNativePG's e2e tests: the primary endpoint moves within 10 s


def count(name: str, value: int, target: int | None, note: str = "") -> None:
    verdict = "" if target is None else f"target {target}: {'met' if value <= target else 'MISSED'}"
    if target is not None and value > target:
        MISSED.append(name)
    print(f"{name:68} {value:9d} {'':9} {'':8}  {verdict}{' ' if verdict and note else ''}{note}", flush=True)


def new_tenant(ha: Cluster) -> str:
    slug = "bench" + uuid.uuid4().hex[:6]
    out = ha.ops("tenant", "create", slug, "--name", slug, "--mode", "api")
    assert out.returncode == 0, out.stderr
    return slug


def kill_postmaster(ha: Cluster, slug: str) -> float:
    ha.wait_healthy()
    primary = ha.leader()
    with Writer(ha, ha.endpoint(ha.other_than(primary)), slug) as w:
        w.wait_writes()
        killed = time.monotonic()
        ha.exec(primary, f"kill -9 $(head -1 {data_dir(17)}/postmaster.pid)")
        took = w.resumed_after(killed)
        w.wait_writes()
    return took


def stop_primary(ha: Cluster, slug: str) -> tuple[float, int, int]:
    """Seconds to the first write after the primary's container stopped; acknowledged writes lost; acknowledged."""
    ha.wait_healthy(180) if synchronous(ha) else wait_streaming(ha)
    primary = ha.leader()
    with Writer(ha, ha.endpoint(ha.other_than(primary)), slug) as w:
        w.wait_writes(50)
        stopped = time.monotonic()
        subprocess.run(["podman", "stop", "-t", "0", primary], check=True, capture_output=True, env=docker_env())
        took = w.resumed_after(stopped)
        w.wait_writes()
    lost = len(set(w.acked) - present(ha, slug, w))
    ha.restart_member(primary)
    return took, lost, len(w.acked)


def stop_patroni(ha: Cluster, slug: str) -> tuple[float, int, int, str]:
    """Seconds to the first write after the primary's Patroni got SIGTERM (it stops PostgreSQL and
    hands the leader lock over); acknowledged writes lost; acknowledged; the new leader."""
    ha.wait_healthy(180)
    primary = ha.leader()
    with Writer(ha, ha.endpoint(ha.other_than(primary)), slug) as w:
        w.wait_writes(50)
        stopped = time.monotonic()
        ha.exec(primary, "pkill -TERM -x patroni")
        took = w.resumed_after(stopped)
        w.wait_writes()
    lost = len(set(w.acked) - present(ha, slug, w))
    new = ha.leader() or "none"
    ha.restart_member(primary)  # the deploy starts its Patroni again; it rejoins as a replica
    return took, lost, len(w.acked), new


def synchronous(ha: Cluster) -> bool:
    return bool((ha.rest("/config") or {}).get("synchronous_mode"))


def wait_streaming(ha: Cluster, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        roles = ha.roles()
        if len(roles) == 3 and sum(r[0] == "leader" for r in roles.values()) == 1 and all(
                r[1] == "streaming" for r in roles.values() if r[0] != "leader"):
            return
        time.sleep(1)
    raise AssertionError(f"not streaming: {ha.roles()}")


def set_synchronous(ha: Cluster, on: bool) -> None:
    out = ha.exec(ha.leader(), f"{PATRONICTL} edit-config --force "
                               f"-s synchronous_mode={'true' if on else 'false'} >/dev/null")
    assert out.returncode == 0, out.stderr
    time.sleep(4)  # two loops of Patroni's


def throughput(ha: Cluster, port: int, slug: str, clients: int, seconds: float) -> float:
    """Committed single-insert transactions a second from ``clients`` connections."""
    done = [0] * clients
    stop = time.monotonic() + seconds
    tag = uuid.uuid4().hex[:6]  # leads.email is unique: each run's own

    def client(i: int) -> None:
        with ha.connect(port, prepare_threshold=None) as conn:
            while time.monotonic() < stop:
                with conn.transaction():
                    conn.execute("SELECT system.use_tenant(%s)", [slug])
                    conn.execute(f'INSERT INTO "tenant_{slug}".leads (email) VALUES (%s)', [f"t{tag}-{i}-{done[i]}@tp.io"])
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=3, help="postmaster kills (the median is reported)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0, help="each throughput run")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args()
    ha = Cluster()
    with ha.connect(ha.endpoint(ha.other_than())) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    print(f"platform: Debian 13 (trixie) containers, PostgreSQL {version}, Patroni 4, etcd 3.5; "
          f"ttl {ha.rest('/config')['ttl']} s, loop_wait {ha.rest('/config')['loop_wait']} s", flush=True)
    print(f"{'measurement':68} {'value':>9} {'baseline':>9} {'ratio':>8}  target")
    slug = new_tenant(ha)
    try:
        kills = [kill_postmaster(ha, slug) for _ in range(args.kills)]
        report(f"kill -9 of the primary's postmaster to a write through the endpoint (s, median of {args.kills})",
               statistics.median(kills), TARGET_FAILOVER_S, f"runs {', '.join(f'{k:.1f}' for k in kills)}; baseline 10 s",
               limit=1.0)
        set_synchronous(ha, True)
        took, lost, acked, new = stop_patroni(ha, slug)
        report("primary's Patroni stopped (SIGTERM) to a write through the endpoint, sync (s)", took,
               TARGET_FAILOVER_S, f"a failover: {new} took the lock; baseline 10 s", limit=1.0)
        count("acknowledged writes lost, synchronous mode, primary's Patroni stopped", lost, 0, f"of {acked}")
        took, lost, acked = stop_primary(ha, slug)
        ttl = float(ha.rest("/config")["ttl"])
        report("primary's container stopped to a write through the endpoint, sync (s)", took, ttl,
               "baseline: Patroni's ttl, the leader lock's lifetime")
        count("acknowledged writes lost, synchronous mode, primary's container stopped", lost, 0, f"of {acked}")
        set_synchronous(ha, False)
        took, lost, acked = stop_primary(ha, slug)
        report("primary's container stopped to a write through the endpoint, async (s)", took, ttl)
        count("acknowledged writes lost, asynchronous mode, primary's container stopped", lost, None, f"of {acked} (measured)")
        set_synchronous(ha, True)
        ha.wait_healthy(180)
        primary = ha.leader()
        direct = throughput(ha, ha.members[primary].ports["5432/tcp"], slug, args.clients, args.seconds)
        pooled = throughput(ha, ha.endpoint(ha.other_than(primary)), slug, args.clients, args.seconds)
        report(f"writes/s through HAProxy + PgBouncer vs straight to the primary ({args.clients} clients, sync)",
               pooled, direct, "higher is better; context")
    finally:
        if not synchronous(ha):
            set_synchronous(ha, True)
    print(f"targets missed: {len(MISSED)}" + "".join(f"\n  {name}" for name in MISSED))
    if args.check and MISSED:
        sys.exit(1)


if __name__ == "__main__":
    main()

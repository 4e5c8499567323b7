"""Local container hosts for development, tests and the bench (Docker API: docker or podman): made, started,
deployed and seeded. `ops host` is their front end; the tests and bench/ bring them up through bring_up()."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from onesift.errors import BadInput, OpsError
from onesift.platform import RELEASES

if TYPE_CHECKING:
    from onesift.tenants import Seeded

# One base image per Debian release (scripts/setup-machine.sh): localhost/onesift-base:trixie, ...
BASE_IMAGE = os.environ.get("ONESIFT_BASE_IMAGE", "localhost/onesift-base")
LOOPBACK = "127.0.0.1"  # published ports never leave this machine


@dataclass(frozen=True)
class LocalHost:
    kind: str
    container: str
    inventory: str
    ports: dict  # container port -> loopback port
    release: str = RELEASES[0]

    @property
    def image(self) -> str:
        return f"{BASE_IMAGE}:{self.release}"


SECRETS = {"dev": "dev", "ssh": "local_ssh", "bookworm": "local_bookworm", "cluster": "cluster"}  # secrets_name of each kind's inventory


def docker_env() -> dict[str, str]:
    """The environment with DOCKER_HOST pointing at podman's socket when no Docker engine is set up."""
    env = dict(os.environ)
    podman = "/run/podman/podman.sock"
    if "DOCKER_HOST" not in env and not Path("/var/run/docker.sock").exists() and Path(podman).exists():
        env["DOCKER_HOST"] = f"unix://{podman}"
    return env


def state_dir() -> Path:
    return Path(os.environ.get("ONESIFT_STATE_DIR") or Path.home() / ".local/state/onesift")


def local_hosts() -> dict[str, LocalHost]:
    # ONESIFT_HOST_PREFIX (with the port variables) lets a second checkout
    # run its tests beside this one's hosts without touching them.
    prefix = os.environ.get("ONESIFT_HOST_PREFIX") or "onesift"
    return {
        "dev": LocalHost("dev", f"{prefix}-dev", "inventories/dev.py",
                         {"5432/tcp": int(os.environ.get("ONESIFT_DEV_PG_PORT") or 55432)}),
        "ssh": LocalHost("ssh", f"{prefix}-ssh", "inventories/local_ssh.py",
                         {"5432/tcp": int(os.environ.get("ONESIFT_SSH_PG_PORT") or 55433),
                          "22/tcp": int(os.environ.get("ONESIFT_SSH_PORT") or 22022)}),
        # The previous release beside the default ones, for the tests' smoke set on it.
        "bookworm": LocalHost("bookworm", f"{prefix}-bookworm", "inventories/local_bookworm.py",
                              {"5432/tcp": int(os.environ.get("ONESIFT_BOOKWORM_PG_PORT") or 55435),
                               "22/tcp": int(os.environ.get("ONESIFT_BOOKWORM_SSH_PORT") or 22024)}, "bookworm"),
    }


def pick(kind: str, release: str | None = None) -> LocalHost:
    """The local host of ``kind``, on ``release`` (default: the kind's own)."""
    hosts = local_hosts()
    if kind not in hosts:
        raise BadInput(f"unknown host kind {kind!r}; kinds: {', '.join(hosts)}")
    if release is not None and release not in RELEASES:
        raise BadInput(f"unknown release {release!r}; releases: {', '.join(RELEASES)}")
    return replace(hosts[kind], release=release or hosts[kind].release)


def client():
    import docker

    try:
        return docker.from_env(environment=docker_env())
    except docker.errors.DockerException as e:
        raise BadInput(f"no Docker API answers ({e}); run scripts/setup-machine.sh") from None


def ssh_key() -> tuple[Path, str]:
    """The test SSH key pair (made once); private key path and public key text."""
    key = state_dir() / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "onesift-local", "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


SSHD = (
    "ssh-keygen -A >/dev/null && mkdir -p /run/sshd /root/.ssh && "
    'printf "%s\\n" "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys && '
    "chmod 600 /root/.ssh/authorized_keys && exec /usr/sbin/sshd -D -e"
)


def answers(c) -> bool:
    """Whether a container runs and takes commands. The engine's word alone is
    not enough: when every process on the machine is killed (a sandbox stop,
    the OOM killer taking the engine's monitors), podman keeps saying
    "running" while exec fails with "cannot exec in a stopped container"."""
    import docker

    try:
        if c.status != "running":
            c.start()
        return c.exec_run("true").exit_code == 0
    except docker.errors.APIError:
        return False


def discard(c) -> None:
    """Remove a container the engine can no longer run. From the stale
    "running" state podman's first forced remove fails; a stop moves it to
    "stopping", from which the remove works (podman 4.3, measured)."""
    import docker

    try:
        c.stop(timeout=1)
    except docker.errors.APIError:
        pass
    c.remove(force=True)


# /dev/shm of a container host, as a real host has it (a tmpfs of half the
# RAM): PostgreSQL keeps dynamic shared memory there (posix), for parallel
# query and, since 15, its cumulative statistics. At 10,002 tenants that was
# 46 MB at rest and 95 MB at the peak of the nightly dump (its catalog
# queries run parallel), and in the engine's default 64 MB the dump failed:
# "could not resize shared memory segment ... No space left on device".
# A tmpfs limit reserves nothing.
SHM_SIZE = 1024 ** 3


def reason_to_remake(c, h: LocalHost) -> str | None:
    """Why a container host must be made anew (another release, no init, a smaller /dev/shm), or None."""
    image = (c.attrs.get("Config") or {}).get("Image") or ""
    if image != h.image:
        return f"made from {image or 'another image'}, not {h.image}"
    config = c.attrs.get("HostConfig", {})
    if not config.get("Init"):
        return "made without an init"
    if (config.get("ShmSize") or 0) < SHM_SIZE:
        return f"made with a {(config.get('ShmSize') or 0) // 1024 ** 2} MB /dev/shm"
    return None


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_container(h: LocalHost, notice: Callable[[str], None] = to_stderr):
    """The running container of ``h``: started, or made anew when it is missing or unusable (``notice`` says why)."""
    import docker

    dc = client()
    try:
        c = dc.containers.get(h.container)
        if why := reason_to_remake(c, h):
            notice(f"{h.container}: {why}; making it anew")
            discard(c)
        elif answers(c):
            return c
        else:
            notice(f"{h.container}: the engine lost this container's processes; making it anew")
            discard(c)
    except docker.errors.NotFound:
        pass
    try:
        dc.images.get(h.image)
    except docker.errors.ImageNotFound:
        raise BadInput(f"no base image {h.image}: run scripts/setup-machine.sh") from None
    kwargs = {}
    if h.kind != "dev":
        _, pub = ssh_key()
        kwargs = {"command": ["sh", "-c", SSHD], "environment": {"AUTHORIZED_KEY": pub}}
        (state_dir() / "ssh" / known_hosts(h)).unlink(missing_ok=True)  # new container, new host key
    ports = {inner: (LOOPBACK, outer) for inner, outer in h.ports.items()}
    # init: PID 1 reaps orphans. Without it a killed postmaster stays a
    # zombie whose pid, still in postmaster.pid, stops PostgreSQL starting again.
    return dc.containers.run(h.image, name=h.container, hostname=h.container, detach=True, init=True,
                             shm_size=SHM_SIZE, ports=ports, **kwargs)


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise BadInput(f"nothing answered on {LOOPBACK}:{port} in {seconds:.0f}s")


def known_hosts(h: LocalHost) -> str:
    """The known_hosts file (in the state directory's ssh/) that the host's inventory names."""
    return "known_hosts" if h.kind == "ssh" else f"known_hosts_{h.kind}"


def bring_up(kind: str, deploy: bool = True, seed: bool = True, release: str | None = None,
             seeded: Callable[[Seeded], None] = lambda done: None) -> LocalHost:
    """Start (or create) the local host, deploy the database onto it and seed it (``seeded`` is told each example customer)."""
    if kind == "cluster":
        return bring_up_cluster(deploy, seed, seeded)
    h = pick(kind, release)
    run_container(h)
    if h.kind != "dev":
        wait_for_port(h.ports["22/tcp"])
    if not (deploy or seed):
        return h
    from onesift import database
    from onesift.session import HostSession

    s = HostSession(h.inventory)
    try:
        if deploy:
            if code := database.deploy(s, "deploy.py"):
                raise OpsError(f"the deploy failed (exit {code})")
        catch_up_and_seed(s, deploy, seed, seeded)
    finally:
        s.close()
    return h


def catch_up_and_seed(s, migrate: bool, seed: bool, seeded: Callable[[Seeded], None]) -> None:
    """After a deploy: tenants made by an older checkout catch up with the tenant
    migrations (``migrate``), and the example customers are seeded (``seed``)."""
    from onesift import tenants
    from onesift.tenant_migrations import migrate_all

    if migrate:
        result = migrate_all(s, 2)
        if result.failed or result.retryable:
            raise OpsError(f"{len(result.failed) + len(result.retryable)} tenants did not migrate: run `ops tenant migrate`")
    if seed:
        for done in tenants.seed(s):
            seeded(done)


def remove(kind: str) -> tuple[LocalHost, bool]:
    """Remove the local host of ``kind`` and its data; whether there was one."""
    import docker

    h = pick(kind)
    try:
        client().containers.get(h.container).remove(force=True)
    except docker.errors.NotFound:
        return h, False
    return h, True


def states() -> list[tuple[LocalHost, str]]:
    """Each local host and its container's state ("absent" when there is none)."""
    import docker

    dc, found = client(), []
    for h in [*local_hosts().values(), *cluster_hosts()]:
        try:
            found.append((h, dc.containers.get(h.container).status))
        except docker.errors.NotFound:
            found.append((h, "absent"))
    return found


# --- The local Patroni cluster (inventories/cluster.py): three container hosts on a network of their own.

# ONESIFT_CLUSTER_PREFIX names the containers (PREFIX1..3) and the network
# (PREFIX-net); ONESIFT_CLUSTER_PORT_BASE the first of the 30 loopback ports.
CLUSTER_SIZE = 3
CLUSTER_IMAGE = os.environ.get("ONESIFT_CLUSTER_IMAGE", "localhost/onesift-ha:trixie")
# Container port -> offset from the member's first loopback port (member i: base + 10 (i - 1)).
CLUSTER_PORTS = {"5000/tcp": 0, "5001/tcp": 1, "6432/tcp": 2, "5432/tcp": 3, "8008/tcp": 8}
# A Debian PostgreSQL package makes cluster N/main on install; a Patroni
# member's PostgreSQL is Patroni's (onesift/cluster.py data_dir), so none is made.
NO_MAIN_CLUSTER = ("/etc/postgresql-common/createcluster.d/onesift-patroni.conf",
                   "# Managed by the OneSift deploy: Patroni makes this host's cluster.\ncreate_main_cluster = false\n")


def cluster_prefix() -> str:
    return os.environ.get("ONESIFT_CLUSTER_PREFIX") or "onesift-pg"


def cluster_network() -> str:
    return f"{cluster_prefix()}-net"


def cluster_repository() -> str:
    """The podman volume every member mounts at pgbackrest_repo1_path: one pgBackRest
    repository the primary archives into wherever it runs (a production cluster mounts
    one NFS export there, or uses a repository host: README, Cluster)."""
    return f"{cluster_prefix()}-pgbackrest"


REPOSITORY_MOUNT = "/var/lib/pgbackrest"  # onesift/defaults.py pgbackrest_repo1_path


def remove_repository(dc) -> bool:
    """Remove the cluster's repository volume; whether there was one."""
    import docker

    try:
        dc.volumes.get(cluster_repository()).remove(force=True)
        return True
    except docker.errors.NotFound:
        return False


def cluster_hosts() -> list[LocalHost]:
    base = int(os.environ.get("ONESIFT_CLUSTER_PORT_BASE") or 57000)
    return [LocalHost("cluster", f"{cluster_prefix()}{i}", "inventories/cluster.py",
                      {inner: base + 10 * (i - 1) + off for inner, off in CLUSTER_PORTS.items()})
            for i in range(1, CLUSTER_SIZE + 1)]


def cluster_packages(release: str = RELEASES[0]) -> list[str]:
    """What a cluster member installs (the deploy's own lists), for the prepared image."""
    from deploy import guard, server
    from onesift import cluster
    from onesift.platform import pg_version_for
    from onesift.settings import Settings

    settings = replace(Settings(), pg_version=pg_version_for(release, None, "cluster"))
    return sorted(set(server.packages(settings) + guard.build_packages(settings) + cluster.packages(settings.pg_version)))


def prepare_cluster_image(notice: Callable[[str], None] = to_stderr) -> str:
    """The image cluster members are made from: the trixie base image with the
    deploy's packages installed (apt-get in three containers took most of the
    cluster's bring-up), made once and kept; the deploy then finds them installed."""
    import docker

    dc = client()
    try:
        dc.images.get(CLUSTER_IMAGE)
        return CLUSTER_IMAGE
    except docker.errors.ImageNotFound:
        pass
    base = f"{BASE_IMAGE}:{RELEASES[0]}"
    notice(f"making {CLUSTER_IMAGE} from {base} (once)")
    name = f"{cluster_prefix()}-image"
    try:
        dc.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    c = dc.containers.run(base, name=name, detach=True, init=True, command=["sleep", "infinity"])
    try:
        path, text = NO_MAIN_CLUSTER
        script = (f"mkdir -p {os.path.dirname(path)} && printf '%s' \"$NO_MAIN\" > {path} && apt-get update -qq && "
                  "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                  f"{' '.join(cluster_packages())} >/dev/null")
        code, out = c.exec_run(["sh", "-c", script], environment={"NO_MAIN": text})
        if code:
            raise OpsError(f"preparing {CLUSTER_IMAGE} failed: {out.decode(errors='replace')[-2000:]}")
        # Debian's maintainer scripts start some daemons where no systemd runs: not in the image.
        c.exec_run(["sh", "-c", "pkill -x haproxy; pkill -x pgbouncer; pkill -x etcd; true"])
        repo, tag = CLUSTER_IMAGE.rsplit(":", 1)
        c.commit(repository=repo, tag=tag, changes=['CMD ["sleep","infinity"]'])
    finally:
        c.remove(force=True)
    return CLUSTER_IMAGE


def usable_member(dc, h: LocalHost, image: str, notice: Callable[[str], None]) -> bool:
    """Whether member ``h``'s container can be kept (else it is removed, to be made anew)."""
    import docker

    try:
        c = dc.containers.get(h.container)
    except docker.errors.NotFound:
        return False
    config = c.attrs.get("HostConfig", {})
    image_ok = (c.attrs.get("Config") or {}).get("Image") == image
    mounted = any(m.get("Name") == cluster_repository() for m in c.attrs.get("Mounts") or [])
    if image_ok and mounted and config.get("Init") and (config.get("ShmSize") or 0) >= SHM_SIZE and answers(c):
        return True
    notice(f"{h.container}: unusable; making it anew")
    discard(c)
    return False


def cluster_up(notice: Callable[[str], None] = to_stderr) -> list[LocalHost]:
    """The network and the three running member containers (made when missing or unusable)."""
    import docker

    image = prepare_cluster_image(notice)
    dc = client()
    net = cluster_network()
    try:
        dc.networks.get(net)
    except docker.errors.NotFound:
        dc.networks.create(net, driver="bridge")
    hosts = [replace(h, release=RELEASES[0]) for h in cluster_hosts()]
    kept = [h for h in hosts if usable_member(dc, h, image, notice)]
    if not kept:  # a new cluster, a new database: an old repository's stanza would not match it
        remove_repository(dc)
    for h in hosts:
        if h in kept:
            continue
        ports = {inner: (LOOPBACK, outer) for inner, outer in h.ports.items()}
        dc.containers.run(image, name=h.container, hostname=h.container, detach=True, init=True,
                          shm_size=SHM_SIZE, ports=ports, network=net, command=["sleep", "infinity"],
                          volumes={cluster_repository(): {"bind": REPOSITORY_MOUNT, "mode": "rw"}})
    return hosts


def cluster_down() -> list[str]:
    """Remove the cluster's containers, network and repository volume; what was removed."""
    import docker

    dc, gone = client(), []
    for h in cluster_hosts():
        try:
            dc.containers.get(h.container).remove(force=True)
            gone.append(h.container)
        except docker.errors.NotFound:
            pass
    try:
        dc.networks.get(cluster_network()).remove()
        gone.append(cluster_network())
    except docker.errors.NotFound:
        pass
    if remove_repository(dc):
        gone.append(cluster_repository())
    return gone


def bring_up_cluster(deploy: bool = True, seed: bool = True,
                     seeded: Callable[[Seeded], None] = lambda done: None) -> LocalHost:
    """The local Patroni cluster up (inventories/cluster.py), deployed and seeded; its first member."""
    hosts = cluster_up()
    if not (deploy or seed):
        return hosts[0]
    from onesift import database
    from onesift.session import HostSession

    if deploy:
        s = HostSession(hosts[0].inventory)
        try:
            if code := database.deploy(s, "deploy.py"):
                raise OpsError(f"the deploy failed (exit {code})")
        finally:
            s.close()
    s = HostSession(hosts[0].inventory)  # now on the primary
    try:
        catch_up_and_seed(s, deploy, seed, seeded)
    finally:
        s.close()
    return hosts[0]

"""
A Patroni cluster member (README, Cluster): etcd, Patroni (which runs
PostgreSQL), PgBouncer and HAProxy, from Debian's packages, started by the
deploy (Debian's systemd units where systemd runs). PostgreSQL's parameters
are the single host's (deploy/server.py), kept in Patroni's dynamic
configuration instead of a file on each member.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FindInFile
from pyinfra.operations import apt, files

from deploy import guard, platform, server, tls
from deploy.facts.cluster import PatroniMember
from deploy.facts.postgres import PgLockTable
from deploy.operations import daemon, etcd, patroni
from onesift import cluster, secrets
from onesift.local_hosts import NO_MAIN_CLUSTER
from onesift.render import render_template
from onesift.settings import BadInput, Settings, check_tenant_ceiling

USERLIST = f"{cluster.PGBOUNCER_DIR}/userlist.txt"
PGBOUNCER_PIDFILE = "/var/run/postgresql/pgbouncer.pid"  # templates/cluster/pgbouncer.ini.j2
# The settings Patroni sets on each member itself (its listen and
# connect_address, data_dir, pg_hba, cluster_name): not in the dynamic configuration.
LOCAL_PARAMETERS = {"listen_addresses", "port"}
ETCD_USER = "patroni"  # the etcd user Patroni logs in as (deploy/operations/etcd.py)
PAUSED_FOR_ETCD = "/var/lib/onesift/deploy/paused-for-etcd-auth"
# Where no systemd runs: Patroni started out of the deploy's shell, as postgres.
PATRONI_START = daemon.detached(f"exec runuser -u postgres -- patroni {cluster.PATRONI_CONFIG}",
                                "/var/log/postgresql/patroni.log")


def members() -> list[dict]:
    """Every member of this host's cluster in the inventory: its name and address."""
    scope = host.data.get("patroni_cluster")
    found = []
    for h in host.inventory:
        if h.data.get("patroni_cluster") == scope:
            found.append({"name": cluster.member_name(h.name, h.data), "address": cluster.member_address(h.name, h.data)})
    return found


def on_primary() -> bool:
    """Whether this member is the primary now (asked when an operation runs: after a failover
    mid-deploy the SQL steps go to the new primary)."""
    return patroni.ready_member(me := host.get_fact(PatroniMember)) and me.get("role") in ("primary", "master")


def passwords(settings: Settings) -> dict[str, str]:
    return secrets.load(settings.secrets_name, settings.generate_secrets, secrets.CLUSTER_KEYS)


def pg_hba(settings: Settings) -> list[str]:
    """The members' pg_hba.conf (Patroni writes it): the single host's rules, then the members' own."""
    hba = render_template("config/pg_hba.conf.j2", db_name=settings.db_name, roles=settings.roles,
                          client_networks=list(settings.client_networks),
                          client_networks_nossl=list(settings.client_networks_nossl))
    lines = [line.strip() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for net in settings.cluster_networks:
        lines += [f"host replication replicator {net} scram-sha-256",
                  # pg_rewind and Patroni's checks connect as the superuser.
                  f"host postgres postgres {net} scram-sha-256"]
    lines += ["local replication replicator scram-sha-256",
              "host replication replicator 127.0.0.1/32 scram-sha-256"]
    return lines


def parameters(conf: dict, settings: Settings) -> dict:
    """PostgreSQL's parameters for the dynamic configuration, from the single host's
    postgresql.conf variables (deploy/server.py postgresql_conf), the same names and values."""
    params = {
        "max_connections": conf["max_connections"],
        "shared_buffers": conf["shared_buffers"],
        "work_mem": conf["work_mem"],
        "maintenance_work_mem": conf["maintenance_work_mem"],
        "dynamic_shared_memory_type": "posix",
        "max_locks_per_transaction": conf["max_locks_per_transaction"],
        "max_wal_size": conf["max_wal_size"],
        "min_wal_size": "80MB",
        "password_encryption": "scram-sha-256",
        "ssl": "on" if conf["ssl"] else "off",
        "ssl_cert_file": conf["ssl_cert_file"],
        "ssl_key_file": conf["ssl_key_file"],
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_timezone": "Etc/UTC",
        "log_statement": conf["log_statement"],
        "log_min_duration_statement": conf["log_min_duration_statement"],
        "log_parameter_max_length": 0,
        "log_parameter_max_length_on_error": 0,
        "shared_preload_libraries": "pg_stat_statements,onesift_guard",
        "pg_stat_statements.track_utility": "off",
        "datestyle": "iso, mdy",
        "timezone": "Etc/UTC",
        "lc_messages": "C.UTF-8",
        "lc_monetary": "C.UTF-8",
        "lc_numeric": "C.UTF-8",
        "lc_time": "C.UTF-8",
        "default_text_search_config": "pg_catalog.english",
        # Every commit waits for the synchronous standby's flush when synchronous_mode is on.
        "synchronous_commit": "on",
        # Continuous archiving into the one pgBackRest repository the members share
        # (deploy/pgbackrest.py), as on a single host: only the primary archives
        # (archive_mode on, not always), so after a failover the new primary goes on
        # from its timeline.
        "archive_mode": "on",
        "archive_command": archive_command(settings),
        "archive_timeout": conf["archive_timeout"],
        # A slot keeps WAL for a stopped replica until this much is held back; past
        # it the replica catches up from the repository (restore_command), and the
        # primary's disk does not fill behind a member that never comes back.
        "max_slot_wal_keep_size": settings.patroni_max_slot_wal_keep_size,
    }
    if conf.get("ssl_ca_file"):
        params["ssl_ca_file"] = conf["ssl_ca_file"]
    params.update({k: v for k, v in settings.pg_settings.items() if k != "max_locks_per_transaction"})
    return {k: v for k, v in params.items() if k not in LOCAL_PARAMETERS}


def archive_command(s: Settings) -> str:
    return f"pgbackrest --stanza={s.pgbackrest.stanza} archive-push %p"


def restore_command(s: Settings) -> str:
    """How a replica (or a rejoining old primary) reads WAL its primary no longer has: from the repository."""
    return f'pgbackrest --stanza={s.pgbackrest.stanza} archive-get %f "%p"'


def dynamic_config(s: Settings, params: dict) -> dict:
    """Patroni's dynamic configuration from inventory data: bootstrap.dcs on the first start, kept after."""
    return {
        "ttl": s.patroni_ttl,
        "loop_wait": s.patroni_loop_wait,
        "retry_timeout": s.patroni_retry_timeout,
        "maximum_lag_on_failover": s.patroni_maximum_lag_on_failover,
        "synchronous_mode": s.patroni_synchronous_mode,
        "synchronous_mode_strict": s.patroni_synchronous_mode_strict,
        "member_slots_ttl": s.patroni_member_slots_ttl,
        "postgresql": {"use_pg_rewind": s.patroni_use_pg_rewind, "parameters": params,
                       "recovery_conf": {"restore_command": restore_command(s)}},
    }


def conf_variables(settings: Settings, certificate: tls.ServerCertificate) -> dict:
    """The single host's postgresql.conf variables, the lock table sized from the live primary."""
    live = host.get_fact(PgLockTable, config_file="/dev/null", database=settings.db_name, port=settings.pg_port)
    try:
        check_tenant_ceiling(settings, live.get("tenants", 0))
        return server.postgresql_conf(host.data, settings, certificate, live)
    except BadInput as e:
        raise PyinfraError(str(e)) from None


def yaml_block(config: dict) -> str:
    """``config`` as YAML for patroni.yml (JSON is YAML; one key a line for a reader)."""
    import json

    lines = []
    for key, val in config.items():
        lines.append(f"{key}: {json.dumps(val)}")
    return "\n".join(lines)


@deploy("Patroni cluster member")
def install():
    settings = platform.settings()
    try:
        certificate = tls.from_data(host.data)
        pw = passwords(settings)
    except BadInput as e:
        raise PyinfraError(str(e)) from None
    scope = settings.patroni_cluster
    name, address = cluster.member_name(host.name, host.data), cluster.member_address(host.name, host.data)
    everyone = members()
    if len(everyone) < 3:
        raise PyinfraError(f"cluster {scope} has {len(everyone)} members in the inventory: etcd and Patroni need 3")
    conf = conf_variables(settings, certificate)
    config = dynamic_config(settings, parameters(conf, settings))

    # Before PostgreSQL's package: no Debian cluster N/main, Patroni makes this member's.
    path, text = NO_MAIN_CLUSTER
    files.put(name="No Debian main cluster", src=StringIO(text), dest=path, mode="644", create_remote_dir=True)
    wanted = sorted(set(server.packages(settings) + cluster.packages(settings.pg_version)))
    installed = host.get_fact(DebPackages)
    if any(p not in installed for p in wanted + guard.build_packages(settings)):
        apt.update(name="Refresh apt index")
    apt.packages(name="Install PostgreSQL, Patroni, etcd, PgBouncer, HAProxy", packages=wanted, no_recommends=True)
    guard.install()  # before Patroni starts PostgreSQL, which preloads it

    files.directory(name="etcd data directory", path=f"/var/lib/etcd/{scope}", user="etcd", group="etcd", mode="700")
    etcd_conf = files.put(
        name="etcd member", src=StringIO(render_template("cluster/etcd.env.j2", name=name, address=address,
                                                            scope=scope, members=everyone)),
        dest=cluster.ETCD_ENV, mode="644",
    )
    daemon.running(
        name="etcd running", unit="etcd", process="etcd", changed=etcd_conf.did_change,
        start=daemon.detached(f"set -a; . {cluster.ETCD_ENV}; set +a; exec runuser -u etcd -- etcd", "/var/log/etcd.log"),
    )

    # etcd asks for a user before Patroni starts with its own: Patroni (4.0.7) logs in only when it
    # starts (deploy/operations/etcd.py). On one member: etcd's users are the cluster's.
    on_first = (lambda: name == everyone[0]["name"])
    etcd.authentication(name="etcd asks for a user", root_password=pw["etcd_root"], user=ETCD_USER,
                        password=pw["etcd_patroni"], prefix=f"/service/{scope}/", scope=scope,
                        pause_marker=PAUSED_FOR_ETCD, _if=on_first)

    files.directory(name="Patroni's config directory", path="/etc/patroni", user="postgres", group="postgres", mode="750")
    # A Patroni that runs without its etcd user restarts to log in; with it, a SIGHUP will do.
    has_etcd_user = host.get_fact(FindInFile, path=cluster.PATRONI_CONFIG, pattern=f"^  username: {ETCD_USER}$")
    patroni_conf = files.put(
        name="Patroni member configuration (with passwords: 0600)",
        src=StringIO(render_template(
            "cluster/patroni.yml.j2", scope=scope, name=name, address=address, members=everyone,
            port=settings.pg_port, data_dir=cluster.data_dir(settings.pg_version),
            bin_dir=cluster.bin_dir(settings.pg_version), dcs=yaml_block(config), pg_hba=pg_hba(settings),
            rest_password=pw["patroni_rest"], superuser_password=pw["superuser"],
            etcd_user=ETCD_USER, etcd_password=pw["etcd_patroni"],
            replication_password=pw["replication"],
        )),
        dest=cluster.PATRONI_CONFIG, user="postgres", group="postgres", mode="600",
    )
    daemon.running(
        name="Patroni running", unit="patroni", process="patroni", changed=patroni_conf.did_change,
        start=PATRONI_START,
        # SIGHUP: Patroni reads its file again, rewrites pg_hba.conf and reloads PostgreSQL.
        reload="pkill -HUP -x patroni", restart=has_etcd_user == [],
    )
    patroni.member_ready(name="Patroni member serving")
    patroni.resume_paused(name="Cluster resumed (paused to give Patroni its etcd user)", marker=PAUSED_FOR_ETCD,
                          scope=scope, _if=on_first)
    patroni.dynamic_config(name="Patroni dynamic configuration (PostgreSQL's parameters)", config=config,
                           scope=scope, port=settings.pg_port, _if=on_primary)

    ssl = conf["ssl"]
    pgbouncer_conf = files.put(
        name="PgBouncer configuration",
        src=StringIO(render_template(
            "cluster/pgbouncer.ini.j2", db_name=settings.db_name, pg_port=settings.pg_port,
            listen_port=settings.pgbouncer_port, pool_mode=settings.pgbouncer_pool_mode,
            max_client_conn=settings.pgbouncer_max_client_conn,
            default_pool_size=settings.pgbouncer_default_pool_size,
            max_prepared_statements=settings.pgbouncer_max_prepared_statements,
            ssl=ssl, ssl_cert_file=conf["ssl_cert_file"], ssl_key_file=conf["ssl_key_file"],
        )),
        dest=f"{cluster.PGBOUNCER_DIR}/pgbouncer.ini", user="postgres", group="postgres", mode="640",
    )
    files.file(name="PgBouncer auth_file", path=USERLIST, user="postgres", group="postgres", mode="600")
    daemon.running(
        name="PgBouncer running", unit="pgbouncer", process="pgbouncer", changed=pgbouncer_conf.did_change,
        # PgBouncer refuses to run as root. It is not running (or this would not start it), so
        # a pidfile is stale: a container stopped and started keeps /var/run, and PgBouncer
        # refused to start while the old pid had gone to another process.
        start=f"rm -f {PGBOUNCER_PIDFILE}; runuser -u postgres -- pgbouncer -q -d {cluster.PGBOUNCER_DIR}/pgbouncer.ini",
        reload="pkill -HUP -x pgbouncer",
    )
    haproxy_conf = files.put(
        name="HAProxy endpoints",
        src=StringIO(render_template(
            "cluster/haproxy.cfg.j2", members=everyone, pgbouncer_port=settings.pgbouncer_port,
            primary_port=settings.haproxy_primary_port, replicas_port=settings.haproxy_replicas_port,
        )),
        dest=cluster.HAPROXY_CONFIG, mode="644",
    )
    daemon.running(
        name="HAProxy running", unit="haproxy", process="haproxy", changed=haproxy_conf.did_change,
        start=f"haproxy -D -f {cluster.HAPROXY_CONFIG} -p /run/haproxy.pid",
        # -sf: the new process takes the ports, the old one ends when its sessions do.
        reload=f"haproxy -D -f {cluster.HAPROXY_CONFIG} -p /run/haproxy.pid -sf $(cat /run/haproxy.pid)",
    )


@deploy("PgBouncer's copy of the roles")
def pooler():
    """After the roles exist (deploy/database.py bootstrap): PgBouncer's auth_file from pg_authid."""
    settings = platform.settings()
    roles = [settings.roles.owner, settings.roles.app, settings.roles.auditor]
    patroni.pooler_userlist(name="PgBouncer auth_file from pg_authid", path=USERLIST, roles=roles,
                            port=settings.pg_port)

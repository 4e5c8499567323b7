"""Install and configure the PostgreSQL server from the distribution."""

from __future__ import annotations

import math
import re

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files

from deploy import guard, platform, tls
from deploy.facts.postgres import PgClusters, PgConfigFiles, PgLockTable, PgSettingContexts
from deploy.operations import pg
from onesift import cluster
from onesift.render import TEMPLATES, render_template
from onesift.settings import BadInput, Settings, check_tenant_ceiling

DEFAULT_SERVER_SETTINGS = {
    "max_connections": 100,
    "shared_buffers": "128MB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "max_wal_size": "1GB",
    "log_statement": "none",
    "log_min_duration_statement": -1,
}


# A whole-database pg_dump holds a lock on every table, view and sequence
# until it ends. Measured on PostgreSQL 15 (pg_locks of the dump's backend,
# polled): 8,188 locks at the peak with 1,002 tenants, 80,188 with 10,002:
# 5 tables and 3 views a tenant (8), the system schema's, and ~160 catalog
# tables and indexes. PgLockTable counts the relations; this is the catalogs' share.
CATALOG_LOCKS = 200
# The lock table is shared: max_locks_per_transaction × (max_connections plus
# ~22 worker and WAL sender slots) entries, and one transaction may take
# them all. Measured: 48,127 locks in one transaction at 256 × 100 connections
# (the hash table's slack adds to the nominal 31,232); at 10,002 tenants
# pg_dump failed with "out of shared memory" on the tables of the 9,578th.
# Sizing against max_connections alone leaves the rest for everyone else.
LOCKS_FLOOR = 256


def locks_needed(relations: int, max_connections: int, headroom: float = 1.0) -> int:
    """max_locks_per_transaction a whole-database dump of ``relations`` needs, times ``headroom``."""
    return math.ceil(headroom * (relations + CATALOG_LOCKS) / max_connections)


def sized_max_locks(live: dict, max_connections: int, headroom: float) -> int:
    """
    max_locks_per_transaction for the live database (PgLockTable): the current
    value while it holds ``headroom`` times what a whole-database dump locks,
    else the next power of two that does. A change needs a restart, which
    drops every connection and empties the caches (4.1-4.4 s at 10,002
    tenants, bookworm container, 2 cores), so it only grows, by powers of two:
    a restart each time the tenant count about doubles, not each deploy.
    Each 256 costs ~11.5 MB of shared memory at 100 connections (152 MB in
    all at 256, 233 MB at 2048, with shared_buffers 128MB; postgres -C
    shared_memory_size).
    """
    want = max(LOCKS_FLOOR, locks_needed(live.get("relations", 0), max_connections, headroom))
    current = current_locks(live)
    return current if current >= want else 2 ** math.ceil(math.log2(want))


def current_locks(live: dict) -> int:
    """max_locks_per_transaction as the server runs it or its config file has it, whichever is larger:
    a server that is down (no counts to size from) keeps its size, and a pending restart its new one."""
    return max(live.get("max_locks_per_transaction", 0), live.get("configured_max_locks", 0))


def lock_table_problem(locks: int, live: dict, max_connections: int) -> str | None:
    """Why a pinned max_locks_per_transaction cannot dump the live database, or None."""
    needed = locks_needed(live.get("relations", 0), max_connections)
    if locks >= needed:
        return None
    return (
        f"pg_settings max_locks_per_transaction = {locks} cannot hold what one pg_dump of the "
        f"{live.get('tenants', 0)} tenants locks ({live.get('relations', 0)} relations + {CATALOG_LOCKS}): "
        f"it needs at least {needed} at max_connections {max_connections}; raise it, or remove it "
        "so the deploy sizes it from the live tenant count"
    )


def packages(settings: Settings) -> list[str]:
    # uuid-ossp and pgcrypto ship in postgresql-N itself on Debian.
    # pgbackrest: physical backups and WAL archiving (deploy/pgbackrest.py).
    return [f"postgresql-{settings.pg_version}", "postgresql-client-common", "ssl-cert", "cron", "procps", "pgbackrest"]


def conf_dir(settings: Settings) -> str:
    return f"/etc/postgresql/{settings.pg_version}/main"


def lock_setting(settings: Settings, live: dict, max_connections: int) -> int:
    """max_locks_per_transaction: as pinned in pg_settings (BadInput if that cannot dump the live database), else sized."""
    pinned = settings.pg_settings.get("max_locks_per_transaction")
    if pinned is None:
        return sized_max_locks(live, max_connections, settings.pg_lock_headroom)
    if problem := lock_table_problem(int(pinned), live, max_connections):
        raise BadInput(problem)
    return int(pinned)


def postgresql_conf(data, settings: Settings, certificate: tls.ServerCertificate | None = None,
                    live: dict | None = None) -> dict:
    """The variables of templates/config/postgresql.conf.j2 for inventory ``data`` and the live server (PgLockTable)."""
    certificate = certificate or tls.from_data(data)
    server = {**DEFAULT_SERVER_SETTINGS, **settings.pg_settings}
    server["max_locks_per_transaction"] = lock_setting(settings, live or {}, int(server["max_connections"]))
    return {
        "pg_version": settings.pg_version,
        "cluster": "main",
        "port": settings.pg_port,
        "listen_addresses": list(settings.listen_addresses),
        "guard_checksum": guard.source_checksum(),
        "ssl": settings.pg_ssl,
        "pgbackrest_stanza": settings.pgbackrest.stanza,
        "archive_timeout": settings.pgbackrest.pg_archive_timeout,
        **certificate.postgresql_conf(conf_dir(settings)),
        **server,
    }


def warn_if_growing(conf: dict, live: dict) -> None:
    current, locks = current_locks(live), conf["max_locks_per_transaction"]
    if current and locks > current:
        logger.warning(
            f"max_locks_per_transaction {current} -> {locks}: one pg_dump of {live.get('tenants', 0)} tenants "
            f"takes ~{live.get('relations', 0) + CATALOG_LOCKS} locks; PostgreSQL restarts in this deploy"
        )
    elif live.get("configured_max_locks") and "max_connections" not in live:
        logger.warning("PostgreSQL is not running: tenants not counted, max_locks_per_transaction kept")


def configuration(settings: Settings, certificate: tls.ServerCertificate) -> dict:
    """postgresql.conf's variables, from inventory data and the live server; PyinfraError (one line) if refused."""
    live = host.get_fact(PgLockTable, config_file=f"{conf_dir(settings)}/postgresql.conf",
                         database=settings.db_name, port=settings.pg_port)
    try:
        check_tenant_ceiling(settings, live.get("tenants", 0))
        conf = postgresql_conf(host.data, settings, certificate, live)
    except BadInput as e:
        raise PyinfraError(str(e)) from None
    warn_if_growing(conf, live)
    return conf


# A parameter assignment in postgresql.conf: name = value, a quoted value may hold '#'.
ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=?\s*('(?:[^']|'')*'|[^#\s]*)")
# The module's source checksum, in a comment: new code needs the server restarted to load it.
GUARD_SOURCES = re.compile(r"onesift_guard, sources (\w+)")


def assignments(lines: list[str]) -> dict[str, str]:
    """postgresql.conf's parameters and values (the last assignment wins, as in PostgreSQL);
    a changed onesift_guard source counts as a change of shared_preload_libraries."""
    found, sources = {}, ""
    for line in lines:
        if guard := GUARD_SOURCES.search(line):
            sources = guard.group(1)
        elif (m := ASSIGNMENT.match(line)) and not line.lstrip().startswith("#"):
            found[m.group(1).lower()] = m.group(2)
    if sources:
        found["shared_preload_libraries"] = f"{found.get('shared_preload_libraries', '')} (sources {sources})"
    return found


def config_changes(old_conf: list[str] | None, new_conf: str, old_hba: list[str] | None, new_hba: str,
                   contexts) -> tuple[list[str], list[str]]:
    """
    What a deploy changes in postgresql.conf and pg_hba.conf, split into
    (needs a restart, a reload applies). A parameter needs a restart when
    its ``pg_settings`` context is ``postmaster`` (``contexts()`` is only
    asked when a parameter changed), or when the server does not know it;
    pg_hba.conf always reloads. No old file: a new server, restarted.
    """
    if old_conf is None:
        return ["postgresql.conf (new)"], []
    old, new = assignments(old_conf), assignments(new_conf.splitlines())
    changed = sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
    known = contexts() if changed else {}
    restart = [name for name in changed if known.get(name, "postmaster") == "postmaster"]
    reload = [name for name in changed if name not in restart]
    if [x.strip() for x in old_hba or [] if x.strip()] != [x.strip() for x in new_hba.splitlines() if x.strip()]:
        reload.append("pg_hba.conf")
    return restart, reload


def announce(restart: list[str], reload: list[str]) -> None:
    """Say before anything runs (--dry too) whether this deploy restarts or reloads PostgreSQL, and why."""
    if restart:
        logger.warning(f"{host.name}: PostgreSQL restarts in this deploy (every connection drops): "
                       f"{', '.join(restart)} changed")
    elif reload:
        logger.warning(f"{host.name}: PostgreSQL reloads its configuration in this deploy (connections stay): "
                       f"{', '.join(reload)} changed")


def other_clusters_problem(clusters: list[dict], version: int, name: str = "the host") -> str | None:
    """Why a host with a cluster of another major version must not get this one (the deploy
    would install a second, empty server beside the data, on the same port), or None."""
    others = [c for c in clusters if c["version"] != version]
    if not others:
        return None
    c = others[0]
    return (f"{name} has PostgreSQL cluster {c['version']}/{c['cluster']} ({c['status']}), and this deploy "
            f"installs PostgreSQL {version}: upgrade that cluster first (pg_upgradecluster {c['version']} "
            f"{c['cluster']}) or move its data with a backup and a restore and drop it; "
            "the deploy never upgrades a cluster in place")


@deploy("PostgreSQL server")
def install():
    settings = platform.settings()
    clusters = host.get_fact(PgClusters)
    if problem := other_clusters_problem(clusters, settings.pg_version, host.name):
        raise PyinfraError(problem)  # before any operation: a Debian 12 -> 13 upgrade left its cluster
    if cluster.is_cluster(host.data):
        if clusters:  # Patroni's PostgreSQL would start beside it, on the same port
            c = clusters[0]
            raise PyinfraError(
                f"{host.name} has PostgreSQL cluster {c['version']}/{c['cluster']} ({c['status']}), and a Patroni "
                "member's PostgreSQL is Patroni's: move its data into the cluster with a backup and a restore, "
                f"then drop it (pg_dropcluster --stop {c['version']} {c['cluster']})")
        from deploy import cluster as member  # it builds on this module

        member.install()  # Patroni runs PostgreSQL there: no postgresql.conf of ours
        return
    try:
        certificate = tls.from_data(host.data)
    except BadInput as e:
        # Before any operation: pyinfra prints a PyinfraError as one line (anything else as a traceback).
        raise PyinfraError(str(e)) from None
    conf = configuration(settings, certificate)  # before any operation, as it may refuse
    wanted = packages(settings)
    installed = host.get_fact(DebPackages)
    if any(p not in installed for p in wanted + guard.build_packages(settings)):
        # Only refresh the index when something is missing, so a no-change
        # run stays a no-change run.
        apt.update(name="Refresh apt index")
    apt.packages(name="Install PostgreSQL", packages=wanted, no_recommends=True)
    guard.install()  # before postgresql.conf preloads it

    directory = conf_dir(settings)
    # In the config directory, so pg.cluster reloads the server when one changes
    # (ssl_* files are read again on a reload).
    for upload in certificate.uploads(directory):
        if upload.local is None:
            files.file(name=f"No {upload.remote}: not named", path=upload.remote, present=False)
        else:
            files.put(
                name=f"Upload {upload.remote}",
                src=str(upload.local), dest=upload.remote,
                user="postgres", group="postgres", mode=upload.mode,
            )
    hba = dict(
        db_name=settings.db_name,
        roles=settings.roles,
        client_networks=list(settings.client_networks),
        client_networks_nossl=list(settings.client_networks_nossl),
    )
    current = host.get_fact(PgConfigFiles, directory=directory)
    restart, reload = config_changes(
        current.get("postgresql.conf"), render_template("config/postgresql.conf.j2", **conf),
        current.get("pg_hba.conf"), render_template("config/pg_hba.conf.j2", **hba),
        lambda: host.get_fact(PgSettingContexts, port=settings.pg_port),
    )
    announce(restart, reload)
    files.template(
        name="Render postgresql.conf",
        src=str(TEMPLATES / "config/postgresql.conf.j2"),
        dest=f"{directory}/postgresql.conf",
        user="postgres", group="postgres", mode="644",
        **conf,
    )
    files.template(
        name="Render pg_hba.conf",
        src=str(TEMPLATES / "config/pg_hba.conf.j2"),
        dest=f"{directory}/pg_hba.conf",
        user="postgres", group="postgres", mode="640",
        **hba,
    )
    pg.cluster(name="PostgreSQL running its current config", version=settings.pg_version,
               restart_for=restart, reload_for=reload)

"""Install and configure the PostgreSQL server from the distribution."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files

from deploy import guard, tls
from deploy.operations import pg
from deploy.render import TEMPLATES
from deploy.settings import BadInput, Settings

DEFAULT_SERVER_SETTINGS = {
    "max_connections": 100,
    "shared_buffers": "128MB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "max_wal_size": "1GB",
    "log_statement": "none",
    "log_min_duration_statement": -1,
}


# pg_dump takes one lock per table and view: 8 per tenant. The shared lock
# table holds max_locks_per_transaction * max_connections entries; keep twice
# what a whole-database dump of the expected tenants needs.
LOCKS_PER_TENANT = 8


def locks_per_transaction(expected_tenants: int, max_connections: int) -> int:
    needed = -(-2 * LOCKS_PER_TENANT * (expected_tenants + 10) // max_connections)  # ceil
    return max(256, needed)


def packages(settings: Settings) -> list[str]:
    # uuid-ossp and pgcrypto ship in postgresql-N itself on Debian.
    return [f"postgresql-{settings.pg_version}", "postgresql-client-common", "ssl-cert", "cron", "procps"]


def conf_dir(settings: Settings) -> str:
    return f"/etc/postgresql/{settings.pg_version}/main"


def postgresql_conf(data, settings: Settings, certificate: tls.ServerCertificate | None = None) -> dict:
    """The variables of templates/config/postgresql.conf.j2 for inventory ``data``."""
    certificate = certificate or tls.from_data(data)
    server = {**DEFAULT_SERVER_SETTINGS, **(data.get("pg_settings") or {})}
    if "max_locks_per_transaction" not in (data.get("pg_settings") or {}):
        expected = int(data.get("expected_tenants") or 1000)
        server["max_locks_per_transaction"] = locks_per_transaction(expected, int(server["max_connections"]))
    return {
        "pg_version": settings.pg_version,
        "cluster": "main",
        "port": settings.pg_port,
        "listen_addresses": data.get("listen_addresses") or ["localhost"],
        "guard_checksum": guard.source_checksum(),
        "ssl": data.get("pg_ssl", True),
        **certificate.postgresql_conf(conf_dir(settings)),
        **server,
    }


@deploy("PostgreSQL server")
def install():
    settings = Settings.from_data(host.data)
    try:
        certificate = tls.from_data(host.data)
    except BadInput as e:
        # Before any operation: pyinfra prints a PyinfraError as one line (anything else as a traceback).
        raise PyinfraError(str(e)) from None
    wanted = packages(settings)
    installed = host.get_fact(DebPackages)
    if any(p not in installed for p in wanted + guard.build_packages(settings)):
        # Only refresh the index when something is missing, so a no-change
        # run stays a no-change run.
        apt.update(name="Refresh apt index")
    apt.packages(name="Install PostgreSQL", packages=wanted, no_recommends=True)
    guard.install()  # before postgresql.conf preloads it

    directory = conf_dir(settings)
    # In the config directory, so pg.cluster restarts the server when one changes.
    for upload in certificate.uploads(directory):
        if upload.local is None:
            files.file(name=f"No {upload.remote}: not named", path=upload.remote, present=False)
        else:
            files.put(
                name=f"Upload {upload.remote}",
                src=str(upload.local), dest=upload.remote,
                user="postgres", group="postgres", mode=upload.mode,
            )
    files.template(
        name="Render postgresql.conf",
        src=str(TEMPLATES / "config/postgresql.conf.j2"),
        dest=f"{directory}/postgresql.conf",
        user="postgres", group="postgres", mode="644",
        **postgresql_conf(host.data, settings, certificate),
    )
    files.template(
        name="Render pg_hba.conf",
        src=str(TEMPLATES / "config/pg_hba.conf.j2"),
        dest=f"{directory}/pg_hba.conf",
        user="postgres", group="postgres", mode="640",
        db_name=settings.db_name,
        roles=settings.roles,
        client_networks=host.data.get("client_networks") or [],
        client_networks_nossl=host.data.get("client_networks_nossl") or [],
    )
    pg.cluster(name="PostgreSQL running its current config", version=settings.pg_version)

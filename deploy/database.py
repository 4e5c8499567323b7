"""The OneSift database: roles, database, extensions, then schema steps."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from deploy import platform
from onesift import cluster, secrets
from deploy.operations import pg
from onesift.settings import TENANT_SETTING, Settings
from onesift.steps import EXTENSIONS, LEAKPROOF_FUNCTIONS, deploy_steps

ROLE_ATTRIBUTES = {
    # The owner runs migrations and owns every object; RLS is forced on it too.
    "owner": {"login": True},
    # The runtime role: no BYPASSRLS, owns nothing, capped connections.
    "app": {"login": True, "connection_limit": 200},
    "auditor": {"login": True, "connection_limit": 5},
    # Owns the audit trail; nobody logs in as it (sql/repeatable/audit_owner.sql.j2).
    "audit_owner": {"login": False},
}


def on_primary() -> dict:
    """The operations' extra argument: on a Patroni cluster member, run only where the primary is
    when the operation runs (so each SQL step runs once, on the primary); elsewhere nothing."""
    if not cluster.is_cluster(host.data):
        return {}
    from deploy import cluster as member

    return {"_if": member.on_primary}


def passwords() -> dict[str, str]:
    s = Settings.from_data(host.data)
    return secrets.load(s.secrets_name, s.generate_secrets)


@deploy("OneSift roles, database and extensions")
def bootstrap():
    settings = platform.settings()
    pw = passwords()
    only = on_primary()
    for key, attrs in ROLE_ATTRIBUTES.items():
        role = settings.roles.by_key(key)
        pg.role(name=f"Role {role}", role=role, password=pw.get(key), port=settings.pg_port, **attrs, **only)
    # Before any migration: migrations and functions set onesift.tenant as the
    # owner, a superuser-only parameter once onesift_guard defines it.
    pg.parameter_setter(name=f"{settings.roles.owner} may set {TENANT_SETTING}", parameter=TENANT_SETTING,
                        role=settings.roles.owner, port=settings.pg_port, **only)
    pg.database(
        name=f"Database {settings.db_name}",
        database=settings.db_name,
        owner=settings.roles.owner,
        port=settings.pg_port,
        **only,
    )
    for ext in EXTENSIONS:
        pg.extension(name=f"Extension {ext}", extension=ext, database=settings.db_name, port=settings.pg_port, **only)
    if only:
        from deploy import cluster as member

        member.pooler()  # on every member, once the roles are there


@deploy("OneSift schema migrations, functions and grants")
def migrate():
    settings = platform.settings()
    only = on_primary()
    # Most steps as the owner, so objects get the right owner; some as the
    # superuser (rights only a superuser may give): see deploy_steps.
    for step, as_owner in deploy_steps(settings):
        pg.script(
            name=f"Apply {step.name}",
            step=step.name,
            sql=step.sql,
            database=settings.db_name,
            repeatable=step.repeatable,
            run_as=settings.roles.owner if as_owner else None,
            port=settings.pg_port,
            **only,
        )
    pg.leakproof(
        name="Enum equality usable under RLS",
        functions=list(LEAKPROOF_FUNCTIONS),
        database=settings.db_name,
        port=settings.pg_port,
        **only,
    )

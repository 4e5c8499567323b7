"""
The SQL the deploy and the ops CLI run, rendered from sql/.

One function per step, so ``ops sql render STEP`` prints exactly what the
deploy or the CLI would send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from onesift.queries import query
from onesift.render import SQL_DIR, Raw, access, render_sql
from onesift.settings import HANDOVER_THRESHOLD, BadInput, Settings, schema_for, validate_slug

# sql/tenant/base.sql.j2 builds tenant schema version 1; each file in
# sql/tenant/migrations (NNNN_name.sql.j2, NNNN >= 2) moves it one version on.
# New tenants get all of them at once; `ops tenant migrate` brings old ones up.
# pg_stat_statements: slow statements counted with their constants replaced,
# in place of a log that would carry API keys (sql/repeatable/role_settings.sql.j2).
EXTENSIONS = ("uuid-ossp", "pgcrypto", "pg_stat_statements")


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    repeatable: bool


def context(settings: Settings) -> dict:
    return {**settings.context(), "access": access()}


def migrations(settings: Settings) -> list[Step]:
    """Versioned migrations from sql/migrations, oldest first."""
    steps = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql.j2")):
        name = path.name.removesuffix(".sql.j2")
        sql = render_sql(f"migrations/{path.name}", **context(settings))
        steps.append(Step(f"migration:{name}", sql, repeatable=False))
    return steps


def tenant_names(slug: str | None) -> dict:
    """Template names for one tenant, or the placeholders the SQL functions fill in."""
    if slug is None:
        return {"schema": Raw("@@schema@@"), "slug": Raw("@@slug@@")}
    return {"schema": schema_for(slug), "slug": validate_slug(slug)}


def tenant_migrations() -> dict[int, str]:
    """Tenant migration templates by version."""
    found = {}
    for path in sorted((SQL_DIR / "tenant" / "migrations").glob("*.sql.j2")):
        version = int(path.name.split("_", 1)[0])
        if version < 2 or version in found:
            raise ValueError(f"bad tenant migration number: {path.name}")
        found[version] = f"tenant/migrations/{path.name}"
    return found


def tenant_version() -> int:
    return max(tenant_migrations(), default=1)


def tenant_migration(settings: Settings, version: int, slug: str | None = None) -> str:
    return render_sql(tenant_migrations()[version], **context(settings), **tenant_names(slug))


def tenant_ddl(settings: Settings, slug: str | None = None) -> str:
    """A new tenant's DDL at the current version: the base schema, then every tenant migration."""
    parts = [render_sql("tenant/base.sql.j2", **context(settings), **tenant_names(slug))]
    parts += [tenant_migration(settings, v, slug) for v in sorted(tenant_migrations())]
    return "\n".join(parts)


def views_ddl(settings: Settings, slug: str | None = None) -> str:
    schema = Raw("@@schema@@") if slug is None else schema_for(slug)
    return render_sql("repeatable/analytics_views.sql.j2", **context(settings), schema=schema)


def functions(settings: Settings) -> Step:
    sql = render_sql(
        "repeatable/functions.sql.j2",
        **context(settings),
        tenant_ddl=tenant_ddl(settings),
        views_ddl=views_ddl(settings),
        tenant_version=tenant_version(),
        tenant_tables=access()["tenant"]["tables"],
    )
    return Step("repeatable:functions", sql, repeatable=True)


def grants(settings: Settings) -> Step:
    sql = render_sql("repeatable/grants.sql.j2", **context(settings))
    return Step("repeatable:grants", sql, repeatable=True)


# Under RLS the planner will not evaluate a non-LEAKPROOF operator before the
# policy, so `status = 'qualified'` on an enum column could not be an index
# condition: measured 37 ms instead of 0.04 ms on 100k leads (bench/run.py).
# These compare two OIDs and raise no data-dependent error: leakproof in fact.
LEAKPROOF_FUNCTIONS = ("pg_catalog.enum_eq(anyenum, anyenum)", "pg_catalog.enum_ne(anyenum, anyenum)")


# Repeatable scripts the superuser applies between the owner's migrations and
# functions: per-role log settings (only a superuser may set them) and the
# audit trail's hand-over to its own role (only a superuser may give it away).
# (The owner's right to set onesift.tenant comes earlier: database.bootstrap.)
SUPERUSER_SCRIPTS = ("role_settings", "audit_owner")


def superuser_steps(settings: Settings) -> list[Step]:
    """What the deploy applies as the superuser."""
    return [Step(f"repeatable:{name}", render_sql(f"repeatable/{name}.sql.j2", **context(settings)),
                 repeatable=True) for name in SUPERUSER_SCRIPTS]


def deploy_steps(settings: Settings) -> list[tuple[Step, bool]]:
    """Everything `ops db migrate` and the deploy apply inside the database, in order; True: as the owner."""
    return [*((step, True) for step in migrations(settings)),
            *((step, False) for step in superuser_steps(settings)),
            (functions(settings), True), (grants(settings), True)]


def owner_prefix(settings: Settings) -> str:
    """CLI scripts act as the owner role, not as the superuser they log in as."""
    from onesift.render import quote_ident

    return f"SET LOCAL ROLE {quote_ident(settings.roles.owner)};\n"


def create_tenant(settings: Settings, slug: str, name: str, mode: str, handover_email: str | None,
                  handover_threshold: int = HANDOVER_THRESHOLD) -> str:
    """The SQL `ops tenant create` runs (sql/queries/tenant_create.sql.j2): the customer row, then its schema, in one transaction."""
    return query("tenant_create", settings, slug=validate_slug(slug), name=name, mode=mode,
                 handover_email=handover_email, handover_threshold=int(handover_threshold))


def dollar_quote(text: str) -> str:
    """``text`` as a dollar-quoted literal whose tag does not occur in it."""
    n = 0
    while f"$m{n}$" in text:
        n += 1
    return f"$m{n}${text}$m{n}$"


def migration_session(settings: Settings, lock_timeout_ms: int) -> str:
    """The start of a psql session that migrates tenants: as the owner, and
    no lock waited for longer than ``lock_timeout_ms`` (a DDL lock queued
    behind an app transaction would queue every app query behind it)."""
    from onesift.render import quote_ident

    return f"SET ROLE {quote_ident(settings.roles.owner)};\nSET lock_timeout = {int(lock_timeout_ms)};\n"


def migrate_tenant(settings: Settings, slug: str, customer_id: str, from_version: int,
                   extra: dict[int, Callable[[str], str]] | None = None) -> str:
    """One statement, one transaction: a tenant's pending migrations through
    system.apply_tenant_migration, which prints ``slug|outcome``. ``extra``:
    migrations past the shipped ones, version -> SQL for a slug (bench/run.py)."""
    from onesift.render import quote_literal as lit

    def ddl(v: int) -> str:
        return extra[v](slug) if v in (extra or {}) else tenant_migration(settings, v, slug)

    last = max([tenant_version(), *(extra or {})])
    sql = "\n".join(ddl(v) for v in range(from_version + 1, last + 1))
    return (f"SELECT {lit(slug)}, system.apply_tenant_migration({lit(customer_id)}, {int(from_version)}, "
            f"{last}, {dollar_quote(sql)});\n")


TENANT_STEPS = ("tenant", "views", "tenant-create")


def step_sql(settings: Settings, step: str, slug: str | None = None) -> str:
    """The SQL of one step by its name (`ops sql render`): a migration, a repeatable script,
    or a tenant step for ``slug``; BadInput naming the steps when there is no such step."""
    fixed = {m.name.split(":", 1)[1]: m.sql for m in migrations(settings)}
    fixed.update(functions=functions(settings).sql, grants=grants(settings).sql)
    fixed.update({s.name.split(":", 1)[1]: s.sql for s in superuser_steps(settings)})
    if step in fixed:
        return fixed[step]
    if step not in TENANT_STEPS:
        raise BadInput(f"unknown step {step!r}; steps: {', '.join([*fixed, *TENANT_STEPS])}")
    if not slug:
        raise BadInput(f"step {step!r} needs --slug")
    if step == "tenant":
        return tenant_ddl(settings, slug)
    if step == "views":
        return views_ddl(settings, slug)
    return create_tenant(settings, slug, slug, "api", None)

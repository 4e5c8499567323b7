"""
The SQL the deploy and the ops CLI run, rendered from templates/ and sql/.

One function per step, so ``ops sql render STEP`` prints exactly what the
deploy or the CLI would send.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.render import SQL_DIR, Raw, access, render
from deploy.settings import Settings, schema_for, validate_slug

# Bump when templates/sql/tenant.sql.j2 changes; existing tenants then need
# a tenant migration (ops tenant migrate).
TENANT_VERSION = 1
EXTENSIONS = ("uuid-ossp", "pgcrypto")


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
        sql = render(f"sql/migrations/{path.name}", **context(settings))
        steps.append(Step(f"migration:{name}", sql, repeatable=False))
    return steps


def tenant_ddl(settings: Settings, slug: str | None = None) -> str:
    """A tenant schema's DDL; with no slug, with the placeholders the SQL function fills in."""
    if slug is None:
        names = {"schema": Raw("@@schema@@"), "slug": Raw("@@slug@@")}
    else:
        names = {"schema": schema_for(slug), "slug": validate_slug(slug)}
    return render("sql/tenant.sql.j2", **context(settings), **names)


def views_ddl(settings: Settings, slug: str | None = None) -> str:
    schema = Raw("@@schema@@") if slug is None else schema_for(slug)
    return render("sql/analytics_views.sql.j2", **context(settings), schema=schema)


def functions(settings: Settings) -> Step:
    sql = render(
        "sql/functions.sql.j2",
        **context(settings),
        tenant_ddl=tenant_ddl(settings),
        views_ddl=views_ddl(settings),
        tenant_version=TENANT_VERSION,
        tenant_tables=access()["tenant"]["tables"],
    )
    return Step("repeatable:functions", sql, repeatable=True)


def grants(settings: Settings) -> Step:
    return Step("repeatable:grants", render("sql/grants.sql.j2", **context(settings)), repeatable=True)


def schema_steps(settings: Settings) -> list[Step]:
    """Everything `ops db migrate` and the deploy apply inside the database, in order."""
    return [*migrations(settings), functions(settings), grants(settings)]


def owner_prefix(settings: Settings) -> str:
    """CLI scripts act as the owner role, not as the superuser they log in as."""
    from deploy.render import quote_ident

    return f"SET LOCAL ROLE {quote_ident(settings.roles.owner)};\n"


def create_tenant(settings: Settings, slug: str, name: str, mode: str, handover_email: str | None) -> str:
    """The SQL `ops tenant create` runs: the customer row, then its schema, in one transaction."""
    from deploy.render import quote_literal

    validate_slug(slug)
    email = quote_literal(handover_email) if handover_email else "NULL"
    return (
        owner_prefix(settings)
        + "INSERT INTO system.customers (slug, name, schema_name, ingestion_mode, handover_email)\n"
        + f"VALUES ({quote_literal(slug)}, {quote_literal(name)}, {quote_literal(schema_for(slug))}, "
        + f"{quote_literal(mode)}, {email})\nRETURNING id AS customer_id \\gset\n"
        + "SELECT jsonb_build_object('id', :'customer_id', "
        + "'schema', system.create_customer_schema(:'customer_id'));\n"
    )

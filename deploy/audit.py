"""
The auditor's view: the privilege matrix and RLS policies the templates
grant (templates/access.toml), the same read from a live catalog, and the
differences between the two.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from deploy.render import access, quote_literal
from deploy.settings import Settings, TENANT_PREFIX
from deploy.sqlsteps import LEAKPROOF_FUNCTIONS

RUNTIME_ROLES = ("app", "auditor")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True, order=True)
class Privilege:
    role: str
    schema: str
    kind: str  # schema | table | view | function
    object: str
    privilege: str

    def __str__(self) -> str:
        where = self.schema if self.kind == "schema" else f"{self.schema}.{self.object}"
        return f"{self.role} {self.privilege} on {self.kind} {where}"


def matrix(settings: Settings, tenant_schemas: list[str] | None = None) -> list[Privilege]:
    """What access.toml grants; "tenant" rows are expanded over ``tenant_schemas`` (or kept as tenant_*)."""
    rows = []
    for g in access()["grant"]:
        role = settings.roles.by_key(g["role"])
        schemas = ["system"] if g["schema"] == "system" else (tenant_schemas if tenant_schemas is not None else [TENANT_PREFIX + "*"])
        for schema in schemas:
            for obj in g["objects"]:
                obj = schema if g["on"] == "schema" else obj
                rows += [Privilege(role, schema, g["on"], obj, p) for p in g["privileges"]]
    return sorted(set(rows))


def policies(settings: Settings) -> list[dict]:
    t = access()["tenant"]
    return [{"table": table, **p} for table in t["tables"] for p in t["policy"]]


def render_markdown(settings: Settings) -> str:
    lines = ["# OneSift privileges (from templates/access.toml)", "",
             "Anything not listed is not granted. PUBLIC is granted nothing.", "",
             "| role | schema | object class | object | privileges |", "|---|---|---|---|---|"]
    grouped: dict[tuple, list[str]] = {}
    for p in matrix(settings):
        grouped.setdefault((p.role, p.schema, p.kind, p.object), []).append(p.privilege)
    for (role, schema, kind, obj), privs in sorted(grouped.items()):
        lines.append(f"| {role} | {schema} | {kind} | {obj} | {', '.join(sorted(privs))} |")
    lines += ["", "## Row level security", "",
              f"Enabled and forced on every table of every `{TENANT_PREFIX}*` schema.", "",
              "| table | policy | command | roles | using | with check |", "|---|---|---|---|---|---|"]
    for p in policies(settings):
        lines.append(f"| {p['table']} | {p['name']} | {p['command']} | {', '.join(p['roles'])} "
                     f"| `{p['using']}` | `{p.get('check', '')}` |")
    return "\n".join(lines) + "\n"


def render_csv(settings: Settings) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["role", "schema", "object_class", "object", "privilege"])
    for p in matrix(settings):
        w.writerow([p.role, p.schema, p.kind, p.object, p.privilege])
    return out.getvalue()


def live_sql(settings: Settings) -> str:
    """One query returning the live catalog as JSON: privileges, RLS flags, policies, default ACLs, roles."""
    roles = ", ".join(f"({quote_literal(settings.roles.by_key(k))})" for k in RUNTIME_ROLES)
    table_privs = ", ".join(quote_literal(p) for p in TABLE_PRIVILEGES)
    leakproof = ", ".join(f"{quote_literal(f)}::regprocedure" for f in LEAKPROOF_FUNCTIONS)
    return f"""
WITH roles(r) AS (VALUES {roles}),
schemas AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname = 'system' OR nspname LIKE {quote_literal(TENANT_PREFIX + '%')}
),
rels AS (
    SELECT c.oid, s.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'p', 'm')
),
funcs AS (
    SELECT p.oid, s.nspname, p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS name
    FROM pg_proc p JOIN schemas s ON s.oid = p.pronamespace
),
privs AS (
    SELECT r, nspname AS schema, 'schema' AS kind, nspname AS object, priv
    FROM roles, schemas, unnest(ARRAY['USAGE', 'CREATE']) priv WHERE has_schema_privilege(r, schemas.oid, priv)
    UNION ALL
    SELECT r, nspname, CASE relkind WHEN 'v' THEN 'view' ELSE 'table' END, relname, priv
    FROM roles, rels, unnest(ARRAY[{table_privs}]) priv WHERE has_table_privilege(r, rels.oid, priv)
    UNION ALL
    SELECT r, nspname, 'function', name, 'EXECUTE'
    FROM roles, funcs WHERE has_function_privilege(r, funcs.oid, 'EXECUTE')
)
SELECT jsonb_build_object(
    'privileges', (SELECT coalesce(jsonb_agg(jsonb_build_array(r, schema, kind, object, priv)), '[]') FROM privs),
    'tables', (SELECT coalesce(jsonb_agg(jsonb_build_array(nspname, relname, relrowsecurity, relforcerowsecurity)), '[]')
               FROM rels WHERE relkind = 'r' AND nspname <> 'system'),
    'policies', (SELECT coalesce(jsonb_agg(jsonb_build_array(schemaname, tablename, policyname, cmd, roles::text[], qual, with_check)), '[]')
                 FROM pg_policies WHERE schemaname LIKE {quote_literal(TENANT_PREFIX + '%')}),
    'tenants', (SELECT coalesce(jsonb_agg(jsonb_build_array(slug, schema_name)), '[]') FROM system.customers),
    'default_acl_public_execute', (SELECT coalesce(bool_or(a.grantee = 0 AND a.privilege_type = 'EXECUTE'), true)
        FROM pg_default_acl d LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true
        WHERE d.defaclrole = {quote_literal(settings.roles.owner)}::regrole AND d.defaclobjtype = 'f'),
    'roles', (SELECT jsonb_object_agg(rolname, jsonb_build_array(rolsuper, rolbypassrls, rolcreaterole, rolcreatedb))
              FROM pg_roles WHERE rolname IN (SELECT r FROM roles)),
    'enum_eq_leakproof', (SELECT bool_and(proleakproof) FROM pg_proc WHERE oid IN ({leakproof})),
    'owned_by_runtime', (SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                         WHERE o.rolname IN (SELECT r FROM roles)),
    'audit_log_owner', (SELECT relowner::regrole::text FROM pg_class WHERE oid = to_regclass('audit.log')),
    'audit_log_writers', (SELECT coalesce(jsonb_agg(DISTINCT r ORDER BY r), '[]')
        FROM (VALUES ({quote_literal(settings.roles.owner)}), {roles}) w(r),
             unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) priv
        WHERE to_regclass('audit.log') IS NOT NULL AND has_table_privilege(r, 'audit.log', priv))
);
"""


def normalize(expr: str | None) -> str:
    """Compare policy expressions as PostgreSQL prints them and as the templates write them."""
    return re.sub(r"[\s()]|::text", "", expr or "")


def differences(settings: Settings, live: dict) -> list[str]:
    """Every way the live catalog differs from the templates, one line each."""
    tenants = {schema: slug for slug, schema in live["tenants"]}
    want = set(matrix(settings, sorted(tenants)))
    have = {Privilege(*row) for row in live["privileges"]}
    diffs = [f"extra privilege: {p}" for p in sorted(have - want)]
    diffs += [f"missing privilege: {p}" for p in sorted(want - have)]
    diffs += rls_differences(settings, live, tenants)
    if live["default_acl_public_execute"]:
        diffs.append(f"default privileges: functions created by {settings.roles.owner} are executable by PUBLIC")
    for role, (sup, bypass, createrole, createdb) in sorted((live["roles"] or {}).items()):
        if sup or bypass or createrole or createdb:
            diffs.append(f"role {role} has SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB")
    if not live.get("enum_eq_leakproof"):
        diffs.append("enum_eq/enum_ne are not LEAKPROOF: enum filters cannot use indexes under RLS")
    if live["owned_by_runtime"]:
        diffs.append(f"runtime roles own {live['owned_by_runtime']} relations")
    diffs += audit_trail_differences(settings, live)
    return diffs


def audit_trail_differences(settings: Settings, live: dict) -> list[str]:
    """The audit trail is append-only only while its own role owns it and no login role may change it."""
    diffs = []
    owner = live.get("audit_log_owner")
    if owner != settings.roles.audit_owner:
        diffs.append(f"audit.log is owned by {owner or 'nobody (missing)'}, not {settings.roles.audit_owner}")
    diffs += [f"{r} may change audit.log directly" for r in live.get("audit_log_writers") or []]
    return diffs


def rls_differences(settings: Settings, live: dict, tenants: dict[str, str]) -> list[str]:
    diffs = []
    tables = {(s, t): (on, forced) for s, t, on, forced in live["tables"]}
    found = {(s, t, name): (cmd, roles, qual, check) for s, t, name, cmd, roles, qual, check in live["policies"]}
    for schema, slug in sorted(tenants.items()):
        for p in policies(settings):
            where = f"{schema}.{p['table']}"
            on, forced = tables.get((schema, p["table"]), (False, False))
            if not on:
                diffs.append(f"row level security disabled: {where}")
            if not forced:
                diffs.append(f"row level security not forced: {where}")
            got = found.pop((schema, p["table"], p["name"]), None)
            literal = quote_literal(slug)
            wanted = (p["command"], [r.lower() for r in p["roles"]],
                      normalize(p["using"].replace("{slug}", literal)), normalize(p.get("check", "").replace("{slug}", literal)))
            if got is None:
                diffs.append(f"missing policy: {p['name']} on {where}")
            elif (got[0], got[1], normalize(got[2]), normalize(got[3])) != wanted:
                diffs.append(f"changed policy: {p['name']} on {where}")
    diffs += [f"extra policy: {name} on {s}.{t}" for (s, t, name) in sorted(found)]
    return diffs

"""
The auditor's view: the privilege matrix and RLS policies the templates
grant (sql/access.toml), the same read from a live catalog, the
differences between the two, and the audit trail.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from onesift.render import access, quote_literal
from onesift.steps import LEAKPROOF_FUNCTIONS
from onesift.queries import query
from onesift.settings import TENANT_PREFIX, BadInput, Settings, validate_slug

if TYPE_CHECKING:
    from onesift.session import HostSession

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
    lines = ["# OneSift privileges (from sql/access.toml)", "",
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


# Tenant schemas are compared by shape: the server folds each schema's
# privileges, RLS flags and policies into one JSON value with its own name and
# slug replaced by these marks, and sends each distinct shape once, then one
# short line per tenant naming its shape. A healthy fleet is one shape, so the
# check reads O(N) lines of ~60 bytes instead of one 29.6 MB line (61-72 s at
# 10,000 tenants over pyinfra's SSH channel, which slows with the square of a
# line's length: issue 9).
SCHEMA_MARK = "{schema}"
SLUG_MARK = "{slug}"


def expr(column: str) -> str:
    """SQL printing a policy expression as pg_policies does. Without column
    references it is printed without its table (pg_get_expr(e, 0)): naming the
    table opens each one, 6.8 s for 50,000 policies at 10,000 tenants against
    0.9 s (issue 9)."""
    return (f"CASE WHEN {column}::text LIKE '%{{VAR %' THEN pg_get_expr({column}, p.polrelid) "
            f"ELSE pg_get_expr({column}, 0) END")


def live_sql(settings: Settings) -> str:
    """The live catalog, a JSON array a line: ["system", {...}], then ["shape", k, {...}] for each distinct
    tenant-schema shape, then ["tenant", schema, slug, k] for each tenant schema and each customer."""
    roles = ", ".join(f"({quote_literal(settings.roles.by_key(k))})" for k in RUNTIME_ROLES)
    table_privs = ", ".join(quote_literal(p) for p in TABLE_PRIVILEGES)
    leakproof = ", ".join(f"{quote_literal(f)}::regprocedure" for f in LEAKPROOF_FUNCTIONS)
    prefix = quote_literal(TENANT_PREFIX + "%")
    return f"""
CREATE TEMP TABLE audit_privs ON COMMIT DROP AS
WITH roles(r) AS (VALUES {roles}),
schemas AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname = 'system' OR nspname LIKE {prefix}
),
rels AS (
    SELECT c.oid, s.nspname, c.relname, c.relkind
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'p', 'm')
),
funcs AS (
    SELECT p.oid, s.nspname, p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS name
    FROM pg_proc p JOIN schemas s ON s.oid = p.pronamespace
)
SELECT r, nspname AS schema, 'schema' AS kind, nspname AS object, priv
FROM roles, schemas, unnest(ARRAY['USAGE', 'CREATE']) priv WHERE has_schema_privilege(r, schemas.oid, priv)
UNION ALL
SELECT r, nspname, CASE relkind WHEN 'v' THEN 'view' ELSE 'table' END, relname, priv
FROM roles, rels, unnest(ARRAY[{table_privs}]) priv WHERE has_table_privilege(r, rels.oid, priv)
UNION ALL
SELECT r, nspname, 'function', name, 'EXECUTE'
FROM roles, funcs WHERE has_function_privilege(r, funcs.oid, 'EXECUTE');

SELECT jsonb_build_array('system', jsonb_build_object(
    'privileges', (SELECT coalesce(jsonb_agg(jsonb_build_array(r, schema, kind, object, priv)), '[]')
                   FROM audit_privs WHERE schema = 'system'),
    'default_acl_public_execute', (SELECT coalesce(bool_or(a.grantee = 0 AND a.privilege_type = 'EXECUTE'), true)
        FROM pg_default_acl d LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true
        WHERE d.defaclrole = {quote_literal(settings.roles.owner)}::regrole AND d.defaclobjtype = 'f'),
    'roles', (SELECT jsonb_object_agg(rolname, jsonb_build_array(rolsuper, rolbypassrls, rolcreaterole, rolcreatedb))
              FROM pg_roles WHERE rolname IN (SELECT r FROM (VALUES {roles}) v(r))),
    'enum_eq_leakproof', (SELECT bool_and(proleakproof) FROM pg_proc WHERE oid IN ({leakproof})),
    'owned_by_runtime', (SELECT count(*) FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                         WHERE o.rolname IN (SELECT r FROM (VALUES {roles}) v(r))),
    'audit_log_owner', (SELECT relowner::regrole::text FROM pg_class WHERE oid = to_regclass('audit.log')),
    'audit_log_writers', (SELECT coalesce(jsonb_agg(DISTINCT r ORDER BY r), '[]')
        FROM (VALUES ({quote_literal(settings.roles.owner)}), {roles}) w(r),
             unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) priv
        WHERE to_regclass('audit.log') IS NOT NULL AND has_table_privilege(r, 'audit.log', priv))
));

CREATE TEMP TABLE audit_tenants ON COMMIT DROP AS
WITH tenant_schemas AS (
    SELECT n.oid, n.nspname AS schema, c.slug
    FROM pg_namespace n LEFT JOIN system.customers c ON c.schema_name = n.nspname
    WHERE n.nspname LIKE {prefix}
),
privs AS (
    SELECT schema, jsonb_agg(jsonb_build_array(r, kind, CASE kind WHEN 'schema' THEN {quote_literal(SCHEMA_MARK)} ELSE object END, priv)
                             ORDER BY r, kind, object, priv) AS v
    FROM audit_privs WHERE schema <> 'system' GROUP BY schema
),
tables AS (
    SELECT relnamespace, jsonb_agg(jsonb_build_array(relname, relrowsecurity, relforcerowsecurity) ORDER BY relname) AS v
    FROM pg_class WHERE relkind = 'r' AND relnamespace IN (SELECT oid FROM tenant_schemas) GROUP BY relnamespace
),
pols AS (
    SELECT c.relnamespace, jsonb_agg(jsonb_build_array(c.relname, p.polname,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               CASE WHEN p.polroles = '{{0}}' THEN ARRAY['public']
                    ELSE ARRAY(SELECT rolname::text FROM pg_roles WHERE oid = ANY(p.polroles) ORDER BY 1) END,
               replace({expr('p.polqual')}, quote_literal(t.slug), {quote_literal(SLUG_MARK)}),
               replace({expr('p.polwithcheck')}, quote_literal(t.slug), {quote_literal(SLUG_MARK)}))
           ORDER BY c.relname, p.polname) AS v
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN tenant_schemas t ON t.oid = c.relnamespace
    GROUP BY c.relnamespace
)
SELECT t.schema, t.slug, jsonb_build_object('privileges', coalesce(privs.v, '[]'), 'tables', coalesce(tables.v, '[]'),
                                            'policies', coalesce(pols.v, '[]')) AS shape
FROM tenant_schemas t
LEFT JOIN privs ON privs.schema = t.schema
LEFT JOIN tables ON tables.relnamespace = t.oid
LEFT JOIN pols ON pols.relnamespace = t.oid
UNION ALL
SELECT schema_name, slug, NULL FROM system.customers c
WHERE NOT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = c.schema_name);

SELECT jsonb_build_array('shape', md5(shape::text), shape) FROM audit_tenants WHERE shape IS NOT NULL GROUP BY shape;
SELECT jsonb_build_array('tenant', schema, slug, md5(shape::text)) FROM audit_tenants;
"""


def read_live(lines: list[str]) -> dict:
    """The output of live_sql as {"system": {...}, "shapes": {k: shape}, "tenants": [(schema, slug, k)]}."""
    live: dict = {"system": {}, "shapes": {}, "tenants": []}
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row[0] == "system":
            live["system"] = row[1]
        elif row[0] == "shape":
            live["shapes"][row[1]] = row[2]
        else:
            live["tenants"].append(tuple(row[1:]))
    return live


def normalize(expr: str | None) -> str:
    """Compare policy expressions as PostgreSQL prints them and as the templates write them."""
    return re.sub(r"[\s()]|::text", "", expr or "")


def differences(settings: Settings, live: dict) -> list[str]:
    """Every way the live catalog (as read_live returns it) differs from the templates, one line each."""
    system = live["system"]
    want = {p for p in matrix(settings, []) if p.schema == "system"}
    have = {Privilege(*row) for row in system["privileges"]}
    diffs = [f"extra privilege: {p}" for p in sorted(have - want)]
    diffs += [f"missing privilege: {p}" for p in sorted(want - have)]
    diffs += tenant_differences(settings, live)
    if system["default_acl_public_execute"]:
        diffs.append(f"default privileges: functions created by {settings.roles.owner} are executable by PUBLIC")
    for role, (sup, bypass, createrole, createdb) in sorted((system["roles"] or {}).items()):
        if sup or bypass or createrole or createdb:
            diffs.append(f"role {role} has SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB")
    if not system.get("enum_eq_leakproof"):
        diffs.append("enum_eq/enum_ne are not LEAKPROOF: enum filters cannot use indexes under RLS")
    if system["owned_by_runtime"]:
        diffs.append(f"runtime roles own {system['owned_by_runtime']} relations")
    diffs += audit_trail_differences(settings, system)
    return diffs


def tenant_differences(settings: Settings, live: dict) -> list[str]:
    """Each distinct shape is compared with the templates once; its differences are then named per tenant."""
    by_shape = {k: shape_differences(settings, shape) for k, shape in live["shapes"].items()}
    diffs = []
    for schema, slug, k in sorted(live["tenants"], key=lambda row: row[0]):
        if k is None:
            found = [f"missing schema: {schema} of tenant {slug}"]
        elif slug is None:
            found = by_shape[k][1]  # not a tenant's schema: everything in it is extra
        else:
            found = by_shape[k][0]
        diffs += [d.replace(SCHEMA_MARK, schema) for d in found]
    return diffs


def shape_differences(settings: Settings, shape: dict) -> tuple[list[str], list[str]]:
    """(differences of a tenant schema of this shape, those of a schema no tenant owns), with SCHEMA_MARK for its name."""
    want = {p for p in matrix(settings, [SCHEMA_MARK]) if p.schema == SCHEMA_MARK}
    have = {Privilege(role, SCHEMA_MARK, kind, obj, priv) for role, kind, obj, priv in shape["privileges"]}
    extra = [f"extra privilege: {p}" for p in sorted(have - want)]
    diffs = extra + [f"missing privilege: {p}" for p in sorted(want - have)]
    diffs += rls_differences(settings, shape)
    orphan = [f"extra privilege: {p}" for p in sorted(have)]
    orphan += [f"extra policy: {name} on {SCHEMA_MARK}.{table}" for table, name, *_ in shape["policies"]]
    return diffs, orphan


def audit_trail_differences(settings: Settings, system: dict) -> list[str]:
    """The audit trail is append-only only while its own role owns it and no login role may change it."""
    diffs = []
    owner = system.get("audit_log_owner")
    if owner != settings.roles.audit_owner:
        diffs.append(f"audit.log is owned by {owner or 'nobody (missing)'}, not {settings.roles.audit_owner}")
    diffs += [f"{r} may change audit.log directly" for r in system.get("audit_log_writers") or []]
    return diffs


def rls_differences(settings: Settings, shape: dict) -> list[str]:
    diffs = []
    tables = {t: (on, forced) for t, on, forced in shape["tables"]}
    found = {(t, name): (cmd, roles, qual, check) for t, name, cmd, roles, qual, check in shape["policies"]}
    for p in policies(settings):
        where = f"{SCHEMA_MARK}.{p['table']}"
        on, forced = tables.get(p["table"], (False, False))
        if not on:
            diffs.append(f"row level security disabled: {where}")
        if not forced:
            diffs.append(f"row level security not forced: {where}")
        got = found.pop((p["table"], p["name"]), None)
        wanted = (p["command"], [r.lower() for r in p["roles"]],
                  normalize(p["using"].replace("{slug}", SLUG_MARK)), normalize(p.get("check", "").replace("{slug}", SLUG_MARK)))
        if got is None:
            diffs.append(f"missing policy: {p['name']} on {where}")
        elif (got[0], got[1], normalize(got[2]), normalize(got[3])) != wanted:
            diffs.append(f"changed policy: {p['name']} on {where}")
    diffs += [f"extra policy: {name} on {SCHEMA_MARK}.{t}" for (t, name) in sorted(found)]
    return diffs


def check(s: HostSession) -> list[str]:
    """Each difference between the live catalog and access.toml, one line each; empty when none."""
    return differences(s.settings, read_live(s.run_sql(live_sql(s.settings))))


@dataclass(frozen=True)
class Entry:
    """One entry of the audit trail (audit.log)."""
    id: int
    created_at: str
    actor: str
    db_user: str
    action: str
    customer_id: str | None
    slug: str | None
    details: dict


def parse_since(text: str | None) -> datetime | None:
    """`ops audit log --since` as a time (UTC when no zone is given); BadInput if it is not one."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--since wants a date or time like 2026-11-29 or 2026-11-29T14:00+00:00, not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def log(s: HostSession, slug: str | None = None, since: datetime | None = None) -> list[Entry]:
    """The audit trail, oldest first (of one tenant, from a time on)."""
    sql = query("audit_log", s.settings, slug=slug and validate_slug(slug), since=since and since.isoformat())
    return [Entry(**json.loads(line)) for line in s.run_sql(sql) if line.strip()]

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

from onesift.render import access
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


def live_sql(settings: Settings) -> str:
    """The live catalog, a JSON array a line (sql/queries/audit_live.sql.j2)."""
    return query("audit_live", settings, runtime_roles=[settings.roles.by_key(k) for k in RUNTIME_ROLES],
                 table_privileges=TABLE_PRIVILEGES, leakproof_functions=LEAKPROOF_FUNCTIONS,
                 schema_mark=SCHEMA_MARK, slug_mark=SLUG_MARK)


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

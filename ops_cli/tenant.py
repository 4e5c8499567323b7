"""`ops tenant`: create, list, show and drop tenants (one schema per customer)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from enum import Enum
from typing import Annotated, Iterator, Optional

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from deploy.render import access, quote_ident, quote_literal
from onesift.settings import (
    HANDOVER_THRESHOLD,
    HANDOVER_THRESHOLD_RANGE,
    BadInput,
    Settings,
    check_tenant_ceiling,
    schema_for,
    validate_handover_threshold,
    validate_slug,
)
from deploy.sqlsteps import create_tenant, owner_prefix, tenant_version
from ops_cli.common import (
    DEFAULT, InventoryOpt, JsonOpt, console, err, literal, problem, refuse_destructive, refusing_bad_input, target,
)
from onesift.tenant_migrations import migrate_all
from onesift.session import Target

app = typer.Typer(help="Tenants: one customer, one schema.", no_args_is_help=True)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Mode(str, Enum):
    email = "email"
    api = "api"


def validate_customer(name: str, mode: str, handover_email: str | None) -> None:
    if not name.strip() or len(name) > 200 or "\x00" in name:
        raise BadInput("customer name must be 1-200 characters")
    if handover_email is not None and not EMAIL_RE.match(handover_email):
        raise BadInput(f"invalid handover email {handover_email!r}")
    if mode == "email" and not handover_email:
        raise BadInput("email-mode customers need a handover email (--handover-email, or the CSV's handover_email)")


def customer(t: Target, slug: str) -> dict:
    """The customer row for ``slug``; BadInput if there is none."""
    row = t.query_json(
        "SELECT to_jsonb(c) FROM system.customers c WHERE slug = " + quote_literal(validate_slug(slug))
    )
    if row is None:
        raise BadInput(f"no tenant {slug!r}")
    return row


def exists(t: Target, slug: str) -> bool:
    return bool(t.query_json(f"SELECT to_jsonb(EXISTS (SELECT 1 FROM system.customers WHERE slug = {quote_literal(slug)}))"))


def tenant_count(t: Target) -> int:
    return t.query_json("SELECT to_jsonb(count(*)) FROM system.customers")


def create_one(t: Target, slug: str, name: str, mode: str, handover_email: str | None,
               handover_threshold: int = HANDOVER_THRESHOLD) -> dict:
    """Validate, then create the customer and its schema in one transaction."""
    validate_slug(slug)
    validate_customer(name, mode, handover_email)
    threshold = validate_handover_threshold(handover_threshold)
    if exists(t, slug):
        raise BadInput(f"tenant {slug!r} already exists")
    check_tenant_ceiling(t.settings, tenant_count(t), 1)
    return t.query_json(create_tenant(t.settings, slug, name, mode, handover_email, threshold))


@app.command()
def create(
    slug: Annotated[str, typer.Argument(help="lowercase letters, digits, '_' or '-'; 2-40 chars")],
    name: Annotated[str, typer.Option(help="Display name of the customer.")],
    mode: Annotated[Mode, typer.Option(help="How leads arrive.")] = Mode.email,
    handover_email: Annotated[Optional[str], typer.Option(help="Where handoffs go (email mode).")] = None,
    handover_threshold: Annotated[int, typer.Option(
        min=HANDOVER_THRESHOLD_RANGE[0], max=HANDOVER_THRESHOLD_RANGE[1],
        help="When the AI hands a lead over to a person (README createCustomer handoverThreshold).",
    )] = HANDOVER_THRESHOLD,
    inventory: InventoryOpt = DEFAULT,
):
    """Create a customer and its tenant schema (tables, indexes, RLS, grants, views)."""
    with target(inventory) as t:
        made = create_one(t, slug, name, mode.value, handover_email, handover_threshold)
        console.print(Text.assemble("created tenant ", literal(slug, "bold"),
                                    literal(f" in schema {made['schema']} (customer {made['id']})")))


@app.command("list")
def list_(
    as_json: JsonOpt = False,
    inventory: InventoryOpt = DEFAULT,
):
    """List tenants."""
    with target(inventory) as t:
        rows = t.query_json(
            "SELECT coalesce(jsonb_agg(t ORDER BY t.slug), '[]') FROM ("
            "SELECT c.slug, c.name, c.schema_name, c.ingestion_mode, c.is_active, c.schema_version, "
            "(SELECT count(*) FROM system.api_keys k WHERE k.customer_id = c.id AND k.revoked_at IS NULL) AS active_keys "
            "FROM system.customers c) t"
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console.print(tenant_table(rows))


LIST_COLUMNS = {"slug": "slug", "name": "name", "schema": "schema_name", "mode": "ingestion_mode",
                "active": "is_active", "version": "schema_version", "keys": "active_keys"}


def tenant_table(rows: list[dict]) -> Table:
    """The `ops tenant list` table; every cell literal, as names come from users."""
    table = Table(*LIST_COLUMNS)
    for r in rows:
        table.add_row(*(literal(r[key]) for key in LIST_COLUMNS.values()))
    return table


def show_sql(settings: Settings, slug: str, customer_id: str) -> str:
    schema = quote_ident(schema_for(slug))
    tables = access()["tenant"]["tables"]
    counts = ", ".join(f"{quote_literal(tb)}, (SELECT count(*) FROM {schema}.{quote_ident(tb)})" for tb in tables)
    return (
        owner_prefix(settings)
        + f"SELECT system.act_as_tenant({quote_literal(slug)});\n"
        + f"SELECT jsonb_build_object('rows', jsonb_build_object({counts}), "
        + f"'storage_bytes', system.get_customer_storage_size({quote_literal(customer_id)}::uuid));\n"
    )


@app.command()
def show(
    slug: str,
    as_json: JsonOpt = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Show one tenant: settings, row counts, storage."""
    with target(inventory) as t:
        info = customer(t, slug)
        info.update(t.query_json(show_sql(t.settings, slug, info["id"])))
    if as_json:
        print(json.dumps(info, indent=2))
        return
    console.print(tenant_details(info), highlight=False)


SHOW_KEYS = ("slug", "name", "schema_name", "ingestion_mode", "handover_email", "handover_threshold",
             "is_active", "created_at", "storage_bytes")


def tenant_details(info: dict) -> Text:
    """The `ops tenant show` lines: `key: value`, then `  table: rows`; values literal."""
    lines = [Text.assemble((key, "bold"), ": ", literal(info.get(key))) for key in SHOW_KEYS]
    lines += [literal(f"  {tb}: {n}") for tb, n in info["rows"].items()]
    return Text("\n").join(lines)


@app.command()
def drop(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this deletes the tenant's data.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = DEFAULT,
):
    """Drop a tenant: its schema and all its rows, its customer row and API keys."""
    with target(inventory) as t:
        refuse_destructive(t, yes, allow_production, f"dropping tenant {slug!r}")
        info = customer(t, slug)
        t.run_sql(owner_prefix(t.settings) + f"SELECT system.drop_customer_schema({quote_literal(info['id'])});")
        console.print(Text.assemble("dropped tenant ", literal(slug, "bold")))


@app.command()
def migrate(
    parallel: Annotated[int, typer.Option(min=1, max=32, help="psql sessions migrating tenants at once.")] = 2,
    inventory: InventoryOpt = DEFAULT,
):
    """Apply pending tenant migrations to every tenant schema; run again to resume after a failure.

    Each tenant migrates in one transaction that waits for a lock no longer
    than the inventory's migrate_lock_timeout_ms, and is tried again
    migrate_lock_retries times before it is left for the next run."""
    with target(inventory) as t:
        with Progress(console=err) as progress:
            task = progress.add_task(f"migrate to v{tenant_version()}", total=None)

            def advance(n: int, total: int, note: str) -> None:
                label = " ".join([f"migrate to v{tenant_version()}", note]).strip()
                progress.update(task, advance=n, total=total, description=literal(label).markup)

            result = migrate_all(t, parallel, advance)
        wait = t.settings.migrate_lock_timeout_ms
    for slug, error in sorted(result.failed.items()):
        problem("failed", f"{slug}: {error}")
    for slug, error in sorted(result.retryable.items()):
        problem("waiting", f"{slug}: {error} (lock_timeout {wait} ms, tried {t.settings.migrate_lock_retries + 1} times)")
    done = result.pending - len(result.failed) - len(result.retryable)
    console.print(f"{done} of {result.pending} tenants migrated to v{tenant_version()}"
                  + (f", {len(result.retried)} after waiting for a lock" if result.retried else ""))
    if result.failed or result.retryable:
        err.print("fix the failures, or let the app's locks go, and run `ops tenant migrate` again: "
                  "migrated tenants are skipped")
        raise typer.Exit(1)


# The onboarding CSV's header: these columns, in any order, and nothing else.
IMPORT_COLUMNS = ("slug", "name", "mode", "handover_email")
IMPORT_OPTIONAL = ("handover_threshold",)
IMPORT_HEADER = ",".join(IMPORT_COLUMNS) + "[," + ",".join(IMPORT_OPTIONAL) + "]"


def csv_text(path: Path) -> str:
    """The CSV's text: UTF-8, with or without the byte order mark Excel's "CSV UTF-8" puts first."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BadInput(f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); save the CSV as UTF-8") from None


def header_problems(header: list[str]) -> list[str]:
    """What is wrong with an import CSV's header; empty when nothing is."""
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    unknown = [c for c in header if c not in IMPORT_COLUMNS + IMPORT_OPTIONAL]
    problems = [f"column {c!r} appears twice" for c in sorted({c for c in header if header.count(c) > 1})]
    if unknown:
        problems.insert(0, "unknown column(s) " + ", ".join(map(repr, unknown)))
    if missing:
        problems.insert(0, "missing column(s) " + ", ".join(map(repr, missing)))
    return problems


def csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each record after a checked header; blank lines are skipped."""
    # strict: an unclosed quote is an error, not a field running to the end of the file.
    reader = csv.reader(io.StringIO(csv_text(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BadInput(f"{path} is empty: expected the header {IMPORT_HEADER}")
        if problems := header_problems(header):
            raise BadInput(f"{path}:1: {'; '.join(problems)}; expected {IMPORT_HEADER}")
        for record in reader:
            if not record:
                continue
            if len(record) != len(header):
                raise BadInput(f"{path}:{reader.line_num}: {len(record)} fields, the header has {len(header)}")
            yield reader.line_num, dict(zip(header, record))
    except csv.Error as e:
        raise BadInput(f"{path}:{reader.line_num}: not valid CSV ({e})") from None


def checked_row(row: dict) -> dict:
    """One CSV row as create_tenant's values (mode email and threshold 3 when empty); BadInput if it is wrong."""
    slug, mode, email = row["slug"], row["mode"] or "email", row["handover_email"] or None
    validate_slug(slug)
    if mode not in Mode.__members__:
        raise BadInput(f"mode must be {' or '.join(Mode.__members__)}, not {mode!r}")
    validate_customer(row["name"], mode, email)
    threshold = validate_handover_threshold(row.get("handover_threshold") or HANDOVER_THRESHOLD)
    return {"slug": slug, "name": row["name"], "mode": mode, "handover_email": email, "handover_threshold": threshold}


def read_import(path: Path) -> list[dict]:
    """Rows of an onboarding CSV, every one checked before any is used; errors name the file and line."""
    rows, first_line = [], {}
    for line, row in csv_records(path):
        try:
            rows.append(checked_row(row))
            if row["slug"] in first_line:
                raise BadInput(f"slug {row['slug']!r} appears twice (also line {first_line[row['slug']]})")
        except BadInput as e:
            raise BadInput(f"{path}:{line}: {e}") from None
        first_line[row["slug"]] = line
    return rows


def existing_slugs(t: Target) -> set[str]:
    return set(t.query_json("SELECT coalesce(jsonb_agg(slug), '[]') FROM system.customers"))


def import_tenants(t: Target, rows: list[dict], batch: int = 50, show: bool = True) -> int:
    """Create the tenants not there yet, each in its own transaction, a batch per round trip."""
    have = existing_slugs(t)
    todo = [r for r in rows if r["slug"] not in have]
    check_tenant_ceiling(t.settings, len(have), len(todo))
    with Progress(console=err, disable=not show) as progress:
        task = progress.add_task("onboarding", total=len(todo))
        for i in range(0, len(todo), batch):
            chunk = todo[i:i + batch]
            sql = "".join(
                "BEGIN;\n" + create_tenant(t.settings, r["slug"], r["name"], r["mode"], r["handover_email"], r["handover_threshold"]) + "COMMIT;\n"
                for r in chunk
            )
            t.run_sql(sql, transaction=False)
            progress.advance(task, len(chunk))
    return len(todo)


@app.command("import")
def import_(
    csv_file: Annotated[Path, typer.Argument(help="CSV with columns slug,name,mode,handover_email and optionally handover_threshold.")],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Tenants per round trip.")] = 50,
    inventory: InventoryOpt = DEFAULT,
):
    """Onboard many tenants from a CSV. Every row is checked first; existing slugs are skipped, so a re-run resumes."""
    with refusing_bad_input():
        rows = read_import(csv_file)  # before the inventory: a bad file never reaches a host
    with target(inventory) as t:
        made = import_tenants(t, rows, batch)
        console.print(f"created {made} tenants; {len(rows) - made} existed already")

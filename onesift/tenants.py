"""
Tenants: one customer, one schema. Create, list, show and drop them, import
many from an onboarding CSV, and seed the README's example customers.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from onesift.render import access
from onesift import apikeys
from onesift.queries import query
from onesift.steps import create_tenant
from onesift.settings import (
    HANDOVER_THRESHOLD,
    MODES,
    BadInput,
    check_tenant_ceiling,
    schema_for,
    validate_handover_threshold,
    validate_slug,
)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

if TYPE_CHECKING:
    from onesift.session import HostSession


@dataclass(frozen=True)
class Customer:
    """A row of system.customers, in its column order."""
    id: str
    slug: str
    name: str
    ingestion_mode: str
    handover_email: str | None
    is_active: bool
    schema_version: int
    settings: dict
    created_at: str
    updated_at: str
    handover_threshold: int
    schema_name: str

    @classmethod
    def from_row(cls, row: dict) -> "Customer":
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class NewCustomer:
    """What it takes to create a tenant, checked (see ``checked``)."""
    slug: str
    name: str
    mode: str = "email"
    handover_email: str | None = None
    handover_threshold: int | str = HANDOVER_THRESHOLD  # a CSV's text until checked()

    def checked(self) -> "NewCustomer":
        """This customer, its threshold a number, if it can be created; BadInput saying why not."""
        validate_slug(self.slug)
        if self.mode not in MODES:
            raise BadInput(f"mode must be {' or '.join(MODES)}, not {self.mode!r}")
        if not self.name.strip() or len(self.name) > 200 or "\x00" in self.name:
            raise BadInput("customer name must be 1-200 characters")
        if self.handover_email is not None and not EMAIL_RE.match(self.handover_email):
            raise BadInput(f"invalid handover email {self.handover_email!r}")
        if self.mode == "email" and not self.handover_email:
            raise BadInput("email-mode customers need a handover email (--handover-email, or the CSV's handover_email)")
        return replace(self, handover_threshold=validate_handover_threshold(self.handover_threshold))


@dataclass(frozen=True)
class Created:
    id: str
    schema: str


@dataclass(frozen=True)
class Summary:
    """One line of `ops tenant list`."""
    slug: str
    name: str
    schema_name: str
    ingestion_mode: str
    is_active: bool
    schema_version: int
    active_keys: int


@dataclass(frozen=True)
class Details:
    """`ops tenant show`: the customer, rows per tenant table, and the schema's storage."""
    customer: Customer
    rows: dict[str, int]
    storage_bytes: int

    def as_dict(self) -> dict:
        return {**asdict(self.customer), "rows": self.rows, "storage_bytes": self.storage_bytes}


def customer(s: HostSession, slug: str) -> Customer:
    """The customer ``slug``; BadInput if there is none."""
    row = s.query_json(query("customer", s.settings, slug=validate_slug(slug)))
    if row is None:
        raise BadInput(f"no tenant {slug!r}")
    return Customer.from_row(row)


def exists(s: HostSession, slug: str) -> bool:
    return bool(s.query_json(query("tenant_exists", s.settings, slug=slug)))


def count(s: HostSession) -> int:
    return s.query_json(query("tenant_count", s.settings))


def slugs(s: HostSession) -> set[str]:
    return set(s.query_json(query("tenant_slugs", s.settings)))


def create_sql(s: HostSession, new: NewCustomer) -> str:
    return create_tenant(s.settings, new.slug, new.name, new.mode, new.handover_email, new.handover_threshold)


def create(s: HostSession, new: NewCustomer) -> Created:
    """Check, then create the customer and its schema in one transaction."""
    new = new.checked()
    if exists(s, new.slug):
        raise BadInput(f"tenant {new.slug!r} already exists")
    check_tenant_ceiling(s.settings, count(s), 1)
    return Created(**s.query_json(create_sql(s, new)))


def list_all(s: HostSession) -> list[Summary]:
    return [Summary(**row) for row in s.query_rows(query("tenant_list", s.settings))]


def details(s: HostSession, slug: str) -> Details:
    c = customer(s, slug)
    shown = s.query_json(query("tenant_show", s.settings, slug=slug, schema=schema_for(slug),
                               tables=access()["tenant"]["tables"], customer_id=c.id))
    return Details(c, shown["rows"], shown["storage_bytes"])


def drop(s: HostSession, slug: str) -> None:
    """The tenant's schema, customer row and API keys, gone."""
    s.run_sql(query("tenant_drop", s.settings, customer_id=customer(s, slug).id))


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


def from_csv_row(row: dict) -> NewCustomer:
    """One CSV row as a checked NewCustomer (mode email and threshold 3 when empty); BadInput if it is wrong."""
    return NewCustomer(row["slug"], row["name"], row["mode"] or "email", row["handover_email"] or None,
                       row.get("handover_threshold") or HANDOVER_THRESHOLD).checked()


def read_import(path: Path) -> list[NewCustomer]:
    """The customers of an onboarding CSV, every one checked before any is used; errors name the file and line."""
    customers, first_line = [], {}
    for line, row in csv_records(path):
        try:
            customers.append(from_csv_row(row))
            if row["slug"] in first_line:
                raise BadInput(f"slug {row['slug']!r} appears twice (also line {first_line[row['slug']]})")
        except BadInput as e:
            raise BadInput(f"{path}:{line}: {e}") from None
        first_line[row["slug"]] = line
    return customers


def import_all(s: HostSession, customers: list[NewCustomer], batch: int = 50,
               advance: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Create the tenants not there yet, each in its own transaction, a batch per round trip;
    how many were made. ``advance(n, total)`` is told as batches finish."""
    have = slugs(s)
    todo = [c for c in customers if c.slug not in have]
    check_tenant_ceiling(s.settings, len(have), len(todo))
    advance(0, len(todo))
    for i in range(0, len(todo), batch):
        chunk = todo[i:i + batch]
        s.run_sql("".join(f"BEGIN;\n{create_sql(s, c)}COMMIT;\n" for c in chunk), transaction=False)
        advance(len(chunk), len(todo))
    return len(todo)


# The README's example customers (`ops db seed`).
SEED_CUSTOMERS = [
    NewCustomer("abc-honda", "ABC Honda", "email", "sarah-abc-honda@onesift.com"),
    NewCustomer("demo-dealership", "Demo Dealership", "api", None),
]
SEED_PERSONA = {"name": "Alex", "tone": "friendly, concise, never pushy"}


@dataclass(frozen=True)
class Seeded:
    """What the seed did to one example customer; ``key`` is a new API key, shown once."""
    slug: str
    created: bool
    has_key: bool = False
    key: apikeys.NewKey | None = None


def seed_one(s: HostSession, new: NewCustomer) -> Seeded:
    created = not exists(s, new.slug)
    if created:
        create(s, new)
        s.run_sql(query("persona_default", s.settings, slug=new.slug, schema=schema_for(new.slug), **SEED_PERSONA))
    if new.mode != "api":
        return Seeded(new.slug, created)
    c = customer(s, new.slug)
    if apikeys.has_active(s, c.id):
        return Seeded(new.slug, created, has_key=True)
    return Seeded(new.slug, created, key=apikeys.create(s, c.id, "seed"))


def seed(s: HostSession) -> Iterator[Seeded]:
    """The example customers, each made if missing; an API customer gets a key if it has none."""
    for new in SEED_CUSTOMERS:
        yield seed_one(s, new)

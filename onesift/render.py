"""
Render the project's templates (jinja2): SQL from sql/, config and job files
from templates/.

Two environments, one folder each, so a template name means one file: with a
single loader over [templates/, repo root], ``sql/...`` could be either tree.

Every identifier goes through the ``ident`` filter and every value through
``literal``: SQL templates never paste raw input into SQL.
"""

from __future__ import annotations

import hashlib
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

# jinja2 and psycopg are imported where they are used: together ~0.2 s that
# `ops --help` would pay for nothing (issue 10).

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SQL_DIR = ROOT / "sql"

# PostgreSQL cuts a longer name to its first NAMEDATALEN - 1 bytes with only a
# NOTICE: two long names would silently be one object. Refused instead.
MAX_IDENTIFIER_BYTES = 63


class Raw(str):
    """A marker pasted verbatim by ``ident``/``literal`` (used for placeholders)."""


def quote_ident(name: str) -> str:
    """Quote an SQL identifier the way PostgreSQL's ``format('%I')`` would, always."""
    if isinstance(name, Raw):
        return str(name)
    text = str(name)
    if not text or "\x00" in text or len(text.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"not a usable SQL identifier: {text!r}")
    from psycopg import sql

    return sql.Identifier(text).as_string(None)


def quote_literal(value) -> str:
    r"""Quote a value as an SQL string literal, always text (7 gives '7').

    A value with a backslash comes out as ``E'a\\b'`` after a space, as
    libpq's PQescapeLiteral writes it: the same value whatever
    standard_conforming_strings says, and the space keeps the E from joining
    a word before it. (The text of a rendered script holding one thus changed
    once with psycopg, and so did its checksum.)
    """
    if isinstance(value, Raw):
        return str(value)
    text = str(value)
    if "\x00" in text:
        raise ValueError("NUL bytes cannot appear in SQL literals")
    from psycopg import sql

    return sql.Literal(text).as_string(None)


def environment(folder: Path) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def sql_environment() -> Environment:
    """Templates below sql/, with the SQL quoting filters."""
    env = environment(SQL_DIR)
    env.filters["ident"] = quote_ident
    env.filters["literal"] = quote_literal
    return env


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """Templates below templates/. No SQL filters: a config file quotes differently."""
    return environment(TEMPLATES)


def render_sql(name: str, /, **context) -> str:
    """Render an SQL template, ``name`` relative to sql/ (``repeatable/grants.sql.j2``)."""
    return sql_environment().get_template(name).render(**context)


def render_template(name: str, /, **context) -> str:
    """Render a config or job template, ``name`` relative to templates/ (``config/pg_hba.conf.j2``)."""
    return template_environment().get_template(name).render(**context)


@lru_cache(maxsize=1)
def access() -> dict:
    """The grant matrix and RLS policies (sql/access.toml)."""
    with open(SQL_DIR / "access.toml", "rb") as f:
        return tomllib.load(f)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]

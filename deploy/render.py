"""
Render the project's templates (jinja2) into SQL and config text.

Every identifier goes through the ``ident`` filter and every value through
``literal``: templates never paste raw input into SQL.
"""

from __future__ import annotations

import hashlib
import tomllib
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SQL_DIR = ROOT / "sql"


class Raw(str):
    """A marker pasted verbatim by ``ident``/``literal`` (used for placeholders)."""


def quote_ident(name: str) -> str:
    """Quote an SQL identifier the way PostgreSQL's ``format('%I')`` would, always."""
    if isinstance(name, Raw):
        return str(name)
    text = str(name)
    if not text or "\x00" in text or len(text.encode()) > 63:
        raise ValueError(f"not a usable SQL identifier: {text!r}")
    return '"' + text.replace('"', '""') + '"'


def quote_literal(value) -> str:
    """Quote a value as a standard-conforming SQL string literal."""
    if isinstance(value, Raw):
        return str(value)
    text = str(value)
    if "\x00" in text:
        raise ValueError("NUL bytes cannot appear in SQL literals")
    return "'" + text.replace("'", "''") + "'"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(TEMPLATES), str(ROOT)]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ident"] = quote_ident
    env.filters["literal"] = quote_literal
    return env


def render(template: str, **context) -> str:
    """Render ``template`` (a path below templates/ or the repo root)."""
    return environment().get_template(template).render(**context)


@lru_cache(maxsize=1)
def access() -> dict:
    """The grant matrix and RLS policies (templates/access.toml)."""
    with open(TEMPLATES / "access.toml", "rb") as f:
        return tomllib.load(f)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]

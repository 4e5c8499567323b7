"""A tenant's API keys: created (shown once, stored hashed), listed, revoked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onesift.queries import query
from onesift.settings import BadInput

if TYPE_CHECKING:
    from onesift.session import HostSession


@dataclass(frozen=True)
class NewKey:
    key_id: str
    api_key: str  # the key itself: exists only in this answer


@dataclass(frozen=True)
class Key:
    """A key as stored: prefix and dates, never the key."""
    id: str
    name: str
    key_prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def create(s: HostSession, customer_id: str, name: str) -> NewKey:
    if not name.strip() or len(name) > 100:
        raise BadInput("key name must be 1-100 characters")
    return NewKey(**s.query_json(query("apikey_create", s.settings, customer_id=customer_id, name=name)))


def list_for(s: HostSession, customer_id: str) -> list[Key]:
    return [Key(**row) for row in s.query_json(query("apikey_list", s.settings, customer_id=customer_id))]


def has_active(s: HostSession, customer_id: str) -> bool:
    return bool(s.query_json(query("apikey_active", s.settings, customer_id=customer_id)))


def check_key_id(key_id: str) -> str:
    try:
        uuid.UUID(key_id)
    except ValueError:
        raise BadInput(f"not a key id (UUID): {key_id!r}") from None
    return key_id


def revoke(s: HostSession, key_id: str) -> None:
    if not s.query_json(query("apikey_revoke", s.settings, key_id=check_key_id(key_id))):
        raise BadInput(f"no active key with id {key_id}")

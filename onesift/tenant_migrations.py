"""
Tenant migrations for every tenant (`ops tenant migrate`): no Typer here, so
the bench drives the same code.

Tenants go to the host in rounds: each round sends ``parallel`` psql
sessions, each one statement per tenant (system.apply_tenant_migration: one
transaction, all or nothing, reporting its own outcome). At 10,000 tenants one
upload and one psql per tenant cost ~38 ms a tenant, 29x the DDL alone through
one psql (issue 15). A tenant whose lock wait ran out (lock_timeout) is tried
again after the others, with backoff, and is left 'retryable' after the last try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from onesift.queries import query
from onesift.steps import migrate_tenant, migration_session, tenant_version

if TYPE_CHECKING:
    from onesift.session import HostSession

LOCK_NOT_AVAILABLE = "55P03"
FIRST_BACKOFF_S = 0.5
# Rounds per pass: often enough for a progress bar that moves, few enough
# that each round's uploads, shell command and psql starts (0.5-0.8 s through
# the Docker API on a loaded host) stay small against the DDL: with 20 rounds
# of 25 tenants a session, 1,000 tenants took 5.2x the one-psql floor.
ROUNDS = 10
MIN_PER_SESSION = 100
MAX_PER_SESSION = 1000


@dataclass
class Outcome:
    pending: int = 0
    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # slug -> error
    retryable: dict[str, str] = field(default_factory=dict)
    retried: set[str] = field(default_factory=set)  # tenants that needed more than one try


def pending_tenants(s: HostSession, version: int) -> list[dict]:
    """Tenants below ``version``, one short line each (a JSON array of 10,000 was one 1 MB line)."""
    lines = s.run_sql(query("tenants_pending", s.settings, version=version))
    rows = (line.split("|") for line in lines if line.strip())
    return [{"id": i, "slug": slug, "schema_version": int(v)} for i, slug, v in rows]


def session_size(count: int, parallel: int) -> int:
    return max(MIN_PER_SESSION, min(MAX_PER_SESSION, -(-count // (parallel * ROUNDS))))


def run_round(s: HostSession, batch: list[dict], parallel: int, extra) -> dict[str, str]:
    """One round: ``batch`` split over ``parallel`` sessions; outcome line by slug
    ('applied', 'skipped', or 'error<TAB>SQLSTATE<TAB>message')."""
    head = migration_session(s.settings, s.settings.migrate_lock_timeout_ms)
    sessions = [batch[i::parallel] for i in range(parallel) if batch[i::parallel]]
    scripts = [head + "".join(migrate_tenant(s.settings, p["slug"], p["id"], p["schema_version"], extra)
                              for p in tenants) for tenants in sessions]
    streams = s.run_sql_streams(scripts)
    streams += [[]] * (len(sessions) - len(streams))  # a session with no output failed every tenant
    outcomes = {}
    for tenants, lines in zip(sessions, streams):
        names = {p["slug"] for p in tenants}
        results = dict(line.split("|", 1) for line in lines if line.split("|", 1)[0] in names and "|" in line)
        trouble = next((line for line in lines if "ERROR" in line or "error:" in line), "psql stopped")
        for slug in names:  # a tenant the session never reached failed with the session's error
            outcomes[slug] = results.get(slug, f"error\t\t{trouble}")
    return outcomes


def sort_outcomes(outcomes: dict[str, str], result: Outcome) -> list[str]:
    """File each outcome in ``result``; the slugs to try again (lock waits that ran out)."""
    again = []
    for slug, line in outcomes.items():
        status, _, rest = line.partition("\t")
        sqlstate, _, message = rest.partition("\t")
        result.retryable.pop(slug, None)
        if status in ("applied", "skipped"):
            result.applied.append(slug)
        elif sqlstate == LOCK_NOT_AVAILABLE:
            result.retryable[slug] = message
            again.append(slug)
        else:
            result.failed[slug] = message or line
    return again


def record(s: HostSession, result: Outcome, by_slug: dict[str, dict], version: int) -> None:
    """The tenants that did not migrate, in the per-tenant log."""
    rows = [{"customer_id": by_slug[slug]["id"], "status": status, "error": error}
            for status, outcomes in (("failed", result.failed), ("retryable", result.retryable))
            for slug, error in outcomes.items()]
    if rows:
        s.run_sql(query("tenant_migration_failures", s.settings, rows=rows, version=version))


def migrate_all(s: HostSession, parallel: int, advance: Callable[[int, int, str], None] = lambda n, total, note: None,
                extra: dict[int, Callable[[str], str]] | None = None) -> Outcome:
    """Bring every tenant to the current version (with ``extra`` migrations, past it).

    ``advance(n, total, note)`` is told as tenants finish. Retries are tried
    after the first pass, waiting 0.5 s, 1 s, 2 s, ... between passes."""
    version = max([tenant_version(), *(extra or {})])
    pending = pending_tenants(s, version)
    by_slug = {p["slug"]: p for p in pending}
    result = Outcome(pending=len(pending))
    advance(0, len(pending), "")
    todo, attempt = pending, 0
    while todo:
        size = session_size(len(todo), parallel) * parallel
        again = []
        for i in range(0, len(todo), size):
            batch = todo[i:i + size]
            again += sort_outcomes(run_round(s, batch, parallel, extra), result)
            if attempt == 0:
                advance(len(batch), len(pending), "")
        if not again or attempt >= s.settings.migrate_lock_retries:
            break
        attempt += 1
        result.retried.update(again)
        advance(0, len(pending), f"{len(again)} waiting for locks, try {attempt + 1}")
        time.sleep(FIRST_BACKOFF_S * 2 ** (attempt - 1))
        todo = [by_slug[s] for s in sorted(again)]
    record(s, result, by_slug, version)
    return result

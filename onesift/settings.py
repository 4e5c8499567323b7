"""
Settings shared by the deploy, the ops CLI and the tests, read from inventory data.

Defaults live in ``inventories/group_data/all.py``; the fallbacks here only keep
a bare ``@docker/NAME`` or ``@ssh/HOST`` target usable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from onesift.errors import BadInput  # noqa: F401  (settings' own errors; callers import it from here too)

# One place for the tenant slug rule: the CLI, the SQL CHECK and the SQL
# functions all use it. 2-40 chars keeps "tenant_" + slug under 63 bytes.
SLUG_PATTERN = r"^[a-z][a-z0-9_-]{1,39}$"
RESERVED_SLUGS = frozenset(
    {
        "system", "public", "admin", "root", "postgres", "template0", "template1",
        "information_schema", "onesift", "api", "www", "default", "all", "none",
    }
)
# The inventory `ops` and the tests use when none is named: the local dev host.
DEFAULT_INVENTORY = "inventories/dev.py"
TENANT_PREFIX = "tenant_"
TENANT_SETTING = "onesift.tenant"
# Each tenant schema's comment names its version, so the version travels with
# the schema into backups and comes back with a restore (issue 8.13).
TENANT_VERSION_MARK = "OneSift tenant schema v"
# customers.handover_threshold: its default and CHECK range (sql/migrations/0003).
HANDOVER_THRESHOLD = 3
HANDOVER_THRESHOLD_RANGE = (1, 100)


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it is a usable tenant slug, else raise BadInput saying why."""
    if not isinstance(slug, str) or not re.fullmatch(SLUG_PATTERN, slug):
        raise BadInput(
            f"invalid tenant slug {slug!r}: use 2-40 characters, lowercase letters, "
            "digits, '_' or '-', starting with a letter"
        )
    if slug in RESERVED_SLUGS or slug.startswith("pg_"):
        raise BadInput(f"invalid tenant slug {slug!r}: the name is reserved")
    return slug


def validate_handover_threshold(value) -> int:
    """``value`` as a handover threshold (an int in HANDOVER_THRESHOLD_RANGE), else BadInput."""
    low, high = HANDOVER_THRESHOLD_RANGE
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise BadInput(f"handover threshold must be a whole number from {low} to {high}, not {value!r}")
    return number


def check_tenant_ceiling(settings: "Settings", tenants: int, adding: int = 0) -> None:
    """BadInput when ``tenants`` plus ``adding`` more would pass max_tenants (``adding`` 0: when already past)."""
    if tenants + adding <= settings.max_tenants:
        return
    if adding:
        raise BadInput(
            f"tenant ceiling: {tenants} tenants exist and max_tenants is {settings.max_tenants}, so {adding} more "
            "would pass it; raise max_tenants in inventory data and run the deploy first"
        )
    raise BadInput(
        f"tenant ceiling: {settings.db_name} has {tenants} tenants, past max_tenants ({settings.max_tenants}); "
        "drop tenants, or raise max_tenants in inventory data"
    )


def schema_for(slug: str) -> str:
    return TENANT_PREFIX + validate_slug(slug)


def whole_number(data, key: str, default: int) -> int:
    """Inventory data ``key`` as an int (``default`` when unset or empty); BadInput if it is not one."""
    value = data.get(key) or default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"inventory data {key} must be a whole number, not {value!r}") from None


# A PostgreSQL duration (pg_dump --lock-wait-timeout): milliseconds, or a number and a unit.
DURATION_RE = re.compile(r"[0-9]+(ms|s|min|h|d)?")


def duration(data, key: str, default: str) -> str:
    """Inventory data ``key`` as a PostgreSQL duration such as ``30min``; BadInput if it is not one.
    It reaches the backup job's shell and pg_dump, so nothing else may pass."""
    value = str(data.get(key) or default).strip()
    if not DURATION_RE.fullmatch(value):
        raise BadInput(f"inventory data {key} must be a duration such as 30s, 10min or 1h, not {value!r}")
    return value


@dataclass(frozen=True)
class Roles:
    owner: str = "onesift_owner"
    app: str = "onesift_app"
    auditor: str = "onesift_auditor"
    # Owns the audit trail (schema audit); NOLOGIN, and no role is its member.
    audit_owner: str = "onesift_audit_owner"

    def by_key(self, key: str) -> str:
        return getattr(self, key)


def roles_from(value) -> Roles:
    """Inventory data db_roles (owner, app, auditor: role names) as Roles; BadInput if it is not that."""
    try:
        return Roles(**(value or {}))
    except TypeError:
        raise BadInput(f"inventory data db_roles must map owner, app and auditor to role names, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    db_name: str = "onesift"
    # None: the PostgreSQL the host's Debian release packages (deploy/platform.py).
    pg_version: int | None = None
    pg_port: int = 5432
    roles: Roles = Roles()
    retention_days: int = 90
    backup_dir: str = "/var/backups/onesift"
    backup_keep_days: int = 7
    backup_tenant_dumps: bool = False
    migrate_lock_timeout_ms: int = 2000
    migrate_lock_retries: int = 4
    backup_max_age_hours: int = 26
    backup_lock_wait_timeout: str = "30min"
    max_tenants: int = 10000
    production: bool = False

    @classmethod
    def from_data(cls, data) -> "Settings":
        """Settings from inventory data; BadInput naming the key when a value is unusable."""
        get = data.get
        return cls(
            db_name=get("db_name") or cls.db_name,
            pg_version=whole_number(data, "pg_version", 0) or None,
            pg_port=whole_number(data, "pg_port", cls.pg_port),
            roles=roles_from(get("db_roles")),
            retention_days=whole_number(data, "retention_days", cls.retention_days),
            backup_dir=get("backup_dir") or cls.backup_dir,
            backup_keep_days=whole_number(data, "backup_keep_days", cls.backup_keep_days),
            backup_tenant_dumps=bool(get("backup_tenant_dumps")),
            migrate_lock_timeout_ms=whole_number(data, "migrate_lock_timeout_ms", cls.migrate_lock_timeout_ms),
            migrate_lock_retries=whole_number(data, "migrate_lock_retries", cls.migrate_lock_retries),
            backup_max_age_hours=whole_number(data, "backup_max_age_hours", cls.backup_max_age_hours),
            backup_lock_wait_timeout=duration(data, "backup_lock_wait_timeout", cls.backup_lock_wait_timeout),
            max_tenants=whole_number(data, "max_tenants", cls.max_tenants),
            production=bool(get("production")),
        )

    def context(self) -> dict:
        """The variables every SQL template gets."""
        return {
            "db_name": self.db_name,
            "roles": self.roles,
            "tenant_prefix": TENANT_PREFIX,
            "tenant_setting": TENANT_SETTING,
            "tenant_version_mark": TENANT_VERSION_MARK,
            "slug_pattern": SLUG_PATTERN,
            "reserved_slugs": sorted(RESERVED_SLUGS),
        }

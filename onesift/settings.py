"""
Settings shared by the deploy, the ops CLI and the tests, read from inventory data.

Every key's default is in onesift/defaults.py, the one table of them; inventory
data overrides it. Nothing else reads inventory data with a default of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from onesift import defaults

from onesift.errors import BadInput  # noqa: F401  (settings' own errors; callers import it from here too)

# onesift/defaults.py as a dict: every inventory key and its default.
DEFAULTS = {k: v for k, v in vars(defaults).items() if not k.startswith("_")}

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
MODES = ("email", "api")  # system.ingestion_mode
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


def whole_number(data, key: str, default: int | None = None) -> int:
    """Inventory data ``key`` as an int (its default when unset or empty); BadInput if it is not one."""
    value = data.get(key)
    if value is None or value == "":  # 0 is a value (patroni_member_slots_ttl 0: no slot kept)
        value = DEFAULTS[key] if default is None else default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"inventory data {key} must be a whole number, not {value!r}") from None


# A PostgreSQL duration (pg_dump --lock-wait-timeout): milliseconds, or a number and a unit.
DURATION_RE = re.compile(r"[0-9]+(ms|s|min|h|d)?")


def duration(data, key: str) -> str:
    """Inventory data ``key`` as a PostgreSQL duration such as ``30min``; BadInput if it is not one.
    It reaches the backup job's shell and pg_dump, so nothing else may pass."""
    value = str(data.get(key) or DEFAULTS[key]).strip()
    if not DURATION_RE.fullmatch(value):
        raise BadInput(f"inventory data {key} must be a duration such as 30s, 10min or 1h, not {value!r}")
    return value


SIZE_RE = re.compile(r"-1|[0-9]+(kB|MB|GB|TB)?")


def size(data, key: str) -> str:
    """Inventory data ``key`` as a PostgreSQL size such as ``8GB`` (or -1, no limit); BadInput if it is not one."""
    value = str(data.get(key) or DEFAULTS[key]).strip()
    if not SIZE_RE.fullmatch(value):
        raise BadInput(f"inventory data {key} must be a size such as 512MB or 8GB (or -1), not {value!r}")
    return value


@dataclass(frozen=True)
class Roles:
    """The database roles by what they are for (defaults: db_roles in onesift/defaults.py)."""
    owner: str
    app: str
    auditor: str
    # Owns the audit trail (schema audit); NOLOGIN, and no role is its member.
    audit_owner: str

    def by_key(self, key: str) -> str:
        return getattr(self, key)


def roles_from(value) -> Roles:
    """Inventory data db_roles (owner, app, auditor: role names) as Roles; BadInput if it is not that."""
    try:
        return Roles(**{**DEFAULTS["db_roles"], **(value or {})})
    except TypeError:
        raise BadInput(f"inventory data db_roles must map owner, app and auditor to role names, not {value!r}") from None


def value(data, key: str):
    """Inventory data ``key``, or its default (onesift/defaults.py) when unset."""
    found = data.get(key)
    return DEFAULTS[key] if found is None else found


def headroom(data) -> float:
    """Inventory data pg_lock_headroom as a number >= 1; BadInput if it is not one."""
    given = value(data, "pg_lock_headroom")
    try:
        number = float(given)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise BadInput(f"inventory data pg_lock_headroom must be a number of at least 1, not {given!r}")
    return number


# A stanza name, a path, a host: they reach pgbackrest.conf, cron and the host scripts' shell.
STANZA_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
PATH_RE = re.compile(r"/[A-Za-z0-9_./-]+")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CIPHER_TYPES = ("none", "aes-256-cbc")
COMPRESS_TYPES = ("none", "bz2", "gz", "lz4", "zst")


def matching(data, key: str, pattern: re.Pattern, what: str) -> str:
    """Inventory data ``key`` when it matches ``pattern``; BadInput saying ``what`` it must be."""
    given = str(value(data, key))
    if not pattern.fullmatch(given):
        raise BadInput(f"inventory data {key} must be {what}, not {given!r}")
    return given


def one_of(data, key: str, choices: tuple[str, ...]) -> str:
    given = str(value(data, key))
    if given not in choices:
        raise BadInput(f"inventory data {key} must be one of {', '.join(choices)}, not {given!r}")
    return given


@dataclass(frozen=True)
class PgBackRest:
    """The pgbackrest_* and pitr_* keys of onesift/defaults.py (pgBackRest's own option names)."""
    stanza: str = DEFAULTS["pgbackrest_stanza"]
    repo1_path: str = DEFAULTS["pgbackrest_repo1_path"]
    repo1_host: str | None = DEFAULTS["pgbackrest_repo1_host"]
    repo1_host_user: str = DEFAULTS["pgbackrest_repo1_host_user"]
    repo1_cipher_type: str = DEFAULTS["pgbackrest_repo1_cipher_type"]
    repo1_retention_full: int = DEFAULTS["pgbackrest_repo1_retention_full"]
    archive_async: bool = DEFAULTS["pgbackrest_archive_async"]
    spool_path: str = DEFAULTS["pgbackrest_spool_path"]
    process_max: int = DEFAULTS["pgbackrest_process_max"]
    compress_type: str = DEFAULTS["pgbackrest_compress_type"]
    archive_timeout: int = DEFAULTS["pgbackrest_archive_timeout"]
    pg_archive_timeout: int = DEFAULTS["archive_timeout"]
    full_schedule: str = DEFAULTS["pgbackrest_full_schedule"]
    diff_schedule: str = DEFAULTS["pgbackrest_diff_schedule"]
    drill_schedule: str = DEFAULTS["pitr_drill_schedule"]
    max_age_hours: int = DEFAULTS["pgbackrest_max_age_hours"]
    full_max_age_hours: int = DEFAULTS["pgbackrest_full_max_age_hours"]
    scratch_port: int = DEFAULTS["pitr_scratch_port"]
    scratch_path: str = DEFAULTS["pitr_scratch_path"]

    @property
    def encrypted(self) -> bool:
        return self.repo1_cipher_type != "none"

    @classmethod
    def from_data(cls, data) -> "PgBackRest":
        host = value(data, "pgbackrest_repo1_host")
        return cls(
            stanza=matching(data, "pgbackrest_stanza", STANZA_RE, "a letter, then letters, digits, _ or -"),
            repo1_path=matching(data, "pgbackrest_repo1_path", PATH_RE, "an absolute path"),
            repo1_host=None if not host else matching(data, "pgbackrest_repo1_host", HOST_RE, "a host name"),
            repo1_host_user=matching(data, "pgbackrest_repo1_host_user", STANZA_RE, "a user name"),
            repo1_cipher_type=one_of(data, "pgbackrest_repo1_cipher_type", CIPHER_TYPES),
            repo1_retention_full=whole_number(data, "pgbackrest_repo1_retention_full"),
            archive_async=bool(value(data, "pgbackrest_archive_async")),
            spool_path=matching(data, "pgbackrest_spool_path", PATH_RE, "an absolute path"),
            process_max=whole_number(data, "pgbackrest_process_max"),
            compress_type=one_of(data, "pgbackrest_compress_type", COMPRESS_TYPES),
            archive_timeout=whole_number(data, "pgbackrest_archive_timeout"),
            pg_archive_timeout=whole_number(data, "archive_timeout"),
            full_schedule=str(value(data, "pgbackrest_full_schedule")),
            diff_schedule=str(value(data, "pgbackrest_diff_schedule")),
            drill_schedule=str(value(data, "pitr_drill_schedule")),
            max_age_hours=whole_number(data, "pgbackrest_max_age_hours"),
            full_max_age_hours=whole_number(data, "pgbackrest_full_max_age_hours"),
            scratch_port=whole_number(data, "pitr_scratch_port"),
            scratch_path=matching(data, "pitr_scratch_path", PATH_RE, "an absolute path"),
        )


def scratch_path_problem(c: "PgBackRest") -> str | None:
    """Why pitr_scratch_path is unsafe, or None: every restore removes that directory first (rm -rf),
    so it must not be, hold or lie inside the live cluster's data, the repository or the spool."""
    scratch = c.scratch_path.rstrip("/") or "/"
    live = re.fullmatch(r"/var/lib/postgresql(/\d+(/.*)?)?", scratch)
    others = [c.repo1_path.rstrip("/"), c.spool_path.rstrip("/")]
    if scratch.count("/") < 3 or live or any(o == scratch or o.startswith(scratch + "/") or scratch.startswith(o + "/")
                                            for o in others):
        return (f"inventory data pitr_scratch_path {c.scratch_path!r} is not a directory of its own: every restore "
                "removes it first; use one such as /var/lib/postgresql/onesift-scratch")
    return None
POOL_MODES = ("session", "transaction", "statement")  # PgBouncer's pool_mode


def cluster_settings(data) -> dict:
    """The Patroni cluster keys of inventory data, checked: Patroni refuses a loop_wait +
    2 * retry_timeout above ttl only when it starts, so the deploy refuses it first."""
    scope = value(data, "patroni_cluster")
    found = {
        "patroni_cluster": str(scope) if scope else None,
        "patroni_name": str(value(data, "patroni_name")) if value(data, "patroni_name") else None,
        "patroni_address": str(value(data, "patroni_address")) if value(data, "patroni_address") else None,
        **{k: whole_number(data, k) for k in (
            "patroni_ttl", "patroni_loop_wait", "patroni_retry_timeout", "patroni_maximum_lag_on_failover",
            "patroni_member_slots_ttl",
            "pgbouncer_port", "pgbouncer_max_client_conn", "pgbouncer_default_pool_size",
            "pgbouncer_max_prepared_statements", "haproxy_primary_port", "haproxy_replicas_port")},
        **{k: bool(value(data, k)) for k in (
            "patroni_synchronous_mode", "patroni_synchronous_mode_strict", "patroni_use_pg_rewind")},
        "patroni_max_slot_wal_keep_size": size(data, "patroni_max_slot_wal_keep_size"),
        "cluster_networks": tuple(value(data, "cluster_networks")),
        "pgbouncer_pool_mode": str(value(data, "pgbouncer_pool_mode")),
    }
    if found["pgbouncer_pool_mode"] not in POOL_MODES:
        raise BadInput(f"inventory data pgbouncer_pool_mode must be one of {', '.join(POOL_MODES)}, "
                       f"not {found['pgbouncer_pool_mode']!r}")
    if found["patroni_loop_wait"] + 2 * found["patroni_retry_timeout"] > found["patroni_ttl"]:
        raise BadInput(f"inventory data patroni_loop_wait + 2 * patroni_retry_timeout "
                       f"({found['patroni_loop_wait']} + 2 * {found['patroni_retry_timeout']}) must not pass "
                       f"patroni_ttl ({found['patroni_ttl']}), as Patroni requires")
    return found


@dataclass(frozen=True)
class Settings:
    """Every key of onesift/defaults.py, typed and checked: what the deploys and `ops` read, and nothing else."""
    db_name: str = DEFAULTS["db_name"]
    # None: the PostgreSQL the host's Debian release packages (onesift/platform.py).
    pg_version: int | None = DEFAULTS["pg_version"]
    pg_port: int = DEFAULTS["pg_port"]
    roles: Roles = Roles(**DEFAULTS["db_roles"])
    listen_addresses: tuple[str, ...] = tuple(DEFAULTS["listen_addresses"])
    pg_ssl: bool = DEFAULTS["pg_ssl"]
    client_networks: tuple[str, ...] = tuple(DEFAULTS["client_networks"])
    client_networks_nossl: tuple[str, ...] = tuple(DEFAULTS["client_networks_nossl"])
    pg_settings: Mapping = field(default_factory=lambda: dict(DEFAULTS["pg_settings"]))
    max_tenants: int = DEFAULTS["max_tenants"]
    pg_lock_headroom: float = DEFAULTS["pg_lock_headroom"]
    retention_days: int = DEFAULTS["retention_days"]
    backup_schedule: str = DEFAULTS["backup_schedule"]
    cleanup_schedule: str = DEFAULTS["cleanup_schedule"]
    backup_dir: str = DEFAULTS["backup_dir"]
    backup_keep_days: int = DEFAULTS["backup_keep_days"]
    backup_max_age_hours: int = DEFAULTS["backup_max_age_hours"]
    backup_lock_wait_timeout: str = DEFAULTS["backup_lock_wait_timeout"]
    backup_tenant_dumps: bool = DEFAULTS["backup_tenant_dumps"]
    backup_logical: bool = DEFAULTS["backup_logical"]
    pgbackrest: "PgBackRest" = field(default_factory=lambda: PgBackRest())
    migrate_lock_timeout_ms: int = DEFAULTS["migrate_lock_timeout_ms"]
    migrate_lock_retries: int = DEFAULTS["migrate_lock_retries"]
    production: bool = DEFAULTS["production"]
    secrets_name: str = DEFAULTS["secrets_name"]
    generate_secrets: bool = DEFAULTS["generate_secrets"]
    # A Patroni cluster member's (onesift/cluster.py); patroni_cluster None: one host.
    patroni_cluster: str | None = DEFAULTS["patroni_cluster"]
    patroni_name: str | None = DEFAULTS["patroni_name"]
    patroni_address: str | None = DEFAULTS["patroni_address"]
    patroni_ttl: int = DEFAULTS["patroni_ttl"]
    patroni_loop_wait: int = DEFAULTS["patroni_loop_wait"]
    patroni_retry_timeout: int = DEFAULTS["patroni_retry_timeout"]
    patroni_maximum_lag_on_failover: int = DEFAULTS["patroni_maximum_lag_on_failover"]
    patroni_synchronous_mode: bool = DEFAULTS["patroni_synchronous_mode"]
    patroni_synchronous_mode_strict: bool = DEFAULTS["patroni_synchronous_mode_strict"]
    patroni_use_pg_rewind: bool = DEFAULTS["patroni_use_pg_rewind"]
    patroni_member_slots_ttl: int = DEFAULTS["patroni_member_slots_ttl"]
    patroni_max_slot_wal_keep_size: str = DEFAULTS["patroni_max_slot_wal_keep_size"]
    cluster_networks: tuple[str, ...] = tuple(DEFAULTS["cluster_networks"])
    pgbouncer_port: int = DEFAULTS["pgbouncer_port"]
    pgbouncer_pool_mode: str = DEFAULTS["pgbouncer_pool_mode"]
    pgbouncer_max_client_conn: int = DEFAULTS["pgbouncer_max_client_conn"]
    pgbouncer_default_pool_size: int = DEFAULTS["pgbouncer_default_pool_size"]
    pgbouncer_max_prepared_statements: int = DEFAULTS["pgbouncer_max_prepared_statements"]
    haproxy_primary_port: int = DEFAULTS["haproxy_primary_port"]
    haproxy_replicas_port: int = DEFAULTS["haproxy_replicas_port"]

    @classmethod
    def from_data(cls, data) -> "Settings":
        """Settings from inventory data (a pyinfra host's, or a dict); BadInput naming the key when a value is unusable.
        The TLS files (pg_ssl_*_file) are read and checked by deploy/tls.py."""
        return cls(
            db_name=value(data, "db_name"),
            pg_version=whole_number(data, "pg_version", 0) or None,
            pg_port=whole_number(data, "pg_port"),
            roles=roles_from(data.get("db_roles")),
            listen_addresses=tuple(value(data, "listen_addresses")),
            pg_ssl=bool(value(data, "pg_ssl")),
            client_networks=tuple(value(data, "client_networks")),
            client_networks_nossl=tuple(value(data, "client_networks_nossl")),
            pg_settings=dict(value(data, "pg_settings")),
            max_tenants=whole_number(data, "max_tenants"),
            pg_lock_headroom=headroom(data),
            retention_days=whole_number(data, "retention_days"),
            backup_schedule=str(value(data, "backup_schedule")),
            cleanup_schedule=str(value(data, "cleanup_schedule")),
            backup_dir=value(data, "backup_dir"),
            backup_keep_days=whole_number(data, "backup_keep_days"),
            backup_max_age_hours=whole_number(data, "backup_max_age_hours"),
            backup_lock_wait_timeout=duration(data, "backup_lock_wait_timeout"),
            backup_tenant_dumps=bool(value(data, "backup_tenant_dumps")),
            backup_logical=bool(value(data, "backup_logical")),
            pgbackrest=PgBackRest.from_data(data),
            migrate_lock_timeout_ms=whole_number(data, "migrate_lock_timeout_ms"),
            migrate_lock_retries=whole_number(data, "migrate_lock_retries"),
            production=bool(value(data, "production")),
            secrets_name=str(value(data, "secrets_name")),
            generate_secrets=bool(value(data, "generate_secrets")),
            **cluster_settings(data),
        )

    def __post_init__(self):
        if problem := scratch_path_problem(self.pgbackrest):
            raise BadInput(problem)
        if self.pgbackrest.scratch_port == self.pg_port:
            raise BadInput(f"inventory data pitr_scratch_port must differ from pg_port ({self.pg_port}): "
                           "the scratch instance must never take the live cluster's port")

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

"""
Every inventory key and its default: the whole public interface of the
deploy and of `ops`, as an Ansible role's defaults file is. An inventory (or
its group_data/) sets only what differs; onesift/settings.py reads each key
from the host's data, else from here, wherever the inventory file lives.
Passwords are not here: see onesift/secrets.py.
"""

# pg_version: unset, the PostgreSQL of the host's Debian release (trixie 17,
# bookworm 15); a version the release does not package is refused.
pg_version = None
pg_port = 5432
db_name = "onesift"
db_roles = {"owner": "onesift_owner", "app": "onesift_app", "auditor": "onesift_auditor",
            "audit_owner": "onesift_audit_owner"}

listen_addresses = ["localhost"]
pg_ssl = True
# The server's TLS certificate (PostgreSQL's ssl_cert_file, ssl_key_file,
# ssl_ca_file). None: Debian's snakeoil pair, self-signed for the host's name,
# so clients get encryption but cannot verify the server (the dev host keeps it).
# Otherwise PEM files on the machine that runs the deploy (absolute paths, or
# starting with ~), checked before any host is touched (a file missing or not
# PEM, an encrypted key, a key that is not the certificate's: refused in one
# line) and uploaded into /etc/postgresql/<pg_version>/main/ as server.crt
# (0644), server.key (0600) and root.crt (0644), owned by postgres. A changed
# file restarts PostgreSQL in the same deploy; an unchanged one changes
# nothing. The key travels only as a file: keep it outside the repository,
# mode 0600, e.g. beside the passwords in ~/.config/onesift/ (onesift/secrets.py).
#   pg_ssl_cert_file = "~/.config/onesift/db1.crt"  # server certificate, then any intermediates
#   pg_ssl_key_file = "~/.config/onesift/db1.key"   # its private key, without a passphrase
#   pg_ssl_ca_file = "~/.config/onesift/clients-ca.crt"  # CAs for client certificates (optional)
pg_ssl_cert_file = None
pg_ssl_key_file = None
pg_ssl_ca_file = None
# Networks allowed to reach the database: TLS only (hostssl), SCRAM passwords.
client_networks = []
client_networks_nossl = []
# Overrides of deploy/server.py DEFAULT_SERVER_SETTINGS (postgresql.conf parameters).
pg_settings = {}

# Tenant ceiling: `ops tenant create` and `ops tenant import` refuse to go
# past it (exit 2, nothing created), and the deploy refuses a database already
# past it. 10,000 is where the nightly backup was proven (README, Scale):
# raise it with a nightly run that proves the new size.
max_tenants = 10000
# max_locks_per_transaction is sized by the deploy, not set here: one pg_dump
# of the whole database locks every table and view (8 per tenant), so the
# deploy counts the live relations and keeps the lock table at least
# pg_lock_headroom times what that dump needs. When the tenants outgrow it the
# deploy grows it to the next power of two, says so, and restarts PostgreSQL
# (connections drop; ~4 s at 10,000 tenants); it never shrinks it. Naming max_locks_per_transaction in
# pg_settings pins it instead, and the deploy then fails when the pinned value
# cannot hold one dump of the live tenants.
pg_lock_headroom = 2

retention_days = 90
# cron schedules (/etc/cron.d/onesift) of the nightly backup and the daily cleanup.
backup_schedule = "30 2 * * *"
cleanup_schedule = "15 3 * * *"
backup_dir = "/var/backups/onesift"
backup_keep_days = 7
# `ops backup status` exits 1 when the newest complete run is older than this:
# the interval of backup_schedule (a day) plus the time a run may take.
backup_max_age_hours = 26
# pg_dump --lock-wait-timeout: a nightly dump that cannot lock a table (a
# migration holding it) fails after this, visibly, instead of hanging while it
# holds locks that stop DDL on every table it has reached. A duration: 30s, 10min, 1h.
backup_lock_wait_timeout = "30min"
# Also a pg_dump -n file per tenant each night. Off: a tenant is restored from
# the whole dump, and per-tenant dumps cost ~125-140 whole dumps at 1000 tenants.
backup_tenant_dumps = False

# The logical nightly dump (onesift-backup, backup_schedule above) beside the
# physical backups. On by default: it does not depend on the physical format
# (a page that rots on disk is copied faithfully by a physical backup, and
# pg_dump reads every row, so it fails on one), it restores into another
# PostgreSQL major version, and it costs one dump a night (91 s at 10,000
# tenants on PostgreSQL 17, README Scale). A fleet that trusts pgBackRest's
# verify alone may turn it off; `ops backup restore --tenant X --run R` then has no runs.
backup_logical = True

# pgBackRest: physical backups and continuous WAL archiving, for
# point-in-time recovery (ops backup pitr/drill, restore --tenant X --to T).
# The keys are pgBackRest's own option names with a pgbackrest_ prefix; the
# deploy renders them into /etc/pgbackrest/pgbackrest.conf.
pgbackrest_stanza = "onesift"
# The repository: a directory on this host (repo1-path), or on a repository
# host when pgbackrest_repo1_host is set (repo1-host, reached over SSH as
# pgbackrest_repo1_host_user; that host needs pgBackRest and this stanza in
# its own config, and repo1-path is then its path there). A local repository
# dies with the host: mount it from other storage, or use a repo host.
pgbackrest_repo1_path = "/var/lib/pgbackrest"
pgbackrest_repo1_host = None
pgbackrest_repo1_host_user = "pgbackrest"
# Repository encryption: "none" or "aes-256-cbc" (repo1-cipher-type). The
# passphrase (repo1-cipher-pass) is a secret, ONESIFT_PGBACKREST_REPO1_CIPHER_PASS
# (onesift/secrets.py), uploaded to /etc/pgbackrest/conf.d/cipher.conf (0600
# postgres), never in argv or logs. It cannot change once the stanza exists:
# the deploy refuses a passphrase that does not open the repository.
pgbackrest_repo1_cipher_type = "none"
# Retention (repo1-retention-full, counted in full backups): with a full a
# week, 2 keeps 1-2 weeks of backups and the WAL to recover to any moment in them.
pgbackrest_repo1_retention_full = 2
# archive-push through a local queue (archive-async, spool-path), so a slow
# repository does not stall PostgreSQL's archiver one segment at a time.
pgbackrest_archive_async = True
pgbackrest_spool_path = "/var/spool/pgbackrest"
# Processes for backup, restore and async archiving (process-max). 2: this
# project's hosts have 2 cores; raise it where the host has more.
pgbackrest_process_max = 2
# zst: pgBackRest's fastest good compressor (compress-type).
pgbackrest_compress_type = "zst"
# How long archive-push/check wait for a WAL segment (archive-timeout, seconds).
pgbackrest_archive_timeout = 60
# PostgreSQL's archive_timeout (seconds): the longest a committed transaction
# waits to reach the repository on a quiet server, so the RPO when the host is
# lost. Each forced switch archives a 16 MB segment, mostly zeros, which zst
# makes a few KB.
archive_timeout = 60
# Schedules (/etc/cron.d/onesift): a full backup weekly, a differential on the
# other days, each followed by pgbackrest verify; the restore drill weekly.
pgbackrest_full_schedule = "0 1 * * 0"
pgbackrest_diff_schedule = "0 1 * * 1-6"
pitr_drill_schedule = "30 4 * * 0"
# `ops backup status` exits 1 when the newest good backup (full or diff) is
# older than this (the daily diff plus the time it may take), or the newest
# full older than pgbackrest_full_max_age_hours (a week plus that).
pgbackrest_max_age_hours = 26
pgbackrest_full_max_age_hours = 170
# The scratch instance a point-in-time restore starts (ops backup pitr, drill,
# restore --tenant X --to T): its own port and directory, listening on its
# own socket in that directory only, archive_mode off, so it never pushes
# WAL into the repository nor takes the live cluster's clients.
pitr_scratch_port = 5499
pitr_scratch_path = "/var/lib/postgresql/onesift-scratch"

# `ops tenant migrate`: the longest a tenant's migration waits for a lock
# (one held by an app transaction, say) before it gives up and lets the app
# go on, and how often it is tried again (after 0.5, 1, 2, 4 s, ...) before
# the tenant is left 'retryable' for the next run. While it waits, app
# queries on that tenant's table queue behind it: keep it short.
migrate_lock_timeout_ms = 2000
migrate_lock_retries = 4

# A production inventory: destructive commands also need --allow-production.
production = False
# The passwords: ~/.config/onesift/<secrets_name>.env (onesift/secrets.py),
# made on the first deploy only when generate_secrets is true (local hosts).
secrets_name = "prod"
generate_secrets = False

# --- A Patroni cluster (README, Cluster). Unset: one database host, as above.
# Patroni's `scope`, set for every member of the inventory (inventories/cluster.py):
# each runs etcd, Patroni (which runs PostgreSQL), PgBouncer and HAProxy.
patroni_cluster = None
# Host data of each member: its Patroni (and etcd) name, default the host's
# name, and the address the others reach it at, default that name.
patroni_name = None
patroni_address = None
# Patroni's bootstrap.dcs timing, then kept by the deploy through its dynamic
# configuration. Patroni's defaults are 30/10/10. A primary's postmaster
# killed is started again within loop_wait: 2 s made it 3.4 s to the next
# write through the endpoint (README, Cluster). A lost primary node is
# replaced once its leader lock expires: ttl, and Patroni 4 makes any ttl
# below 20 s 20 ("ttl=12 can't be smaller than 20, adjusting", measured).
# loop_wait + 2 * retry_timeout <= ttl, as Patroni requires. A shorter ttl
# would also demote a primary whose etcd stalls that long.
patroni_ttl = 20
patroni_loop_wait = 2
patroni_retry_timeout = 5
# A replica further behind than this (bytes) is never promoted.
patroni_maximum_lag_on_failover = 1048576
# Patroni's synchronous_mode: a commit returns once a synchronous standby has
# it, so a failover loses no acknowledged transaction (RPO 0). Strict: also
# refuse writes while no standby is there (else the primary goes on alone).
patroni_synchronous_mode = False
patroni_synchronous_mode_strict = False
patroni_use_pg_rewind = True
# A replica that stops keeps its replication slot on the primary (so the
# primary keeps the WAL it has not read) for patroni_member_slots_ttl seconds
# (Patroni's member_slots_ttl; its default, 30 min), and a slot holds back at
# most max_slot_wal_keep_size of WAL (PostgreSQL's). Past either, the
# primary's disk is safe and the replica, back, reads the WAL it missed from
# the pgBackRest repository (restore_command) before it streams again.
patroni_member_slots_ttl = 1800
patroni_max_slot_wal_keep_size = "8GB"
# The members' networks (pg_hba: replication, pg_rewind as the superuser,
# HAProxy to PgBouncer). "samenet" for the local containers.
cluster_networks = []
# PgBouncer on every member, in front of its own PostgreSQL (local socket).
# max_prepared_statements: the app's node-postgres prepares named statements,
# which transaction pooling otherwise breaks (PgBouncer >= 1.21).
pgbouncer_port = 6432
pgbouncer_pool_mode = "transaction"
pgbouncer_max_client_conn = 1000
pgbouncer_default_pool_size = 20
pgbouncer_max_prepared_statements = 200
# HAProxy on every member: the read-write endpoint (to the member whose
# Patroni answers GET /primary with 200) and the read-only one (GET /replica).
haproxy_primary_port = 5000
haproxy_replicas_port = 5001

# Defaults for every inventory. Passwords are not here: see deploy/secrets.py.
pg_version = 15
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
# mode 0600, e.g. beside the passwords in ~/.config/onesift/ (deploy/secrets.py).
#   pg_ssl_cert_file = "~/.config/onesift/db1.crt"  # server certificate, then any intermediates
#   pg_ssl_key_file = "~/.config/onesift/db1.key"   # its private key, without a passphrase
#   pg_ssl_ca_file = "~/.config/onesift/clients-ca.crt"  # CAs for client certificates (optional)
pg_ssl_cert_file = None
pg_ssl_key_file = None
pg_ssl_ca_file = None
# Networks allowed to reach the database: TLS only (hostssl), SCRAM passwords.
client_networks = []
client_networks_nossl = []
# Overrides of deploy/server.py DEFAULT_SERVER_SETTINGS.
pg_settings = {}

# Sizes max_locks_per_transaction so one pg_dump can lock every tenant table.
expected_tenants = 1000

retention_days = 90
backup_dir = "/var/backups/onesift"
backup_keep_days = 7
# Also a pg_dump -n file per tenant each night. Off: a tenant is restored from
# the whole dump, and per-tenant dumps cost ~125-140 whole dumps at 1000 tenants.
backup_tenant_dumps = False

# `ops tenant migrate`: the longest a tenant's migration waits for a lock
# (one held by an app transaction, say) before it gives up and lets the app
# go on, and how often it is tried again (after 0.5, 1, 2, 4 s, ...) before
# the tenant is left 'retryable' for the next run. While it waits, app
# queries on that tenant's table queue behind it: keep it short.
migrate_lock_timeout_ms = 2000
migrate_lock_retries = 4

production = False
secrets_name = "prod"
generate_secrets = False

# Defaults for every inventory. Passwords are not here: see deploy/secrets.py.
pg_version = 15
pg_port = 5432
db_name = "onesift"
db_roles = {"owner": "onesift_owner", "app": "onesift_app", "auditor": "onesift_auditor",
            "audit_owner": "onesift_audit_owner"}

listen_addresses = ["localhost"]
pg_ssl = True
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

production = False
secrets_name = "prod"
generate_secrets = False

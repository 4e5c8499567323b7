# The local bookworm container host (tests): like the SSH host, on Debian 12.
listen_addresses = ["*"]
client_networks = ["samenet"]
secrets_name = "local_bookworm"
generate_secrets = True
retention_days = 30

# The local container host: reachable from this machine's published loopback port.
listen_addresses = ["*"]
client_networks = ["samenet"]
secrets_name = "dev"
generate_secrets = True
retention_days = 30

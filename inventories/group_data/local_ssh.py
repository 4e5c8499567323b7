# The local SSH container host (tests): like dev, reached over SSH.
listen_addresses = ["*"]
client_networks = ["samenet"]
secrets_name = "local_ssh"
generate_secrets = True
retention_days = 30

# The local SSH container host (tests): like dev, reached over SSH.
listen_addresses = ["*"]
client_networks = ["samenet"]
secrets_name = "local_ssh"
generate_secrets = True
retention_days = 30
# The production path encrypts its repository (the passphrase is generated
# into ~/.config/onesift/local_ssh.env like the passwords): tests/e2e/test_pitr.py.
pgbackrest_repo1_cipher_type = "aes-256-cbc"

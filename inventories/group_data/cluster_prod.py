production = True
secrets_name = "cluster_prod"
patroni_cluster = "onesift"
patroni_synchronous_mode = True
# The members' addresses are their inventory names (patroni_address to override).
cluster_networks = ["10.0.1.0/24"]
listen_addresses = ["*"]
client_networks = ["10.0.0.0/8"]
pg_settings = {"shared_buffers": "4GB", "max_connections": 300, "log_min_duration_statement": 500}
# One pgBackRest repository for the three (README, Cluster): the same NFS
# export mounted here on every member (the deploy refuses a member that does
# not see the primary's stanza), or a repository host (pgbackrest_repo1_host).
pgbackrest_repo1_path = "/mnt/pgbackrest"
pgbackrest_repo1_cipher_type = "aes-256-cbc"

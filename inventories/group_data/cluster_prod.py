production = True
secrets_name = "cluster_prod"
patroni_cluster = "onesift"
patroni_synchronous_mode = True
# The members' addresses are their inventory names (patroni_address to override).
cluster_networks = ["10.0.1.0/24"]
listen_addresses = ["*"]
client_networks = ["10.0.0.0/8"]
pg_settings = {"shared_buffers": "4GB", "max_connections": 300, "log_min_duration_statement": 500}

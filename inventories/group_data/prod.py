production = True
secrets_name = "prod"
listen_addresses = ["*"]
client_networks = ["10.0.0.0/8"]
pg_settings = {"shared_buffers": "4GB", "max_connections": 300, "log_min_duration_statement": 500}

# The local Patroni cluster (tests): every member runs etcd, Patroni,
# PgBouncer and HAProxy; synchronous replication, for an RPO of 0.
patroni_cluster = "onesift"
patroni_synchronous_mode = True
cluster_networks = ["samenet"]
listen_addresses = ["*"]
client_networks = ["samenet"]
# HAProxy reaches PgBouncer, and PgBouncer PostgreSQL, inside the network;
# the tests reach HAProxy through loopback-published ports (the bridge gateway).
client_networks_nossl = ["samenet"]
secrets_name = "cluster"
generate_secrets = True
retention_days = 30

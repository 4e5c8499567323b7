# A production Patroni cluster: three database hosts, each running etcd,
# Patroni (PostgreSQL), PgBouncer and HAProxy under systemd (README, Cluster).
# Replace with your own; passwords come from ONESIFT_*_PASSWORD or
# ~/.config/onesift/cluster_prod.env, the cluster's own five among them.
cluster_prod = [
    ("db1.onesift.internal", {"ssh_user": "deploy", "_sudo": True, "patroni_name": "db1"}),
    ("db2.onesift.internal", {"ssh_user": "deploy", "_sudo": True, "patroni_name": "db2"}),
    ("db3.onesift.internal", {"ssh_user": "deploy", "_sudo": True, "patroni_name": "db3"}),
]

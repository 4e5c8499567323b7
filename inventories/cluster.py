# Three local container hosts on a network of their own, one Patroni cluster
# (README, Cluster). `ops host up cluster` makes the network and containers
# (ONESIFT_CLUSTER_PREFIX names them, default onesift-pg1..3), deploys and seeds.
import os

_prefix = os.environ.get("ONESIFT_CLUSTER_PREFIX") or "onesift-pg"

cluster = [(f"@docker/{_prefix}{i}", {"patroni_name": f"{_prefix}{i}"}) for i in (1, 2, 3)]

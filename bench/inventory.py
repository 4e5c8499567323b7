# The benchmark host: a local container of its own, reached over SSH on
# loopback like production, so benchmarks never touch the dev host.
import os
from pathlib import Path

_state = Path(os.environ.get("ONESIFT_STATE_DIR") or Path.home() / ".local/state/onesift")

bench = [
    (
        "127.0.0.1",
        {
            "ssh_port": int(os.environ.get("ONESIFT_BENCH_SSH_PORT") or 22023),  # bench/run.py HOST
            "ssh_user": "root",
            "ssh_key": str(_state / "ssh" / "id_ed25519"),
            "ssh_known_hosts_file": str(_state / "ssh" / "known_hosts_bench"),
            "ssh_strict_host_key_checking": "accept-new",
            "listen_addresses": ["*"],
            "client_networks": ["samenet"],
            "secrets_name": "bench",
            "generate_secrets": True,
            # bench/scale.py takes it to 10,000 tenants and creates one more.
            "max_tenants": 20000,
        },
    )
]

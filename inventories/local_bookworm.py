# A container host on Debian 12 (bookworm, PostgreSQL 15), reached over SSH on
# loopback: the previous release, still supported. `ops host up bookworm`
# creates it; the tests run their smoke set on it.
import os
from pathlib import Path

_state = Path(os.environ.get("ONESIFT_STATE_DIR") or Path.home() / ".local/state/onesift")

local_bookworm = [
    (
        "127.0.0.1",
        {
            "ssh_port": int(os.environ.get("ONESIFT_BOOKWORM_SSH_PORT") or 22024),
            "ssh_user": "root",
            "ssh_key": str(_state / "ssh" / "id_ed25519"),
            "ssh_known_hosts_file": str(_state / "ssh" / "known_hosts_bookworm"),
            "ssh_strict_host_key_checking": "accept-new",
        },
    )
]

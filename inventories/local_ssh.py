# A container host reached over SSH on loopback: the same path as production.
# `ops host up --ssh` creates it and writes the port and key it uses.
import os
from pathlib import Path

_state = Path(os.environ.get("ONESIFT_STATE_DIR") or Path.home() / ".local/state/onesift")

local_ssh = [
    (
        "127.0.0.1",
        {
            "ssh_port": int(os.environ.get("ONESIFT_SSH_PORT") or 22022),
            "ssh_user": "root",
            "ssh_key": str(_state / "ssh" / "id_ed25519"),
            "ssh_known_hosts_file": str(_state / "ssh" / "known_hosts"),
            "ssh_strict_host_key_checking": "accept-new",
        },
    )
]

"""
Role passwords, and the pgBackRest repository's passphrase: read from the environment or from a 0600 file outside the
repository, never from inventory files, argv or logs.

Lookup per role KEY (owner, app, auditor): ``ONESIFT_<KEY>_PASSWORD`` in the
environment, else ``<secrets dir>/<name>.env`` (``ONESIFT_SECRETS_DIR``,
default ``~/.config/onesift``). Inventories that set ``generate_secrets``
(the local dev host) get missing passwords generated into that file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from onesift.errors import BadInput

ROLE_KEYS = ("owner", "app", "auditor")
# A Patroni cluster's own (onesift/cluster.py): the replication role's, the
# postgres superuser's (pg_rewind and Patroni connect as it over the network)
# the user Patroni's REST API asks for on a change (PATCH /config, switchover),
# and etcd's root user and the user Patroni logs in to etcd as.
CLUSTER_KEYS = ("replication", "superuser", "patroni_rest", "etcd_root", "etcd_patroni")


def secrets_dir() -> Path:
    return Path(os.environ.get("ONESIFT_SECRETS_DIR") or Path.home() / ".config" / "onesift")


def env_var(key: str) -> str:
    return f"ONESIFT_{key.upper()}_PASSWORD"


def read_file(path: Path) -> dict[str, str]:
    """KEY=value lines as python-dotenv reads them: comments, quotes and `export ` as a shell would take them."""
    from dotenv import dotenv_values

    if not path.exists():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def write_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in sorted(values.items())))


def load(name: str, generate: bool = False, keys: tuple[str, ...] = ROLE_KEYS) -> dict[str, str]:
    """Passwords by key (default: the roles') for the secrets set ``name`` (e.g. "dev", "prod")."""
    path = secrets_dir() / f"{name}.env"
    stored = read_file(path)
    passwords, missing = {}, []
    for key in keys:
        value = os.environ.get(env_var(key)) or stored.get(env_var(key))
        if not value and generate:
            value = stored[env_var(key)] = secrets.token_urlsafe(32)
        if not value:
            missing.append(env_var(key))
        passwords[key] = value
    if missing:
        raise BadInput(f"missing secrets {', '.join(missing)}: set them in the environment or in {path}")
    if generate and stored != read_file(path):
        write_file(path, stored)
    return passwords


CIPHER_PASS = "ONESIFT_PGBACKREST_REPO1_CIPHER_PASS"


def cipher_pass(name: str, generate: bool = False) -> str:
    """The pgBackRest repository passphrase (repo1-cipher-pass) of the secrets set ``name``:
    the environment, else the set's file; generated into it when ``generate``; else BadInput."""
    path = secrets_dir() / f"{name}.env"
    stored = read_file(path)
    value = os.environ.get(CIPHER_PASS) or stored.get(CIPHER_PASS)
    if not value and generate:
        value = stored[CIPHER_PASS] = secrets.token_urlsafe(48)
        write_file(path, stored)
    if not value:
        raise BadInput(f"missing secret {CIPHER_PASS} (pgbackrest_repo1_cipher_type is not none): "
                       f"set it in the environment or in {path}")
    return value

"""pgBackRest: its configuration, the repository's passphrase, the stanza and a first full backup."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files

from deploy import database, platform
from deploy.facts.pgbackrest import PgBackRestInfo
from deploy.operations import pgbackrest
from deploy.operations.pg import HiddenStdin
from onesift import cluster, secrets
from onesift.render import TEMPLATES
from onesift.settings import BadInput, Settings

CONF_DIR = "/etc/pgbackrest"
CIPHER_CONF = f"{CONF_DIR}/conf.d/cipher.conf"


def cipher_pass(settings: Settings) -> str | None:
    """The repository passphrase when the repository is encrypted; PyinfraError (one line) when it is missing."""
    if not settings.pgbackrest.encrypted:
        return None
    try:
        return secrets.cipher_pass(settings.secrets_name, settings.generate_secrets)
    except BadInput as e:
        raise PyinfraError(str(e)) from None


def refuse_wrong_passphrase(settings: Settings, passphrase: str) -> None:
    """Before any operation: a passphrase that does not open the existing repository is refused in one
    line, so a wrong secret never replaces the right one on the host. It reaches pgbackrest on stdin only."""
    c = settings.pgbackrest
    info = host.get_fact(PgBackRestInfo, stanza=c.stanza, cipher_type=c.repo1_cipher_type,
                         _stdin=HiddenStdin([passphrase + "\n"]))
    if info.get("error"):
        raise PyinfraError(
            f"{host.name}: the pgBackRest repository {c.repo1_path} does not open with "
            f"{secrets.CIPHER_PASS} ({info['error'][:200]}): the stanza was made with another passphrase, "
            "or without encryption; a passphrase cannot change once the stanza exists")


def data_directory(settings: Settings) -> str:
    """pg1-path: Debian's N/main on a single host, Patroni's directory on a cluster member."""
    if cluster.is_cluster(host.data):
        return cluster.data_dir(settings.pg_version)
    return f"/var/lib/postgresql/{settings.pg_version}/main"


@deploy("pgBackRest")
def install():
    settings = platform.settings()
    c = settings.pgbackrest
    passphrase = cipher_pass(settings)
    if passphrase is not None:
        refuse_wrong_passphrase(settings, passphrase)
    for path in (c.repo1_path, c.spool_path, "/var/log/pgbackrest"):
        files.directory(name=f"Directory {path}", path=path, user="postgres", group="postgres", mode="750")
    files.directory(name=f"Directory {CONF_DIR}/conf.d", path=f"{CONF_DIR}/conf.d",
                    user="postgres", group="postgres", mode="750")
    # One configuration: Debian's sample /etc/pgbackrest.conf would be read
    # whenever ours is missing.
    files.file(name="No Debian sample /etc/pgbackrest.conf", path="/etc/pgbackrest.conf", present=False)
    files.template(
        name="Render pgbackrest.conf",
        src=str(TEMPLATES / "config/pgbackrest.conf.j2"),
        dest=f"{CONF_DIR}/pgbackrest.conf",
        user="postgres", group="postgres", mode="640",
        stanza=c.stanza, repo1_path=c.repo1_path, repo1_host=c.repo1_host, repo1_host_user=c.repo1_host_user,
        repo1_retention_full=c.repo1_retention_full, repo1_cipher_type=c.repo1_cipher_type,
        compress_type=c.compress_type, process_max=c.process_max, archive_timeout=c.archive_timeout,
        archive_async=c.archive_async, spool_path=c.spool_path,
        data_directory=data_directory(settings), pg_port=settings.pg_port,
        cluster_member=cluster.is_cluster(host.data),
    )
    if passphrase is None:
        files.file(name=f"No {CIPHER_CONF}: not encrypted", path=CIPHER_CONF, present=False)
    else:
        # An uploaded file (0600, postgres): the passphrase is never in argv, a template's arguments or a log.
        files.put(name=f"Upload {CIPHER_CONF}", src=StringIO(f"[global]\nrepo1-cipher-pass={passphrase}\n"),
                  dest=CIPHER_CONF, user="postgres", group="postgres", mode="600")
    # stanza-create, check and a backup without backup-standby need the primary.
    only = database.on_primary()
    pgbackrest.stanza(name=f"pgBackRest stanza {c.stanza}", stanza=c.stanza, **only)
    pgbackrest.first_backup(name="A first full backup", stanza=c.stanza, **only)
    if only:
        # Every member archives into the same repository once it is the primary: a replica
        # that does not see the stanza the primary made has a repository of its own.
        primary = only["_if"]
        pgbackrest.shared_repository(name=f"Stanza {c.stanza} seen from this member", stanza=c.stanza,
                                     repo1_path=c.repo1_path, _if=lambda: not primary())

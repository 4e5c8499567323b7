"""
The server's TLS certificate: Debian's snakeoil pair unless inventory data
names a certificate and key (``pg_ssl_cert_file``, ``pg_ssl_key_file``, and
optionally ``pg_ssl_ca_file``), files on the machine that runs the deploy.

They are checked here before any host is touched, then uploaded into the
cluster's config directory under PostgreSQL's own default names
(``server.crt``, ``server.key``, ``root.crt``): ``pg.cluster`` restarts the
server when a file there is newer than the postmaster, so a new certificate
or key is served from the same deploy, and an unchanged one changes nothing.

The key travels only as a file (the connector's upload; never argv or a
log line), lands 0600 and owned by postgres, as PostgreSQL requires, and no
message here quotes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from onesift.settings import BadInput

# What postgresql.conf names when the inventory names no certificate (package ssl-cert).
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"

# Inventory key, file name in the config directory, mode there.
FILES = {
    "cert": ("pg_ssl_cert_file", "server.crt", "644"),
    "key": ("pg_ssl_key_file", "server.key", "600"),
    "ca": ("pg_ssl_ca_file", "root.crt", "644"),
}


@dataclass(frozen=True)
class Upload:
    """One file for the config directory: ``local`` is None when the inventory names none (remove it)."""

    local: Path | None
    remote: str
    mode: str


@dataclass(frozen=True)
class ServerCertificate:
    """The local files an inventory names; all None means Debian's snakeoil pair."""

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None

    def uploads(self, conf_dir: str) -> list[Upload]:
        local = {"cert": self.cert_file, "key": self.key_file, "ca": self.ca_file}
        return [Upload(local[part], f"{conf_dir}/{name}", mode) for part, (_, name, mode) in FILES.items()]

    def postgresql_conf(self, conf_dir: str) -> dict[str, str]:
        """The ssl_* settings of postgresql.conf.j2 (an empty ssl_ca_file is left out)."""
        if self.cert_file is None:
            cert, key = SNAKEOIL_CERT, SNAKEOIL_KEY
        else:
            cert, key = f"{conf_dir}/{FILES['cert'][1]}", f"{conf_dir}/{FILES['key'][1]}"
        ca = f"{conf_dir}/{FILES['ca'][1]}" if self.ca_file else ""
        return {"ssl_cert_file": cert, "ssl_key_file": key, "ssl_ca_file": ca}


def local_file(data, key: str) -> Path | None:
    """Inventory data ``key`` as an existing local file (absolute, or ``~`` expanded), None when unset; else BadInput."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, Path)):
        raise BadInput(f"inventory data {key} must be a file path, not {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        # ops checks from the caller's directory and pyinfra runs from the repository's.
        raise BadInput(f"inventory data {key} must be an absolute path or start with ~, not {value!r}")
    if not path.is_file():
        raise BadInput(f"inventory data {key}: {path} does not exist on this machine (the deploy uploads it from here)")
    return path


def certificates(key: str, path: Path) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(path.read_bytes())
    except (ValueError, OSError):
        found = []
    if not found:
        raise BadInput(f"inventory data {key}: {path} is not a PEM certificate")
    return found


def private_key(key: str, path: Path):
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except TypeError:
        raise BadInput(
            f"inventory data {key}: {path} is encrypted; PostgreSQL would ask for its passphrase "
            "at every start: give the key without one"
        ) from None
    except (ValueError, OSError, UnsupportedAlgorithm):
        raise BadInput(f"inventory data {key}: {path} is not a PEM private key") from None


def public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def from_data(data) -> ServerCertificate:
    """The certificate inventory data names, checked: BadInput in one line when a file is
    missing or unreadable as PEM, or the key is not the certificate's."""
    cert_key, key_key, ca_key = (FILES[part][0] for part in ("cert", "key", "ca"))
    cert, key, ca = local_file(data, cert_key), local_file(data, key_key), local_file(data, ca_key)
    if (cert is None) != (key is None):
        given, missing = (cert_key, key_key) if cert else (key_key, cert_key)
        raise BadInput(f"inventory data names {given} but not {missing}: name both, or neither for Debian's snakeoil pair")
    if cert is not None:
        # The first certificate is the server's; any after it are its chain.
        server_cert = certificates(cert_key, cert)[0]
        if public_der(private_key(key_key, key).public_key()) != public_der(server_cert.public_key()):
            raise BadInput(f"inventory data {key_key}: {key} does not match the certificate in {cert_key} {cert}")
    if ca is not None:
        certificates(ca_key, ca)
    return ServerCertificate(cert, key, ca)

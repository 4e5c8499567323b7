"""
The server's TLS certificate named in inventory data (``pg_ssl_cert_file``,
``pg_ssl_key_file``, ``pg_ssl_ca_file``): what postgresql.conf says, where the
files go on the host, and bad input refused in one line before any host is
changed. No host needed, except the last test, which deploys to a container
of your own (``ONESIFT_TEST_TLS_CONTAINER``; see its docstring).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy import server, tls
from deploy.facts.postgres import PgCluster
from onesift.render import ROOT, render_template
from onesift.settings import BadInput, Settings

CONF_DIR = "/etc/postgresql/15/main"


# --- certificates made here (cryptography, EC keys: fast) ---------------------------------

def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def certificate(key, name: str, issuer_key=None, issuer_name: str | None = None, ca: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate it signed for localhost, its key, and a key that is not its."""
    ca_key, key, other = new_key(), new_key(), new_key()
    ca = certificate(ca_key, "onesift test CA", ca=True)
    cert = certificate(key, "localhost", ca_key, "onesift test CA")
    files = {"ca": pem(ca), "cert": pem(cert) + pem(ca), "key": pem(key), "other_key": pem(other)}
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(data)
        paths[name].chmod(0o600)
    return paths


def named(pki, **changes) -> dict:
    data = {"pg_ssl_cert_file": str(pki["cert"]), "pg_ssl_key_file": str(pki["key"]),
            "pg_ssl_ca_file": str(pki["ca"])}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def conf(data: dict) -> dict[str, str]:
    """postgresql.conf as rendered for inventory ``data``: its settings by name."""
    text = render_template("config/postgresql.conf.j2", **server.postgresql_conf(data, Settings.from_data({"pg_version": 15, **data})))
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


# --- rendering -------------------------------------------------------------------------------

def test_default_is_debians_snakeoil_pair():
    assert tls.from_data({}) == tls.ServerCertificate()
    settings = conf({})
    assert settings["ssl"] == "on"
    assert settings["ssl_cert_file"] == "'/etc/ssl/certs/ssl-cert-snakeoil.pem'"
    assert settings["ssl_key_file"] == "'/etc/ssl/private/ssl-cert-snakeoil.key'"
    assert "ssl_ca_file" not in settings


def test_named_certificate_is_served_from_the_config_directory(pki):
    settings = conf(named(pki))
    assert settings["ssl_cert_file"] == f"'{CONF_DIR}/server.crt'"
    assert settings["ssl_key_file"] == f"'{CONF_DIR}/server.key'"
    assert settings["ssl_ca_file"] == f"'{CONF_DIR}/root.crt'"
    assert "ssl_ca_file" not in conf(named(pki, pg_ssl_ca_file=None))


def test_uploads_land_where_the_restart_check_looks(pki):
    """pg.cluster reloads when a file in the config directory is newer than the server's last
    configuration load (PgCluster's find): so a changed certificate or key is read again."""
    uploads = tls.from_data(named(pki)).uploads(CONF_DIR)
    assert [(u.local, u.remote, u.mode) for u in uploads] == [
        (pki["cert"], f"{CONF_DIR}/server.crt", "644"),
        (pki["key"], f"{CONF_DIR}/server.key", "600"),
        (pki["ca"], f"{CONF_DIR}/root.crt", "644"),
    ]
    assert f"find {CONF_DIR} -type f" in PgCluster().command(15)  # newer than the last load: a reload
    # Not named: the same paths, nothing to upload (the deploy removes them).
    assert [(u.local, u.remote) for u in tls.from_data({}).uploads(CONF_DIR)] == [
        (None, f"{CONF_DIR}/server.crt"), (None, f"{CONF_DIR}/server.key"), (None, f"{CONF_DIR}/root.crt")]


def test_home_directory_is_expanded(pki, monkeypatch):
    monkeypatch.setenv("HOME", str(pki["cert"].parent))
    got = tls.from_data(named(pki, pg_ssl_cert_file="~/cert.pem", pg_ssl_key_file="~/key.pem"))
    assert got.cert_file == pki["cert"] and got.key_file == pki["key"]


# --- bad input --------------------------------------------------------------------------------

def refusal(data) -> str:
    with pytest.raises(BadInput) as e:
        tls.from_data(data)
    message = str(e.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("key", ["pg_ssl_cert_file", "pg_ssl_key_file", "pg_ssl_ca_file"])
def test_missing_file_refused(pki, tmp_path, key):
    message = refusal(named(pki, **{key: str(tmp_path / "nowhere.pem")}))
    assert key in message and "nowhere.pem" in message and "does not exist" in message


def test_relative_path_refused(pki):
    """ops checks from the caller's directory, pyinfra runs from the repository: a relative path is ambiguous."""
    message = refusal(named(pki, pg_ssl_ca_file="ca.pem"))
    assert "pg_ssl_ca_file" in message and "absolute" in message


def test_key_of_another_certificate_refused(pki):
    message = refusal(named(pki, pg_ssl_key_file=str(pki["other_key"])))
    assert "does not match" in message and "pg_ssl_key_file" in message and "pg_ssl_cert_file" in message


@pytest.mark.parametrize("missing", ["pg_ssl_cert_file", "pg_ssl_key_file"])
def test_certificate_and_key_are_named_together(pki, missing):
    message = refusal(named(pki, **{missing: None}))
    assert "pg_ssl_cert_file" in message and "pg_ssl_key_file" in message


def test_files_of_the_wrong_kind_refused(pki):
    assert "not a PEM certificate" in refusal(named(pki, pg_ssl_cert_file=str(pki["key"])))
    assert "not a PEM certificate" in refusal(named(pki, pg_ssl_ca_file=str(pki["key"])))
    assert "not a PEM private key" in refusal(named(pki, pg_ssl_key_file=str(pki["cert"])))
    assert "must be a file path" in refusal(named(pki, pg_ssl_cert_file=["a", "b"]))


def test_encrypted_key_refused(pki, tmp_path):
    key = serialization.load_pem_private_key(pki["key"].read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")))
    assert "passphrase" in refusal(named(pki, pg_ssl_key_file=str(locked)))


def test_refusals_never_show_the_key(pki):
    """Whatever file is named where, the key's PEM text stays out of the message."""
    secret_lines = [line for line in pki["key"].read_text().splitlines() if "PRIVATE KEY" not in line]
    for data in (named(pki, pg_ssl_cert_file=str(pki["key"])), named(pki, pg_ssl_ca_file=str(pki["key"])),
                 named(pki, pg_ssl_key_file=str(pki["other_key"]))):
        message = refusal(data)
        assert not any(line in message for line in secret_lines)


# --- refused before any host is changed: ops (exit 2) and pyinfra -----------------------------

def inventory(tmp_path, host: str, data: dict) -> Path:
    path = tmp_path / "inv.py"
    path.write_text(f"tls = [({host!r}, {data!r})]\n")
    return path


def ops(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ONESIFT_INVENTORY"}
    return subprocess.run([sys.executable, "-m", "ops_cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["db", "setup"], ["db", "reset", "--yes"]])
@pytest.mark.parametrize("bad", ["missing", "mismatch"])
def test_ops_refuses_bad_certificate_with_exit_2(pki, tmp_path, command, bad):
    """Before any host is reached: the inventory names a host that cannot be resolved."""
    wrong = {"missing": str(tmp_path / "nowhere.key"), "mismatch": str(pki["other_key"])}[bad]
    inv = inventory(tmp_path, "@ssh/onesift-nohost.invalid", named(pki, pg_ssl_key_file=wrong))
    out = ops(*command, "-i", str(inv))
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("error: ") and "pg_ssl_key_file" in lines[0]


def test_pyinfra_deploy_refuses_bad_certificate_before_any_operation(pki, tmp_path):
    """``--dry`` on @local: a refusal is one pyinfra error line, not a traceback, and no operation is listed."""
    inv = inventory(tmp_path, "@local", named(pki, pg_ssl_key_file=str(pki["other_key"])))
    out = subprocess.run([sys.executable, "-m", "pyinfra", "--dry", str(inv), "deploy.server.install"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    printed = out.stdout + out.stderr
    assert out.returncode != 0, printed
    assert "Traceback" not in printed and "Render postgresql.conf" not in printed
    errors = [line for line in printed.splitlines() if "pyinfra error" in line]
    assert len(errors) == 1 and "does not match" in errors[0], printed


# --- for the live test (tests/e2e/test_tls_live.py) ------------------------------------------


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca_and_server_cert(d: Path, tag: str) -> dict[str, Path]:
    """With openssl: a throwaway CA and a server certificate it signs for localhost and 127.0.0.1."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{tag}-ca.key", "-out", f"{tag}-ca.crt", "-days", "2", "-subj", f"/CN=onesift {tag} CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{tag}-server.key", "-out", f"{tag}-server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / f"{tag}-san.ext").write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{tag}-server.csr", "-CA", f"{tag}-ca.crt", "-CAkey", f"{tag}-ca.key",
            "-CAcreateserial", "-out", f"{tag}-server.crt", "-days", "2", "-extfile", f"{tag}-san.ext", cwd=d)
    return {"ca": d / f"{tag}-ca.crt", "cert": d / f"{tag}-server.crt", "key": d / f"{tag}-server.key"}

"""
TLS with a certificate the inventory names (issue 8.15), on the dev host:
clients verify it with sslmode=verify-full; going back to the default
serves Debian's snakeoil pair again. Each switch only reloads PostgreSQL
(the ssl_* settings are read again on a reload: issue 11.4).
"""

from __future__ import annotations

import re
import subprocess
import sys

import psycopg

from tests.e2e.conftest import ROOT
from tests.test_tls import make_ca_and_server_cert


def deploy(inventory) -> str:
    out = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(inventory), "deploy.py"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def verified(dev, ca) -> bool:
    try:
        with psycopg.connect(host="localhost", hostaddr="127.0.0.1", port=dev.pg_port, dbname="onesift",
                             user="onesift_app", password=dev.passwords["app"], connect_timeout=10,
                             sslmode="verify-full", sslrootcert=str(ca)) as conn:
            return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    except psycopg.OperationalError as e:
        assert "certificate verify failed" in str(e), e
        return False


def test_verify_full_with_the_certificate_the_inventory_names(dev, tmp_path):
    pair = make_ca_and_server_cert(tmp_path, "a")
    assert not verified(dev, pair["ca"])  # snakeoil: self-signed, for another name
    (tmp_path / "group_data").symlink_to(ROOT / "inventories" / "group_data")
    inv = tmp_path / "inv.py"
    # Group "dev", so group_data/dev.py applies as it does to inventories/dev.py.
    inv.write_text(f"dev = [('@docker/{dev.local.container}', "
                   f"{{'pg_ssl_cert_file': {str(pair['cert'])!r}, 'pg_ssl_key_file': {str(pair['key'])!r}}})]\n")
    try:
        deploy(inv)
        assert verified(dev, pair["ca"])
        again = deploy(inv)
        m = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", again)
        assert m and m.group(2) == "-", again[-3000:]  # a re-run changes nothing
    finally:
        deploy(ROOT / dev.inventory)
    assert not verified(dev, pair["ca"])

"""
What the role fact prints (pyinfra -vv/-vvv/--debug print fact commands,
arguments and output) must not let a reader test password guesses offline:
the stored SCRAM verifier reaches the deploy only as an HMAC under a per-run
key sent on the fact's stdin. No host needed, except the last test, which
runs the deploy with -vvv against a container of your own with PostgreSQL
(``ONESIFT_TEST_PG_CONTAINER``; see its docstring).
"""

from __future__ import annotations

import base64
import hashlib
import io

from pyinfra.api.arguments import ConnectorArguments
from pyinfra.api.exceptions import ArgumentTypeError
from pyinfra.api.util import get_kwargs_str, raise_if_bad_type
from pyinfra.connectors.util import write_stdin

from deploy.facts.postgres import PgRoleAttributes
from deploy.operations import pg

KEY = bytes(range(32))
SALT = b"\x01" * 16


def fact_value(password: str, key: bytes = KEY) -> dict:
    """The fact's ``scram`` value for a role whose password is ``password``, as the host computes it."""
    verifier = pg.scram_verifier(password, SALT, 4096)
    return {"iterations": 4096, "salt": base64.b64encode(SALT).decode(),
            "verifier_hmac": pg.verifier_hmac(verifier, key)}


def test_password_check_needs_the_key():
    assert pg.password_matches("pencil", fact_value("pencil"), KEY)
    assert not pg.password_matches("pencil2", fact_value("pencil"), KEY)
    assert not pg.password_matches("pencil", fact_value("pencil"), bytes(32))
    assert not pg.password_matches("pencil", None, KEY)
    # A fact read without a key has no fingerprint: never "matches".
    assert not pg.password_matches("pencil", {**fact_value("pencil"), "verifier_hmac": None}, KEY)


def test_fact_output_has_no_unkeyed_digest_of_the_verifier():
    """The old fact printed sha256 of the verifier's keys: one PBKDF2 per guess tested it."""
    row = "onesift_app|t|f|f|f|f|t|200|4096:AQEBAQEBAQEBAQEBAQEBAQ==|" + "ab" * 32
    scram = PgRoleAttributes().process([row])["onesift_app"]["scram"]
    assert set(scram) == {"iterations", "salt", "verifier_hmac"}
    query = PgRoleAttributes.query
    # rolpassword leaves the server only as iterations:salt and inside the keyed HMAC.
    allowed = ("rolpassword LIKE", "split_part(rolpassword, '$', 2)",
               "sha256(decode(:'onesift_kipad', 'hex') || convert_to(rolpassword")
    assert query.count("rolpassword") == sum(query.count(use) for use in allowed)
    assert ":'onesift_kipad'" in query and "split_part(rolpassword, '$', 3)" not in query


def test_hmac_pads_match_python_hmac():
    """The host computes HMAC-SHA256 as sha256(opad || sha256(ipad || message)) from the pads on stdin."""
    lines = pg.fingerprint_stdin(KEY).readlines()
    pads = dict(line.split()[1:] for line in lines)
    message = pg.scram_verifier("pencil", SALT).encode()
    inner = hashlib.sha256(bytes.fromhex(pads["onesift_kipad"]) + message).digest()
    assert hashlib.sha256(bytes.fromhex(pads["onesift_kopad"]) + inner).hexdigest() == \
        pg.verifier_hmac(message.decode(), KEY)


def test_fact_stdin_is_sent_but_never_printed():
    stdin = pg.fingerprint_stdin(KEY)
    # pyinfra refuses a _stdin that is not str, list[str] or Iterable[str].
    raise_if_bad_type(stdin, ConnectorArguments.__annotations__["_stdin"], ArgumentTypeError, "_stdin")
    sent = io.BytesIO()
    sent.close = lambda: None  # keep it readable after write_stdin closes it
    write_stdin(stdin, sent)
    pads = sent.getvalue().decode()
    assert "\\set onesift_kipad" in pads and "\\set onesift_kopad" in pads
    # pyinfra logs get_fact's keyword arguments, _stdin included ("Loaded fact ... (...)").
    printed = get_kwargs_str({"port": 5432, "_stdin": stdin}) + repr(stdin) + str(stdin)
    for line in pads.splitlines():
        assert line.split()[-1] not in printed
    # The same object every time, so read_fact can reuse the read.
    assert repr(pg.fingerprint_stdin(pg.fingerprint_key())) == repr(stdin)


def test_fact_command_reads_the_key_from_stdin_not_argv():
    cmd = PgRoleAttributes().command()
    assert cmd.startswith("{ cat; cat <<'ONESIFT_SQL'") and KEY.hex() not in cmd
    # Statement logging off first: the pads are in the query text the server sees.
    assert cmd.index("log_statement = 'none'") < cmd.index("pg_authid")

"""
Operations for the parts of PostgreSQL that pyinfra's own ``postgres``
module leaves out or gets wrong here: role attributes of existing roles,
extensions, and SQL scripts applied once (migrations) or on change
(repeatable scripts), each recorded in ``system.deploy_state``.

SQL travels as an uploaded file into a root-only directory and is fed to
``psql`` on stdin with ``ON_ERROR_STOP`` in one transaction: it never shows up
in argv, and a failing statement rolls the whole script back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, StringCommand, operation

from deploy.facts.postgres import (
    PgCluster,
    PgDatabaseOwners,
    PgDeployState,
    PgExtensions,
    PgLeakproof,
    PgParameterSetters,
    PgRoleAttributes,
)
from onesift.render import checksum, quote_ident, quote_literal
from onesift.shell import WORK_DIR, feed_file, psql

# Fact reads reused within a run: {host: (generation, {fact key: value})}.
_read: dict = {}


def changes_so_far(host) -> int | None:
    """Operations on ``host`` that have run commands so far this run (None where pyinfra keeps no record)."""
    ops = getattr(host.state, "ops", None)
    if not isinstance(ops, dict) or host not in ops:
        return None
    return sum(1 for d in ops[host].values() if d.operation_meta.executed)


def read_fact(cls, **kwargs):
    """
    ``host.get_fact(cls, **kwargs)``, read once and reused until an operation
    on this host runs a command or the run moves to its next stage. A
    no-change deploy would otherwise read the same roles or deploy state once
    per operation, each a round trip (pyinfra 3 does not cache facts).
    """
    changes = changes_so_far(host)
    if changes is None:
        return host.get_fact(cls, **kwargs)
    generation = (id(host.state), host.state.current_stage, changes)
    if _read.get(host, (None,))[0] != generation:
        _read[host] = (generation, {})
    values = _read[host][1]
    key = (cls, repr(sorted(kwargs.items())))
    if key not in values:
        values[key] = host.get_fact(cls, **kwargs)
    return values[key]


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier (what ``rolpassword`` stores)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# The key of PgRoleAttributes' verifier HMACs: random per run, sent only on the
# fact's stdin, never printed, so the printed HMACs cannot test password guesses.
_FINGERPRINT_KEY = secrets.token_bytes(32)


def fingerprint_key() -> bytes:
    return _FINGERPRINT_KEY


def new_salt() -> bytes:
    """A fresh salt for a new verifier (one place, so tests can fix it)."""
    return secrets.token_bytes(16)


def verifier_hmac(verifier: str, key: bytes) -> str:
    """HMAC-SHA256 of a stored verifier, hex: what PgRoleAttributes computes on the host."""
    return hmac.new(key, verifier.encode(), "sha256").hexdigest()


class HiddenStdin:
    """
    Lines for a command's stdin that pyinfra must not print. pyinfra logs
    ``get_fact``'s keyword arguments, ``_stdin`` included ("Loaded fact X
    (...)", -vv and --debug); it sends an iterable's ``readlines()``.
    """

    def __init__(self, lines: list[str]):
        self._lines = lines

    def readlines(self) -> list[str]:
        return list(self._lines)

    def __iter__(self):
        # pyinfra type-checks ``_stdin`` as str, list[str] or Iterable[str].
        return iter(self._lines)

    def __repr__(self) -> str:
        return "<hidden stdin>"

    __str__ = __repr__


def fingerprint_stdin(key: bytes) -> HiddenStdin:
    """
    psql lines that give PgRoleAttributes the HMAC key as its two pads:
    HMAC(k, m) = sha256(opad || sha256(ipad || m)), with the key zero-padded to
    SHA-256's 64-byte block, so the host needs only ``sha256()`` (no pgcrypto).
    """
    block = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block)
    opad = bytes(b ^ 0x5C for b in block)
    return HiddenStdin([f"\\set onesift_kipad {ipad.hex()}\n", f"\\set onesift_kopad {opad.hex()}\n"])


def password_matches(password: str, scram: dict | None, key: bytes) -> bool:
    """Does ``password``, with the stored salt and iterations, give the verifier PgRoleAttributes fingerprinted with ``key``?"""
    if not scram or not scram.get("verifier_hmac"):
        return False
    verifier = scram_verifier(password, base64.b64decode(scram["salt"]), scram["iterations"])
    return hmac.compare_digest(verifier_hmac(verifier, key), scram["verifier_hmac"])


def run_sql_file(name: str, sql: str, database: str, port: int):
    """Yield the commands that upload ``sql`` and run it in one transaction."""
    path = f"{WORK_DIR}/{name}.sql"
    yield StringCommand(f"install -d -m 0700 {WORK_DIR}")
    yield FileUploadCommand(StringIO(sql), path)
    run = psql(database, port, "--single-transaction", "-f", "-")
    yield StringCommand(feed_file(path, run))


@operation()
def role(
    role: str,
    password: str | None = None,
    login: bool = True,
    superuser: bool = False,
    bypassrls: bool = False,
    createdb: bool = False,
    createrole: bool = False,
    inherit: bool = True,
    connection_limit: int = -1,
    port: int = 5432,
):
    """
    Create a PostgreSQL role, or alter an existing one, so its attributes and
    password are as given.

    + role: name of the role
    + password: the password; compared with the stored SCRAM verifier through
      a keyed HMAC (see PgRoleAttributes), and sent only as a new verifier,
      never in clear
    + login/superuser/bypassrls/createdb/createrole/inherit: role attributes
    + connection_limit: -1 for no limit
    + port: the cluster's port

    **Example:**

    .. code:: python

        pg.role(
            name="App runtime role",
            role="onesift_app",
            password=host.data.db_passwords["app"],
            bypassrls=False,
        )
    """
    want = {
        "login": login, "superuser": superuser, "bypassrls": bypassrls,
        "createdb": createdb, "createrole": createrole, "inherit": inherit,
        "connection_limit": connection_limit,
    }
    key = fingerprint_key()
    have = read_fact(PgRoleAttributes, port=port, _stdin=fingerprint_stdin(key)).get(role)
    attrs_ok = have is not None and all(have[k] == v for k, v in want.items())
    password_ok = password is None or (have is not None and password_matches(password, have["scram"], key))
    if attrs_ok and password_ok:
        host.noop(f"postgres role {role} is as wanted")
        return

    words = [
        ("LOGIN" if login else "NOLOGIN"),
        ("SUPERUSER" if superuser else "NOSUPERUSER"),
        ("BYPASSRLS" if bypassrls else "NOBYPASSRLS"),
        ("CREATEDB" if createdb else "NOCREATEDB"),
        ("CREATEROLE" if createrole else "NOCREATEROLE"),
        ("INHERIT" if inherit else "NOINHERIT"),
        f"CONNECTION LIMIT {int(connection_limit)}",
    ]
    if password is not None and not password_ok:
        words.append("PASSWORD " + quote_literal(scram_verifier(password, new_salt())))
    name = quote_ident(role)
    # Statement logging off for this transaction: the verifier stays out of the server log
    # (log_min_duration_statement too: prod logs statements slower than 500 ms, with their text).
    sql = (
        "SET LOCAL log_statement = 'none';\n"
        "SET LOCAL log_min_duration_statement = -1;\n"
        "SET LOCAL log_min_error_statement = 'panic';\n"
        f"SELECT 'CREATE ROLE {name}' WHERE NOT EXISTS "
        f"(SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(role)}) \\gexec\n"
        f"ALTER ROLE {name} WITH {' '.join(words)};\n"
    )
    yield from run_sql_file(f"role-{role}", sql, "postgres", port)


@operation()
def database(database: str, owner: str, port: int = 5432):
    """
    Create a database owned by ``owner``, or hand an existing one to ``owner``.

    **Example:**

    .. code:: python

        pg.database(name="OneSift database", database="onesift", owner="onesift_owner")
    """
    name = database
    current = read_fact(PgDatabaseOwners, port=port).get(name)
    if current == owner:
        host.noop(f"postgres database {name} exists, owned by {owner}")
        return
    if current is None:
        sql = f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)} TEMPLATE template0 ENCODING 'UTF8'"
    else:
        sql = f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(owner)}"
    # CREATE DATABASE cannot run inside a transaction block, so no file/-1 here.
    yield StringCommand(psql("postgres", port, "-c", quote_literal_shell(sql)))


def quote_literal_shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@operation()
def extension(extension: str, database: str, schema: str = "public", port: int = 5432):
    """
    Install an extension into a database.

    **Example:**

    .. code:: python

        pg.extension(name="UUIDs", extension="uuid-ossp", database="onesift")
    """
    name = extension
    if name in read_fact(PgExtensions, database=database, port=port):
        host.noop(f"extension {name} is installed in {database}")
        return
    sql = f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} WITH SCHEMA {quote_ident(schema)};\n"
    yield from run_sql_file(f"extension-{name}", sql, database, port)


@operation()
def parameter_setter(parameter: str, role: str, port: int = 5432):
    """
    Let ``role`` set ``parameter`` (``GRANT SET ON PARAMETER``; PostgreSQL 15+,
    cluster-wide, superuser only). For a parameter a module defines as
    superuser-only, the grantee is then the one role besides superusers that
    may set it.

    **Example:**

    .. code:: python

        pg.parameter_setter(parameter="onesift.tenant", role="onesift_owner")
    """
    if role in read_fact(PgParameterSetters, port=port).get(parameter, []):
        host.noop(f"{role} may set {parameter}")
        return
    name = ".".join(quote_ident(part) for part in parameter.split("."))
    yield from run_sql_file("parameter-setter", f"GRANT SET ON PARAMETER {name} TO {quote_ident(role)};\n",
                            "postgres", port)


@operation()
def leakproof(functions: list[str], database: str, port: int = 5432):
    """
    Mark functions LEAKPROOF (superuser only; per database). Read back on
    every run, so an attribute lost in an upgrade is set again.

    **Example:**

    .. code:: python

        pg.leakproof(functions=["pg_catalog.enum_eq(anyenum, anyenum)"], database="onesift")
    """
    have = read_fact(PgLeakproof, functions=functions, database=database, port=port)
    missing = [f for f in functions if not have.get(f)]
    if not missing:
        host.noop(f"{len(functions)} functions are LEAKPROOF")
        return
    sql = "".join(f"ALTER FUNCTION {f} LEAKPROOF;\n" for f in missing)
    yield from run_sql_file("leakproof", sql, database, port)


@operation()
def script(
    step: str,
    sql: str,
    database: str,
    repeatable: bool = False,
    run_as: str | None = None,
    port: int = 5432,
):
    """
    Apply an SQL script once (a migration) or whenever its text changes (a
    repeatable script), recording its checksum in ``system.deploy_state`` in
    the same transaction.

    + step: unique name, e.g. ``migration:0001_system`` or ``repeatable:functions``
    + sql: the rendered SQL
    + repeatable: re-apply when the checksum changes; a migration whose text
      changed after it was applied is an error instead
    + run_as: ``SET ROLE`` to this role first, so objects get the right owner

    **Example:**

    .. code:: python

        pg.script(
            name="System functions",
            step="repeatable:functions",
            sql=render_sql("repeatable/functions.sql.j2", **context),
            database="onesift",
            repeatable=True,
            run_as="onesift_owner",
        )
    """
    digest = checksum(sql)
    applied = read_fact(PgDeployState, database=database, port=port).get(step)
    if applied == digest:
        host.noop(f"{step} is applied")
        return
    if applied is not None and not repeatable:
        raise OperationError(
            f"{step} was applied with checksum {applied} but its text is now {digest}: "
            "write a new migration instead of editing an applied one"
        )
    prefix = f"SET LOCAL ROLE {quote_ident(run_as)};\n" if run_as else ""
    record = (
        "\nINSERT INTO system.deploy_state (step, checksum) "
        f"VALUES ({quote_literal(step)}, {quote_literal(digest)}) "
        "ON CONFLICT (step) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now();\n"
    )
    yield from run_sql_file(step.replace(":", "-"), prefix + sql + record, database, port)


@operation()
def cluster(version: int, cluster: str = "main", restart_for: list[str] | None = None,
            reload_for: list[str] | None = None):
    """
    Keep a Debian PostgreSQL cluster running on its current configuration,
    with the least disruption: start it when down; restart it only when a
    changed setting needs one (``restart_for``, or ``pending_restart`` in
    ``pg_settings``); else reload it when a setting or file changed that a
    reload applies (``reload_for``, or a file in its config directory newer
    than the server's last configuration load: ``pg_hba.conf``, a
    certificate). A reload keeps every connection; a restart drops them all.
    The server's state is read again at execution time, so a file written
    earlier in the same deploy counts. ``pg_ctlcluster`` hands over to
    systemd where it runs, and runs the server itself in containers.

    + version: the cluster's PostgreSQL major version
    + cluster: the cluster's name
    + restart_for: what changed that needs a restart (names, for the log)
    + reload_for: what changed that a reload applies

    **Example:**

    .. code:: python

        files.template(src="templates/config/postgresql.conf.j2", dest=...)
        pg.cluster(version=15, reload_for=["work_mem", "pg_hba.conf"])
    """
    state = host.get_fact(PgCluster, version=version, cluster=cluster)
    command = f"pg_ctlcluster {int(version)} {cluster}"
    if not state or not state["online"]:
        # Not installed yet (first --dry run): the install op before us creates it.
        yield f"{command} start"
    elif restart_for or state["pending_restart"]:
        yield f"{command} restart"
    elif reload_for or state["config_newer_than_load"]:
        yield f"{command} reload"
    else:
        host.noop(f"postgres cluster {version}/{cluster} is running its current config")

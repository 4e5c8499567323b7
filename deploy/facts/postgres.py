"""
Facts about a PostgreSQL cluster and the OneSift database in it.

They run ``psql`` as the ``postgres`` OS user (``runuser``, so the deploy
user must be root or use ``_sudo``). A server that is down, a database or a
table that does not exist yet all read as "nothing there": on a first deploy
the facts are gathered before PostgreSQL is even installed.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from onesift.render import quote_literal
from onesift.shell import PG_OS_USER, psql



def guarded_query(
    query: str, database: str, port: int | str, needs_table: str | None = None, stdin_first: bool = False,
    first: str | None = None,
) -> str:
    """
    Shell that runs ``query`` only if the server is up and ``database`` (and
    ``needs_table``) exist, in one psql process: the checks are psql ``\\if``
    blocks, not processes of their own (Debian's psql is a Perl wrapper, ~25 ms
    a start). A server that does not answer reads as no output; any other
    failure is an error. With ``stdin_first`` psql reads the command's stdin
    (psql lines the caller sends with ``_stdin``) before the script. ``first``
    runs before the checks, in the ``postgres`` database (server-wide settings).
    """
    script = [query + ";"]
    if needs_table:
        script = [f"SELECT to_regclass({quote_literal(needs_table)}) IS NOT NULL AS onesift_ok \\gset",
                  "\\if :onesift_ok", *script, "\\endif"]
    if database != "postgres":
        script = [f"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = {quote_literal(database)}) AS onesift_ok \\gset",
                  "\\if :onesift_ok", f"\\connect {quote_literal(database)}", *script, "\\endif"]
    if first:
        script = [first + ";", *script]
    run = psql("postgres", port, "-At", "-F", "'|'", "-f", "-")
    body = "\n".join(script)
    feed = f"{run} <<'ONESIFT_SQL'\n{body}\nONESIFT_SQL\n"
    if stdin_first:
        feed = f"{{ cat; cat <<'ONESIFT_SQL'\n{body}\nONESIFT_SQL\n}} | {run}\n"
    return f"{feed}rc=$?; [ $rc -eq 0 ] || pg_isready -q -p {int(port)} || exit 0; exit $rc"


def split_rows(output) -> list[list[str]]:
    return [line.split("|") for line in output if line.strip()]


class PgFact(FactBase):
    abstract = True
    default = dict
    query = ""
    needs_table: str | None = None
    stdin_first = False

    def requires_command(self, *args, **kwargs) -> str:
        return "psql"

    def command(self, database: str = "postgres", port: int = 5432) -> str:
        return guarded_query(self.query, database, port, self.needs_table, self.stdin_first)


class PgRoleAttributes(PgFact):
    """
    Roles with their attributes and, for a SCRAM password, its iteration
    count, salt and an HMAC-SHA256 of the whole stored verifier under a key
    the caller sends on stdin (``deploy.operations.pg.fingerprint_stdin``);
    without that key the HMAC is None.

    Fact commands and output are printed with -vv/-vvv/--debug. Iterations
    and salt are no secret (PostgreSQL sends both to any client that starts a
    SCRAM login as the role), but any unkeyed digest of the verifier would let
    a reader of that output test password guesses offline, one PBKDF2 each.
    The key is random per run and never printed, so the HMAC is useless
    without it; the deploy, which holds the key and the wanted password, can
    still tell whether the password must change.

    .. code:: python

        {"onesift_app": {"login": True, "superuser": False, "bypassrls": False,
                         "createdb": False, "createrole": False, "inherit": True,
                         "connection_limit": -1,
                         "scram": {"iterations": 4096, "salt": "...", "verifier_hmac": "..."}}}
    """

    stdin_first = True
    # The HMAC pads reach the server inside this query's text: keep the session's statements
    # out of the server log (log_statement, slow-statement and error logging all print it).
    # Without pads on stdin they default to '' and the HMAC column is NULL.
    query = (
        "SET log_statement = 'none';\n"
        "SET log_min_duration_statement = -1;\n"
        "SET log_min_error_statement = 'panic';\n"
        "\\if :{?onesift_kipad}\n\\else\n\\set onesift_kipad ''\n\\set onesift_kopad ''\n\\endif\n"
        "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, "
        "rolinherit, rolconnlimit, "
        "CASE WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN split_part(rolpassword, '$', 2) END, "
        "CASE WHEN rolpassword LIKE 'SCRAM-SHA-256$%' AND :'onesift_kipad' <> '' THEN encode(sha256("
        "decode(:'onesift_kopad', 'hex') || sha256(decode(:'onesift_kipad', 'hex') || convert_to(rolpassword, 'UTF8'))"
        "), 'hex') END "
        "FROM pg_authid WHERE rolname !~ '^pg_' ORDER BY 1"
    )

    def process(self, output):
        roles = {}
        for name, login, sup, bypass, cdb, crole, inherit, limit, params, mac in split_rows(output):
            scram = None
            if params:
                iterations, salt = params.split(":", 1)
                scram = {"iterations": int(iterations), "salt": salt, "verifier_hmac": mac or None}
            roles[name] = {
                "login": login == "t",
                "superuser": sup == "t",
                "bypassrls": bypass == "t",
                "createdb": cdb == "t",
                "createrole": crole == "t",
                "inherit": inherit == "t",
                "connection_limit": int(limit),
                "scram": scram,
            }
        return roles


class PgDatabaseOwners(PgFact):
    """
    Databases and their owners.

    .. code:: python

        {"onesift": "onesift_owner", "postgres": "postgres"}
    """

    query = (
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
        "WHERE NOT datistemplate ORDER BY 1"
    )

    def process(self, output):
        return {name: owner for name, owner in split_rows(output)}


class PgExtensions(PgFact):
    """
    Extensions installed in a database, with their versions.

    .. code:: python

        {"pgcrypto": "1.3", "uuid-ossp": "1.1", "plpgsql": "1.0"}
    """

    query = "SELECT extname, extversion FROM pg_extension ORDER BY 1"

    def process(self, output):
        return {name: version for name, version in split_rows(output)}


class PgDeployState(PgFact):
    """
    What the deploy has applied to a database: step name to checksum.

    .. code:: python

        {"migration:0001_system": "3f2a...", "repeatable:functions": "9c1d..."}
    """

    query = "SELECT step, checksum FROM system.deploy_state ORDER BY 1"
    needs_table = "system.deploy_state"

    def process(self, output):
        return {step: checksum for step, checksum in split_rows(output)}


class PgLeakproof(PgFact):
    """
    Whether each function (by signature) is marked LEAKPROOF.

    .. code:: python

        {"pg_catalog.enum_eq(anyenum, anyenum)": True}
    """

    def command(self, functions: list[str], database: str = "postgres", port: int = 5432) -> str:
        names = ", ".join(f"'{f}'::regprocedure" for f in functions)
        query = (
            "SELECT pronamespace::regnamespace || '.' || proname || '(' || oidvectortypes(proargtypes) || ')', "
            f"proleakproof FROM pg_proc WHERE oid IN ({names}) ORDER BY 1"
        )
        return guarded_query(query, database, port)

    def process(self, output):
        return {name: flag == "t" for name, flag in split_rows(output)}


class PgParameterSetters(PgFact):
    """
    Roles granted SET on a parameter (``GRANT SET ON PARAMETER``, PostgreSQL 15+), by parameter.

    .. code:: python

        {"onesift.tenant": ["onesift_owner"]}
    """

    query = (
        "SELECT p.parname, a.grantee::regrole FROM pg_parameter_acl p, aclexplode(p.paracl) a "
        "WHERE a.privilege_type = 'SET' AND a.grantee <> 0 ORDER BY 1, 2"
    )

    def process(self, output):
        setters: dict[str, list[str]] = {}
        for name, role in split_rows(output):
            setters.setdefault(name, []).append(role)
        return setters


class PgLockTable(PgFact):
    """
    The server's lock table, and what one whole-database ``pg_dump`` of
    ``database`` takes from it: the tenants, and the relations it locks
    (every table, view, sequence, materialized view and foreign table outside
    the catalogs). ``configured_max_locks`` is what ``config_file`` says, so
    a server that is down keeps its size; the rest needs a running server,
    and the counts the database with ``system.customers``.

    .. code:: python

        {"configured_max_locks": 256, "max_connections": 100, "max_locks_per_transaction": 256,
         "tenants": 1002, "relations": 8028}
    """

    first = (
        "SELECT name, setting FROM pg_settings "
        "WHERE name IN ('max_locks_per_transaction', 'max_connections') ORDER BY 1"
    )
    query = (
        "SELECT 'tenants', count(*) FROM system.customers UNION ALL "
        "SELECT 'relations', count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
        "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
    )
    needs_table = "system.customers"

    def command(self, config_file: str, database: str = "postgres", port: int = 5432) -> str:
        configured = (
            "sed -n 's/^max_locks_per_transaction = \\([0-9]*\\).*/configured_max_locks|\\1/p' "
            f"{shlex.quote(config_file)} 2>/dev/null\n"
        )
        return configured + guarded_query(self.query, database, port, self.needs_table, first=self.first)

    def process(self, output):
        return {name: int(value) for name, value in split_rows(output)}


class PgCluster(FactBase):
    """
    A Debian PostgreSQL cluster's state: whether a file in its config
    directory is newer than the server's last configuration load (so a
    reload at least is due), and how many settings wait for a restart
    (``pending_restart`` in ``pg_settings``).

    .. code:: python

        {"online": True, "port": 5432, "config_newer_than_load": False, "pending_restart": 0}
    """

    default = dict

    def requires_command(self, version, cluster="main") -> str:
        return "pg_lsclusters"

    def command(self, version, cluster="main") -> str:
        v, c = int(version), shlex.quote(cluster)
        state = ("SELECT extract(epoch FROM pg_conf_load_time()) || ' ' || "
                 "(SELECT count(*) FROM pg_settings WHERE pending_restart)")
        return (
            f"line=$(pg_lsclusters --no-header {v} {c} 2>/dev/null); "
            '[ -n "$line" ] || exit 0; set -- $line; '
            'if [ "$4" = online ]; then '
            f"state=$(runuser -u {PG_OS_USER} -- psql -X -At -p $3 -c \"{state}\"); "
            f"newest=$(find /etc/postgresql/{v}/{c} -type f -printf '%T@\\n' | sort -n | tail -n 1); "
            'echo "online $3 $state $newest"; '
            'else echo "down $3"; fi'
        )

    def process(self, output):
        bits = output[0].split()
        info = {"online": bits[0] == "online", "port": int(bits[1])}
        if info["online"]:
            info["config_newer_than_load"] = float(bits[4]) > float(bits[2])
            info["pending_restart"] = int(bits[3])
        return info


class PgSettingContexts(PgFact):
    """
    Each server parameter's context in ``pg_settings``: a change to a
    ``postmaster`` one needs a restart, any other a reload at most. Empty
    while the server is down.

    .. code:: python

        {"shared_buffers": "postmaster", "work_mem": "user", "log_min_duration_statement": "superuser"}
    """

    query = "SELECT name, context FROM pg_settings"

    def process(self, output):
        return {name: context for name, context in split_rows(output)}


class PgConfigFiles(FactBase):
    """
    The cluster's ``postgresql.conf`` and ``pg_hba.conf`` as they are on the
    host, a list of lines each (None when missing), read in one command: the
    deploy compares them with what it renders to choose reload or restart.

    .. code:: python

        {"postgresql.conf": ["port = 5432", ...], "pg_hba.conf": None}
    """

    default = dict
    FILES = ("postgresql.conf", "pg_hba.conf")

    def command(self, directory: str) -> str:
        return "; ".join(
            f"echo '@@ {name}'; cat {shlex.quote(directory + '/' + name)} 2>/dev/null || echo '@@ missing'"
            for name in self.FILES
        )

    def process(self, output):
        files: dict = {}
        current = None
        for line in output:
            if line.startswith("@@ "):
                name = line[3:]
                if name == "missing":
                    files[current] = None
                else:
                    current, files[name] = name, []
            elif current is not None and files[current] is not None:
                files[current].append(line)
        return files


class PgClusters(FactBase):
    """
    Every PostgreSQL cluster on the host (``pg_lsclusters``), of any version.

    .. code:: python

        [{"version": 15, "cluster": "main", "port": 5432, "status": "online"}]
    """

    default = list

    def requires_command(self) -> str:
        return "pg_lsclusters"

    def command(self) -> str:
        return "pg_lsclusters --no-header 2>/dev/null || true"

    def process(self, output):
        clusters = []
        for line in output:
            bits = line.split()
            if len(bits) >= 4 and bits[0].isdigit():
                clusters.append({"version": int(bits[0]), "cluster": bits[1], "port": int(bits[2]), "status": bits[3]})
        return clusters

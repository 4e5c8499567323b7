"""The shell commands that run psql on a database host, as the ``postgres`` OS user: shared by
the deploy's facts and operations and by the host session, so both run SQL the same way."""

from __future__ import annotations

import shlex

PG_OS_USER = "postgres"
# Where uploaded SQL waits for psql: root-only, each file removed once read.
WORK_DIR = "/var/lib/onesift/deploy"


def psql(database: str, port: int | str, *options: str) -> str:
    """The psql command line (no ~/.psqlrc, stop on error)."""
    bits = [
        "runuser", "-u", PG_OS_USER, "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-p", str(int(port)), "-d", shlex.quote(database), *options,
    ]
    return " ".join(bits)


def feed_file(path: str, run: str) -> str:
    """Shell that feeds an uploaded SQL file to ``run`` (a psql command) on stdin, removes it, keeps psql's exit code."""
    return f"chmod 0600 {path}; {run} < {path}; rc=$?; rm -f {path}; exit $rc"

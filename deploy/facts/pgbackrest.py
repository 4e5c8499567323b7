"""Facts about the host's pgBackRest stanza (``pgbackrest info --output=json``)."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase

from onesift.shell import PG_OS_USER


def pgbackrest(stanza: str, *args: str) -> str:
    """A pgbackrest command line as the postgres OS user, for ``stanza``."""
    return " ".join(["runuser", "-u", PG_OS_USER, "--", "pgbackrest", f"--stanza={shlex.quote(stanza)}", *args])


class PgBackRestInfo(FactBase):
    """
    The stanza as ``pgbackrest info`` sees it through the host's
    configuration: its status (pgBackRest's codes: 0 ok, 1 missing stanza
    path, 2 no valid backups, 3 missing stanza data, ...), its cipher and its
    backups, oldest first. ``error`` instead when info itself fails (a
    passphrase that does not open the repository). A repository passphrase
    to try instead of the configured one comes on stdin (one line, never in
    argv), with ``cipher_type``.

    .. code:: python

        {"status": 0, "message": "ok", "cipher": "none",
         "backups": [{"label": "20261204-024738F", "type": "full", "stop": 1796352462, "error": False}]}
    """

    default = dict

    def requires_command(self, stanza: str, cipher_type: str = "") -> str:
        return "pgbackrest"

    def command(self, stanza: str, cipher_type: str = "") -> str:
        # The candidate passphrase, if any, is read from stdin into the
        # environment pgBackRest reads options from, which beats the config file.
        env = ""
        if cipher_type:
            env = (f"export PGBACKREST_REPO1_CIPHER_TYPE={shlex.quote(cipher_type)}; "
                   "IFS= read -r PGBACKREST_REPO1_CIPHER_PASS && export PGBACKREST_REPO1_CIPHER_PASS; ")
        # Printable text only: a passphrase that does not open the repository
        # makes pgBackRest quote the bytes it could not read, which broke the
        # connector's UTF-8 decoding of the output.
        return f"{env}{pgbackrest(stanza, '--output=json', 'info')} 2>&1 | tr -cd '[:print:]\\n'"

    def process(self, output):
        text = "\n".join(output)
        try:
            stanza = json.loads(text)[0]
        except (ValueError, IndexError, KeyError, TypeError):
            errors = [line for line in output if "ERROR" in line] or output or ["no output"]
            return {"error": errors[0].strip()}
        status = stanza.get("status", {})
        if status.get("code") == 99:  # "other": the repository could not be read (a wrong passphrase, say)
            repos = [r.get("status", {}).get("message", "") for r in stanza.get("repo", [])]
            return {"error": ([m for m in repos if m] or [status.get("message") or "unreadable"])[0].splitlines()[0]}
        return {
            "status": status.get("code"),
            "message": status.get("message"),
            "cipher": stanza.get("cipher"),
            "backups": [
                {"label": b["label"], "type": b["type"], "stop": b["timestamp"]["stop"], "error": bool(b.get("error"))}
                for b in stanza.get("backup", [])
            ],
        }

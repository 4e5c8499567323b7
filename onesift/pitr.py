"""
Physical backups and point-in-time recovery, through pgBackRest and the
host's job (templates/jobs/onesift-pitr.sh.j2): status for monitoring, a
restore into the scratch instance (or in place), one tenant back to a
moment, and the restore drill.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from onesift.errors import BadInput, OpsError
from onesift.settings import validate_slug

if TYPE_CHECKING:
    from onesift.session import HostSession

SCRIPT = "/usr/local/sbin/onesift-pitr"
JOB_LOG = "/var/log/onesift/pgbackrest.log"  # the backup and verify jobs' (templates/jobs/onesift.cron.j2)
DRILL_LOG = "/var/log/onesift/pitr.log"
LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
TARGET_HELP = ("a time with its zone (2026-12-04T03:10:00Z, '2026-12-04 04:10:00+01:00'), "
               "an LSN (0/3000060) or latest")


@dataclass(frozen=True)
class Target:
    """A recovery target as pgBackRest takes it: --type time|lsn, or latest (--type=default: the end of the WAL)."""
    type: str
    value: str = ""

    def args(self) -> str:
        return " ".join(shlex.quote(x) for x in (self.type, self.value) if x)

    def __str__(self) -> str:
        return self.value or self.type


def parse_target(text: str, now: datetime | None = None) -> Target:
    """``text`` as a recovery target; BadInput (before anything is touched) when it is none.
    A time needs its zone: a restore to the wrong hour is worse than a refusal."""
    given = (text or "").strip()
    if given.lower() == "latest":
        return Target("latest")
    if LSN_RE.fullmatch(given):
        return Target("lsn", given.upper())
    try:
        moment = datetime.fromisoformat(given)
    except ValueError:
        raise BadInput(f"not a recovery target: {text!r}; give {TARGET_HELP}") from None
    if moment.tzinfo is None:
        raise BadInput(f"recovery target {text!r} has no time zone: add one (Z for UTC, or +01:00)")
    utc = moment.astimezone(timezone.utc)
    if utc > (now or datetime.now(timezone.utc)):
        raise BadInput(f"recovery target {text!r} is in the future")
    return Target("time", utc.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00")


def key_values(lines: list[str]) -> dict[str, str]:
    """The job's ``key=value`` lines."""
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith(" "))


@dataclass
class Restored:
    """What a point-in-time restore reached: the last transaction replayed, the newest canary, and how long it took."""
    target: str
    reached: str
    marker: str
    seconds: float
    kept: bool = False
    port: int | None = None
    socket: str | None = None
    replaced: float | None = None  # a tenant restore: seconds to dump the schema from scratch and replace it live


def restore(s: HostSession, target: Target, keep: bool = False) -> Restored:
    """Restore the repository into the scratch instance at ``target``; drop it again unless ``keep``."""
    c = s.settings.pgbackrest
    found = key_values(s.shell(f"{SCRIPT} restore {target.args()}"))
    if not keep:
        s.shell(f"{SCRIPT} stop")
    return Restored(str(target), found.get("reached", ""), found.get("marker", ""), float(found.get("seconds", 0)),
                    keep, c.scratch_port if keep else None, c.scratch_path if keep else None)


def restore_in_place(s: HostSession, target: Target) -> Restored:
    """Stop the live cluster, restore it (--delta) to ``target`` and start it. Not on a Patroni
    cluster: Patroni would start the members on the old timeline again (README, Cluster)."""
    from onesift import cluster

    if cluster.is_cluster(s.data):
        raise BadInput("--in-place restores a single host; a Patroni cluster is restored as a new cluster "
                       "from the repository (README, Cluster: a point-in-time restore of the whole cluster)")
    found = key_values(s.shell(f"{SCRIPT} in-place {target.args()}"))
    return Restored(str(target), found.get("reached", ""), "", float(found.get("seconds", 0)))


def restore_tenant(s: HostSession, slug: str, target: Target, keep: bool = False) -> Restored:
    """Tenant ``slug``'s schema as it was at ``target``: the scratch instance restored there,
    ``pg_dump -n`` of it, and the live schema replaced in one transaction; other tenants untouched."""
    from onesift import tenants

    tenants.customer(s, validate_slug(slug))
    if target.type == "latest":
        raise BadInput("a tenant restore needs a moment: --to TIME or LSN, not latest")
    found = key_values(s.shell(f"{SCRIPT} tenant {shlex.quote(slug)} {target.args()}"))
    if not keep:
        s.shell(f"{SCRIPT} stop")
    return Restored(str(target), found.get("reached", ""), found.get("marker", ""), float(found.get("seconds", 0)), keep,
                    replaced=float(found.get("replaced", 0)))


def drill(s: HostSession) -> str:
    """The restore drill now (what the weekly job does): its log line; OpsError with it when it failed."""
    log = shlex.quote(DRILL_LOG)
    lines = s.shell(f'out=$({SCRIPT} drill 2>&1); rc=$?; printf "%s\\n" "$out" >> {log}; '
                    f'if [ $rc -ne 0 ]; then printf "%s\\n" "$out" | tail -n 1 >&2; exit $rc; fi; '
                    f'printf "%s\\n" "$out" | tail -n 1')
    return lines[-1] if lines else ""


@dataclass
class Status:
    """The physical backups' health, for `ops backup status` and its --json."""
    stanza: str
    backups: list[dict] = field(default_factory=list)
    last_full: dict | None = None
    last_diff: dict | None = None
    archiver: dict = field(default_factory=dict)
    check: str = "not run"
    job_failure: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def newest(backups: list[dict], kind: str | None = None) -> dict | None:
    good = [b for b in backups if not b.get("error") and (kind is None or b["type"] == kind)]
    return max(good, key=lambda b: b["stop"]) if good else None


def pgbackrest(s: HostSession, *args: str) -> str:
    return " ".join(["runuser", "-u", "postgres", "--", "pgbackrest",
                     f"--stanza={shlex.quote(s.settings.pgbackrest.stanza)}", *args])


def info(s: HostSession) -> dict:
    """``pgbackrest info`` of the stanza; OpsError with pgBackRest's error line when it fails."""
    lines = s.shell(f"cd / && {pgbackrest(s, '--output=json', 'info')} 2>&1 | tr -cd '[:print:]\\n'")  # see PgBackRestInfo
    try:
        return json.loads("\n".join(lines))[0]
    except (ValueError, IndexError):
        errors = [x for x in lines if "ERROR" in x] or lines or ["no output"]
        raise OpsError(f"pgbackrest info: {errors[0].strip()[:300]}") from None


def status(s: HostSession) -> Status:
    """Backups, archiving, check and the last job; ``problems`` says what is wrong (empty: healthy)."""
    from onesift.queries import query  # jinja2: not for `ops --help`

    c = s.settings.pgbackrest
    st = Status(c.stanza)
    st.archiver = s.query_json(query("pitr_archiver", s.settings)) or {}
    now = float(st.archiver.get("now") or 0)
    try:
        stanza = info(s)
    except OpsError as e:
        st.problems.append(str(e))
        stanza = {}
    code = (stanza.get("status") or {}).get("code")
    if stanza and code not in (0, 2):
        repos = [r.get("status", {}).get("message", "") for r in stanza.get("repo", []) if r.get("status", {}).get("code")]
        why = (repos or [(stanza.get("status") or {}).get("message") or ""])[0].splitlines()[0][:300]
        st.problems.append(f"pgbackrest info: stanza {c.stanza}: {why}")
    for b in stanza.get("backup", []):
        st.backups.append({"label": b["label"], "type": b["type"], "stop": b["timestamp"]["stop"],
                           "age_hours": round((now - b["timestamp"]["stop"]) / 3600, 2), "error": bool(b.get("error"))})
    st.last_full, st.last_diff = newest(st.backups, "full"), newest(st.backups, "diff")
    last = newest(st.backups)
    if stanza and st.last_full is None:
        st.problems.append(f"no good full backup in stanza {c.stanza}: run onesift-pitr backup full on the host")
    elif last and last["age_hours"] > c.max_age_hours:
        st.problems.append(f"last good backup {last['label']} is {last['age_hours']:.1f} h old, "
                           f"past pgbackrest_max_age_hours ({c.max_age_hours})")
    if st.last_full and st.last_full["age_hours"] > c.full_max_age_hours:
        st.problems.append(f"last full backup {st.last_full['label']} is {st.last_full['age_hours']:.1f} h old, "
                           f"past pgbackrest_full_max_age_hours ({c.full_max_age_hours})")
    a = st.archiver
    if a.get("failing"):
        st.problems.append(f"WAL archiving fails: {a['failed_count']} failed, the last {a['last_failed_wal']} at "
                           f"{a['last_failed_time']}; last archived {a.get('last_archived_wal') or 'none'} "
                           f"at {a.get('last_archived_time') or 'never'}")
        st.check = "skipped: archiving fails"  # it would wait archive-timeout for a segment that cannot arrive
    elif stanza:
        out = s.shell(f"cd / && {pgbackrest(s, 'check')} >/tmp/onesift-check.$$ 2>&1; rc=$?; "
                      "grep -m 1 ERROR /tmp/onesift-check.$$ | tr -cd '[:print:]\\n'; rm -f /tmp/onesift-check.$$; echo rc=$rc")
        ok = out and out[-1] == "rc=0"
        st.check = "ok" if ok else (out[0].strip()[:300] if len(out) > 1 else "failed")
        if not ok:
            st.problems.append(f"pgbackrest check: {st.check}")
    failed = s.shell(f"tail -n 1 {JOB_LOG} 2>/dev/null | grep FAILED || true")
    if failed:
        st.job_failure = failed[-1]
        st.problems.append(f"last backup job failed: {failed[-1]}")
    return st

"""Scheduled jobs: logical and physical backups, the restore drill and its canary, daily cleanup,
run by cron (see templates/jobs/onesift.cron.j2)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploy import pgbackrest, platform
from deploy.operations import cron
from onesift import cluster
from onesift.render import TEMPLATES
from onesift.settings import TENANT_PREFIX, TENANT_VERSION_MARK


@deploy("OneSift scheduled jobs")
def install():
    s = platform.settings()
    common = {"db_name": s.db_name, "port": s.pg_port}
    files.directory(name="Backup directory", path=s.backup_dir, user="postgres", group="postgres", mode="700")
    files.directory(name="Job log directory", path="/var/log/onesift", user="root", group="root", mode="750")
    files.template(
        name="Backup job",
        src=str(TEMPLATES / "jobs/onesift-backup.sh.j2"),
        dest="/usr/local/sbin/onesift-backup",
        mode="750",
        backup_dir=s.backup_dir, keep_days=s.backup_keep_days, tenant_prefix=TENANT_PREFIX,
        tenant_version_mark=TENANT_VERSION_MARK,
        tenant_dumps=s.backup_tenant_dumps, lock_wait_timeout=s.backup_lock_wait_timeout, **common,
    )
    files.template(
        name="Cleanup job",
        src=str(TEMPLATES / "jobs/onesift-cleanup.sh.j2"),
        dest="/usr/local/sbin/onesift-cleanup",
        mode="750",
        retention_days=s.retention_days, **common,
    )
    b = s.pgbackrest
    member = cluster.is_cluster(host.data)
    files.template(
        name="Point-in-time recovery job",
        src=str(TEMPLATES / "jobs/onesift-pitr.sh.j2"),
        dest="/usr/local/sbin/onesift-pitr",
        mode="750",
        stanza=b.stanza, pg_version=s.pg_version, scratch=b.scratch_path, scratch_port=b.scratch_port,
        tenant_prefix=TENANT_PREFIX, patroni=member,
        data_dir=pgbackrest.data_directory(s),
        **common,
    )
    on_primary = ""
    if member:
        # Every member has the jobs; each runs only where the primary is (cleanup writes,
        # pgBackRest backs up the primary, and the nightly dump is taken there, where no
        # recovery conflict cancels it): after a failover they run on the new primary.
        files.template(name="Jobs on the primary only", src=str(TEMPLATES / "jobs/onesift-on-primary.sh.j2"),
                       dest="/usr/local/sbin/onesift-on-primary", mode="755")
        on_primary = "/usr/local/sbin/onesift-on-primary "
    files.template(
        name="Job schedule",
        src=str(TEMPLATES / "jobs/onesift.cron.j2"),
        dest="/etc/cron.d/onesift",
        mode="644",
        backup_schedule=s.backup_schedule,
        cleanup_schedule=s.cleanup_schedule,
        backup_logical=s.backup_logical,
        full_schedule=b.full_schedule, diff_schedule=b.diff_schedule, drill_schedule=b.drill_schedule,
        on_primary=on_primary,
    )
    cron.running(name="cron daemon running")

"""Bulk onboarding and tenant migrations (with a failure, then a resume), on the dev host."""

from onesift.steps import tenant_version


def make_old(dev, slug, drop_column=True):
    """Turn a tenant back into schema version 1, as if created before migration 0002."""
    with dev.connect("owner") as conn:
        if drop_column:
            conn.execute(f'ALTER TABLE "tenant_{slug}".leads DROP COLUMN score')
        conn.execute("UPDATE system.customers SET schema_version = 1 WHERE slug = %s", [slug])
        conn.commit()


def versions(dev, slugs):
    with dev.connect("owner") as conn:
        return dict(conn.execute("SELECT slug, schema_version FROM system.customers WHERE slug = ANY(%s)", [slugs]))


def test_new_tenants_are_born_at_the_current_version(dev, slug):
    assert dev.ops("tenant", "create", slug, "--name", "New", "--mode", "api").returncode == 0
    try:
        assert versions(dev, [slug]) == {slug: tenant_version()}
        with dev.connect("owner") as conn:
            assert conn.execute(f"SELECT to_regclass('\"tenant_{slug}\".leads_score_idx')").fetchone()[0]
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_migrate_resumes_after_a_failure(dev, slug, tmp_path):
    slugs = [f"{slug}{i}" for i in range(3)]
    rows = "".join(f"{s},Bulk {s},api,\n" for s in slugs)
    (tmp_path / "t.csv").write_text("slug,name,mode,handover_email\n" + rows)
    assert dev.ops("tenant", "import", str(tmp_path / "t.csv"), "--batch", "2").returncode == 0
    try:
        make_old(dev, slugs[0])
        make_old(dev, slugs[1], drop_column=False)  # its migration will fail: the column exists
        make_old(dev, slugs[2])
        out = dev.ops("tenant", "migrate", "--parallel", "2")
        assert out.returncode == 1
        assert f"failed {slugs[1]}" in out.stderr and "already exists" in out.stderr
        assert versions(dev, slugs) == {slugs[0]: tenant_version(), slugs[1]: 1, slugs[2]: tenant_version()}
        with dev.connect("owner") as conn:
            log = conn.execute(
                "SELECT c.slug, l.version, l.status FROM system.tenant_migration_log l JOIN system.customers c "
                "ON c.id = l.customer_id WHERE c.slug = ANY(%s) ORDER BY l.id", [slugs]).fetchall()
            steps = range(2, tenant_version() + 1)  # one row per version applied
            assert sorted(log) == sorted([(slugs[0], v, "applied") for v in steps] + [(slugs[2], v, "applied") for v in steps]
                                         + [(slugs[1], tenant_version(), "failed")])
            conn.execute(f'ALTER TABLE "tenant_{slugs[1]}".leads DROP COLUMN score')
            conn.commit()
        out = dev.ops("tenant", "migrate")
        assert out.returncode == 0, out.stderr
        assert "1 of 1 tenants migrated" in out.stdout
        assert set(versions(dev, slugs).values()) == {tenant_version()}
    finally:
        for s in slugs:
            dev.ops("tenant", "drop", s, "--yes")


SCORE = ("SELECT a.attnotnull, a.atthasmissing, pg_get_expr(d.adbin, d.adrelid), "
         "(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid = a.attrelid "
         "AND c.conname = 'leads_score_range') FROM pg_attribute a "
         "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
         "WHERE a.attrelid = %s::regclass AND a.attname = 'score'")
SCORE_COLUMN = (True, "0", "CHECK (((score >= 0) AND (score <= 100)))")


def test_a_new_tenant_gets_the_score_column_without_a_fast_default(dev, slug):
    """Issue 9: on PostgreSQL 17.12 ADD COLUMN ... DEFAULT reads every pg_index row of the
    database, and each new tenant replays migration 0002: on a new tenant's empty table the
    column comes bare, then its default (so no missing value is recorded: atthasmissing)."""
    assert dev.ops("tenant", "create", slug, "--name", "New", "--mode", "api").returncode == 0
    try:
        with dev.connect("owner") as conn:
            notnull, missing, *rest = conn.execute(SCORE, [f'"tenant_{slug}".leads']).fetchone()
        assert (notnull, *rest) == SCORE_COLUMN and missing is False
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_a_v1_tenant_with_leads_migrates_to_the_same_score_column(dev, slug):
    """The other branch of 0002: a table with rows gets the column in one ALTER, its rows filled
    without a rewrite, even though forced RLS hides them from the migration."""
    assert dev.ops("tenant", "create", slug, "--name", "Old", "--mode", "api").returncode == 0
    try:
        with dev.connect("owner") as conn:
            conn.execute("SELECT system.act_as_tenant(%s)", [slug])
            conn.execute(f'INSERT INTO "tenant_{slug}".leads (email) VALUES (%s)', ["a@example.com"])
            conn.commit()
        make_old(dev, slug)
        assert dev.ops("tenant", "migrate").returncode == 0
        with dev.connect("owner") as conn:
            notnull, missing, *rest = conn.execute(SCORE, [f'"tenant_{slug}".leads']).fetchone()
            conn.execute("SELECT system.act_as_tenant(%s)", [slug])
            scores = conn.execute(f'SELECT score FROM "tenant_{slug}".leads').fetchall()
        assert (notnull, *rest) == SCORE_COLUMN and missing is True and scores == [(0,)]
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_import_checks_every_row_first(dev, slug, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"slug,name,mode,handover_email\n{slug},Fine,api,\nNOPE,Bad,api,\n")
    out = dev.ops("tenant", "import", str(bad))
    assert out.returncode == 2 and "bad.csv:3" in out.stderr
    assert versions(dev, [slug]) == {}


def policy_quals(dev, slug):
    with dev.connect("owner") as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT tablename, qual FROM pg_policies WHERE schemaname = %s", [f"tenant_{slug}"])}


def test_migrate_moves_old_policies_to_once_per_statement(dev, slug):
    """A v2 tenant has the per-row policy; migration 0003 gives it the InitPlan one, and the audit is clean again."""
    assert dev.ops("tenant", "create", slug, "--name", "Old", "--mode", "api").returncode == 0
    try:
        old = f"current_setting('onesift.tenant', true) = '{slug}'"
        with dev.connect("owner") as conn:
            for table in policy_quals(dev, slug):
                conn.execute(f'ALTER POLICY tenant_isolation ON "tenant_{slug}".{table} USING ({old}) WITH CHECK ({old})')
            conn.execute("UPDATE system.customers SET schema_version = 2 WHERE slug = %s", [slug])
            conn.commit()
        assert all("SELECT" not in q for q in policy_quals(dev, slug).values())
        assert dev.ops("audit", "check").returncode == 2
        out = dev.ops("tenant", "migrate")
        assert out.returncode == 0, out.stderr
        quals = policy_quals(dev, slug)
        assert len(quals) == 5 and all(q.startswith("( SELECT (current_setting('onesift.tenant'") for q in quals.values()), quals
        assert versions(dev, [slug]) == {slug: tenant_version()}
        assert dev.ops("audit", "check").returncode == 0
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_two_migrate_runs_at_once_both_succeed(dev, slug, tmp_path):
    """Issue 8.12: a second `ops tenant migrate` started during the first waits
    for each tenant it shares and skips what the first applied: no false failures."""
    import subprocess

    from tests.e2e.conftest import OPS, ROOT

    slugs = [f"{slug}{i:02d}" for i in range(16)]
    (tmp_path / "t.csv").write_text("slug,name,mode,handover_email\n" + "".join(f"{s},M {s},api,\n" for s in slugs))
    assert dev.ops("tenant", "import", str(tmp_path / "t.csv")).returncode == 0
    try:
        for s in slugs:
            make_old(dev, s)
        runs = [subprocess.Popen([*OPS, "tenant", "migrate", "--parallel", "4", "-i", dev.inventory], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [(r.wait(300), *r.communicate()) for r in runs]
        assert [rc for rc, _, _ in outs] == [0, 0], outs
        assert set(versions(dev, slugs).values()) == {tenant_version()}
        with dev.connect("owner") as conn:
            log = conn.execute(
                "SELECT l.status, count(*) FROM system.tenant_migration_log l JOIN system.customers c "
                "ON c.id = l.customer_id WHERE c.slug = ANY(%s) GROUP BY 1", [slugs]).fetchall()
        assert dict(log) == {"applied": len(slugs) * (tenant_version() - 1)}
    finally:
        for s in slugs:
            dev.ops("tenant", "drop", s, "--yes")


def test_migrate_waits_for_an_app_lock_no_longer_than_lock_timeout(dev, slug, tmp_path):
    """Issue 15: an app transaction holds a lock on one tenant's table during
    migrate-all. That tenant is tried again, then left 'retryable'; every other
    tenant migrates; app queries, on that tenant too, wait no longer than lock_timeout."""
    import subprocess
    import time

    from tests.e2e.conftest import OPS, ROOT

    slugs = [f"{slug}{i:02d}" for i in range(40)]
    held, other = slugs[17], slugs[3]
    (tmp_path / "t.csv").write_text("slug,name,mode,handover_email\n" + "".join(f"{s},L {s},api,\n" for s in slugs))
    assert dev.ops("tenant", "import", str(tmp_path / "t.csv")).returncode == 0
    inv = tmp_path / "short_locks.py"
    inv.write_text(f"short = [('@docker/{dev.local.container}', "
                   "{'secrets_name': 'dev', 'migrate_lock_timeout_ms': 400, 'migrate_lock_retries': 2})]\n")
    waits = {held: [], other: []}
    try:
        for s in slugs:
            make_old(dev, s)
        # statement_timeout: a migration that waits for ever fails the test instead of hanging it.
        with dev.connect("owner") as lock, dev.connect("app", autocommit=True,
                                                       options="-c statement_timeout=5000") as app:
            # The app's open transaction on one tenant, then its queries while migrate-all runs.
            lock.execute("SELECT system.act_as_tenant(%s)", [held])
            lock.execute(f'INSERT INTO "tenant_{held}".leads (email) VALUES (\'busy@x.io\')')
            run = subprocess.Popen([*OPS, "tenant", "migrate", "-i", str(inv)], cwd=ROOT, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            while run.poll() is None:
                for s in waits:
                    start = time.monotonic()
                    with app.transaction():
                        app.execute("SELECT system.use_tenant(%s)", [s])
                        app.execute("SELECT count(*) FROM leads").fetchone()
                    waits[s].append(time.monotonic() - start)
            lock.rollback()
            stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 1, stderr
        assert f"waiting {held}" in stderr and "lock timeout" in stderr and "tried 3 times" in stderr, stderr
        assert f"{len(slugs) - 1} of {len(slugs)} tenants migrated" in stdout, stdout
        assert versions(dev, slugs) == {s: 1 if s == held else tenant_version() for s in slugs}
        with dev.connect("owner") as conn:
            log = conn.execute("SELECT l.status FROM system.tenant_migration_log l JOIN system.customers c "
                               "ON c.id = l.customer_id WHERE c.slug = %s", [held]).fetchall()
        assert log == [("retryable",)]
        assert len(waits[held]) >= 3 and len(waits[other]) >= 3, waits
        assert max(waits[held]) < 0.4 + 0.6 and max(waits[other]) < 0.4 + 0.6, waits
        out = dev.ops("tenant", "migrate", inventory=str(inv))
        assert out.returncode == 0 and "1 of 1 tenants migrated" in out.stdout, out.stderr
    finally:
        for s in slugs:
            dev.ops("tenant", "drop", s, "--yes")

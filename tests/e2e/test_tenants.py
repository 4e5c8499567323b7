"""Tenant isolation, API keys, the CLI's input checks and seed, on the dev host."""

import re

import pytest
from psycopg import errors

SEED = {"abc-honda", "demo-dealership"}


def create(dev, slug, *extra):
    out = dev.ops("tenant", "create", slug, "--name", f"Test {slug}", "--mode", "api", *extra)
    assert out.returncode == 0, out.stderr
    return slug


@pytest.fixture
def two_tenants(dev, slug):
    a, b = create(dev, slug + "a"), create(dev, slug + "b")
    yield a, b
    for s in (a, b):
        dev.ops("tenant", "drop", s, "--yes")


def in_tenant(conn, slug):
    conn.execute("SELECT system.use_tenant(%s)", [slug])


@pytest.fixture(autouse=True, scope="module")
def seeded(dev):
    assert dev.ops("db", "seed").returncode == 0


def test_seed_made_the_example_customers(dev):
    with dev.connect("auditor") as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT slug, name, ingestion_mode::text, handover_email FROM system.customers")}
    assert rows["abc-honda"] == ("ABC Honda", "email", "sarah-abc-honda@onesift.com")
    assert rows["demo-dealership"][:2] == ("Demo Dealership", "api")


def test_seed_again_creates_no_second_key(dev):
    with dev.connect("owner") as conn:
        before = conn.execute("SELECT count(*) FROM system.api_keys").fetchone()[0]
    out = dev.ops("db", "seed")
    assert out.returncode == 0, out.stderr
    assert "osk_" not in out.stdout
    with dev.connect("owner") as conn:
        assert conn.execute("SELECT count(*) FROM system.api_keys").fetchone()[0] == before


def test_tenant_a_cannot_read_or_write_tenant_b(dev, two_tenants):
    a, b = two_tenants
    with dev.connect("app") as conn:
        with conn.transaction():
            in_tenant(conn, b)
            conn.execute(f'INSERT INTO "tenant_{b}".leads (email) VALUES (%s)', ["b@example.com"])
        with conn.transaction():
            in_tenant(conn, a)
            conn.execute("INSERT INTO leads (email) VALUES (%s)", ["a@example.com"])
            assert conn.execute("SELECT count(*) FROM leads").fetchone()[0] == 1
            assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0
            assert conn.execute(f'UPDATE "tenant_{b}".leads SET email = %s', ["x@example.com"]).rowcount == 0
            assert conn.execute(f'DELETE FROM "tenant_{b}".leads').rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                in_tenant(conn, a)
                conn.execute(f'INSERT INTO "tenant_{b}".leads (email) VALUES (%s)', ["sneak@example.com"])
        with pytest.raises(errors.InsufficientPrivilege):
            with conn.transaction():
                in_tenant(conn, a)
                conn.execute(f'CREATE TABLE "tenant_{b}".stolen (id int)')
    with dev.connect("app") as conn:
        with conn.transaction():
            in_tenant(conn, b)
            assert [r[0] for r in conn.execute("SELECT email FROM leads")] == ["b@example.com"]


def test_pooled_connection_forgets_the_tenant_at_commit(dev, two_tenants):
    a, _ = two_tenants
    with dev.connect("app") as conn:
        with conn.transaction():
            in_tenant(conn, a)
            conn.execute("INSERT INTO leads (email) VALUES ('p@example.com')")
        # Same session, next transaction: no tenant set, no rows visible.
        assert conn.execute("SELECT current_setting('onesift.tenant', true)").fetchone()[0] in (None, "")
        assert conn.execute(f'SELECT count(*) FROM "tenant_{a}".leads').fetchone()[0] == 0


def test_app_role_cannot_escape_rls(dev, two_tenants):
    a, _ = two_tenants
    with dev.connect("app") as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f'ALTER TABLE "tenant_{a}".leads DISABLE ROW LEVEL SECURITY')
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SET row_security = off; SELECT 1")
            conn.execute(f'SELECT count(*) FROM "tenant_{a}".leads')
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT key_hash FROM system.api_keys")
    with dev.connect("owner") as conn:
        forced = conn.execute(
            "SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity), count(*) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            [f"tenant_{a}"],
        ).fetchone()
        owners = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'onesift_app'"
        ).fetchone()[0]
    assert forced == (True, 5)
    assert owners == 0


def test_api_key_lifecycle(dev, slug):
    create(dev, slug)
    try:
        out = dev.ops("apikey", "create", slug, "--name", "ci")
        assert out.returncode == 0, out.stderr
        key = out.stdout.strip().splitlines()[-1]
        assert key.startswith("osk_") and len(key) == 44
        with dev.connect("app") as conn:
            row = conn.execute("SELECT slug, schema_name, key_id, is_valid FROM system.validate_api_key(%s)", [key]).fetchone()
            assert row[:2] == (slug, f"tenant_{slug}") and row[3] is True
            invalid = conn.execute("SELECT * FROM system.validate_api_key(%s)", [key + "x"]).fetchall()
            assert invalid == [(False, None, None, None, None)]
            conn.commit()
        with dev.connect("owner") as conn:
            stored = conn.execute("SELECT key_hash, last_used_at FROM system.api_keys WHERE id = %s", [row[2]]).fetchone()
            assert stored[1] is not None
            assert key not in stored[0]
            assert conn.execute("SELECT count(*) FROM system.api_keys WHERE key_hash = %s OR key_prefix = %s",
                                [key, key]).fetchone()[0] == 0
        assert dev.ops("apikey", "revoke", str(row[2])).returncode == 0
        with dev.connect("app") as conn:
            assert conn.execute("SELECT is_valid, customer_id FROM system.validate_api_key(%s)", [key]).fetchall() == [(False, None)]
        listed = dev.ops("apikey", "list", slug, "--json")
        assert key not in listed.stdout and key[:12] in listed.stdout
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def customers(dev):
    with dev.connect("owner") as conn:
        return {r[0] for r in conn.execute("SELECT slug FROM system.customers")}, \
               {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


@pytest.mark.parametrize("bad", ["Bad", "a", "x" * 41, "system", "pg_x", "a;b", "ab'--", "../etc", "ab c"])
def test_bad_slug_refused_and_nothing_created(dev, bad):
    before = customers(dev)
    out = dev.ops("tenant", "create", bad, "--name", "Bad Inc", "--mode", "api")
    assert out.returncode == 2
    assert "invalid tenant slug" in out.stderr
    assert customers(dev) == before


def test_email_mode_needs_handover_email(dev, slug):
    before = customers(dev)
    out = dev.ops("tenant", "create", slug, "--name", "X", "--mode", "email")
    assert out.returncode == 2 and "handover" in out.stderr
    assert customers(dev) == before


def test_duplicate_tenant_refused(dev):
    out = dev.ops("tenant", "create", "abc-honda", "--name", "Again", "--mode", "api")
    assert out.returncode == 2 and "already exists" in out.stderr


def test_failed_creation_leaves_no_partial_schema(dev, slug):
    # The customer row goes in, then the schema DDL fails half way: all of it rolls back.
    with dev.connect("owner") as conn:
        conn.execute(f'CREATE SCHEMA "tenant_{slug}"')  # makes CREATE SCHEMA in the DDL fail
        conn.commit()
    try:
        out = dev.ops("tenant", "create", slug, "--name", "Half", "--mode", "api")
        assert out.returncode == 1 and "already exists" in out.stderr
        with dev.connect("owner") as conn:
            assert conn.execute("SELECT count(*) FROM system.customers WHERE slug = %s", [slug]).fetchone()[0] == 0
            assert conn.execute(f"SELECT to_regclass('\"tenant_{slug}\".leads')").fetchone()[0] is None
    finally:
        with dev.connect("owner") as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "tenant_{slug}" CASCADE')
            conn.commit()


def test_reset_needs_yes_and_production_needs_a_second_flag(dev, tmp_path):
    out = dev.ops("db", "reset")
    assert out.returncode == 2 and "--yes" in out.stderr
    inv = tmp_path / "prodlike.py"
    inv.write_text(f"prodlike = [('@docker/{dev.local.container}', {{'production': True, 'secrets_name': 'dev'}})]\n")
    out = dev.ops("db", "reset", "--yes", inventory=str(inv))
    assert out.returncode == 2 and "production" in out.stderr
    out = dev.ops("tenant", "drop", "abc-honda", "--yes", inventory=str(inv))
    assert out.returncode == 2 and "production" in out.stderr
    assert "abc-honda" in customers(dev)[0]


def test_rendered_tenant_sql_is_what_the_function_runs(dev, slug):
    """`ops sql render tenant` piped through psql builds the same catalog as create_customer_schema."""
    create(dev, slug)
    other = slug + "r"
    try:
        sql = dev.ops("sql", "render", "tenant", "--slug", other, check=True).stdout
        with dev.connect("owner") as conn:
            conn.execute(sql)
            conn.commit()
            shapes = []
            for s in (slug, other):
                shapes.append(conn.execute(
                    "SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, "
                    "  array(SELECT a.attname || ':' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "        WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum), "
                    "  array(SELECT p.polname || ':' || pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p "
                    "        WHERE p.polrelid = c.oid) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'i') ORDER BY 1",
                    [f"tenant_{s}"]).fetchall())
        strip = lambda rows, s: [tuple(str(x).replace(s, "@") for x in r) for r in rows]  # noqa: E731
        assert strip(shapes[0], slug) == strip(shapes[1], other)
        assert len(shapes[0]) > 10
    finally:
        dev.ops("tenant", "drop", slug, "--yes")
        with dev.connect("owner") as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "tenant_{other}" CASCADE')
            conn.commit()


def test_tenant_show_and_list(dev):
    out = dev.ops("tenant", "show", "abc-honda", "--json")
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout)
    assert info["handover_email"] == "sarah-abc-honda@onesift.com" and info["storage_bytes"] > 0
    listed = json.loads(dev.ops("tenant", "list", "--json").stdout)
    assert SEED <= {r["slug"] for r in listed}
    assert dev.ops("tenant", "show", "nope-nope").returncode == 2


def test_enum_filter_uses_the_index_under_rls(dev, two_tenants):
    """RLS must not cost the index: an enum equality stays an index condition (see LEAKPROOF_FUNCTIONS in onesift/steps.py)."""
    a, _ = two_tenants
    with dev.connect("owner") as conn:
        conn.execute("SELECT system.act_as_tenant(%s)", [a])
        conn.execute(f'INSERT INTO "tenant_{a}".leads (email, status) SELECT g || \'@x.io\', \'qualified\' '
                     "FROM generate_series(1, 2000) g")
        conn.commit()
        conn.execute(f'ANALYZE "tenant_{a}".leads')
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [a])
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM leads WHERE status = 'new' ORDER BY created_at DESC LIMIT 20"))
    assert "Index Cond: (status = 'new'::system.lead_status)" in plan or "Index Cond: (status = 'new'::lead_status)" in plan, plan


def test_policy_is_checked_once_per_statement(dev, two_tenants):
    """The tenant check is an InitPlan, not a per-row call (bench: whole-table aggregate 2.1x -> 1.15x the no-RLS time)."""
    a, b = two_tenants
    with dev.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [a])
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT status, count(*) FROM leads GROUP BY status"))
        # PostgreSQL 17 prints the InitPlan's result as (InitPlan 1).col1, 15 as $0.
        assert "InitPlan" in plan and re.search(r"Filter: (\$0|\(InitPlan 1\)\.col1)$", plan, re.M), plan
        assert "Filter: (current_setting" not in plan, plan
        # Same rule: B's rows stay out of reach with A's setting, and of everyone with none.
        conn.execute(f'INSERT INTO "tenant_{a}".leads (email) VALUES (\'once@x.io\')')
        assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0
        conn.commit()
        assert conn.execute(f'SELECT count(*) FROM "tenant_{a}".leads').fetchone()[0] == 0


def count(conn, slug) -> int:
    return conn.execute(f'SELECT count(*) FROM "tenant_{slug}".leads').fetchone()[0]


def test_only_use_tenant_sets_the_tenant(dev, two_tenants):
    """Issue 8.1: only system.use_tenant, in this transaction, admits a tenant.
    Through a transaction-mode pooler a session-level value reached other
    clients; onesift_guard makes the parameter one the app cannot set at all."""
    a, b = two_tenants
    with dev.connect("app", autocommit=True) as conn:
        with conn.transaction():
            in_tenant(conn, a)
            conn.execute("INSERT INTO leads (email) VALUES ('mine@x.io')")
        assert count(conn, a) == 0  # the transaction's tenant ended with it
        for forge in (f"SET onesift.tenant = '{a}'", f"SELECT set_config('onesift.tenant', '{a}', false)",
                      f"SELECT set_config('onesift.tenant', '{a}', true)", "RESET onesift.tenant",
                      f"ALTER ROLE onesift_app SET onesift.tenant = '{a}'"):
            with pytest.raises(errors.InsufficientPrivilege, match="onesift.tenant|permission denied"):
                conn.execute(forge)
        assert count(conn, a) == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(f'INSERT INTO "tenant_{a}".leads (email) VALUES (\'forged@x.io\')')
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied to set parameter"):
            with conn.transaction():
                in_tenant(conn, a)
                conn.execute(f"SET LOCAL onesift.tenant = '{b}'")
        with conn.transaction():
            in_tenant(conn, a)
            assert count(conn, a) == 1 and count(conn, b) == 0


def test_an_inactive_tenant_is_out_of_reach(dev, two_tenants):
    """Issue 8.2: setting the tenant directly once skipped use_tenant's is_active check."""
    a, _ = two_tenants
    with dev.connect("app") as conn:
        in_tenant(conn, a)
        conn.execute("INSERT INTO leads (email) VALUES ('before@x.io')")
        conn.commit()
    with dev.connect("owner") as conn:
        conn.execute("UPDATE system.customers SET is_active = false WHERE slug = %s", [a])
        conn.commit()
    with dev.connect("app", autocommit=True) as conn:
        with pytest.raises(errors.InvalidParameterValue, match="no active tenant"):
            in_tenant(conn, a)
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied to set parameter"):
            conn.execute("SELECT set_config('onesift.tenant', %s, true)", [a])
        assert count(conn, a) == 0
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(f'INSERT INTO "tenant_{a}".leads (email) VALUES (\'late@x.io\')')


def test_the_app_reads_only_its_current_customer(dev, two_tenants):
    """Issue 8.3: the app role read every tenant's name, email and settings from system.customers."""
    a, b = two_tenants
    with dev.connect("app") as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT slug FROM system.customers")
        conn.rollback()
        assert conn.execute("SELECT * FROM system.current_customer()").fetchall() == []
        in_tenant(conn, a)
        rows = conn.execute("SELECT slug, name, handover_threshold FROM system.current_customer()").fetchall()
        assert rows == [(a, f"Test {a}", 3)]


def test_the_tenant_holds_in_parallel_workers(dev, two_tenants):
    """The policy's check is parallel safe, so a tenant query can still use
    parallel workers, and the workers get the tenant the owner's function set."""
    a, b = two_tenants
    with dev.connect("owner") as conn:
        conn.execute("SELECT system.act_as_tenant(%s)", [a])
        conn.execute(f'INSERT INTO "tenant_{a}".leads (email) SELECT g || \'@p.io\' FROM generate_series(1, 20000) g')
        conn.commit()
        conn.execute(f'ANALYZE "tenant_{a}".leads')
    with dev.connect("app") as conn:
        in_tenant(conn, a)
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                        "max_parallel_workers_per_gather = 2", "enable_indexscan = off", "enable_bitmapscan = off"):
            conn.execute(f"SET LOCAL {setting}")
        query = f'SELECT count(*) FROM "tenant_{a}".leads'
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query))
        assert "Parallel Seq Scan" in plan and "Workers Launched: 2" in plan, plan
        assert conn.execute(query).fetchone()[0] == 20000
        assert conn.execute(f'SELECT count(*) FROM "tenant_{b}".leads').fetchone()[0] == 0


def test_markup_in_a_tenant_name_is_printed_as_it_is(dev, slug):
    """Issue 8.9: a tenant named `[/]` crashed `ops tenant list` and `show` for every operator."""
    name = "[/] [bold]x"
    assert dev.ops("tenant", "create", slug, "--name", name, "--mode", "api").returncode == 0
    try:
        for args in (("tenant", "list"), ("tenant", "show", slug)):
            out = dev.ops(*args)
            assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
            assert "[/]" in out.stdout and "[bold]x" in out.stdout, out.stdout
    finally:
        dev.ops("tenant", "drop", slug, "--yes")


def test_only_the_owner_may_set_the_tenant(dev):
    """Auditors: onesift.tenant is defined by onesift_guard, preloaded, and
    the owner is the one role granted SET on it."""
    with dev.connect("owner") as conn:
        grants = conn.execute("SELECT paracl::text[] FROM pg_parameter_acl WHERE parname = 'onesift.tenant'").fetchone()
        context = conn.execute("SELECT context FROM pg_settings WHERE name = 'onesift.tenant'").fetchone()
        conn.execute("SELECT system.act_as_tenant('abc-honda')")
        assert conn.execute("SELECT system.current_tenant()").fetchone()[0] == "abc-honda"
    assert context == ("superuser",)
    holders = sorted(g.split("=")[0] for g in grants[0])
    assert holders == ["onesift_owner", "postgres"], grants

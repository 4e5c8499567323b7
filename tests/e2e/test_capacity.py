"""What one server holds (issue 9): /dev/shm for parallel query, a lock table
that follows the live tenants, and the tenant ceiling, on the real hosts."""

from tests.e2e.conftest import detected_changes, inventory, pyinfra

# What pg_dump locks (deploy.server, PgLockTable): tables, views, sequences outside the catalogs.
RELATIONS = ("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
             "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'")


def server_state(host) -> tuple[int, int, int]:
    """(max_locks_per_transaction, max_connections, relations) of the running server."""
    with host.connect("owner") as conn:
        locks, conns = (int(conn.execute(f"SHOW {name}").fetchone()[0])
                        for name in ("max_locks_per_transaction", "max_connections"))
        return locks, conns, conn.execute(RELATIONS).fetchone()[0]


def tenant_total(host) -> int:
    with host.connect("owner") as conn:
        return conn.execute("SELECT count(*) FROM system.customers").fetchone()[0]


def test_container_host_has_a_dev_shm_sized_for_postgresql(db_host):
    """The engine's 64 MB /dev/shm failed the nightly dump at 10,000 tenants; a real host has half its RAM."""
    from onesift.local_hosts import SHM_SIZE

    size_kb = int(db_host.testinfra().check_output("df -k --output=size /dev/shm | tail -n 1"))
    assert size_kb * 1024 >= SHM_SIZE


def test_lock_table_holds_a_dump_of_the_live_tenants_twice(db_host):
    from deploy.server import CATALOG_LOCKS

    locks, conns, relations = server_state(db_host)
    assert locks * conns >= 2 * (relations + CATALOG_LOCKS)


def test_deploy_grows_the_lock_table_when_the_tenants_outgrow_it(dev, tmp_path):
    """A headroom the live tenants outgrow stands in for ten thousand tenants: a dry
    run says max_locks_per_transaction grows, with a restart, and changes only postgresql.conf."""
    from deploy.server import CATALOG_LOCKS

    locks, conns, relations = server_state(dev)
    headroom = 3 * locks * conns / (relations + CATALOG_LOCKS)  # three times what the server holds
    grown = 2 ** (locks * 3 - 1).bit_length()  # the next power of two: restarts as the count doubles
    code, output = pyinfra("--dry", inventory(dev, tmp_path, pg_lock_headroom=headroom), "deploy.py")
    assert code == 0, output[-2000:]
    assert f"max_locks_per_transaction {locks} -> {grown}" in output and "restarts" in output
    _, changing = detected_changes(output)  # the file, and the restart it needs (issue 11.4)
    assert len(changing) == 2 and "Render postgresql.conf" in changing[0], changing
    assert "PostgreSQL running its current config" in changing[1], changing
    assert server_state(dev)[0] == locks


def test_tenant_ceiling_refuses_create_and_import(dev, slug, tmp_path):
    total = tenant_total(dev)
    full = inventory(dev, tmp_path, max_tenants=total)
    out = dev.ops("tenant", "create", slug, "--name", "One too many", "--mode", "api", inventory=full)
    try:
        assert out.returncode == 2, out.stdout + out.stderr
        assert out.stderr.count("\n") == 1 and f"{total} tenants exist and max_tenants is {total}" in out.stderr
        csv = tmp_path / "t.csv"
        csv.write_text(f"slug,name,mode,handover_email\n{slug},A,api,\n{slug}b,B,api,\n")
        out = dev.ops("tenant", "import", str(csv), inventory=inventory(dev, tmp_path, max_tenants=total + 1))
        assert out.returncode == 2 and "2 more would pass it" in out.stderr, out.stderr
        assert tenant_total(dev) == total
    finally:
        for s in (slug, slug + "b"):
            dev.ops("tenant", "drop", s, "--yes")


def test_deploy_refuses_a_database_past_the_tenant_ceiling(dev, tmp_path):
    conf = f"{dev.conf_dir}/postgresql.conf"
    before = dev.testinfra().file(conf).mtime
    total = tenant_total(dev)
    code, output = pyinfra("-y", inventory(dev, tmp_path, max_tenants=total - 1), "deploy.py")
    assert code != 0
    assert f"has {total} tenants, past max_tenants ({total - 1})" in output
    assert dev.testinfra().file(conf).mtime == before

"""A fleet of 300 tenants on the SSH host (issue 9): backup, verify, one-tenant
restore and the audit check, at a count where bugs that grow with N show.
`ops backup verify` failed from 10 tenants on (one jsonb_build_object call
with two arguments a table, 100 at most); a few tenants would hide that."""

from __future__ import annotations

import csv

import pytest

from onesift.render import access, quote_literal

FLEET = 300
# Hyphens too: a slug with '-' makes a schema name that has to be quoted.
SLUGS = [f"fleet-{i:03d}" if i % 2 else f"fleet_{i:03d}" for i in range(FLEET)]


@pytest.fixture(scope="module")
def fleet(ssh, tmp_path_factory):
    """300 tenants imported onto the SSH host; gone again after the module."""
    path = tmp_path_factory.mktemp("fleet") / "fleet.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["slug", "name", "mode", "handover_email"])
        w.writerows([s, f"Fleet {s}", "api", ""] for s in SLUGS)
    out = ssh.ops("tenant", "import", str(path), "--batch", "100")
    assert out.returncode == 0, out.stderr
    yield ssh
    with ssh.connect("owner") as conn:
        for slug in SLUGS:
            conn.execute(f'DROP SCHEMA IF EXISTS "tenant_{slug}" CASCADE')
        conn.execute("DELETE FROM system.customers WHERE slug = ANY(%s)", [SLUGS])


def template(expression: str) -> str:
    """A policy clause of sql/access.toml for tenant SLUGS[7]."""
    return expression.replace("{slug}", quote_literal(SLUGS[7]))


def add_leads(host, slug: str, n: int) -> None:
    with host.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        conn.execute("INSERT INTO leads (email) SELECT gen_random_uuid() || '@example.com' FROM generate_series(1, %s)", [n])


def leads(host, slug: str) -> int:
    with host.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [slug])
        return conn.execute("SELECT count(*) FROM leads").fetchone()[0]


RUN = "$(readlink -f /var/backups/onesift/latest)"


def test_backup_and_verify_a_fleet(fleet):
    add_leads(fleet, SLUGS[1], 25)
    out = fleet.ops("backup", "run")
    assert out.returncode == 0, out.stderr
    out = fleet.ops("backup", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restore drill passed" in out.stdout
    tables = int(out.stdout.split(" tables,")[0].rsplit(" ", 1)[1])
    assert tables >= 5 * FLEET, out.stdout
    # The drill also counts each tenant's file of the run, which restores read: one lead fewer there is found.
    file = f"{RUN}/tenants/{SLUGS[1]}.sql.gz"
    fleet.testinfra().run_expect([0], f"gzip -dc {file} | sed '/^COPY .*leads /{{n;d}}' | gzip > /tmp/cut.gz"
                                      f" && cat /tmp/cut.gz > {file} && rm /tmp/cut.gz")
    out = fleet.ops("backup", "verify")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f'mismatch "tenant_{SLUGS[1]}".leads: dump 25, tenant file 24' in out.stderr


def test_restore_one_tenant_of_a_fleet(fleet):
    """Tenant A goes back to the backup; tenant B keeps what it wrote after it.
    The restore reads A's own file of the run, not the whole dump (issue 9: reading
    the archive's table of contents grew with the tenant count)."""
    a, b = SLUGS[3], SLUGS[4]  # fleet-003 has a hyphen
    add_leads(fleet, a, 6)
    # Text that looks like the lines the run is cut at stays A's data.
    forged = f"x\n\\.\n-- Data for Name: leads; Type: TABLE DATA; Schema: tenant_{b}; Owner: x\n"
    with fleet.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [a])
        conn.execute("INSERT INTO leads (email, first_name) VALUES ('forged@example.com', %s)", [forged])
    assert fleet.ops("backup", "run").returncode == 0
    before_b = leads(fleet, b)
    add_leads(fleet, a, 5)
    add_leads(fleet, b, 3)
    h = fleet.testinfra()
    h.run_expect([0], f"mv {RUN}/onesift.dump {RUN}/away")
    try:
        out = fleet.ops("backup", "restore", "--tenant", a, "--yes")
    finally:
        h.run_expect([0], f"mv {RUN}/away {RUN}/onesift.dump")
    assert out.returncode == 0, out.stderr
    assert leads(fleet, a) == 7
    assert leads(fleet, b) == before_b + 3
    with fleet.connect("app") as conn:
        conn.execute("SELECT system.use_tenant(%s)", [a])
        assert conn.execute("SELECT first_name FROM leads WHERE email = 'forged@example.com'").fetchone()[0] == forged


def test_audit_check_of_a_fleet_finds_each_drifted_tenant(fleet):
    out = fleet.ops("audit", "check")
    assert out.returncode == 0, out.stdout + out.stderr
    unforced, changed = f'"tenant_{SLUGS[-2]}".messages', f'"tenant_{SLUGS[7]}".leads'
    with fleet.connect("owner") as conn:
        conn.execute(f"ALTER TABLE {unforced} NO FORCE ROW LEVEL SECURITY")
        # A policy that reads a column: printed with its table (the others are printed without).
        conn.execute(f"ALTER POLICY tenant_isolation ON {changed} USING (email IS NOT NULL)")
    try:
        out = fleet.ops("audit", "check")
    finally:
        with fleet.connect("owner") as conn:
            conn.execute(f"ALTER TABLE {unforced} FORCE ROW LEVEL SECURITY")
            policy = access()["tenant"]["policy"][0]
            conn.execute(f"ALTER POLICY tenant_isolation ON {changed} USING ({template(policy['using'])})")
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"row level security not forced: tenant_{SLUGS[-2]}.messages" in out.stderr
    assert f"changed policy: tenant_isolation on tenant_{SLUGS[7]}.leads" in out.stderr
    assert "2 differences" in out.stderr, out.stderr

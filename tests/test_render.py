"""SQL and config rendering, slug rules, SCRAM verifiers and secrets: no host needed."""

import copy
import json
import re
import stat

import pytest
from hypothesis import given, settings, strategies as st

from onesift import secrets
from deploy.operations.pg import password_matches, scram_verifier, verifier_hmac
from jinja2 import TemplateNotFound

from onesift.render import access, quote_ident, quote_literal, render_sql, render_template
from onesift.settings import BadInput, Settings, schema_for, validate_handover_threshold, validate_slug
from onesift.steps import context, create_tenant, functions, grants, migrations, tenant_ddl, views_ddl

S = Settings()
TABLES = access()["tenant"]["tables"]


def test_quote_ident_always_quotes_and_doubles_quotes():
    assert quote_ident("leads") == '"leads"'
    assert quote_ident('we"ird') == '"we""ird"'
    with pytest.raises(ValueError, match="not a usable SQL identifier"):
        quote_ident("a\x00b")
    with pytest.raises(ValueError, match="not a usable SQL identifier"):
        quote_ident("")


def test_quote_ident_refuses_names_past_63_bytes():
    # PostgreSQL would silently cut a longer name to 63 bytes (NAMEDATALEN - 1):
    # two tenants could then share a schema. Bytes, not characters, count.
    assert quote_ident("x" * 63) == '"' + "x" * 63 + '"'
    assert quote_ident("é" * 31) == '"' + "é" * 31 + '"'  # 62 bytes
    for name in ("x" * 64, "é" * 32):  # 64 bytes; the second is 32 characters
        with pytest.raises(ValueError, match="not a usable SQL identifier"):
            quote_ident(name)


def test_quote_literal_doubles_single_quotes():
    assert quote_literal("O'Brien") == "'O''Brien'"
    assert quote_literal(7) == "'7'"  # a value is always quoted as text
    with pytest.raises(ValueError, match="NUL bytes cannot appear in SQL literals"):
        quote_literal("a\x00b")


def test_quote_literal_with_a_quote_and_a_backslash_is_an_escape_string():
    # psycopg (as libpq's PQescapeLiteral) writes E'...' with the backslash
    # doubled, whatever standard_conforming_strings says, and a space before
    # it so the E cannot join a word in front.
    assert quote_literal("O'Brien \\ Motors") == " E'O''Brien \\\\ Motors'"


def test_sql_and_config_templates_are_found_in_their_own_tree_only():
    assert "GRANT" in render_sql("repeatable/grants.sql.j2", **context(S))
    hba = dict(db_name="onesift", roles=S.roles, client_networks=[], client_networks_nossl=[])
    assert "scram-sha-256" in render_template("config/pg_hba.conf.j2", **hba)
    with pytest.raises(TemplateNotFound):
        render_template("repeatable/grants.sql.j2", **context(S))
    with pytest.raises(TemplateNotFound):
        render_sql("config/pg_hba.conf.j2", **hba)
    for ambiguous in ("sql/repeatable/grants.sql.j2", "templates/config/pg_hba.conf.j2"):
        with pytest.raises(TemplateNotFound):
            render_sql(ambiguous, **context(S))
        with pytest.raises(TemplateNotFound):
            render_template(ambiguous, **hba)


@pytest.mark.parametrize("slug", ["ab", "abc-honda", "demo_dealership", "a1", "z" * 40])
def test_good_slugs(slug):
    assert validate_slug(slug) == slug
    assert schema_for(slug) == "tenant_" + slug


@pytest.mark.parametrize(
    "slug",
    ["", "a", "Abc", "1abc", "-abc", "abc honda", "abc;drop", "ab'c", 'ab"c', "z" * 41,
     "system", "public", "pg_catalog", "postgres", "information_schema", "abc\x00", "ábc"],
)
def test_bad_slugs_refused(slug):
    with pytest.raises(BadInput):
        validate_slug(slug)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_any_accepted_slug_is_a_safe_identifier(slug):
    try:
        validate_slug(slug)
    except BadInput:
        return
    assert re.fullmatch(r"[a-z][a-z0-9_-]{1,39}", slug)
    assert len(schema_for(slug).encode()) <= 63


def test_tenant_ddl_forces_rls_with_a_policy_on_every_table():
    sql = tenant_ddl(S, "abc-honda")
    for table in TABLES:
        target = f'"tenant_abc-honda"."{table}"'
        assert f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY;" in sql
        assert f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY;" in sql
        assert f'CREATE POLICY "tenant_isolation" ON {target}' in sql
        assert sql.count(f'ALTER POLICY "tenant_isolation" ON {target}') == 4  # tenant migrations 0003-0006
    # USING and WITH CHECK, in CREATE and every ALTER: always the once-per-statement
    # form (an InitPlan), never the per-row comparison.
    policy = "(SELECT current_setting('onesift.tenant', true) = 'abc-honda')"
    assert sql.count(policy) == 10 * len(TABLES)
    assert sql.count("current_setting(") == sql.count(policy)
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "tenant_abc-honda"."personas"' in sql
    assert "BYPASSRLS" not in sql


def test_tenant_ddl_refuses_hostile_slug():
    with pytest.raises(BadInput):
        tenant_ddl(S, 'x"; DROP SCHEMA system CASCADE; --')


def test_function_template_embeds_the_same_tenant_ddl_with_placeholders():
    sql = functions(S).sql
    ddl = tenant_ddl(S)
    assert "@@schema@@" in ddl and "@@slug@@" in ddl
    assert "$ddl$" + ddl + "$ddl$" in sql
    # Filling the placeholders as the SQL function does gives the rendered text.
    filled = ddl.replace("@@schema@@", '"tenant_abc-honda"').replace("@@slug@@", "'abc-honda'")
    assert filled == tenant_ddl(S, "abc-honda")
    assert views_ddl(S).replace("@@schema@@", '"tenant_ab"') == views_ddl(S, "ab")


def test_every_security_definer_function_pins_search_path():
    sql = functions(S).sql
    blocks = re.split(r"CREATE OR REPLACE FUNCTION", sql)[1:]
    assert len(blocks) >= 12
    for block in blocks:
        header = block.split(" AS ", 1)[0]
        if "SECURITY DEFINER" in header:
            assert "SET search_path = pg_catalog, pg_temp" in header, header


def test_grants_follow_the_access_matrix_and_revoke_first():
    sql = grants(S).sql
    assert sql.index("REVOKE ALL ON ALL TABLES IN SCHEMA system") < sql.index("GRANT SELECT ON TABLE system.\"customers\"")
    assert 'GRANT EXECUTE ON FUNCTION system."validate_api_key"(text) TO "onesift_app";' in sql
    assert "api_keys" not in sql  # no role reads key hashes directly
    assert re.search(r"GRANT [A-Z, ]+ TO PUBLIC", sql) is None


def test_migrations_are_ordered_and_create_the_enums():
    steps = migrations(S)
    assert [s.name for s in steps] == sorted(s.name for s in steps)
    sql = steps[0].sql
    for enum in ("ingestion_mode", "lead_status", "handoff_reason", "message_sender"):
        assert f"CREATE TYPE system.{enum} AS ENUM" in sql
    for table in ("customers", "api_keys", "audit_log"):
        assert f"CREATE TABLE system.{table}" in sql


def test_create_tenant_sql_quotes_input():
    sql = create_tenant(S, "ab", "O'Brien Motors", "email", "a@b.co")
    assert "'O''Brien Motors'" in sql
    assert sql.startswith('SET LOCAL ROLE "onesift_owner";')


def test_pg_hba_uses_scram_only():
    text = render_template(
        "config/pg_hba.conf.j2", db_name="onesift", roles=S.roles,
        client_networks=["10.0.0.0/8"], client_networks_nossl=[],
    )
    rules = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert rules and all(r[-1] in ("scram-sha-256", "peer") for r in rules)
    assert ["hostssl", "onesift", "onesift_owner,onesift_app,onesift_auditor", "10.0.0.0/8", "scram-sha-256"] in rules
    assert not any(r[-1] == "trust" for r in rules)


def test_scram_verifier_round_trip():
    # Shape and round trip here; that PostgreSQL accepts these verifiers is
    # shown end to end by the role logins in tests/e2e.
    salt = b"\x01" * 16
    v = scram_verifier("pencil", salt, 4096)
    assert re.fullmatch(r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+", v)
    import base64

    key = b"k" * 32
    fp = {"iterations": 4096, "salt": base64.b64encode(salt).decode(), "verifier_hmac": verifier_hmac(v, key)}
    assert password_matches("pencil", fp, key)
    assert not password_matches("pencil2", fp, key)
    assert not password_matches("pencil", None, key)


def test_secrets_generated_once_into_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESIFT_SECRETS_DIR", str(tmp_path))
    for key in secrets.ROLE_KEYS:
        monkeypatch.delenv(secrets.env_var(key), raising=False)
    first = secrets.load("dev", generate=True)
    assert set(first) == set(secrets.ROLE_KEYS) and all(len(v) >= 32 for v in first.values())
    path = tmp_path / "dev.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.load("dev", generate=True) == first


def test_missing_secrets_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESIFT_SECRETS_DIR", str(tmp_path))
    for key in secrets.ROLE_KEYS:
        monkeypatch.delenv(secrets.env_var(key), raising=False)
    with pytest.raises(BadInput, match="ONESIFT_OWNER_PASSWORD"):
        secrets.load("prod")
    assert not (tmp_path / "prod.env").exists()


def test_lock_table_sized_from_the_live_relations_with_headroom():
    from deploy.server import CATALOG_LOCKS, LOCKS_FLOOR, sized_max_locks

    assert sized_max_locks({}, 100, 2) == LOCKS_FLOOR  # a new server: nothing to dump yet
    # 1000 tenants (8,000 relations): twice what one dump locks fits in 256 per connection.
    assert sized_max_locks({"relations": 8000, "max_locks_per_transaction": 256}, 100, 2) == 256
    # 10,000 tenants outgrow the running 256: the next power of two above twice the need.
    live = {"tenants": 10000, "relations": 80016, "max_locks_per_transaction": 256}
    grown = sized_max_locks(live, 100, 2)
    assert grown == 2048 and grown * 100 >= 2 * (80016 + CATALOG_LOCKS)
    # Idempotent: the grown value, once running, stays; more tenants within the headroom change nothing.
    assert sized_max_locks({**live, "max_locks_per_transaction": grown}, 100, 2) == grown
    assert sized_max_locks({**live, "relations": 100000, "max_locks_per_transaction": grown}, 100, 2) == grown
    # Never shrinks (a restart for nothing), whatever the count falls to.
    assert sized_max_locks({"relations": 16, "max_locks_per_transaction": 4096}, 100, 2) == 4096
    # A server that is down keeps what its config file says; a pending restart, the new size.
    assert sized_max_locks({"configured_max_locks": 2048}, 100, 2) == 2048
    assert sized_max_locks({**live, "configured_max_locks": grown}, 100, 2) == grown
    # Fewer connections share the table: more per transaction.
    assert sized_max_locks({"relations": 8000, "max_locks_per_transaction": 256}, 20, 2) == 1024


def test_pinned_lock_setting_is_kept_or_refused():
    from deploy.server import postgresql_conf

    data = {"pg_settings": {"max_locks_per_transaction": 300}}
    pinned = Settings.from_data(data)
    live = {"tenants": 3000, "relations": 24000, "max_locks_per_transaction": 300}
    assert postgresql_conf(data, pinned, live=live)["max_locks_per_transaction"] == 300
    with pytest.raises(BadInput, match=r"max_locks_per_transaction = 300 cannot hold .* 4000 tenants .* at least 322"):
        postgresql_conf(data, pinned, live={**live, "tenants": 4000, "relations": 32000})


@pytest.mark.parametrize("value", [0, 0.5, "lots", -2])
def test_bad_lock_headroom_refused(value):
    with pytest.raises(BadInput, match="pg_lock_headroom"):
        Settings.from_data({"pg_lock_headroom": value})


def test_tenant_ceiling():
    from onesift.settings import check_tenant_ceiling

    ten = Settings(max_tenants=10)
    check_tenant_ceiling(ten, 9, 1)
    check_tenant_ceiling(ten, 10)
    with pytest.raises(BadInput, match="^tenant ceiling: 9 tenants exist and max_tenants is 10, so 2 more would pass it"):
        check_tenant_ceiling(ten, 9, 2)
    with pytest.raises(BadInput, match="^tenant ceiling: onesift has 11 tenants, past max_tenants \\(10\\)"):
        check_tenant_ceiling(ten, 11)


@pytest.mark.parametrize("value", ["30min", "1s", "500", "2h"])
def test_backup_lock_wait_timeout_accepted(value):
    assert Settings.from_data({"backup_lock_wait_timeout": value}).backup_lock_wait_timeout == value


@pytest.mark.parametrize("value", ["30 min", "1s; rm -rf /", "$(id)", "soon"])
def test_backup_lock_wait_timeout_refused(value):
    with pytest.raises(BadInput, match="backup_lock_wait_timeout"):
        Settings.from_data({"backup_lock_wait_timeout": value})


def live_catalog():
    """A live catalog as onesift.audit.read_live returns it, matching the templates: tenants ab and cd, one shape each."""
    from onesift.audit import SCHEMA_MARK, SLUG_MARK, matrix

    qual = f"( SELECT (current_setting('onesift.tenant'::text, true) = {SLUG_MARK}::text))"
    shape = {
        "privileges": [[p.role, p.kind, p.object, p.privilege] for p in matrix(S, [SCHEMA_MARK]) if p.schema == SCHEMA_MARK],
        "tables": [[t, True, True] for t in TABLES],
        "policies": [[t, "tenant_isolation", "ALL", ["public"], qual, qual] for t in TABLES],
    }
    system = {
        "privileges": [[p.role, p.schema, p.kind, p.object, p.privilege] for p in matrix(S, [])],
        "default_acl_public_execute": False,
        "roles": {"onesift_app": [False, False, False, False], "onesift_auditor": [False, False, False, False]},
        "owned_by_runtime": 0,
        "audit_log_owner": "onesift_audit_owner",
        "audit_log_writers": [],
        "enum_eq_leakproof": True,
    }
    return {"system": system, "shapes": {"ab": shape, "cd": copy.deepcopy(shape)},
            "tenants": [("tenant_ab", "ab", "ab"), ("tenant_cd", "cd", "cd")]}


def test_audit_reads_the_live_catalog_a_line_at_a_time():
    from onesift.audit import read_live

    live = live_catalog()
    lines = [json.dumps(["system", live["system"]])]
    lines += [json.dumps(["shape", k, shape]) for k, shape in live["shapes"].items()]
    lines += [json.dumps(["tenant", *row]) for row in live["tenants"]]
    assert read_live(lines) == live


def test_audit_finds_no_difference_in_a_matching_catalog():
    from onesift.audit import differences

    assert differences(S, live_catalog()) == []


def test_audit_lists_each_kind_of_drift():
    from onesift.audit import differences

    live = live_catalog()
    system, shape = live["system"], live["shapes"]["ab"]
    system["privileges"].append(["onesift_app", "system", "table", "customers", "SELECT"])
    system["privileges"].remove(["onesift_app", "system", "function", "current_tenant()", "EXECUTE"])
    shape["tables"][1][2] = False
    shape["policies"][0][4] = "true"
    del shape["policies"][2]
    system["roles"]["onesift_app"][1] = True
    system["audit_log_owner"] = "onesift_owner"
    system["audit_log_writers"] = ["onesift_owner"]
    diffs = differences(S, live)
    assert "extra privilege: onesift_app SELECT on table system.customers" in diffs
    assert "missing privilege: onesift_app EXECUTE on function system.current_tenant()" in diffs
    assert f"row level security not forced: tenant_ab.{TABLES[1]}" in diffs
    assert f"changed policy: tenant_isolation on tenant_ab.{TABLES[0]}" in diffs
    assert f"missing policy: tenant_isolation on tenant_ab.{TABLES[2]}" in diffs
    assert any(d.startswith("role onesift_app has") for d in diffs)
    assert "audit.log is owned by onesift_owner, not onesift_audit_owner" in diffs
    assert "onesift_owner may change audit.log directly" in diffs
    assert len(diffs) == 8  # tenant cd, of the matching shape, adds none


def test_audit_names_each_tenant_of_a_drifted_shape_and_schemas_no_tenant_owns():
    from onesift.audit import differences

    live = live_catalog()
    live["shapes"]["ab"]["privileges"].append(["onesift_auditor", "table", "leads", "SELECT"])
    live["tenants"] += [("tenant_ef", "ef", "ab"), ("tenant_stray", None, "cd"), ("tenant_gone", "gone", None)]
    diffs = differences(S, live)
    assert [d for d in diffs if "onesift_auditor SELECT" in d] == [
        "extra privilege: onesift_auditor SELECT on table tenant_ab.leads",
        "extra privilege: onesift_auditor SELECT on table tenant_ef.leads",
    ]
    assert "extra policy: tenant_isolation on tenant_stray.leads" in diffs
    assert "missing schema: tenant_gone of tenant gone" in diffs


def test_create_tenant_sql_sets_the_threshold_and_lets_the_database_name_the_schema():
    sql = create_tenant(S, "ab", "A B", "api", None, 7)
    assert "handover_threshold)" in sql and ", 7)" in sql
    assert "schema_name" not in sql  # generated from the slug (migration 0003)


@pytest.mark.parametrize("value", ["0", "101", "x", "", "3.5", -1])
def test_handover_threshold_outside_1_to_100_is_refused(value):
    with pytest.raises(BadInput, match="handover threshold"):
        validate_handover_threshold(value)


def test_handover_threshold_accepts_whole_numbers_in_range():
    assert [validate_handover_threshold(v) for v in ("1", " 42 ", 100)] == [1, 42, 100]

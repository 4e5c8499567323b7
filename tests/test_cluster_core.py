"""The Patroni cluster's core without a host: health rules, settings refusals, the dynamic
configuration (the single host's parameters, the patch the deploy sends), the CLI's refusals."""

from __future__ import annotations

from typer.testing import CliRunner

import pytest

from deploy import cluster as member
from deploy import server
from deploy.operations.patroni import config_patch
from onesift.cluster import Member, members_from, problems
from onesift.render import render_template
from onesift.settings import BadInput, Settings
from ops_cli.main import app

LEADER = Member("pg1", "leader", "running", "pg1", 2, None)
SYNC = Member("pg2", "sync_standby", "streaming", "pg2", 2, 0)
REPLICA = Member("pg3", "replica", "streaming", "pg3", 2, 0)


def test_a_healthy_cluster_has_no_problems():
    assert problems([LEADER, SYNC, REPLICA], synchronous=True, max_lag=1048576) == []


@pytest.mark.parametrize("members, synchronous, expected", [
    ([SYNC, REPLICA], False, "0 leaders"),
    ([LEADER, SYNC, Member("pg3", "replica", "stopped", "pg3", None, None)], False, "pg3 is stopped, not streaming"),
    ([LEADER, SYNC, Member("pg3", "replica", "streaming", "pg3", 2, 5 * 2 ** 20)], False, "pg3 lags 5242880 bytes"),
    ([LEADER, SYNC, Member("pg3", "replica", "streaming", "pg3", 1, 0)], False, "pg3 is on timeline 1"),
    ([LEADER, REPLICA], True, "no member is a synchronous standby"),
    ([Member("pg1", "leader", "stopped", "pg1", 2, None), SYNC], False, "leader pg1 is stopped"),
])
def test_unhealthy_clusters_say_why(members, synchronous, expected):
    assert any(expected in p for p in problems(members, synchronous, 1048576)), problems(members, synchronous, 1048576)


def test_members_from_patroni_cluster_endpoint():
    found = members_from({"members": [{"name": "a", "role": "leader", "state": "running", "host": "a",
                                       "timeline": 3}, {"name": "b", "role": "replica", "state": "streaming",
                                                        "host": "b", "timeline": 3, "lag": "unknown"}]})
    assert [(m.name, m.lag) for m in found] == [("a", None), ("b", None)]


def test_patroni_timing_that_patroni_refuses_is_refused_before_the_deploy():
    with pytest.raises(BadInput, match="must not pass patroni_ttl"):
        Settings.from_data({"patroni_ttl": 10, "patroni_loop_wait": 5, "patroni_retry_timeout": 5})
    with pytest.raises(BadInput, match="pgbouncer_pool_mode"):
        Settings.from_data({"pgbouncer_pool_mode": "sometimes"})


def test_the_cluster_gets_the_single_hosts_parameters():
    """The same settings the single host's postgresql.conf gets, with pg_settings on top."""
    settings = Settings.from_data({"pg_version": 17, "pg_settings": {"work_mem": "16MB", "effective_cache_size": "3GB"}})
    conf = server.postgresql_conf({}, settings)
    params = member.parameters(conf, settings)
    text = render_template("config/postgresql.conf.j2", **conf)
    for name in ("shared_buffers", "max_locks_per_transaction", "log_min_duration_statement", "max_connections"):
        assert f"{name} = {params[name]}" in text
    assert params["work_mem"] == "16MB" and params["effective_cache_size"] == "3GB"
    assert params["shared_preload_libraries"] == "pg_stat_statements,onesift_guard"
    assert "listen_addresses" not in params and "port" not in params  # Patroni's, per member
    config = member.dynamic_config(Settings.from_data({"patroni_synchronous_mode": True}), params)
    assert config["synchronous_mode"] is True and config["ttl"] == 20


def test_the_cluster_archives_into_pgbackrest_and_replicas_read_it_back():
    """WAL goes to the one repository from whichever member is the primary; a replica reads
    from it what its primary no longer keeps. A slot TTL of 0 is Patroni's "keep none", not unset."""
    settings = Settings.from_data({"pg_version": 17, "patroni_member_slots_ttl": 0,
                                   "patroni_max_slot_wal_keep_size": "1GB", "pgbackrest_stanza": "main-db"})
    params = member.parameters(server.postgresql_conf({}, settings), settings)
    assert params["archive_mode"] == "on" and params["archive_timeout"] == 60
    assert params["archive_command"] == "pgbackrest --stanza=main-db archive-push %p"
    assert params["max_slot_wal_keep_size"] == "1GB"
    config = member.dynamic_config(settings, params)
    assert config["member_slots_ttl"] == 0
    assert config["postgresql"]["recovery_conf"] == {"restore_command": 'pgbackrest --stanza=main-db archive-get %f "%p"'}
    assert Settings.from_data({}).patroni_member_slots_ttl == 1800
    with pytest.raises(BadInput, match="patroni_max_slot_wal_keep_size must be a size"):
        Settings.from_data({"patroni_max_slot_wal_keep_size": "8GB; rm -rf /"})


def test_config_patch_sends_only_what_changed_and_drops_what_went():
    current = {"ttl": 12, "loop_wait": 2, "postgresql": {"use_pg_rewind": True,
                                                         "parameters": {"work_mem": "4MB", "gone": "1", "max_connections": 100}}}
    wanted = {"ttl": 12, "loop_wait": 2, "postgresql": {"use_pg_rewind": True,
                                                        "parameters": {"work_mem": "8MB", "max_connections": "100"}}}
    assert config_patch(current, wanted) == {"postgresql": {"parameters": {"work_mem": "8MB", "gone": None}}}
    assert config_patch(wanted, wanted) == {}


def test_cluster_commands_refuse_bad_input_before_reaching_a_host(tmp_path):
    single = tmp_path / "one.py"
    single.write_text('hosts = [("db1.invalid", {})]\n')
    runner = CliRunner()
    out = runner.invoke(app, ["cluster", "status", "-i", str(single)])
    assert out.exit_code == 2 and "not a Patroni cluster inventory" in out.output
    two = tmp_path / "two.py"
    two.write_text('hosts = ["a.invalid", "b.invalid"]\n')
    out = runner.invoke(app, ["cluster", "status", "-i", str(two)])
    assert out.exit_code == 2 and "has 2 hosts" in out.output

"""Which config changes restart PostgreSQL and which only reload it (issue 11.4): no host needed."""

import pytest

from deploy import server
from onesift.render import render_template
from onesift.settings import Settings

CONTEXTS = {"shared_buffers": "postmaster", "max_locks_per_transaction": "postmaster",
            "shared_preload_libraries": "postmaster", "work_mem": "user", "log_min_duration_statement": "superuser",
            "ssl_cert_file": "sighup"}
HBA = dict(db_name="onesift", roles=Settings().roles, client_networks=["10.0.0.0/8"], client_networks_nossl=[])


def conf_text(**pg_settings) -> str:
    data = {"pg_settings": pg_settings} if pg_settings else {}
    return render_template("config/postgresql.conf.j2", **server.postgresql_conf(data, Settings.from_data({"pg_version": 15, **data})))


def changes(old: str, new: str, old_hba: str | None = None, new_hba: str | None = None):
    asked = []

    def contexts():
        asked.append(True)
        return CONTEXTS

    hba = render_template("config/pg_hba.conf.j2", **HBA)
    result = server.config_changes(old.splitlines(), new, (old_hba or hba).splitlines(), new_hba or hba, contexts)
    return result, bool(asked)


def test_nothing_changed_needs_nothing_and_asks_the_server_nothing():
    assert changes(conf_text(), conf_text()) == (([], []), False)


def test_a_user_setting_reloads():
    assert changes(conf_text(), conf_text(work_mem="8MB")) == (([], ["work_mem"]), True)


def test_a_postmaster_setting_restarts():
    (restart, reload), _ = changes(conf_text(), conf_text(work_mem="8MB", shared_buffers="160MB"))
    assert (restart, reload) == (["shared_buffers"], ["work_mem"])


def test_a_pg_hba_line_reloads():
    new_hba = render_template("config/pg_hba.conf.j2", **{**HBA, "client_networks": ["10.0.0.0/8", "192.0.2.0/24"]})
    assert changes(conf_text(), conf_text(), new_hba=new_hba)[0] == ([], ["pg_hba.conf"])


def test_new_module_sources_restart_to_load_them():
    old = conf_text().replace(server.guard.source_checksum(), "0123abcd")
    assert changes(old, conf_text())[0] == (["shared_preload_libraries"], [])


def test_a_parameter_the_server_does_not_know_restarts():
    old = conf_text() + "onesift.made_up = 1\n"
    assert changes(old, conf_text())[0] == (["onesift.made_up"], [])


def test_a_new_server_restarts():
    assert server.config_changes(None, conf_text(), None, "", dict) == (["postgresql.conf (new)"], [])


@pytest.mark.parametrize("line, parsed", [
    ("work_mem = 4MB", {"work_mem": "4MB"}),
    ("work_mem=4MB   # per sort", {"work_mem": "4MB"}),
    ("Work_Mem 4MB", {"work_mem": "4MB"}),
    ("log_line_prefix = '%m # [%p] '", {"log_line_prefix": "'%m # [%p] '"}),
    ("#work_mem = 4MB", {}),
    ("", {}),
])
def test_assignments_read_postgresql_conf_syntax(line, parsed):
    assert server.assignments([line]) == parsed

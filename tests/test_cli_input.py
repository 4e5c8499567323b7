"""The ops CLI facing hostile text and bad input: text printed literally, bad
input refused with one line and exit 2, before any host is reached. No host needed."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from io import StringIO

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rich.console import Console
from typer.testing import CliRunner

from onesift.render import ROOT
from onesift.settings import BadInput, Settings
from onesift import tenants
from ops_cli import common, tenant
from ops_cli.main import app
from onesift.session import HostSession

# Each would be markup, a style or a terminal command if it were not printed literally.
HOSTILE = ["[/]", "[bold]x", "[red]drift[/red]", "\x1b[31mred", "bell\x07", "a[b]c[/b", "\\[/]"]
LONG = "x" * 150  # longer than the 80 columns rich assumes without a terminal


def rendered(renderable) -> str:
    out = StringIO()
    Console(file=out, width=300, color_system=None).print(renderable)
    return out.getvalue()


def shown(text: str) -> str:
    """How a control character is shown: escaped, so the terminal does not obey it."""
    return text.replace("\x1b", "\\x1b").replace("\x07", "\\x07")


def customer_row(text: str) -> dict:
    """A system.customers row as the host sends it."""
    return {"id": "1", "slug": "ab", "name": text, "ingestion_mode": "api", "handover_email": None, "is_active": True,
            "schema_version": 3, "settings": {}, "created_at": "2026-12-03", "updated_at": "2026-12-03",
            "handover_threshold": 3, "schema_name": "tenant_ab"}


def tenant_row(text: str) -> dict:
    return {"slug": "ab", "name": text, "schema_name": "tenant_ab", "ingestion_mode": "api",
            "is_active": True, "schema_version": 3, "active_keys": 1}


@pytest.mark.parametrize("text", HOSTILE)
def test_tenant_table_shows_text_literally(text):
    out = tenant.tenant_table([tenants.Summary(**tenant_row(text))])
    assert shown(text) in out and "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize("text", HOSTILE)
def test_tenant_details_show_text_literally(text):
    info = {**tenant_row(text), "handover_email": text, "rows": {"leads": 2}, "storage_bytes": 10}
    out = rendered(tenant.tenant_details(info))
    assert f"name: {shown(text)}\n" in out and f"handover_email: {shown(text)}\n" in out
    assert "  leads: 2\n" in out and "\x1b" not in out


@pytest.mark.parametrize("text", HOSTILE)
def test_problem_lines_show_text_literally(text, capsys):
    common.problem("drift", f"policy {text}")
    assert capsys.readouterr().err == f"drift policy {shown(text)}\n"


@pytest.mark.parametrize("text", [*HOSTILE, LONG])
def test_fail_prints_one_literal_line(text, capsys):
    with pytest.raises(Exception) as e:
        common.fail(f"no tenant {text}", 2)
    assert e.value.exit_code == 2
    assert capsys.readouterr().err == f"error: no tenant {shown(text)}\n"


# --- commands, with a stand-in for the host -------------------------------------------

class FakeSession:
    """Answers query_json and query_rows from a list, in order, as the host would."""

    settings = Settings()

    def __init__(self, answers):
        self.answers = list(answers)

    def query_json(self, sql, database=None):
        return self.answers.pop(0)

    query_rows = query_json  # tenant list: the rows, a JSON value each


@pytest.fixture
def host_answers(monkeypatch):
    def use(*answers):
        @contextmanager
        def fake(ctx, inventory):
            yield FakeSession(answers)
        monkeypatch.setattr(common, "session", fake)
        for module in ("tenant", "apikey"):
            monkeypatch.setattr(f"ops_cli.{module}.session", fake)
    return use


@pytest.fixture
def runner(monkeypatch):
    """A CliRunner; connecting to a host fails the test; the environment is restored after."""
    saved = dict(os.environ)
    monkeypatch.delenv("ONESIFT_INVENTORY", raising=False)
    monkeypatch.setattr(HostSession, "shell", lambda self, *a, **k: pytest.fail("reached a host"))
    yield CliRunner()
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("text", HOSTILE)
def test_tenant_list_prints_names_literally(text, runner, host_answers):
    host_answers([tenant_row(text)])
    result = runner.invoke(app, ["tenant", "list"])
    assert result.exit_code == 0, result.output
    assert shown(text) in result.stdout and "\x1b" not in result.stdout


@pytest.mark.parametrize("text", HOSTILE)
def test_tenant_show_prints_name_literally(text, runner, host_answers):
    host_answers(customer_row(text), {"rows": {"leads": 0}, "storage_bytes": 0})
    result = runner.invoke(app, ["tenant", "show", "ab"])
    assert result.exit_code == 0, result.output
    assert f"name: {shown(text)}\n" in result.stdout


@pytest.mark.parametrize("text", HOSTILE)
def test_apikey_list_prints_key_names_literally(text, runner, host_answers):
    key = {"id": "k1", "name": text, "key_prefix": "osk_ab", "created_at": "2024-01-01",
           "last_used_at": None, "revoked_at": None}
    host_answers(customer_row("AB"), [key])
    result = runner.invoke(app, ["apikey", "list", "ab"])
    assert result.exit_code == 0, result.output
    assert shown(text) in result.stdout and "\x1b" not in result.stdout


# --- bad input, in a real process: one line on stderr, exit 2, no traceback --------------

def ops(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ONESIFT_INVENTORY"}
    return subprocess.run([sys.executable, "-m", "ops_cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def assert_refused(out, *words):
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("args, echoed", [
    (["tenant", "show", "[/]"], "'[/]'"),
    (["tenant", "show", "[bold]x"], "'[bold]x'"),
    (["sql", "render", "[/]"], "'[/]'"),
    (["tenant", "list", "-i", "[/]"], "'[/]'"),
    (["apikey", "revoke", "[red]k"], "'[red]k'"),
])
def test_errors_echo_input_literally(args, echoed):
    assert_refused(ops(*args), echoed)


INVENTORIES = {
    "syntax.py": ('hosts = [("@docker/x", {})\n', "syntax error at line 1"),
    "tenants.csv": ("slug,name\nab,AB\n", "cannot load inventory"),
    "nohosts.py": ("x = 1\n", "no hosts"),
    "badgroup.py": ("x = [1, 2]\n", "no hosts"),
    "raises.py": ("raise RuntimeError('boom')\n", "boom"),
    "imports.py": ("import no_such_module_here\n", "no_such_module_here"),
    "two.py": ('a = ["@docker/a"]\nb = ["@docker/b"]\n', "2 hosts"),
}


@pytest.mark.parametrize("name", INVENTORIES)
def test_bad_inventory_refused(name, tmp_path):
    text, why = INVENTORIES[name]
    (tmp_path / name).write_text(text)
    assert_refused(ops("tenant", "list", "-i", str(tmp_path / name)), name, why)


def test_inventory_not_utf8_refused(tmp_path):
    (tmp_path / "latin1.py").write_bytes(b'hosts = ["caf\xe9"]\n')
    assert_refused(ops("sql", "render", "functions", "-i", str(tmp_path / "latin1.py")), "latin1.py", "UTF-8")


def test_inventory_with_bad_data_refused(tmp_path):
    (tmp_path / "inv.py").write_text('hosts = [("@docker/x", {"pg_port": "five"})]\n')
    assert_refused(ops("sql", "render", "functions", "-i", str(tmp_path / "inv.py")), "pg_port")


# --- tenant import CSVs -------------------------------------------------------------------

HEADER = "slug,name,mode,handover_email\n"
CSVS = {
    "latin1": (b"slug,name,mode,handover_email\nab-c,Caf\xe9,api,\n", ["UTF-8", ":2:"]),
    "missing": (b"slug,name\nabc,Name\n", ["missing column", "mode", "handover_email"]),
    "misnamed": (b"slug,nme,mode,handover_email\nabc,Name,api,\n", ["missing column", "'name'", "'nme'"]),
    "extra": (b"slug,name,mode,handover_email,extra\nabc,Name,api,,x\n", ["unknown column", "'extra'"]),
    "twice": (b"slug,name,mode,handover_email,slug\nabc,Name,api,,abd\n", ["'slug'", "twice"]),
    "long_row": (HEADER.encode() + b"abc,Name,api,,surprise\n", [":2:", "5 fields", "4"]),
    "short_row": (HEADER.encode() + b"abc,Name\n", [":2:", "2 fields", "4"]),
    "empty": (b"", ["empty", "slug,name,mode,handover_email"]),
    "nul": (HEADER.encode() + b"abc,Na\x00me,api,\n", [":2:"]),
    "open_quote": (HEADER.encode() + b'abc,"Name,api,\n', [":2:", "not valid CSV"]),
}


@pytest.mark.parametrize("case", CSVS)
def test_bad_import_csv_refused_before_any_host(case, runner, tmp_path):
    data, words = CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    result = runner.invoke(app, ["tenant", "import", str(path)])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.stderr, result.exception)
    for word in [path.name, *words]:
        assert word in lines[0], lines[0]


def test_import_csv_with_byte_order_mark_accepted(tmp_path):
    # Excel's "CSV UTF-8" starts the file with a BOM; the header must still parse.
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + "ab-c,Café,api,\r\n".encode())
    [row] = tenants.read_import(path)
    assert (row.slug, row.name, row.mode, row.handover_email) == ("ab-c", "Café", "api", None)


def test_import_csv_keeps_physical_line_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + '\nabc,"two\nlines",api,\nNOPE,x,api,\n')
    with pytest.raises(BadInput, match=r"t\.csv:5: invalid tenant slug 'NOPE'"):
        tenants.read_import(path)


def test_bad_import_csv_in_a_real_process(tmp_path):
    # An inventory no host answers for: the refusal must come before any connection.
    (tmp_path / "inv.py").write_text('hosts = ["ops-test.invalid"]\n')
    (tmp_path / "t.csv").write_bytes(CSVS["latin1"][0])
    assert_refused(ops("tenant", "import", str(tmp_path / "t.csv"), "-i", str(tmp_path / "inv.py")), "UTF-8")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: (HEADER + t).encode()))
def test_any_import_file_is_read_or_refused(tmp_path, data):
    path = tmp_path / "any.csv"
    path.write_bytes(data)
    try:
        tenants.read_import(path)
    except BadInput as e:
        assert str(e).startswith(str(path))

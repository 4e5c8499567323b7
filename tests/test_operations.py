"""pyinfra operation and fact tests from JSON cases (pyinfra-testing), no host needed."""

from pathlib import Path

import pytest
from pyinfra_testing.facts import make_fact_tests
from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def fixed_role_secrets(monkeypatch):
    """The role cases' HMACs and new verifiers need a known key and salt (random in a real run)."""
    from deploy.operations import pg

    monkeypatch.setattr(pg, "_FINGERPRINT_KEY", bytes(range(32)))
    monkeypatch.setattr(pg, "new_salt", lambda: b"\x01" * 16)

for folder in sorted((HERE / "operations").iterdir()):
    cls = make_operation_tests("deploy.operations", folder.name, folder)
    globals()[f"TestOp_{folder.name.replace('.', '_')}"] = cls

for folder in sorted((HERE / "facts").iterdir()):
    cls = make_fact_tests("deploy.facts", folder.name, folder)
    globals()[f"TestFact_{folder.name.replace('.', '_')}"] = cls

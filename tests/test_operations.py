"""pyinfra operation and fact tests from JSON cases (pyinfra-testing), no host needed."""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests
from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).parent

for folder in sorted((HERE / "operations").iterdir()):
    cls = make_operation_tests("deploy.operations", folder.name, folder)
    globals()[f"TestOp_{folder.name.replace('.', '_')}"] = cls

for folder in sorted((HERE / "facts").iterdir()):
    cls = make_fact_tests("deploy.facts", folder.name, folder)
    globals()[f"TestFact_{folder.name.replace('.', '_')}"] = cls

"""
An inventory's host and its data read without pyinfra, for every `ops`
command (the host session reaches the host without pyinfra's connector where
it can: onesift/transport.py). Loading an inventory through
pyinfra imports its connectors and paramiko, ~0.9 s before the first line
is printed (issue 10). This reads the part of pyinfra's rules (pyinfra_cli
make_inventory_from_files) that settings need: the inventory file's host
groups (a list of NAME or (NAME, data), or a (hosts, data) pair), the file's
own name as a group, group_data/all.py and group_data/GROUP.py from the
working directory and from beside the inventory, host data last.
tests/test_core.py checks the result against pyinfra's own loading.
"""

from __future__ import annotations

import ast
from pathlib import Path

from onesift.errors import BadInput
from onesift.render import ROOT
from onesift.settings import Settings


def run_file(path: Path) -> dict:
    """The names a Python file defines, less those it imports and dunder names (as pyinfra keeps them)."""
    code = path.read_text(encoding="utf-8")
    names: dict = {"__file__": str(path)}
    exec(compile(code, str(path), "exec"), names)
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(ast.parse(code))
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    return {k: v for k, v in names.items() if not k.startswith("__") and k not in imported}


def groups(names: dict) -> dict[str, tuple[list, dict]]:
    """Host groups: names not starting with '_' bound to a list of hosts, or to a (hosts, data) pair."""
    found = {}
    for key, value in names.items():
        hosts, data = value if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list) else (value, {})
        if not key.startswith("_") and isinstance(hosts, list) and all(isinstance(h, (str, tuple)) for h in hosts):
            found[key] = (hosts, dict(data))
    return found


def group_files(path: Path) -> dict[str, dict]:
    """group_data/GROUP.py from the working directory, then from beside the inventory: data by group."""
    data: dict[str, dict] = {}
    for folder in dict.fromkeys([Path.cwd() / "group_data", path.parent / "group_data"]):
        for file in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            data.setdefault(file.stem, {}).update(run_file(file))
    return data


def merged_data(path: Path, found: dict[str, tuple[list, dict]], host: tuple[str, dict]) -> dict:
    """The host's data: all, then each group it is in (the file's name is one), then its own."""
    name, own = host
    files = group_files(path)
    member = [g for g, (hosts, _) in found.items() if g != "all" and any(
        (h[0] if isinstance(h, tuple) else h) == name for h in hosts)]
    if path.stem not in found:
        member.append(path.stem)
    data = {**found.get("all", ([], {}))[1], **files.get("all", {})}
    for g in member:
        data.update({**found.get(g, ([], {}))[1], **files.get(g, {})})
    return {**data, **own}


def inventory_path(inventory: str) -> Path:
    """The inventory file: as given, else relative to the repository; BadInput when there is none."""
    path = Path(inventory)
    if not path.is_absolute() and not path.exists():
        path = ROOT / inventory
    if not path.is_file():
        raise BadInput(f"no inventory file {inventory!r}")
    return path


def host_data(inventory: str) -> dict:
    """The data of the one host ``inventory`` names; BadInput if it names none or several."""
    return host_entry(inventory)[1]


def host_entry(inventory: str) -> tuple[str, dict]:
    """The name and data of the one host ``inventory`` names; BadInput if it names none or several."""
    path = inventory_path(inventory)
    hosts = host_entries(inventory)
    if len(hosts) != 1:
        raise BadInput(f"{path} has {len(hosts)} hosts; ops works on one database host, or on the members "
                       "of a Patroni cluster (patroni_cluster in their data)")
    return hosts[0]


def host_entries(inventory: str) -> list[tuple[str, dict]]:
    """The name and data of every host ``inventory`` names; BadInput if it names none."""
    path = inventory_path(inventory)
    try:
        found = groups(run_file(path))
    except Exception as e:  # the file is Python the operator wrote: any error in it is bad input
        raise BadInput(f"cannot load inventory {path}: {file_error(e, path)}") from None
    by_name: dict[str, dict] = {}  # a host in two groups counts once, with the data of each mention
    for g, (hs, _) in found.items():
        for h in hs if g != "all" else []:
            by_name.setdefault(h[0] if isinstance(h, tuple) else h, {}).update(h[1] if isinstance(h, tuple) else {})
    hosts = list(by_name.items())
    if not hosts:
        raise BadInput(f"{path} defines no hosts; ops works on one database host")
    try:
        return [(name, merged_data(path, found, h)) for name, h in ((h[0], h) for h in hosts)]
    except Exception as e:  # group data is Python too
        raise BadInput(f"cannot load inventory {path}: {file_error(e, path, getattr(e, 'filename', None) or 'its group data')}") from None


def file_error(e: Exception, path: Path, where: Path | str | None = None) -> str:
    """What went wrong in running the inventory at ``path`` (or ``where``, its group data), in one line."""
    where = str(where or path)
    if isinstance(e, SyntaxError):
        what, where = f"Python syntax error at line {e.lineno}: {e.msg}", e.filename
    elif isinstance(e, UnicodeDecodeError):
        what = "not UTF-8 text"
    else:
        first_line = (str(e).splitlines() or [""])[0]
        what = f"{type(e).__name__}: {first_line}" if first_line else type(e).__name__
    return what if where == str(path) else f"in {where}: {what}"


def offline_settings(inventory: str) -> Settings:
    """The Settings an inventory gives, read without pyinfra."""
    return Settings.from_data(host_data(inventory))

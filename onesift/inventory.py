"""
An inventory's data read without pyinfra, for the commands that connect to
nothing (`ops sql render`, `ops audit grants`). Loading an inventory through
pyinfra imports its connectors and paramiko, ~0.9 s before the first line
is printed (issue 10). This reads the part of pyinfra's rules that settings
need: the inventory file's host groups (lists of NAME or (NAME, data)), then
group_data/all.py and group_data/GROUP.py from the working directory and
from beside the inventory, host data last. tests/test_settings.py checks the
result against pyinfra's own loading for every inventory in the repository.
"""

from __future__ import annotations

import ast
from pathlib import Path

from onesift.errors import BadInput
from onesift.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def run_file(path: Path) -> dict:
    """The names a Python file defines, less those it imports and dunder names (as pyinfra keeps them)."""
    code = path.read_text(encoding="utf-8")
    names: dict = {"__file__": str(path)}
    exec(compile(code, str(path), "exec"), names)
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(ast.parse(code))
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    return {k: v for k, v in names.items() if not k.startswith("__") and k not in imported}


def groups(names: dict) -> dict[str, list]:
    """Host groups: names not starting with '_' bound to a list (or a (hosts, data) tuple) of hosts."""
    found = {}
    for key, value in names.items():
        hosts = value[0] if isinstance(value, tuple) and value and isinstance(value[0], list) else value
        if not key.startswith("_") and isinstance(hosts, list) and all(isinstance(h, (str, tuple)) for h in hosts):
            found[key] = hosts
    return found


def group_data(path: Path, group: str) -> dict:
    data: dict = {}
    folders = dict.fromkeys([Path.cwd() / "group_data", path.parent / "group_data"])
    for name in ("all", group):
        for folder in folders:
            if (folder / f"{name}.py").is_file():
                data.update(run_file(folder / f"{name}.py"))
    return data


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
    path = inventory_path(inventory)
    try:
        found = groups(run_file(path))
    except Exception as e:  # the file is Python the operator wrote: any error in it is bad input
        raise BadInput(f"cannot load inventory {path}: {file_error(e, path)}") from None
    hosts = [(g, h) for g, hs in found.items() for h in hs]
    if len(hosts) != 1:
        raise BadInput(f"{path} {f'has {len(hosts)} hosts' if hosts else 'defines no hosts'}; ops works on one database host")
    group, host = hosts[0]
    try:
        shared = group_data(path, group)
    except Exception as e:
        raise BadInput(f"cannot load inventory {path}: {file_error(e, path, getattr(e, 'filename', None) or 'its group data')}") from None
    return {**shared, **(host[1] if isinstance(host, tuple) else {})}


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

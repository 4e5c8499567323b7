"""What every `ops` command shares: the inventory option, the target, errors."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.text import Text

from onesift.settings import BadInput
from onesift.session import DEFAULT_INVENTORY, OpsError, Target

console = Console()
err = Console(stderr=True)

InventoryOpt = Annotated[
    str,
    typer.Option("--inventory", "-i", envvar="ONESIFT_INVENTORY", help="pyinfra inventory file of the database host."),
]
DEFAULT = DEFAULT_INVENTORY
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# Control characters other than newline and tab: a terminal would obey them
# (colours, cursor moves, a retitled window), so they are shown escaped.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def literal(value: object, style: str = "") -> Text:
    """``value`` as text to show as it is: never read as rich markup, control characters escaped.

    Names, slugs, paths and host output are text from users and databases;
    printed as markup, ``[/]`` in a tenant name crashed ``ops tenant list``."""
    return Text(CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value)), style=style)


def fail(message: str, code: int = 1) -> None:
    # soft_wrap: without a terminal rich wraps at 80 columns, and a refusal is one line.
    err.print(Text.assemble(("error:", "bold red"), " ", literal(message)), soft_wrap=True)
    raise typer.Exit(code)


def problem(label: str, detail: str) -> None:
    """One line on stderr for one of several problems (drift, a failed tenant): a red label, then the detail as it is."""
    err.print(Text.assemble((label, "red"), " ", literal(detail)), soft_wrap=True)


@contextmanager
def refusing_bad_input() -> Iterator[None]:
    """Bad input raised inside exits 2 with its message."""
    try:
        yield
    except BadInput as e:
        fail(str(e), 2)


@contextmanager
def target(inventory: str) -> Iterator[Target]:
    """A connected Target; bad input exits 2, a failure on the host exits 1."""
    t = None
    try:
        t = Target(inventory)
        yield t
    except BadInput as e:
        fail(str(e), 2)
    except OpsError as e:
        fail(str(e), 1)
    finally:
        if t is not None:
            t.close()


def refuse_destructive(t: Target, yes: bool, allow_production: bool, what: str) -> None:
    """Destructive commands need --yes, and --allow-production on a production inventory."""
    if not yes:
        raise BadInput(f"{what} destroys data: pass --yes to confirm")
    if t.production and not allow_production:
        raise BadInput(f"{t.inventory} is marked production: {what} also needs --allow-production")

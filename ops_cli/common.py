"""What every `ops` command shares: the inventory option, the target, errors."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Iterator

import typer
from rich.console import Console

from deploy.settings import BadInput
from ops_cli.target import DEFAULT_INVENTORY, OpsError, Target

console = Console()
err = Console(stderr=True)

InventoryOpt = Annotated[
    str,
    typer.Option("--inventory", "-i", envvar="ONESIFT_INVENTORY", help="pyinfra inventory file of the database host."),
]
DEFAULT = DEFAULT_INVENTORY
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(message: str, code: int = 1) -> None:
    # soft_wrap: one line however long (rich would wrap at the terminal width, 80 in a pipe).
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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

"""What every `ops` command shares: the options the main callback keeps, the host session, errors, printing."""

from __future__ import annotations

import importlib.util
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer

from onesift.errors import BadInput, OpsError
from onesift.settings import DEFAULT_INVENTORY

if TYPE_CHECKING:
    from rich.text import Text

    from onesift.apikeys import NewKey
    from onesift.tenants import Seeded
    from onesift.session import HostSession


def lazy(name: str) -> ModuleType:
    """Module ``name``, loaded when first used (the importlib documentation's LazyLoader recipe).

    `ops --help` reads every command's options but runs none, and the core's
    services and rich took ~80 ms of its ~0.25 s (issue 10, target 0.3 s): the
    command modules name them at the top and load them only when a command runs."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LazyConsole:
    """A rich Console made on first use (rich.console takes ~30 ms to import); ``.console`` is the
    Console itself, for what rich takes one (a progress bar)."""

    def __init__(self, **options):
        self.options, self.made = options, None

    @property
    def console(self):
        if self.made is None:
            from rich.console import Console

            self.made = Console(**self.options)
        return self.made

    def __getattr__(self, name: str):
        return getattr(self.console, name)


console = LazyConsole()
err = LazyConsole(stderr=True)


@dataclass
class Shared:
    """The main callback's options (ctx.obj), which every sub-command reads."""
    inventory: str = DEFAULT_INVENTORY
    actor: str | None = None


# Each sub-command also takes -i after its own arguments (`ops tenant list -i inventories/prod.py`); unset, the main -i holds.
InventoryOpt = Annotated[
    Optional[str], typer.Option("--inventory", "-i", help="pyinfra inventory file of the database host."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# Control characters other than newline and tab: a terminal would obey them
# (colours, cursor moves, a retitled window), so they are shown escaped.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def literal(value: object, style: str = "") -> Text:
    """``value`` as text to show as it is: never read as rich markup, control characters escaped.

    Names, slugs, paths and host output are text from users and databases;
    printed as markup, ``[/]`` in a tenant name crashed ``ops tenant list``."""
    from rich.text import Text

    return Text(CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value)), style=style)


def assemble(*parts) -> Text:
    """rich's Text.assemble: pieces of text, each a string, a (string, style) pair or a literal()."""
    from rich.text import Text

    return Text.assemble(*parts)


# In a table cell newline and tab are escaped too: a row is one line.
CELL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def table(columns: list[str], rows: list[list[object]]) -> str:
    """``rows`` under their ``columns``, a line each, every cell padded to its column's widest and shown
    as it is (control characters escaped). rich's Table took 0.72 s to draw 1,000 tenants, most of
    `ops tenant list` (issue 10), and cut long cells to fit 80 columns when not on a terminal."""
    from rich.cells import cell_len  # a wide character takes two columns

    text = [columns, *([CELL_CONTROL.sub(lambda m: repr(m.group())[1:-1], str(c)) for c in row] for row in rows)]
    widths = [max(cell_len(line[i]) for line in text) for i in range(len(columns))]
    text.insert(1, ["-" * w for w in widths])
    return "\n".join("  ".join(c + " " * (w - cell_len(c)) for c, w in zip(line, widths)).rstrip()
                     for line in text)


def fail(message: str, code: int = 1) -> None:
    # soft_wrap: without a terminal rich wraps at 80 columns, and a refusal is one line.
    err.print(assemble(("error:", "bold red"), " ", literal(message)), soft_wrap=True)
    raise typer.Exit(code)


def problem(label: str, detail: str) -> None:
    """One line on stderr for one of several problems (drift, a failed tenant): a red label, then the detail as it is."""
    err.print(assemble((label, "red"), " ", literal(detail)), soft_wrap=True)


@contextmanager
def refusing_bad_input() -> Iterator[None]:
    """Bad input raised inside exits 2 with its message."""
    try:
        yield
    except BadInput as e:
        fail(str(e), 2)


def noun(help: str) -> typer.Typer:
    """The Typer app of one noun (`ops tenant`, ...). Help is plain text: rich's help
    took 160 ms of the 0.45 s `ops --help` took, click's 5 ms (issue 10)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


def inventory_of(ctx: typer.Context, inventory: str | None) -> str:
    return inventory or (ctx.obj or Shared()).inventory


@contextmanager
def session(ctx: typer.Context, inventory: str | None) -> Iterator[HostSession]:
    """A session on the inventory's host; bad input exits 2, a failure on the host exits 1."""
    from onesift.session import HostSession

    s = None
    try:
        s = HostSession(inventory_of(ctx, inventory), (ctx.obj or Shared()).actor)
        yield s
    except BadInput as e:
        fail(str(e), 2)
    except OpsError as e:
        fail(str(e), 1)
    finally:
        if s is not None:
            s.close()


def print_key_once(slug: str, made: NewKey) -> None:
    # The key goes to stdout alone (for scripts); the warning to stderr.
    err.print(assemble("API key for ", literal(slug, "bold"),
                            literal(f" (id {made.key_id}); it is shown only this once:")))
    print(made.api_key)


def print_seeded(done: Seeded) -> None:
    """What `ops db seed` (and `ops host up`) did to one example customer."""
    console.print(f"{done.slug}: {'created' if done.created else 'exists, left as it is'}")
    if done.has_key:
        console.print(f"{done.slug}: has an API key already (keys are shown only when made)")
    if done.key:
        print_key_once(done.slug, done.key)


def refuse_destructive(s: HostSession, yes: bool, allow_production: bool, what: str) -> None:
    """Destructive commands need --yes, and --allow-production on a production inventory."""
    if not yes:
        raise BadInput(f"{what} destroys data: pass --yes to confirm")
    if s.production and not allow_production:
        raise BadInput(f"{s.inventory} is marked production: {what} also needs --allow-production")

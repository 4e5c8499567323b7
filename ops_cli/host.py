"""`ops host`: local container hosts for development and tests (onesift/local_hosts.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from onesift.errors import BadInput, OpsError
from onesift.platform import RELEASES
from ops_cli.common import console, fail, noun, print_seeded

app = noun("Local container hosts: up, down, status.")


@app.command()
def up(
    kind: Annotated[str, typer.Argument(help="dev (Docker API connector), ssh (SSH on loopback), bookworm (SSH, Debian 12) "
                                             "or cluster (three Patroni members on a network of their own).")] = "dev",
    release: Annotated[Optional[str], typer.Option(
        help=f"Debian release: {' or '.join(RELEASES)} (default: the kind's, {RELEASES[0]} for dev and ssh). "
             "Another release than the host has makes it anew.")] = None,
    deploy: Annotated[bool, typer.Option(help="Deploy the database after start.")] = True,
    seed: Annotated[bool, typer.Option(help="Seed the example customers.")] = True,
):
    """Bring up a local host with the database deployed and seeded."""
    from onesift.local_hosts import LOOPBACK, SECRETS, bring_up  # the docker SDK: not for --help

    try:
        h = bring_up(kind, deploy, seed, release, print_seeded)
    except BadInput as e:
        fail(str(e), 2)
    except OpsError as e:
        fail(str(e), 1)
    if h.kind == "cluster":
        console.print(f"[green]the cluster is up[/]: inventory {h.inventory}; read-write endpoint on "
                      f"{LOOPBACK}:{h.ports['5000/tcp']}, read-only on {LOOPBACK}:{h.ports['5001/tcp']} "
                      f"(passwords in ~/.config/onesift/{SECRETS[h.kind]}.env)")
        return
    pg = h.ports["5432/tcp"]
    console.print(
        f"[green]{h.container} is up[/]: inventory {h.inventory}; PostgreSQL on {LOOPBACK}:{pg} "
        f"(Debian {h.release}; passwords in ~/.config/onesift/{SECRETS[h.kind]}.env)"
    )


@app.command()
def down(kind: Annotated[str, typer.Argument(help="dev, ssh, bookworm or cluster")] = "dev"):
    """Remove a local host and its data."""
    from onesift.local_hosts import cluster_down, remove

    if kind == "cluster":
        gone = cluster_down()
        console.print(f"removed {', '.join(gone)}" if gone else "no cluster containers", markup=False)
        return

    try:
        h, removed = remove(kind)
    except BadInput as e:
        fail(str(e), 2)
    console.print(f"removed {h.container}" if removed else f"{h.container} does not exist")


@app.command()
def status():
    """Show the local hosts."""
    from onesift.local_hosts import states

    for h, state in states():
        console.print(f"{h.kind:8} {h.container:16} {h.release:8} {state:8} {h.inventory}", markup=False)

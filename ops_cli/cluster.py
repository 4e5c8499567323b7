"""`ops cluster`: a Patroni cluster's members, and its switchover, failover and reinit (onesift/cluster.py)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ops_cli.common import InventoryOpt, JsonOpt, console, lazy, literal, noun, problem, refuse_destructive, session, table

cluster = lazy("onesift.cluster")

app = noun("A Patroni cluster: status, switchover, failover, reinit.")


@app.command()
def status(ctx: typer.Context, as_json: JsonOpt = False, inventory: InventoryOpt = None):
    """Members, roles, lag and timeline; exit 1 when the cluster is unhealthy."""
    with session(ctx, inventory) as s:
        members, problems = cluster.status(s)
    if as_json:
        print(json.dumps({"members": [m.as_dict() for m in members], "healthy": not problems,
                          "problems": problems}, indent=2))
    else:
        print(table(["member", "host", "role", "state", "timeline", "lag (bytes)", "pending restart"],
                    [[m.name, m.host, m.role, m.state, m.timeline if m.timeline is not None else "",
                      "" if m.lag is None else m.lag, "yes" if m.pending_restart else ""] for m in members]))
        for p in problems:
            problem("unhealthy:", p)
    if problems:
        raise typer.Exit(1)


@app.command()
def switchover(
    ctx: typer.Context,
    to: Annotated[Optional[str], typer.Option("--to", help="The member to promote (default: Patroni picks).")] = None,
    inventory: InventoryOpt = None,
):
    """A planned switchover: the leader hands over to a healthy replica, which loses nothing."""
    with session(ctx, inventory) as s:
        console.print(literal(cluster.switchover(s, to)))


@app.command()
def failover(
    ctx: typer.Context,
    to: Annotated[Optional[str], typer.Option("--to", help="The member to promote (default: a streaming replica).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: in asynchronous mode unreplicated commits are lost.")] = False,
    allow_production: Annotated[bool, typer.Option(help="Also needed on a production inventory.")] = False,
    inventory: InventoryOpt = None,
):
    """A manual failover, also when the leader is unhealthy (production rules as reset)."""
    with session(ctx, inventory) as s:
        refuse_destructive(s, yes, allow_production, "failover")
        console.print(literal(cluster.failover(s, to)))


@app.command()
def reinit(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The replica to rebuild from the leader.")],
    inventory: InventoryOpt = None,
):
    """Rebuild a replica's data directory from the leader (one that cannot rejoin by itself)."""
    with session(ctx, inventory) as s:
        console.print(literal(cluster.reinit(s, node)))

"""
Container hosts (``@docker/NAME``, ``@podman/NAME``) must already be running.

pyinfra's docker connector treats its target as "a container if one by that
name runs, else an image": a name with no container behind it becomes
``docker run -d NAME`` (a registry pull, a new container), and a stopped
container is started, then committed to a new image and removed on
disconnect (pyinfra 3.10, ``connectors/docker.py``). For this project an
inventory names a database host, so either is a mistake, and the second
destroys the host. Only ``ops host up|down`` create, start or remove the
local containers.

The guard wraps the connector's ``connect``, as ``onesift/ssh.py`` wraps the
SSH one: ``config.py`` (which pyinfra runs before connecting, from the repo
directory) and ``onesift.session`` call ``refuse_unmanaged_containers()``.
The host session checks the same before it runs ``docker exec``
(``onesift.session.refuse_missing_container``).
A wrapper rather than a connector of our own (an entry point under another
name) because it also covers an inventory that says ``@docker/``, and rather
than inventory-file code because it covers every inventory, not just ours.
"""

from __future__ import annotations

import json
import subprocess

ONLY_OPS = "only `ops host up` creates or starts the local containers"


def container_problem(docker_cmd: str, name: str) -> str | None:
    """Why ``name`` cannot be used as a host (missing, not running), or None when it runs."""
    out = subprocess.run(
        [docker_cmd, "container", "inspect", "--format", "{{json .State}}", name],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        if "no such container" in out.stderr.lower():
            return f"container {name} does not exist ({ONLY_OPS})"
        reason = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        return f"cannot inspect container {name}: {reason}"
    status = json.loads(out.stdout or "{}")
    if not status.get("Running") or status.get("Paused"):
        return f"container {name} is not running ({status.get('Status', 'stopped')}; {ONLY_OPS})"
    return None


def refuse_unmanaged_containers() -> None:
    """Make pyinfra's docker/podman connectors refuse a missing or stopped container (idempotent)."""
    from pyinfra.api.exceptions import ConnectError
    from pyinfra.connectors.docker import DockerConnector

    connect = DockerConnector.connect
    if getattr(connect, "refuses_unmanaged", False):
        return

    def connect_running_only(self, *args, **kwargs):
        problem = container_problem(self.docker_cmd, self.data["docker_identifier"])
        if problem:
            raise ConnectError(problem)
        # Running: pyinfra sets no_stop, so disconnect leaves it as it was.
        return connect(self, *args, **kwargs)

    connect_running_only.refuses_unmanaged = True
    DockerConnector.connect = connect_running_only

"""
Keep cron running, with or without systemd. On systemd hosts the unit is
enabled and started; in containers (no init) the daemon is started directly.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, operation


class CronState(FactBase):
    """
    Whether systemd runs this host and whether a cron daemon is running.

    .. code:: python

        {"systemd": False, "running": True}
    """

    default = dict

    def command(self) -> str:
        return (
            "if [ -d /run/systemd/system ]; then echo systemd; else echo none; fi; "
            "if pgrep -x cron >/dev/null; then echo running; else echo stopped; fi"
        )

    def process(self, output):
        return {"systemd": output[0] == "systemd", "running": output[1] == "running"}


@operation()
def running():
    """
    Start the cron daemon if it is not running (``systemctl enable --now cron``
    under systemd, ``cron`` itself otherwise).

    **Example:**

    .. code:: python

        cron.running(name="cron daemon running")
    """
    state = host.get_fact(CronState)
    if state.get("running"):
        host.noop("cron is running")
        return
    yield "systemctl enable --now cron" if state.get("systemd") else "cron"

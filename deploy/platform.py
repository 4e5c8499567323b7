"""
The settings of the host being deployed, with its PostgreSQL major version
resolved from its Debian release (pyinfra's LinuxDistribution fact; the
rule is onesift/platform.py).
"""

from __future__ import annotations

from dataclasses import replace

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution

from onesift.platform import pg_version_for, release_of
from onesift.settings import BadInput, Settings


def settings() -> Settings:
    """The current host's Settings with pg_version resolved for its release; PyinfraError (one line) when refused."""
    try:
        base = Settings.from_data(host.data)
        release = release_of(host.get_fact(LinuxDistribution))
        return replace(base, pg_version=pg_version_for(release, base.pg_version, host.name))
    except BadInput as e:
        raise PyinfraError(str(e)) from None

"""
The platform of the host being deployed: its Debian release, read from the
host (pyinfra's LinuxDistribution fact), and the PostgreSQL major version the
deploy installs there. Each release packages one major version of its own,
and that is the default; inventory data ``pg_version`` may only name it
(PGDG's repository, which packages others, is not used).
"""

from __future__ import annotations

from dataclasses import replace

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution

from onesift.settings import BadInput, Settings

# Debian release -> the PostgreSQL major version its archive packages.
DEBIAN_POSTGRESQL = {"trixie": 17, "bookworm": 15}


def release_of(distribution: dict) -> str:
    """A Debian release's code name from LinuxDistribution ("" when not Debian)."""
    if (distribution or {}).get("name") != "Debian":
        return ""
    meta = distribution.get("release_meta") or {}
    return meta.get("VERSION_CODENAME") or meta.get("CODENAME") or ""


def pg_version_for(release: str, wanted: int | None, name: str = "the host") -> int:
    """The PostgreSQL major version to install on ``release``; BadInput when it is not packaged there."""
    supported = ", ".join(f"{r} (PostgreSQL {v})" for r, v in DEBIAN_POSTGRESQL.items())
    if release not in DEBIAN_POSTGRESQL:
        raise BadInput(f"{name} runs {release or 'a release other than Debian'}; supported: {supported}")
    own = DEBIAN_POSTGRESQL[release]
    if wanted is not None and wanted != own:
        raise BadInput(f"inventory data pg_version = {wanted}, but Debian {release} packages PostgreSQL {own} "
                       f"only: set pg_version = {own} or leave it unset")
    return own


def settings() -> Settings:
    """The current host's Settings with pg_version resolved for its release; PyinfraError (one line) when refused."""
    try:
        base = Settings.from_data(host.data)
        release = release_of(host.get_fact(LinuxDistribution))
        return replace(base, pg_version=pg_version_for(release, base.pg_version, host.name))
    except BadInput as e:
        raise PyinfraError(str(e)) from None

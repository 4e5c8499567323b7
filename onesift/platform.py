"""
The Debian releases the bundle runs on, and the PostgreSQL major version each
one packages: the default, and the only one inventory data ``pg_version`` may
name (PGDG's repository, which packages others, is not used).
"""

from __future__ import annotations

from onesift.errors import BadInput

# Debian release -> the PostgreSQL major version its archive packages.
DEBIAN_POSTGRESQL = {"trixie": 17, "bookworm": 15}
RELEASES = tuple(DEBIAN_POSTGRESQL)  # the first is the default


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
